/**
 * All kernel I/O of the extension.
 *
 * accel_nb opens a comm (target `accel_nb`) from the kernel when it starts its
 * bridge (`%load_ext accel_nb`), and sends throttled state messages on it.  A
 * front end that attaches later (page reload, notebook reopened) finds that
 * comm with `comm_info_request`, as ipywidgets does, and asks for a snapshot.
 * A kernel without accel_nb has no such comm: nothing is sent, nothing logged.
 */
import { Kernel, KernelMessage } from '@jupyterlab/services';

import { COMM_TARGET, hello, parseKernelMessage } from './messages';
import { AccelModel } from './models';

/** Feeds one `AccelModel` from one kernel connection. */
export class KernelLink {
  constructor(kernel: Kernel.IKernelConnection, model: AccelModel) {
    this.kernel = kernel;
    this.model = model;
    if (!kernel.handleComms) {
      return; // a secondary connection: the primary one owns the comms
    }
    kernel.registerCommTarget(COMM_TARGET, this._onOpen);
    kernel.statusChanged.connect(this._onStatus, this);
    void this._discover();
  }

  readonly kernel: Kernel.IKernelConnection;
  readonly model: AccelModel;

  /** Stop listening; the kernel's comm stays open for other front ends. */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (!this.kernel.isDisposed && this.kernel.handleComms) {
      this.kernel.removeCommTarget(COMM_TARGET, this._onOpen);
      this.kernel.statusChanged.disconnect(this._onStatus, this);
    }
  }

  private _onOpen = (
    comm: Kernel.IComm,
    msg: KernelMessage.ICommOpenMsg
  ): void => {
    this._attach(comm);
    this._receive(msg.content.data);
  };

  private async _discover(): Promise<void> {
    let reply: KernelMessage.ICommInfoReplyMsg;
    try {
      reply = await this.kernel.requestCommInfo({ target_name: COMM_TARGET });
    } catch {
      return; // a kernel that cannot answer comm_info has no accel_nb either
    }
    const content = reply.content;
    if (this._disposed || this._comm || content.status !== 'ok') {
      return;
    }
    const id = Object.keys(content.comms)[0];
    if (id === undefined || this.kernel.hasComm(id)) {
      return;
    }
    const comm = this.kernel.createComm(COMM_TARGET, id);
    this._attach(comm);
    // No reply is expected; a kernel dying meanwhile is not an error worth logging.
    comm.send(hello()).done.catch(() => undefined);
  }

  private _attach(comm: Kernel.IComm): void {
    this._comm = comm;
    comm.onMsg = msg => this._receive(msg.content.data);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
        this.model.reset();
      }
    };
  }

  private _receive(data: unknown): void {
    if (this._disposed) {
      return;
    }
    const parsed = parseKernelMessage(data);
    if (parsed.ok) {
      this.model.apply(parsed.message);
    } else {
      this.model.markIncompatible(parsed.version);
    }
  }

  private _onStatus(_: Kernel.IKernelConnection, status: string): void {
    if (
      status === 'restarting' ||
      status === 'autorestarting' ||
      status === 'dead'
    ) {
      this._comm = null; // the kernel's side is gone with its process
      this.model.reset();
    }
  }

  private _comm: Kernel.IComm | null = null;
  private _disposed = false;
}

/** One link and model per kernel connection, created on first sight, dropped with it. */
export class KernelLinks {
  constructor(maxRequests: number) {
    this._maxRequests = maxRequests;
  }

  /** The model for `kernel`, linking it first if needed. */
  attach(kernel: Kernel.IKernelConnection): AccelModel {
    let link = this._links.get(kernel);
    if (!link) {
      const model = new AccelModel({ maxRequests: this._maxRequests });
      link = new KernelLink(kernel, model);
      this._links.set(kernel, link);
      kernel.disposed.connect(() => {
        this._links.get(kernel)?.dispose();
        this._links.delete(kernel);
      });
    }
    return link.model;
  }

  /** Apply the "recent requests to keep" setting to every kernel. */
  setMaxRequests(value: number): void {
    this._maxRequests = value;
    for (const link of this._links.values()) {
      link.model.setMaxRequests(value);
    }
  }

  private _links = new Map<Kernel.IKernelConnection, KernelLink>();
  private _maxRequests: number;
}
