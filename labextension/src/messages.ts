/**
 * The comm protocol between accel_nb in the kernel and this extension.
 *
 * Written once here and once in `accel_nb/notebook/comm.py`; a message is a
 * JSON object with a protocol version `v` and a `kind`.  Anything else that
 * arrives on the comm is ignored, so a newer kernel cannot break an older
 * front end (it only shows that the versions differ).
 */

/** The comm target both sides use. */
export const COMM_TARGET = 'accel_nb';

/** The protocol version this front end speaks. */
export const PROTOCOL_VERSION = 1;

/** Where a request is: live states first, then the two final ones. */
export type RequestStatus = 'queued' | 'running' | 'retrying' | 'ok' | 'error';

/** One request as the kernel reports it (the ledger row, minus prompt and reply). */
export interface IRequestRow {
  id: string;
  /** Unix time (seconds) the request was submitted. */
  time: number;
  provider: string;
  model: string;
  status: RequestStatus;
  error_class?: string | null;
  error_message?: string | null;
  latency_s?: number | null;
  ttft_s?: number | null;
  input_tokens?: number | null;
  output_tokens?: number | null;
  cost_usd?: number | null;
  cached?: boolean | null;
  attempts?: number | null;
  /** The key's label (`env:OPENAI_API_KEY …abcd`), never the key. */
  key?: string | null;
}

/** One (provider, key) lane. */
export interface IKeyLane {
  label: string;
  /** `active`, `cooling`, `retired`, `open` or `half_open`. */
  state: string;
  breaker: string;
  cooling_s: number;
  in_flight: number;
}

/** A provider's health: never a key, only labels and whether one is configured. */
export interface IProviderHealth {
  id: string;
  key_status: 'ok' | 'missing' | 'not_needed';
  keys: IKeyLane[];
  /** The worst breaker state over the provider's lanes. */
  breaker: 'closed' | 'half_open' | 'open';
  cooling_s: number;
  requests: number;
  failed: number;
  queued: number;
  in_flight: number;
  last_error: string | null;
}

/** This kernel's session totals. */
export interface ISessionTotals {
  requests: number;
  succeeded: number;
  failed: number;
  queued: number;
  in_flight: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** Status of the request that finished last, `null` before any has. */
  last_status: 'ok' | 'error' | null;
}

interface IStateMessage {
  v: number;
  session: ISessionTotals;
  providers: IProviderHealth[];
  requests: IRequestRow[];
}

/** The whole state: sent when the comm opens and in reply to `hello`. */
export interface ISnapshotMessage extends IStateMessage {
  kind: 'snapshot';
}

/** What changed: fresh totals and providers, and only the requests that changed. */
export interface IUpdateMessage extends IStateMessage {
  kind: 'update';
}

export type KernelMessage = ISnapshotMessage | IUpdateMessage;

/** Front end → kernel: "I (re)attached, send me a snapshot". */
export type HelloMessage = { v: number; kind: 'hello' };

export function hello(): HelloMessage {
  return { v: PROTOCOL_VERSION, kind: 'hello' };
}

/** What `parseKernelMessage` made of a comm payload. */
export type Parsed =
  { ok: true; message: KernelMessage } | { ok: false; version: number | null };

const KINDS = new Set(['snapshot', 'update']);

/**
 * Check a comm payload's shape.  Only the envelope and the collections are
 * checked: the fields inside come from one Python module and are rendered
 * defensively, so a missing number shows as "–" rather than failing.
 */
export function parseKernelMessage(data: unknown): Parsed {
  if (!isObject(data)) {
    return { ok: false, version: null };
  }
  const version = typeof data.v === 'number' ? data.v : null;
  if (
    version !== PROTOCOL_VERSION ||
    typeof data.kind !== 'string' ||
    !KINDS.has(data.kind) ||
    !isObject(data.session) ||
    !Array.isArray(data.providers) ||
    !Array.isArray(data.requests) ||
    !data.requests.every(r => isObject(r) && typeof r.id === 'string')
  ) {
    return { ok: false, version };
  }
  return { ok: true, message: data as unknown as KernelMessage };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
