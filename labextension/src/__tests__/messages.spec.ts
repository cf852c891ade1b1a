import { hello, parseKernelMessage, PROTOCOL_VERSION } from '../messages';

const session = {
  requests: 1,
  succeeded: 1,
  failed: 0,
  queued: 0,
  in_flight: 0,
  input_tokens: 10,
  output_tokens: 20,
  cost_usd: 0.001,
  last_status: 'ok'
};

describe('parseKernelMessage', () => {
  it('accepts snapshots and updates of our version', () => {
    for (const kind of ['snapshot', 'update']) {
      const data = {
        v: PROTOCOL_VERSION,
        kind,
        session,
        providers: [],
        requests: [{ id: 'a' }]
      };
      const parsed = parseKernelMessage(data);
      expect(parsed.ok).toBe(true);
      expect(parsed.ok && parsed.message.kind).toBe(kind);
    }
  });

  it('reports the version of a message it cannot read', () => {
    expect(
      parseKernelMessage({
        v: 2,
        kind: 'snapshot',
        session,
        providers: [],
        requests: []
      })
    ).toEqual({ ok: false, version: 2 });
  });

  it.each([
    ['not an object', 'snapshot'],
    ['null', null],
    ['an array', [1]],
    ['no version', { kind: 'snapshot', session, providers: [], requests: [] }],
    [
      'an unknown kind',
      { v: 1, kind: 'shout', session, providers: [], requests: [] }
    ],
    ['no session', { v: 1, kind: 'update', providers: [], requests: [] }],
    [
      'providers not a list',
      { v: 1, kind: 'update', session, providers: {}, requests: [] }
    ],
    [
      'a request without id',
      { v: 1, kind: 'update', session, providers: [], requests: [{}] }
    ]
  ])('rejects %s', (_, data) => {
    expect(parseKernelMessage(data).ok).toBe(false);
  });

  it('says hello in our version', () => {
    expect(hello()).toEqual({ v: PROTOCOL_VERSION, kind: 'hello' });
  });
});
