// Pure helpers for a device's message list: always sorted by (created_at_ms, id), unique by id.
import type { Message, Reaction } from './types';

export function compareMessages(a: Message, b: Message): number {
  if (a.created_at_ms !== b.created_at_ms) return a.created_at_ms - b.created_at_ms;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Insert or replace `msg` (by id), keeping the list sorted. Returns a new array; never mutates. */
export function upsertMessage(list: readonly Message[], msg: Message): Message[] {
  const existing = list.findIndex((m) => m.id === msg.id);
  const base = existing >= 0 ? [...list.slice(0, existing), ...list.slice(existing + 1)] : [...list];
  // Fast path: most updates are the newest message.
  let i = base.length;
  while (i > 0 && compareMessages(base[i - 1], msg) > 0) i--;
  base.splice(i, 0, msg);
  return base;
}

/**
 * Merge many messages into the sorted list `list` (later entries of `incoming` win on equal ids).
 * Linear in the list plus k log k for the k incoming, not a sort of everything: at 100× this runs
 * several times a second on a list of thousands.
 */
export function upsertMany(list: readonly Message[], incoming: readonly Message[]): Message[] {
  const latest = new Map<string, Message>();
  for (const m of incoming) latest.set(m.id, m);
  const fresh = [...latest.values()].sort(compareMessages);
  const kept = latest.size === 0 ? list : list.filter((m) => !latest.has(m.id));
  // Common case at speed: everything incoming is newer than what is held.
  if (kept.length === 0 || fresh.length === 0 || compareMessages(kept[kept.length - 1], fresh[0]) < 0) return kept.concat(fresh);
  const out: Message[] = [];
  let i = 0;
  let j = 0;
  while (i < kept.length && j < fresh.length) out.push(compareMessages(kept[i], fresh[j]) <= 0 ? kept[i++] : fresh[j++]);
  while (i < kept.length) out.push(kept[i++]);
  while (j < fresh.length) out.push(fresh[j++]);
  return out;
}

/** A full list from GET /api/messages: sorted and de-duplicated (last copy of an id wins). */
export function normalizeMessages(incoming: readonly Message[]): Message[] {
  return upsertMany([], incoming);
}

export function hasReactionFrom(msg: Message, emoji: string, author: string): boolean {
  return msg.reactions.some((r) => r.emoji === emoji && r.authors.includes(author));
}

/** Optimistically add (or remove) `author`'s `emoji` reaction; reactions with no authors vanish. */
export function applyReaction(msg: Message, emoji: string, author: string, remove: boolean): Message {
  const reactions: Reaction[] = [];
  let found = false;
  for (const r of msg.reactions) {
    if (r.emoji !== emoji) {
      reactions.push(r);
      continue;
    }
    found = true;
    const others = r.authors.filter((a) => a !== author);
    const authors = remove ? others : [...others, author];
    if (authors.length > 0) reactions.push({ emoji, authors });
  }
  if (!found && !remove) reactions.push({ emoji, authors: [author] });
  return { ...msg, reactions };
}

/**
 * What a person types in the search box, as the API's search (docs/API.md): every word quoted
 * (so `report.pdf` or `"` is one term) and the last one a prefix, for search as you type.
 */
export function toSearchQuery(typed: string): string {
  const words = typed.split(/\s+/).filter((w) => w.length > 0);
  return words.map((w, i) => `"${w.replace(/"/g, '""')}"${i === words.length - 1 ? '*' : ''}`).join(' ');
}

/** Short human text for a message in logs. */
export function messagePreview(msg: Message, max = 40): string {
  const t = msg.text.trim();
  const base = t.length > 0 ? t : msg.attachment ? `📎 ${msg.attachment.name}` : '(empty)';
  return base.length > max ? base.slice(0, max - 1) + '…' : base;
}

/**
 * Messages a pane holds in memory. It shows a window of 40 rows (state/window.ts) and a person
 * reads a few pages back; older ones are one `GET /api/messages?before=` away. Without a bound,
 * a page left open at 100× (about 100 messages a second) would hold every message ever made.
 */
export const MESSAGES_HELD_MAX = 1_000;

/**
 * A cursor for the messages older than `m`: every one of them, and perhaps a few of the same
 * millisecond that are held already (merged by id). The paging rule's cursor is
 * `<created_at_us>-<id hex>` (backend/src/paging.rs) and a view's `created_at_ms` is its
 * microseconds / 1000, rounded down, so the last microsecond of `m`'s millisecond is past `m`.
 */
export function cursorBefore(m: Message): string {
  return `${m.created_at_ms * 1000 + 999}-${m.id}`;
}

/**
 * The newest `max` of a sorted list, and the cursor for what was let go (null when nothing was):
 * the pane pages back to those from the device when scrolled up to them.
 */
export function keepNewest(list: Message[], max = MESSAGES_HELD_MAX): { messages: Message[]; cut: string | null } {
  if (list.length <= max) return { messages: list, cut: null };
  const messages = list.slice(list.length - max);
  return { messages, cut: cursorBefore(messages[0]) };
}
