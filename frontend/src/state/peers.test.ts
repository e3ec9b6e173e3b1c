import { describe, expect, it } from 'vitest';
import { stats } from '../test/fixtures';
import { initialState, reducer, type Action, type AppState } from './app';
import { peerState, silentAfterMs, trackHeard } from './peers';
import type { PeerInfo } from './types';

const peer = (name: string, last: number | null, over: Partial<PeerInfo> = {}): PeerInfo => ({
  name,
  events_advertised: 10,
  in_sync: true,
  last_exchange_ms: last,
  blocked: false,
  address: null,
  address_source: null,
  relayed_via: null,
  met_by: null,
  ...over,
});
const at = (ref: number, wall = ref) => ({ ref, wall });

describe('peer chips', () => {
  it('a peer that was in sync but is not heard from past the bound is silent, not in sync', () => {
    const bound = silentAfterMs(1);
    let heard = trackHeard({}, [peer('bob', 1_000)], at(1_000));
    expect(peerState(peer('bob', 1_000), heard['bob'], 1, undefined, at(1_000 + bound))).toBe('in-sync');
    // The same last exchange reported again and again: bob has gone quiet.
    heard = trackHeard(heard, [peer('bob', 1_000)], at(1_000 + bound));
    expect(peerState(peer('bob', 1_000), heard['bob'], 1, undefined, at(2_000 + bound))).toBe('silent');
    // Heard again: in sync again.
    heard = trackHeard(heard, [peer('bob', 2_000 + bound)], at(2_000 + bound));
    expect(peerState(peer('bob', 2_000 + bound), heard['bob'], 1, undefined, at(3_000 + bound))).toBe('in-sync');
  });

  it('compares exchanges by value, so a peer whose clock is hours off is not silent for that', () => {
    const heard = trackHeard({}, [peer('bob', 5)], at(1_700_000_000_000));
    expect(peerState(peer('bob', 5), heard['bob'], 1, undefined, at(1_700_000_001_000))).toBe('in-sync');
  });

  it('needs both clocks past the bound: a paused or a fast simulation alone makes no peer silent', () => {
    const bound = silentAfterMs(2);
    const heard = trackHeard({}, [peer('bob', 1)], at(0, 0));
    // Paused: virtual time stands still while the wall clock runs.
    expect(peerState(peer('bob', 1), heard['bob'], 2, undefined, at(0, 10 * bound))).toBe('in-sync');
    // 100×: virtual time runs far ahead of the once-a-second reports.
    expect(peerState(peer('bob', 1), heard['bob'], 2, undefined, at(100 * 1_000, 1_000))).toBe('in-sync');
    expect(peerState(peer('bob', 1), heard['bob'], 2, undefined, at(2 * bound, 2 * bound))).toBe('silent');
  });

  it('a peer the demo knows is down says so at once; a cut one says cut', () => {
    const heard = trackHeard({}, [peer('bob', 1)], at(0));
    expect(peerState(peer('bob', 1), heard['bob'], 1, false, at(1))).toBe('down');
    expect(peerState(peer('bob', 1, { blocked: true }), heard['bob'], 1, undefined, at(1))).toBe('cut');
    expect(peerState(peer('bob', 1, { in_sync: false }), heard['bob'], 1, undefined, at(1))).toBe('behind');
  });

  it('gives more rounds to a device with more peers than one round reaches', () => {
    expect(silentAfterMs(3)).toBe(silentAfterMs(1));
    expect(silentAfterMs(7)).toBe(3 * silentAfterMs(1));
  });

  it('keeps the table itself when nothing moved, and the reducer records reports with a time', () => {
    const heard = trackHeard({}, [peer('bob', 1)], at(0));
    expect(trackHeard(heard, [peer('bob', 1)], at(50))).toBe(heard);
    const run = (s: AppState, ...actions: Action[]) => actions.reduce(reducer, s);
    const s = run(initialState('x', [{ name: 'alice', url: 'http://a:1' }]), {
      type: 'dev/stats',
      device: 'alice',
      stats: stats('alice', { peers: [peer('bob', 7)] }),
      at: at(42),
    });
    expect(s.devices.alice.peersHeard).toEqual({ bob: { exchangeMs: 7, at: at(42) } });
  });
});
