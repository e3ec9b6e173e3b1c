// Packets flying over the topology view, as plain data: which log entries fly, and where a packet
// is at a given time. Drawn on a canvas (components/TopologyView.tsx), so a packet in flight costs
// no DOM node, style recalculation or re-layerisation per frame. Pure.
import type { LogEntry } from './netlog';
import type { Point } from './topology';

/** How long a packet takes to cross a link on screen. */
export const FLIGHT_MS = 650;
/** At most this many packets in the air: at 100× hundreds a second are sent; the view samples. */
export const FLIGHTS_MAX = 48;

export type Flight = { from: Point; to: Point; color: string; born: number };

/**
 * Packets sent since the entry keyed `lastKey` (newest first, at most `max`), leaving and entering
 * the device circles (radius `r`) at `now`. A null `lastKey` (the first look at the log) flies
 * none of the backlog.
 */
export function freshFlights(
  log: readonly LogEntry[],
  lastKey: string | null,
  pos: Readonly<Record<string, Point>>,
  color: (e: LogEntry) => string,
  now: number,
  r: number,
  max = FLIGHTS_MAX,
): Flight[] {
  const out: Flight[] = [];
  if (lastKey === null) return out;
  for (let i = log.length - 1; i >= 0 && log[i].key !== lastKey && out.length < max; i--) {
    const e = log[i];
    const a = pos[e.from];
    const b = pos[e.to];
    if (e.direction !== 'sent' || !a || !b) continue;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.max(1, Math.hypot(dx, dy));
    const ux = (dx / len) * r;
    const uy = (dy / len) * r;
    out.push({ from: { x: a.x + ux, y: a.y + uy }, to: { x: b.x - ux, y: b.y - uy }, color: color(e), born: now });
  }
  return out;
}

/** The flights still in the air at `now` with `fresh` added, the newest `max` of them. */
export function addFlights(flights: readonly Flight[], fresh: readonly Flight[], now: number, max = FLIGHTS_MAX): Flight[] {
  const out = flights.filter((f) => now - f.born < FLIGHT_MS).concat(fresh);
  return out.length > max ? out.slice(out.length - max) : out;
}

/** Where a packet is at `now` (eased in and out, fading to 0.7), or null once it has landed. */
export function flightAt(f: Flight, now: number): { x: number; y: number; alpha: number } | null {
  const t = (now - f.born) / FLIGHT_MS;
  if (t < 0 || t >= 1) return null;
  const e = t < 0.5 ? 2 * t * t : 1 - 2 * (1 - t) * (1 - t);
  return { x: f.from.x + (f.to.x - f.from.x) * e, y: f.from.y + (f.to.y - f.from.y) * e, alpha: 1 - 0.3 * e };
}

/**
 * How a `w`×`h` view box sits in a `boxW`×`boxH` element under SVG's default
 * `preserveAspectRatio` (xMidYMid meet): scaled to fit, centred.
 */
export function fitViewBox(boxW: number, boxH: number, w: number, h: number): { scale: number; dx: number; dy: number } {
  const scale = Math.max(0, Math.min(boxW / w, boxH / h));
  return { scale, dx: (boxW - w * scale) / 2, dy: (boxH - h * scale) / 2 };
}
