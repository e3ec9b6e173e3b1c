// Formatting helpers (pure).

const pad = (n: number, w = 2) => String(Math.floor(n)).padStart(w, '0');

/** Bytes as "812 B", "1.1 KB", "3.4 MB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '–';
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/** Thousands separators: 12345 -> "12,345". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Milliseconds below this are treated as an elapsed virtual clock that started at 0, not a date. */
export const EPOCH_THRESHOLD_MS = 365 * 24 * 3600 * 1000;

/** A point in time as HH:MM:SS (local time for dates, elapsed time for small virtual clocks). */
export function formatClock(ms: number): string {
  if (ms < EPOCH_THRESHOLD_MS) {
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    const hms = `${pad((s % 86400) / 3600)}:${pad((s % 3600) / 60)}:${pad(s % 60)}`;
    return d > 0 ? `${d}d ${hms}` : hms;
  }
  const t = new Date(ms);
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

/** Clock with milliseconds, for the network log. */
export function formatClockMs(ms: number): string {
  return `${formatClock(ms)}.${pad(((ms % 1000) + 1000) % 1000, 3)}`;
}

/** The virtual time shown in the top bar: "T+ 1d 02:03:04" for elapsed clocks, a date-time otherwise. */
export function formatVirtualTime(ms: number): string {
  if (ms < EPOCH_THRESHOLD_MS) return `T+ ${formatClock(ms)}`;
  const t = new Date(ms);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${formatClock(ms)}`;
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", or "never". */
export function formatAgo(then: number | null | undefined, now: number): string {
  if (then == null) return 'never';
  const d = Math.max(0, now - then);
  if (d < 1500) return 'just now';
  if (d < 60_000) return `${Math.round(d / 1000)} s ago`;
  if (d < 3_600_000) return `${Math.round(d / 60_000)} min ago`;
  return `${Math.round(d / 3_600_000)} h ago`;
}

/** Speed as "0.1×", "1×", "100×". */
export function formatSpeed(s: number): string {
  const v = s >= 10 ? Math.round(s) : Math.round(s * 10) / 10;
  return `${v}×`;
}

/** Log scale for the speed slider: position 0..1000 <-> speed 0.1..100. */
export const SPEED_MIN = 0.1;
export const SPEED_MAX = 100;
export function speedToSlider(speed: number): number {
  const s = Math.min(SPEED_MAX, Math.max(SPEED_MIN, speed));
  return Math.round((Math.log10(s / SPEED_MIN) / Math.log10(SPEED_MAX / SPEED_MIN)) * 1000);
}
export function sliderToSpeed(pos: number): number {
  const p = Math.min(1000, Math.max(0, pos)) / 1000;
  const raw = SPEED_MIN * Math.pow(SPEED_MAX / SPEED_MIN, p);
  // Round to 2 significant digits so the server sees tidy numbers.
  const digits = raw < 1 ? 2 : raw < 10 ? 1 : 0;
  return Math.min(SPEED_MAX, Math.max(SPEED_MIN, Number(raw.toFixed(digits))));
}

/**
 * Latency slider: position 0..1000 <-> 0..60000 ms on a log scale (ms + 1), so the low end moves
 * in whole milliseconds (0, 1, 2, ... 10 ms are each reachable) and the top reaches a minute.
 */
export const LATENCY_MS_MAX = 60_000;
const LAT_LOG = Math.log10(LATENCY_MS_MAX + 1);
export function latencyToSlider(ms: number): number {
  const v = Math.min(LATENCY_MS_MAX, Math.max(0, ms));
  return Math.round((Math.log10(v + 1) / LAT_LOG) * 1000);
}
export function sliderToLatency(pos: number): number {
  const p = Math.min(1000, Math.max(0, pos)) / 1000;
  const raw = Math.pow(10, p * LAT_LOG) - 1;
  // Whole ms below 100, then 2 significant digits: tidy values the server echoes back.
  const v = raw < 100 ? Math.round(raw) : Number(raw.toPrecision(2));
  return Math.min(LATENCY_MS_MAX, Math.max(0, v));
}
/** A typed latency: whole ms within 0..60000, or null when it is not a number. */
export function parseLatency(typed: string): number | null {
  if (!/^\s*\d+\s*$/.test(typed)) return null;
  return Math.min(LATENCY_MS_MAX, Number(typed));
}
