import { describe, expect, it } from 'vitest';
import { device, msg, net, sim, stats } from '../test/fixtures';
import { compactLive, initialState, mustFollowQueued, reducer, referenceNow, type Action, type AppState } from './app';
import { MESSAGES_HELD_MAX, cursorBefore } from './messages';
import { NETLOG_MAX } from './netlog';

const run = (s: AppState, ...actions: Action[]) => actions.reduce(reducer, s);
const start = () => run(initialState('http://127.0.0.1:3005'), { type: 'sim/state', state: sim() });

describe('discovery', () => {
  it('creates one device per SimState device, in order, with trimmed urls', () => {
    const s = run(initialState('x'), {
      type: 'sim/state',
      state: sim({ devices: [device('bob', 'http://h:3002/'), device('alice', 'http://h:3001')] }),
    });
    expect(s.order).toEqual(['bob', 'alice']);
    expect(s.devices.bob.url).toBe('http://h:3002');
    expect(s.devices.alice.conn).toBe('connecting');
  });

  it('keeps device state across SimState updates and adds new devices', () => {
    let s = run(start(), { type: 'dev/loaded', device: 'alice', messages: [msg('a', 1)] });
    const alice = s.devices.alice;
    s = run(s, { type: 'sim/state', state: sim({ running: true }) });
    expect(s.devices.alice).toBe(alice);
    const three = sim();
    three.devices.push(device('carol', 'http://127.0.0.1:3003'));
    s = run(s, { type: 'sim/state', state: three });
    expect(s.order).toEqual(['alice', 'bob', 'carol']);
    expect(s.devices.alice.messages).toHaveLength(1);
  });

  it('does not let SimState replace devices given on the URL', () => {
    const s = run(initialState('x', [{ name: 'zed', url: 'http://z:1' }]), { type: 'sim/state', state: sim() });
    expect(s.order).toEqual(['zed']);
    expect(s.sim?.mode).toBe('real');
  });
});

describe('messages', () => {
  it('a live message is merged by id and kept in created_at_ms order', () => {
    const s = run(
      start(),
      { type: 'dev/loaded', device: 'bob', messages: [msg('b', 20), msg('a', 10)] },
      { type: 'dev/message', device: 'bob', message: msg('c', 15), now: 0 },
      { type: 'dev/message', device: 'bob', message: msg('a', 10, { text: 'changed' }), now: 0 },
    );
    expect(s.devices.bob.messages.map((m) => m.id)).toEqual(['a', 'c', 'b']);
    expect(s.devices.bob.messages[0].text).toBe('changed');
    expect(s.devices.alice.messages).toEqual([]);
  });

  it('a reload replaces the list but keeps live updates that arrived while it was in flight', () => {
    const s = run(
      start(),
      { type: 'dev/loaded', device: 'bob', messages: [msg('old', 1)] },
      { type: 'dev/fetchStart', device: 'bob' },
      { type: 'dev/message', device: 'bob', message: msg('live', 50), now: 0 },
      { type: 'dev/loaded', device: 'bob', messages: [msg('x', 5)] },
    );
    // 'old' is gone (the server no longer has it), 'live' survived the race
    expect(s.devices.bob.messages.map((m) => m.id)).toEqual(['x', 'live']);
    expect(s.devices.bob.fetching).toBe(false);
  });

  it('applies optimistic reactions for the pane owner', () => {
    const s = run(
      start(),
      { type: 'dev/loaded', device: 'bob', messages: [msg('a', 1)] },
      { type: 'dev/reaction', device: 'bob', id: 'a', emoji: '👍', remove: false },
    );
    expect(s.devices.bob.messages[0].reactions).toEqual([{ emoji: '👍', authors: ['bob'] }]);
    const s2 = reducer(s, { type: 'dev/reaction', device: 'bob', id: 'a', emoji: '👍', remove: true });
    expect(s2.devices.bob.messages[0].reactions).toEqual([]);
  });

  it('narrates live changes in the activity log, but not the initial load', () => {
    let s = run(start(), { type: 'dev/message', device: 'bob', message: msg('early', 1), now: 0 });
    expect(s.activity).toHaveLength(0);
    s = run(
      s,
      { type: 'dev/loaded', device: 'bob', messages: [msg('a', 1)] },
      { type: 'dev/message', device: 'bob', message: msg('b', 2, { author: 'alice', text: 'hi bob' }), now: 99 },
    );
    expect(s.activity[0]).toMatchObject({ device: 'bob', kind: 'received' });
    expect(s.activity[0].text).toContain('hi bob');
  });
});

