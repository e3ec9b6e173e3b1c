// The human-readable event log: what happened on each device, derived from live message updates.
import { messagePreview } from './messages';
import type { Message } from './types';

export type ActivityKind = 'posted' | 'received' | 'reaction' | 'file';

export type ActivityItem = {
  device: string;
  kind: ActivityKind;
  at_ms: number;
  text: string;
  auto: boolean;
};

/** A stored entry; `id` increases by one per entry, for stable list keys. */
export type Activity = ActivityItem & { id: number };

export const ACTIVITY_MAX = 300;

type Pair = `${string}\u0000${string}`;

function reactionPairs(m: Message): Set<Pair> {
  const s = new Set<Pair>();
  for (const r of m.reactions) for (const a of r.authors) s.add(`${r.emoji}\u0000${a}`);
  return s;
}

/**
 * What changed between the copy of a message `device` had (`prev`, or undefined when new) and the
 * update `next`. `now` stamps changes that carry no time of their own (reactions, chunks).
 */
export function describeMessageChange(
  device: string,
  prev: Message | undefined,
  next: Message,
  now: number,
): ActivityItem[] {
  const out: ActivityItem[] = [];
  const quote = `“${messagePreview(next, 36)}”`;
  if (!prev) {
    if (next.author === device) {
      out.push({ device, kind: 'posted', at_ms: next.created_at_ms, text: `${device} posted ${quote}`, auto: next.auto });
    } else {
      out.push({
        device,
        kind: 'received',
        at_ms: now,
        text: `${device} got ${quote} from ${next.author}`,
        auto: next.auto,
      });
    }
  }
  const before = prev ? reactionPairs(prev) : new Set<Pair>();
  const after = reactionPairs(next);
  for (const p of after) {
    if (before.has(p)) continue;
    const [emoji, author] = p.split('\u0000');
    out.push({ device, kind: 'reaction', at_ms: now, text: `${device} sees ${author} react ${emoji} to ${quote}`, auto: false });
  }
  for (const p of before) {
    if (after.has(p)) continue;
    const [emoji, author] = p.split('\u0000');
    out.push({ device, kind: 'reaction', at_ms: now, text: `${device} sees ${author} remove ${emoji} from ${quote}`, auto: false });
  }
  const a = next.attachment;
  if (a && a.complete && (!prev || !prev.attachment || !prev.attachment.complete) && next.author !== device) {
    out.push({
      device,
      kind: 'file',
      at_ms: now,
      text: `${device} has all ${a.chunks_total} chunks of ${a.name}`,
      auto: next.auto,
    });
  }
  return out;
}

/** Prepend (newest first) with ids counting on from the newest stored one, and bound. */
export function pushActivity(list: readonly Activity[], items: readonly ActivityItem[], max = ACTIVITY_MAX): Activity[] {
  if (items.length === 0) return list as Activity[];
  const first = list.length > 0 ? list[0].id + 1 : 1;
  const fresh = items.map((it, i) => ({ ...it, id: first + i })).reverse();
  const out = [...fresh, ...list];
  return out.length > max ? out.slice(0, max) : out;
}
