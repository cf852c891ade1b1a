import { Kernel } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { KernelLink } from '../comm';
import { AccelModel } from '../models';

/** Just the part of a kernel connection the link uses, recording what it was asked. */
class FakeKernel {
  handleComms = true;
  isDisposed = false;
  statusChanged = new Signal<this, string>(this);
  targets = new Map<string, (comm: FakeComm, msg: unknown) => void>();
  created: FakeComm[] = [];

  constructor(
    private openComms: Record<string, { target_name: string }> = {}
  ) {}

  registerCommTarget(
    name: string,
    callback: (comm: FakeComm, msg: unknown) => void
  ): void {
    this.targets.set(name, callback);
  }

  removeCommTarget(name: string): void {
    this.targets.delete(name);
  }

  async requestCommInfo(): Promise<unknown> {
    return { content: { status: 'ok', comms: this.openComms } };
  }

  hasComm(): boolean {
    return false;
  }

  createComm(target: string, id: string): FakeComm {
    const comm = new FakeComm(id);
    this.created.push(comm);
    return comm;
  }

  /** The kernel opens the comm, as `comm.start()` does. */
  open(data: unknown): FakeComm {
    const comm = new FakeComm('from-kernel');
    this.targets.get('accel_nb')!(comm, { content: { data } });
    return comm;
  }
}

class FakeComm {
  sent: unknown[] = [];
  onMsg: (msg: { content: { data: unknown } }) => void = () => undefined;
  onClose: () => void = () => undefined;

  constructor(readonly commId: string) {}

  send(data: unknown): { done: Promise<void> } {
    this.sent.push(data);
    return { done: Promise.resolve() };
  }

  receive(data: unknown): void {
    this.onMsg({ content: { data } });
  }
}

const snapshot = {
  v: 1,
  kind: 'snapshot',
  session: { requests: 2, in_flight: 0, queued: 0 },
  providers: [],
  requests: [{ id: 'a', time: 1, provider: 'openai', model: 'm', status: 'ok' }]
};

function link(kernel: FakeKernel): AccelModel {
  const model = new AccelModel();
  new KernelLink(kernel as unknown as Kernel.IKernelConnection, model);
  return model;
}

const settle = () => new Promise(resolve => setTimeout(resolve, 0));

describe('KernelLink', () => {
  it('stays quiet for a kernel without accel_nb', async () => {
    const kernel = new FakeKernel();
    const model = link(kernel);
    await settle();
    expect(kernel.created).toEqual([]);
    expect(model.state).toBe('absent');
  });

  it('follows the comm the kernel opens', () => {
    const kernel = new FakeKernel();
    const model = link(kernel);
    const comm = kernel.open(snapshot);
    expect(model.state).toBe('connected');
    expect(model.session.requests).toBe(2);
    comm.receive({
      ...snapshot,
      kind: 'update',
      requests: [{ id: 'b', time: 2, status: 'running' }]
    });
    expect(model.requests.rows.map(r => r.id)).toEqual(['b', 'a']);
    comm.onClose();
    expect(model.state).toBe('absent');
  });

  it('re-attaches to a comm already open in the kernel and says hello', async () => {
    const kernel = new FakeKernel({ 'comm-1': { target_name: 'accel_nb' } });
    const model = link(kernel);
    await settle();
    const [comm] = kernel.created;
    expect(comm.commId).toBe('comm-1');
    expect(comm.sent).toEqual([{ v: 1, kind: 'hello' }]);
    comm.receive(snapshot);
    expect(model.state).toBe('connected');
  });

  it('forgets everything when the kernel restarts', () => {
    const kernel = new FakeKernel();
    const model = link(kernel);
    kernel.open(snapshot);
    kernel.statusChanged.emit('restarting');
    expect(model.state).toBe('absent');
    expect(model.requests.rows).toEqual([]);
  });

  it('shows a kernel speaking another protocol version', () => {
    const kernel = new FakeKernel();
    const model = link(kernel);
    kernel.open({ ...snapshot, v: 2 });
    expect(model.state).toBe('incompatible');
  });

  it('leaves secondary connections alone', async () => {
    const kernel = new FakeKernel({ 'comm-1': { target_name: 'accel_nb' } });
    kernel.handleComms = false;
    link(kernel);
    await settle();
    expect(kernel.targets.size).toBe(0);
    expect(kernel.created).toEqual([]);
  });
});