describe('stats, online, connection', () => {
  it('stats set the online flag; the toggle answer overrides it', () => {
    let s = run(start(), { type: 'dev/stats', device: 'bob', stats: stats('bob', { online: true, events: 7 }) });
    expect(s.devices.bob.online).toBe(true);
    s = reducer(s, { type: 'dev/online', device: 'bob', online: false });
    expect(s.devices.bob.online).toBe(false);
    expect(s.devices.bob.stats?.online).toBe(false);
    expect(s.devices.bob.stats?.events).toBe(7);
  });

  it('tracks connection state per device and ignores unknown devices', () => {
    let s = reducer(start(), { type: 'dev/conn', device: 'alice', conn: 'reconnecting' });
    expect(s.devices.alice.conn).toBe('reconnecting');
    expect(s.devices.bob.conn).toBe('connecting');
    const same = reducer(s, { type: 'dev/conn', device: 'nobody', conn: 'live' });
    expect(same).toBe(s);
    s = reducer(s, { type: 'sim/conn', conn: 'reconnecting', error: 'down' });
    expect(s.simConn).toBe('reconnecting');
    expect(s.simError).toBe('down');
  });
});

describe('network events', () => {
  it('merges both devices into one log and advances the per-device cursor', () => {
    const s = run(
      start(),
      { type: 'dev/net', device: 'alice', events: [net(1, 10), net(2, 30)] },
      { type: 'dev/net', device: 'bob', events: [net(7, 20, { direction: 'received' })] },
    );
    expect(s.netlog.map((e) => e.device)).toEqual(['alice', 'bob', 'alice']);
    expect(s.devices.alice.netNext).toBe(2);
    const s2 = reducer(s, { type: 'dev/net', device: 'alice', events: [], next: 40 });
    expect(s2.devices.alice.netNext).toBe(40);
  });

  it('a batch applies its actions in order', () => {
    const s = reducer(start(), {
      type: 'batch',
      actions: [
        { type: 'dev/loaded', device: 'alice', messages: [] },
        { type: 'dev/message', device: 'alice', message: msg('a', 1), now: 0 },
        { type: 'dev/net', device: 'alice', events: [net(1, 1)] },
      ],
    });
    expect(s.devices.alice.messages).toHaveLength(1);
    expect(s.netlog).toHaveLength(1);
  });
});

describe('referenceNow', () => {
  it('uses the wall clock in real mode and virtual time in simulated mode', () => {
    expect(referenceNow(start(), 123)).toBe(123);
    let s = reducer(start(), { type: 'sim/state', state: sim({ mode: 'sim', virtual_time_ms: 5_000 }) });
    expect(referenceNow(s, 1e12)).toBe(5_000);
    s = reducer(s, { type: 'dev/net', device: 'alice', events: [net(1, 6_000)] });
    expect(referenceNow(s, 1e12)).toBe(6_000);
  });
});

