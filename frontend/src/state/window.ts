// The message list's window: only `size` rows are in the DOM, whatever the list holds. Anchored
// by the id of its first row (so older pages put in front do not move it), or following the
// newest when the anchor is null. Pure.
import type { Message } from './types';

/**
 * Rows in the DOM per pane: about five screens of a pane (one shows 6–8 rows). Every row costs
 * layout and paint each time the list changes, which at 100× is several times a second.
 */
export const WINDOW_ROWS = 40;
/** Rows the window moves by when the list is scrolled to one of its ends. */
export const WINDOW_SHIFT = 20;

export type Range = { lo: number; hi: number };

/** The slice [lo, hi) of `messages` shown for the anchor `topId`. */
export function windowRange(messages: readonly Message[], topId: string | null, size = WINDOW_ROWS): Range {
  const n = messages.length;
  if (topId !== null) {
    const lo = messages.findIndex((m) => m.id === topId);
    if (lo >= 0) return { lo, hi: Math.min(n, lo + size) };
  }
  return { lo: Math.max(0, n - size), hi: n };
}

/** The anchor after scrolling up: `shift` rows earlier (the same when already at the top). */
export function shiftUp(messages: readonly Message[], r: Range, shift = WINDOW_SHIFT): string | null {
  if (messages.length === 0) return null;
  return messages[Math.max(0, r.lo - shift)].id;
}

/** The anchor after scrolling down: `shift` rows later, or null (follow) once the newest is in. */
export function shiftDown(messages: readonly Message[], r: Range, size = WINDOW_ROWS, shift = WINDOW_SHIFT): string | null {
  const lo = r.lo + shift;
  if (lo + size >= messages.length) return null;
  return messages[lo].id;
}
