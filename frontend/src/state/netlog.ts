// The merged network log of all devices: bounded, de-duplicated, sorted oldest first.
import { LOG_KINDS, type Direction, type LogKind, type NetEvent } from './types';

export type LogEntry = NetEvent & { device: string; key: string };

export const NETLOG_MAX = 2000;

export function entryKey(device: string, ev: NetEvent): string {
  return `${device}|${ev.seq}|${ev.at_ms}`;
}

function compareEntries(a: LogEntry, b: LogEntry): number {
  if (a.at_ms !== b.at_ms) return a.at_ms - b.at_ms;
  if (a.device !== b.device) return a.device < b.device ? -1 : 1;
  return a.seq - b.seq;
}

function normalizeKind(kind: string): LogKind {
  return (LOG_KINDS as readonly string[]).includes(kind) ? (kind as LogKind) : 'UNKNOWN';
}

/**
 * Add events observed by `device` to the log. Duplicates (same device, seq and time, e.g. from a
 * re-fetch after reconnecting) are ignored; the result keeps only the newest `max` entries.
 */
export function appendNetEvents(
  log: readonly LogEntry[],
  device: string,
  events: readonly NetEvent[],
  max = NETLOG_MAX,
): LogEntry[] {
  if (events.length === 0) return log as LogEntry[];
  const seen = new Set(log.map((e) => e.key));
  const fresh: LogEntry[] = [];
  for (const ev of events) {
    const key = entryKey(device, ev);
    if (seen.has(key)) continue;
    seen.add(key);
    fresh.push({ ...ev, kind: normalizeKind(ev.kind), device, key });
  }
  if (fresh.length === 0) return log as LogEntry[];
  fresh.sort(compareEntries);
  let out: LogEntry[];
  const last = log[log.length - 1];
  if (!last || compareEntries(last, fresh[0]) <= 0) {
    out = log.concat(fresh); // common case: everything is newer
  } else {
    out = log.concat(fresh).sort(compareEntries);
  }
  return out.length > max ? out.slice(out.length - max) : out;
}

export type LogFilter = {
  kinds: Record<LogKind, boolean>;
  /** Only entries observed by this device; null = all devices. */
  device: string | null;
  /** Only dropped / rejected packets. */
  problemsOnly: boolean;
};

export const ALL_KINDS_ON: Record<LogKind, boolean> = {
  EVENT: true,
  SUMMARY: true,
  DIGEST: true,
  FILTER: true,
  SKETCH: true,
  RECOVERY: true,
  BLOB: true,
  UNKNOWN: true,
};

export const DEFAULT_FILTER: LogFilter = { kinds: ALL_KINDS_ON, device: null, problemsOnly: false };

export function isProblem(direction: Direction): boolean {
  return direction === 'dropped' || direction === 'rejected';
}

/**
 * Drop reasons that are the protocol or the demo working as meant (docs/PROTOCOL.md, "What is
 * dropped, and why"): shown as drops, never in red. Any other reason, or none, is suspicious.
 */
export const EXPECTED_DROP_REASONS: Readonly<Record<string, string>> = {
  stale_echo: 'a peer’s first packet after it or this device started: answered with the epoch to echo',
  offline: 'arrived while the device was switched offline',
  blocked: 'a cut made on the page',
  budget: 'an answer over the peer’s budget, skipped',
  loss: 'lost by the simulated network',
  burst_loss: 'lost in a burst by the simulated network',
  partition: 'the simulated network is partitioned',
  cut: 'a cut made on the page',
};

/**
 * In simulated mode the virtual network also duplicates and corrupts datagrams on purpose: a
 * duplicate is dropped as replayed, a corrupted copy as a bad tag or undecodable. On real UDP
 * these would be someone else's doing.
 */
export const SIMULATED_FAULT_REASONS: Readonly<Record<string, string>> = {
  replayed: 'a copy the simulated network duplicated',
  bad_mac: 'a copy the simulated network corrupted',
  malformed: 'a copy the simulated network corrupted',
  bad_magic: 'a copy the simulated network corrupted',
};

/** Why a drop is expected, or null when it is suspicious (or not a drop). */
export function expectedDrop(e: Pick<NetEvent, 'direction' | 'reason'>, simulated: boolean): string | null {
  if (!isProblem(e.direction) || e.reason == null) return null;
  return EXPECTED_DROP_REASONS[e.reason] ?? (simulated ? SIMULATED_FAULT_REASONS[e.reason] ?? null : null);
}

/** A dropped or rejected packet whose reason is not an expected one: shown in red. */
export function isSuspicious(e: Pick<NetEvent, 'direction' | 'reason'>, simulated: boolean): boolean {
  return isProblem(e.direction) && expectedDrop(e, simulated) === null;
}