describe('older pages', () => {
  it('keeps the cursor from the first page and merges older pages below the newer ones', () => {
    let s = run(start(), { type: 'dev/loaded', device: 'alice', messages: [msg('c', 30), msg('d', 40)], next: 'cur1' });
    expect(s.devices.alice.olderCursor).toBe('cur1');
    s = run(s, { type: 'dev/older', device: 'alice', messages: [msg('a', 10), msg('b', 20)], next: null });
    expect(s.devices.alice.messages.map((m) => m.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(s.devices.alice.olderCursor).toBeNull();
  });
  it('treats a server without pages (no next) as holding everything', () => {
    const s = run(start(), { type: 'dev/loaded', device: 'alice', messages: [msg('a', 1)] });
    expect(s.devices.alice.olderCursor).toBeNull();
  });
});

describe('which actions wait for the queued live frames', () => {
  it('a device list re-read and a new run do; the same run’s state and stats do not', () => {
    const s = start();
    expect(mustFollowQueued({ type: 'dev/loaded', device: 'alice', messages: [] }, s)).toBe(true);
    expect(mustFollowQueued({ type: 'dev/fetchStart', device: 'alice' }, s)).toBe(true);
    expect(mustFollowQueued({ type: 'sim/state', state: sim({ run_id: 'run-2' }) }, s)).toBe(true);
    expect(mustFollowQueued({ type: 'sim/state', state: sim({ running: true }) }, s)).toBe(false);
    expect(mustFollowQueued({ type: 'dev/stats', device: 'alice', stats: stats('alice') }, s)).toBe(false);
    expect(mustFollowQueued({ type: 'sim/conn', conn: 'live' }, s)).toBe(false);
  });
});

describe('memory bounds', () => {
  const many = (from: number, n: number) => Array.from({ length: n }, (_, i) => msg(`m${String(from + i).padStart(6, '0')}`, from + i));

  it('a pane holds the newest MESSAGES_HELD_MAX however many live messages come, and pages back to the rest', () => {
    let s = run(start(), { type: 'dev/loaded', device: 'alice', messages: many(0, 100), next: 'c-first-page' });
    expect(s.devices.alice.olderCursor).toBe('c-first-page');
    for (let i = 0; i < 30; i++) s = run(s, { type: 'dev/messages', device: 'alice', messages: many(100 + i * 100, 100), now: 0 });
    s = run(s, { type: 'dev/message', device: 'alice', message: msg('m999999', 999_999), now: 0 });
    const held = s.devices.alice.messages;
    expect(held).toHaveLength(MESSAGES_HELD_MAX);
    expect(held.at(-1)?.id).toBe('m999999');
    // The cursor now asks for what was let go: older than the oldest held.
    expect(s.devices.alice.olderCursor).toBe(cursorBefore(held[0]));
    expect(cursorBefore(held[0])).toBe(`${held[0].created_at_ms * 1000 + 999}-${held[0].id}`);
  });

  it('live messages kept during a re-read are bounded too', () => {
    let s = run(start(), { type: 'dev/fetchStart', device: 'alice' });
    for (let i = 0; i < 30; i++) s = run(s, { type: 'dev/messages', device: 'alice', messages: many(i * 100, 100), now: 0 });
    expect(s.devices.alice.liveDuringFetch.length).toBeLessThanOrEqual(MESSAGES_HELD_MAX);
    s = run(s, { type: 'dev/loaded', device: 'alice', messages: many(5_000, 100), next: null });
    expect(s.devices.alice.messages).toHaveLength(MESSAGES_HELD_MAX);
    expect(s.devices.alice.messages.at(-1)?.id).toBe('m005099');
  });

  it('a compacted queue of frames is small and applies to the same state', () => {
    const frames: Action[] = [];
    for (let i = 0; i < 3_000; i++) frames.push({ type: 'dev/message', device: 'alice', message: msg(`x${String(i).padStart(5, '0')}`, i), now: i });
    for (let i = 0; i < 3_000; i++) frames.push({ type: 'dev/net', device: 'alice', events: [net(i + 1, i)] });
    frames.push({ type: 'dev/stats', device: 'alice', stats: stats('alice', { events: 3 }) });
    const compacted = compactLive(frames);
    expect(compacted).toHaveLength(3);
    const held = (a: Action[]) => a.reduce((n, x) => n + (x.type === 'dev/messages' ? x.messages.length : x.type === 'dev/net' ? x.events.length : 1), 0);
    expect(held(compacted)).toBeLessThanOrEqual(MESSAGES_HELD_MAX + NETLOG_MAX + 1);
    const loaded = run(start(), { type: 'dev/loaded', device: 'alice', messages: [], next: null });
    const direct = run(loaded, { type: 'batch', actions: frames });
    const viaCompact = run(loaded, { type: 'batch', actions: compactLive(compactLive(frames).concat([{ type: 'dev/message', device: 'alice', message: msg('y', 9_999), now: 9_999 }])) });
    const directThenY = run(direct, { type: 'dev/message', device: 'alice', message: msg('y', 9_999), now: 9_999 });
    expect(viaCompact.devices.alice.messages.map((m) => m.id)).toEqual(directThenY.devices.alice.messages.map((m) => m.id));
    expect(viaCompact.netlog.map((e) => e.key)).toEqual(direct.netlog.map((e) => e.key));
  });
});
