// A device's peers as its pane shows them: a peer's "in sync" is only as fresh as the last time
// the device heard from it, so a peer not heard from within a bound is shown silent, whatever
// it last said. Pure.
import type { PeerInfo } from './types';

/** Both clocks the page reasons with: virtual time in simulated mode (wall in real), and wall. */
export type Clocks = { ref: number; wall: number };

/** When a peer's `last_exchange_ms` was last seen to change, on both clocks. */
export type PeerHeard = { exchangeMs: number | null; at: Clocks };

/** The devices' summary round (`sync_interval`, docs/PROTOCOL.md): each sends one per round. */
export const SYNC_INTERVAL_MS = 5_000;
/** Peers a device sends its summary to per round (`sync_fanout`). */
export const SYNC_FANOUT = 3;
/**
 * Rounds a live peer may stay unheard before it is shown silent. A peer sends to at most
 * `SYNC_FANOUT` of its peers a round, so with more peers a round may pass it by; four rounds per
 * `SYNC_FANOUT` peers makes that a chance under 1 in 500 for a peer of seven (the demo's most).
 */
export const SILENT_ROUNDS = 4;

/** How long a peer of a device with `peers` peers may go unheard before it is shown silent. */
export function silentAfterMs(peers: number): number {
  return SILENT_ROUNDS * SYNC_INTERVAL_MS * Math.max(1, Math.ceil(peers / SYNC_FANOUT));
}

/**
 * The table after a stats report at `at`: a peer whose `last_exchange_ms` changed (or is new) was
 * heard now. Compared by value, not against the clock: a device's clock may be skewed from the
 * page's. Returns `prev` itself when nothing changed.
 */
export function trackHeard(prev: Readonly<Record<string, PeerHeard>>, peers: readonly PeerInfo[], at: Clocks): Record<string, PeerHeard> {
  let changed = Object.keys(prev).length !== peers.length;
  const next: Record<string, PeerHeard> = {};
  for (const p of peers) {
    const old = prev[p.name];
    if (old && old.exchangeMs === p.last_exchange_ms) next[p.name] = old;
    else {
      next[p.name] = { exchangeMs: p.last_exchange_ms, at };
      changed = true;
    }
  }
  return changed ? next : (prev as Record<string, PeerHeard>);
}

export type PeerState = 'in-sync' | 'behind' | 'silent' | 'down' | 'cut';

/**
 * What a peer's chip says. `up` is false when the demo knows the peer's process is down; silent
 * takes both clocks past the bound, so a paused simulation (virtual time still) or one at 100×
 * (virtual time far ahead of the once-a-second stats) shows no peer silent for that alone.
 */
export function peerState(p: PeerInfo, heard: PeerHeard | undefined, peers: number, up: boolean | undefined, now: Clocks): PeerState {
  if (up === false) return 'down';
  if (p.blocked) return 'cut';
  const bound = silentAfterMs(peers);
  if (heard && now.ref - heard.at.ref > bound && now.wall - heard.at.wall > bound) return 'silent';
  return p.in_sync ? 'in-sync' : 'behind';
}
