import {
  IProviderHealth,
  IRequestRow,
  ISessionTotals,
  KernelMessage
} from '../messages';
import {
  AccelModel,
  formatCost,
  formatCount,
  formatSeconds,
  ProviderHealth,
  RequestLog,
  rowTokens,
  statusText,
  target
} from '../models';

function row(
  id: string,
  time: number,
  extra: Partial<IRequestRow> = {}
): IRequestRow {
  return {
    id,
    time,
    provider: 'openai',
    model: 'gpt-4o-mini',
    status: 'ok',
    ...extra
  };
}

function provider(
  id: string,
  extra: Partial<IProviderHealth> = {}
): IProviderHealth {
  return {
    id,
    key_status: 'ok',
    keys: [],
    breaker: 'closed',
    cooling_s: 0,
    requests: 0,
    failed: 0,
    queued: 0,
    in_flight: 0,
    last_error: null,
    ...extra
  };
}

const idle: ISessionTotals = {
  requests: 0,
  succeeded: 0,
  failed: 0,
  queued: 0,
  in_flight: 0,
  input_tokens: 0,
  output_tokens: 0,
  cost_usd: 0,
  last_status: null
};

function message(
  kind: 'snapshot' | 'update',
  session: Partial<ISessionTotals> = {},
  requests: IRequestRow[] = [],
  providers: IProviderHealth[] = []
): KernelMessage {
  return { v: 1, kind, session: { ...idle, ...session }, providers, requests };
}

describe('RequestLog', () => {
  it('keeps the newest first and at most `limit`', () => {
    const log = new RequestLog(2);
    log.upsert([row('a', 1), row('b', 3), row('c', 2)]);
    expect(log.rows.map(r => r.id)).toEqual(['b', 'c']);
  });

  it('updates a live request in place', () => {
    const log = new RequestLog(10);
    log.upsert([
      row('a', 1, { status: 'queued' }),
      row('b', 2, { status: 'queued' })
    ]);
    log.upsert([
      row('a', 1, { status: 'ok', latency_s: 0.5, output_tokens: 7 })
    ]);
    expect(log.rows.map(r => [r.id, r.status])).toEqual([
      ['b', 'queued'],
      ['a', 'ok']
    ]);
    expect(log.rows[1].latency_s).toBe(0.5);
  });

  it('replaces everything on a snapshot and trims when the limit shrinks', () => {
    const log = new RequestLog(10);
    log.upsert([row('x', 9)]);
    log.replace([row('a', 1), row('b', 2), row('c', 3)]);
    expect(log.rows.map(r => r.id)).toEqual(['c', 'b', 'a']);
    log.limit = 1;
    expect(log.rows.map(r => r.id)).toEqual(['c']);
    log.limit = 0;
    expect(log.limit).toBe(1);
  });
});

describe('ProviderHealth', () => {
  it('lists the busiest first, then by name, and sees an open breaker', () => {
    const health = new ProviderHealth();
    health.replace([
      provider('groq'),
      provider('openai', { requests: 3 }),
      provider('claude')
    ]);
    expect(health.providers.map(p => p.id)).toEqual([
      'openai',
      'claude',
      'groq'
    ]);
    expect(health.anyOpen).toBe(false);
    health.replace([provider('openai', { breaker: 'open' })]);
    expect(health.anyOpen).toBe(true);
  });
});

describe('AccelModel', () => {
  it('starts absent and shows a dash', () => {
    const model = new AccelModel();
    expect(model.state).toBe('absent');
    expect(statusText(model)).toBe('accel: –');
  });

  it('applies a snapshot, then updates, and signals each change', () => {
    const model = new AccelModel({ maxRequests: 5 });
    let changes = 0;
    model.changed.connect(() => changes++);
    model.apply(
      message('snapshot', { requests: 1 }, [row('a', 1)], [provider('openai')])
    );
    model.apply(
      message('update', { requests: 2, in_flight: 1 }, [
        row('b', 2, { status: 'running' })
      ])
    );
    expect(changes).toBe(2);
    expect(model.state).toBe('connected');
    expect(model.requests.rows.map(r => r.id)).toEqual(['b', 'a']);
    expect(model.session.in_flight).toBe(1);
    expect(statusText(model)).toBe('accel: 1 running · 2 req · 0 tok · $0');
  });

  it('is red when the last request failed or a breaker is open', () => {
    const model = new AccelModel();
    model.apply(message('snapshot', { last_status: 'ok' }));
    expect(model.alert).toBe(false);
    model.apply(message('update', { last_status: 'error', failed: 1 }));
    expect(model.alert).toBe(true);
    model.apply(
      message(
        'update',
        { last_status: 'ok' },
        [],
        [provider('claude', { breaker: 'open' })]
      )
    );
    expect(model.alert).toBe(true);
  });

  it('shows a version mismatch, and forgets everything on reset', () => {
    const model = new AccelModel();
    model.apply(message('snapshot', { requests: 4 }, [row('a', 1)]));
    model.markIncompatible(2);
    expect(model.state).toBe('incompatible');
    expect(model.kernelVersion).toBe(2);
    expect(model.requests.rows).toEqual([]);
    expect(statusText(model)).toBe('accel: update needed');
    model.markIncompatible(null); // not a protocol message at all: ignored
    expect(model.state).toBe('incompatible');
    model.reset();
    expect(model.state).toBe('absent');
  });

  it('applies the max-requests setting', () => {
    const model = new AccelModel({ maxRequests: 3 });
    model.apply(
      message('snapshot', {}, [row('a', 1), row('b', 2), row('c', 3)])
    );
    model.setMaxRequests(2);
    expect(model.requests.rows.map(r => r.id)).toEqual(['c', 'b']);
  });
});

describe('formatting', () => {
  it('formats counts, costs and durations compactly', () => {
    expect([
      formatCount(999),
      formatCount(1200),
      formatCount(2_000_000),
      formatCount(null)
    ]).toEqual(['999', '1.2k', '2M', '–']);
    expect([0, 0.00123, 0.0000048, 1.5, undefined].map(formatCost)).toEqual([
      '$0',
      '$0.0012',
      '$0.0000048',
      '$1.50',
      '–'
    ]);
    expect(formatCost(0.004)).toBe('$0.004');
    expect([
      formatSeconds(0.0423),
      formatSeconds(2.5),
      formatSeconds(null)
    ]).toEqual(['42 ms', '2.50 s', '–']);
  });

  it('shows a full status line', () => {
    const model = new AccelModel();
    model.apply(
      message('snapshot', {
        requests: 12,
        queued: 2,
        failed: 1,
        input_tokens: 800,
        output_tokens: 450,
        cost_usd: 0.004
      })
    );
    expect(statusText(model)).toBe(
      'accel: 2 queued · 12 req · 1.3k tok · $0.004 · 1 failed'
    );
  });

  it('names a row by its target and sums its tokens', () => {
    expect(target(row('a', 1))).toBe('openai:gpt-4o-mini');
    expect(rowTokens(row('a', 1))).toBeNull();
    expect(rowTokens(row('a', 1, { input_tokens: 3, output_tokens: 4 }))).toBe(
      7
    );
  });
});
