/**
 * What one kernel's accel_nb engine is doing, as plain objects: no DOM and no
 * JupyterLab services, so the views stay thin and Jest can test all of this.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  IProviderHealth,
  IRequestRow,
  ISessionTotals,
  KernelMessage,
  PROTOCOL_VERSION
} from './messages';

/** The recent requests of one kernel, newest first, at most `limit` of them. */
export class RequestLog {
  constructor(limit: number) {
    this._limit = Math.max(1, Math.floor(limit));
  }

  get limit(): number {
    return this._limit;
  }

  set limit(value: number) {
    this._limit = Math.max(1, Math.floor(value));
    this._trim();
  }

  get rows(): readonly IRequestRow[] {
    return this._rows;
  }

  /** Replace everything (a snapshot). */
  replace(rows: readonly IRequestRow[]): void {
    this._rows = [];
    this.upsert(rows);
  }

  /**
   * Add rows or update them in place by id: a request moves from queued to
   * running to ok/error without changing its position (its submit time).
   */
  upsert(rows: readonly IRequestRow[]): void {
    for (const row of rows) {
      const index = this._rows.findIndex(r => r.id === row.id);
      if (index >= 0) {
        this._rows[index] = { ...this._rows[index], ...row };
      } else {
        this._rows.push(row);
      }
    }
    this._rows.sort((a, b) => b.time - a.time);
    this._trim();
  }

  clear(): void {
    this._rows = [];
  }

  private _trim(): void {
    if (this._rows.length > this._limit) {
      this._rows.length = this._limit;
    }
  }

  private _limit: number;
  private _rows: IRequestRow[] = [];
}

/** Provider health, busiest first; providers never used sort by name after them. */
export class ProviderHealth {
  get providers(): readonly IProviderHealth[] {
    return this._providers;
  }

  /** Any breaker open: requests to that provider fail fast until it cools down. */
  get anyOpen(): boolean {
    return this._providers.some(p => p.breaker === 'open');
  }

  replace(providers: readonly IProviderHealth[]): void {
    this._providers = [...providers].sort(
      (a, b) => b.requests - a.requests || a.id.localeCompare(b.id)
    );
  }

  clear(): void {
    this._providers = [];
  }

  private _providers: IProviderHealth[] = [];
}

const EMPTY_TOTALS: ISessionTotals = {
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

/**
 * - `absent`: the kernel has not started accel_nb's comm (or is not Python);
 * - `connected`: messages are arriving;
 * - `incompatible`: the kernel speaks another protocol version.
 */
export type LinkState = 'absent' | 'connected' | 'incompatible';

/** Everything the status item and the sidebar show for one kernel. */
export class AccelModel {
  constructor(options: { maxRequests?: number } = {}) {
    this.requests = new RequestLog(options.maxRequests ?? 50);
  }

  readonly requests: RequestLog;
  readonly providers = new ProviderHealth();

  get state(): LinkState {
    return this._state;
  }

  /** The protocol version the kernel spoke, when it is not ours. */
  get kernelVersion(): number | null {
    return this._kernelVersion;
  }

  get session(): ISessionTotals {
    return this._session;
  }

  /** Red in the status bar: a breaker is open or the last request failed. */
  get alert(): boolean {
    return this._session.last_status === 'error' || this.providers.anyOpen;
  }

  /** Emitted after every change; views re-render on their own schedule. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  apply(message: KernelMessage): void {
    this._state = 'connected';
    this._kernelVersion = null;
    this._session = { ...EMPTY_TOTALS, ...message.session };
    this.providers.replace(message.providers);
    if (message.kind === 'snapshot') {
      this.requests.replace(message.requests);
    } else {
      this.requests.upsert(message.requests);
    }
    this._changed.emit();
  }

  /** How many recent requests to keep (the extension's setting). */
  setMaxRequests(value: number): void {
    this.requests.limit = value;
    this._changed.emit();
  }

  /** The kernel answered in a protocol version this extension does not know. */
  markIncompatible(version: number | null): void {
    if (version === null || version === PROTOCOL_VERSION) {
      return;
    }
    this.reset();
    this._state = 'incompatible';
    this._kernelVersion = version;
    this._changed.emit();
  }

  /** The kernel went away or restarted: nothing is known any more. */
  reset(): void {
    this._state = 'absent';
    this._kernelVersion = null;
    this._session = EMPTY_TOTALS;
    this.providers.clear();
    this.requests.clear();
    this._changed.emit();
  }

  private _state: LinkState = 'absent';
  private _kernelVersion: number | null = null;
  private _session: ISessionTotals = EMPTY_TOTALS;
  private _changed = new Signal<this, void>(this);
}

// -- formatting (pure; shared by the views) -------------------------------------------

const DASH = '–';

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return DASH;
  }
  if (n >= 1e6) {
    return `${trimZero((n / 1e6).toFixed(1))}M`;
  }
  if (n >= 1e3) {
    return `${trimZero((n / 1e3).toFixed(1))}k`;
  }
  return String(n);
}

export function formatCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) {
    return DASH;
  }
  if (usd === 0) {
    return '$0';
  }
  // two significant digits below a cent: simulated and cheap models cost fractions of it
  return usd < 0.01 ? `$${Number(usd.toPrecision(2))}` : `$${usd.toFixed(2)}`;
}

export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined) {
    return DASH;
  }
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}

/** Local wall-clock time of a Unix timestamp, `HH:MM:SS`. */
export function formatTime(unix: number): string {
  const d = new Date(unix * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map(n => String(n).padStart(2, '0'))
    .join(':');
}

/** `provider:model`, the form a `%%accel` cell takes. */
export function target(row: IRequestRow): string {
  return row.model ? `${row.provider}:${row.model}` : row.provider;
}

export function rowTokens(row: IRequestRow): number | null {
  if (row.input_tokens == null && row.output_tokens == null) {
    return null;
  }
  return (row.input_tokens ?? 0) + (row.output_tokens ?? 0);
}

/** The status bar's text, e.g. `accel: 1 running · 3 req · 1.2k tok · $0.004`. */
export function statusText(model: AccelModel): string {
  if (model.state === 'absent') {
    return `accel: ${DASH}`;
  }
  if (model.state === 'incompatible') {
    return 'accel: update needed';
  }
  const s = model.session;
  const parts: string[] = [];
  if (s.in_flight) {
    parts.push(`${s.in_flight} running`);
  }
  if (s.queued) {
    parts.push(`${s.queued} queued`);
  }
  parts.push(`${formatCount(s.requests)} req`);
  parts.push(`${formatCount(s.input_tokens + s.output_tokens)} tok`);
  parts.push(formatCost(s.cost_usd));
  if (s.failed) {
    parts.push(`${formatCount(s.failed)} failed`);
  }
  return `accel: ${parts.join(' · ')}`;
}

function trimZero(value: string): string {
  return value.endsWith('.0') ? value.slice(0, -2) : value;
}