/** Drops in `log`: those expected and those suspicious. */
export function dropCounts(log: readonly LogEntry[], simulated: boolean): { expected: number; suspicious: number } {
  let expected = 0;
  let suspicious = 0;
  for (const e of log) {
    if (!isProblem(e.direction)) continue;
    if (expectedDrop(e, simulated) === null) suspicious++;
    else expected++;
  }
  return { expected, suspicious };
}

export function matchesFilter(e: LogEntry, f: LogFilter): boolean {
  if (!f.kinds[e.kind]) return false;
  if (f.device !== null && e.device !== f.device) return false;
  if (f.problemsOnly && !isProblem(e.direction)) return false;
  return true;
}

/** Newest first, at most `limit` entries that pass the filter. */
export function filterLog(log: readonly LogEntry[], f: LogFilter, limit = Infinity): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = log.length - 1; i >= 0 && out.length < limit; i--) {
    if (matchesFilter(log[i], f)) out.push(log[i]);
  }
  return out;
}

export type TrafficBucket = {
  start: number;
  /** Packets sent per kind in this bucket. */
  counts: Record<LogKind, number>;
  bytes: number;
  /** Dropped or rejected packets in this bucket whose reason is suspicious (`isSuspicious`). */
  problems: number;
  /** Dropped packets in this bucket whose reason is expected (`expectedDrop`). */
  expected: number;
};

export type TrafficOptions = {
  now: number;
  windowMs?: number;
  bucketMs?: number;
  /** Only entries observed by this device (null = all). */
  device?: string | null;
  /** Simulated mode: the virtual network's duplicates and corruption are expected drops. */
  simulated?: boolean;
};

const zeroCounts = (): Record<LogKind, number> => ({ EVENT: 0, SUMMARY: 0, DIGEST: 0, FILTER: 0, SKETCH: 0, RECOVERY: 0, BLOB: 0, UNKNOWN: 0 });

/**
 * Traffic over the last `windowMs` before `now`, in buckets of `bucketMs`, oldest first.
 * Each packet is counted once, where it was sent (received copies would double it);
 * dropped and rejected packets are counted as problems when suspicious, as expected otherwise.
 */
export function trafficBuckets(log: readonly LogEntry[], opts: TrafficOptions): TrafficBucket[] {
  const windowMs = opts.windowMs ?? 60_000;
  const bucketMs = opts.bucketMs ?? 2_000;
  const n = Math.max(1, Math.ceil(windowMs / bucketMs));
  // Align the buckets to bucketMs so bars do not shimmer as `now` moves.
  const end = Math.floor(opts.now / bucketMs) * bucketMs + bucketMs;
  const start = end - n * bucketMs;
  const buckets: TrafficBucket[] = Array.from({ length: n }, (_, i) => ({
    start: start + i * bucketMs,
    counts: zeroCounts(),
    bytes: 0,
    problems: 0,
    expected: 0,
  }));
  for (let i = log.length - 1; i >= 0; i--) {
    const e = log[i];
    if (e.at_ms < start) break; // sorted oldest first
    if (e.at_ms >= end) continue;
    if (opts.device != null && e.device !== opts.device) continue;
    const b = buckets[Math.floor((e.at_ms - start) / bucketMs)];
    if (e.direction === 'sent') {
      b.counts[e.kind] += 1;
      b.bytes += e.bytes;
    } else if (isSuspicious(e, opts.simulated ?? false)) {
      b.problems += 1;
    } else if (isProblem(e.direction)) {
      b.expected += 1;
    }
  }
  return buckets;
}

/** Totals per kind over the buckets, for the chart legend. */
export function trafficTotals(buckets: readonly TrafficBucket[]): {
  counts: Record<LogKind, number>;
  bytes: number;
  problems: number;
  expected: number;
} {
  const counts = zeroCounts();
  let bytes = 0;
  let problems = 0;
  let expected = 0;
  for (const b of buckets) {
    for (const k of LOG_KINDS) counts[k] += b.counts[k];
    bytes += b.bytes;
    problems += b.problems;
    expected += b.expected;
  }
  return { counts, bytes, problems, expected };
}

/** Highest value of one series (or of the stacked total when kind is omitted), at least 1. */
export function bucketMax(buckets: readonly TrafficBucket[], kind?: LogKind): number {
  let m = 1;
  for (const b of buckets) {
    const v = kind ? b.counts[kind] : LOG_KINDS.reduce((s, k) => s + b.counts[k], 0);
    if (v > m) m = v;
  }
  return m;
}
