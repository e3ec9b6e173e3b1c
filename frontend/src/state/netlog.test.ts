import { describe, expect, it } from 'vitest';
import { net } from '../test/fixtures';
import {
  ALL_KINDS_ON,
  DEFAULT_FILTER,
  appendNetEvents,
  bucketMax,
  dropCounts,
  expectedDrop,
  filterLog,
  isSuspicious,
  trafficBuckets,
  trafficTotals,
  type LogEntry,
} from './netlog';

describe('appendNetEvents', () => {
  it('tags entries with the observing device and keeps them sorted by time', () => {
    let log: LogEntry[] = [];
    log = appendNetEvents(log, 'alice', [net(1, 100), net(2, 300)]);
    log = appendNetEvents(log, 'bob', [net(1, 200, { direction: 'received' })]);
    expect(log.map((e) => `${e.device}:${e.seq}`)).toEqual(['alice:1', 'bob:1', 'alice:2']);
    expect(log[1].direction).toBe('received');
  });

  it('ignores duplicates, e.g. the same events re-fetched after a reconnect', () => {
    let log = appendNetEvents([], 'alice', [net(1, 100), net(2, 200)]);
    const again = appendNetEvents(log, 'alice', [net(2, 200), net(1, 100)]);
    expect(again).toBe(log); // unchanged, same array
    log = appendNetEvents(log, 'alice', [net(2, 200), net(3, 300)]);
    expect(log.map((e) => e.seq)).toEqual([1, 2, 3]);
  });

  it('keeps an event with a reused seq after a server restart (different time)', () => {
    let log = appendNetEvents([], 'alice', [net(1, 100)]);
    log = appendNetEvents(log, 'alice', [net(1, 5000)]);
    expect(log).toHaveLength(2);
  });

  it('bounds the log to the newest N entries', () => {
    let log: LogEntry[] = [];
    for (let i = 1; i <= 30; i++) log = appendNetEvents(log, 'alice', [net(i, i * 10)], 25);
    expect(log).toHaveLength(25);
    expect(log[0].seq).toBe(6);
    expect(log[24].seq).toBe(30);
    // a late, old batch is merged in order and the oldest fall off
    log = appendNetEvents(log, 'bob', [net(1, 5), net(2, 305)], 25);
    expect(log).toHaveLength(25);
    expect(log.some((e) => e.device === 'bob' && e.seq === 1)).toBe(false);
    expect(log.findIndex((e) => e.device === 'bob')).toBe(log.findIndex((e) => e.seq === 30) + 1);
  });

  it('maps unknown kinds to UNKNOWN, and keeps RECOVERY and BLOB', () => {
    const log = appendNetEvents([], 'alice', [
      net(1, 1, { kind: 'WEIRD' as never }),
      net(2, 2, { kind: 'BLOB' as never }),
      net(3, 3, { kind: 'RECOVERY' as never }),
    ]);
    expect(log.map((e) => e.kind)).toEqual(['UNKNOWN', 'BLOB', 'RECOVERY']);
  });
});

describe('filterLog', () => {
  const log = appendNetEvents(
    appendNetEvents([], 'alice', [
      net(1, 10, { kind: 'EVENT' }),
      net(2, 20, { kind: 'FILTER' }),
      net(3, 30, { kind: 'SUMMARY', direction: 'dropped', reason: 'loss' }),
    ]),
    'bob',
    [net(1, 15, { kind: 'DIGEST', direction: 'rejected', reason: 'bad_mac' }), net(2, 25, { kind: 'EVENT', direction: 'received' })],
  );

  it('returns newest first', () => {
    expect(filterLog(log, DEFAULT_FILTER).map((e) => e.at_ms)).toEqual([30, 25, 20, 15, 10]);
  });

  it('filters by kind', () => {
    const f = { ...DEFAULT_FILTER, kinds: { ...ALL_KINDS_ON, EVENT: false, SUMMARY: false } };
    expect(filterLog(log, f).map((e) => e.kind)).toEqual(['FILTER', 'DIGEST']);
  });

  it('filters by observing device', () => {
    expect(filterLog(log, { ...DEFAULT_FILTER, device: 'bob' }).map((e) => e.seq)).toEqual([2, 1]);
  });

  it('shows only drops and rejections when asked', () => {
    expect(filterLog(log, { ...DEFAULT_FILTER, problemsOnly: true }).map((e) => e.reason)).toEqual(['loss', 'bad_mac']);
  });

  it('honours the limit', () => {
    expect(filterLog(log, DEFAULT_FILTER, 2)).toHaveLength(2);
  });
});

describe('trafficBuckets', () => {
  const log = appendNetEvents([], 'alice', [
    net(1, 1_000, { kind: 'EVENT', bytes: 500 }),
    net(2, 1_500, { kind: 'EVENT', bytes: 300 }),
    net(3, 3_000, { kind: 'SUMMARY', bytes: 40 }),
    net(4, 3_100, { kind: 'SUMMARY', direction: 'received' }), // not double counted
    net(5, 5_000, { kind: 'FILTER', direction: 'dropped', reason: 'bad_mac' }), // suspicious (an expected one is counted apart)
    net(6, -100_000, { kind: 'EVENT' }), // outside the window
  ]);

  it('counts sent packets per kind per bucket, problems separately, oldest bucket first', () => {
    const b = trafficBuckets(log, { now: 5_500, windowMs: 6_000, bucketMs: 2_000 });
    expect(b).toHaveLength(3);
    expect(b.map((x) => x.start)).toEqual([0, 2_000, 4_000]);
    expect(b[0].counts.EVENT).toBe(2);
    expect(b[0].bytes).toBe(800);
    expect(b[1].counts.SUMMARY).toBe(1);
    expect(b[2].problems).toBe(1);
    expect(b[2].counts.FILTER).toBe(0);
    const t = trafficTotals(b);
    expect(t.counts).toMatchObject({ EVENT: 2, SUMMARY: 1, DIGEST: 0, FILTER: 0 });
    expect(t.problems).toBe(1);
    expect(bucketMax(b)).toBe(2);
    expect(bucketMax(b, 'DIGEST')).toBe(1); // never 0, so charts can divide by it
  });

  it('only counts the chosen device', () => {
    const both = appendNetEvents(log, 'bob', [net(1, 1_200, { kind: 'DIGEST' })]);
    const b = trafficBuckets(both, { now: 5_500, windowMs: 6_000, bucketMs: 2_000, device: 'bob' });
    expect(trafficTotals(b).counts).toMatchObject({ EVENT: 0, DIGEST: 1 });
  });

  it('defaults to 30 buckets over 60 s and drops events newer than now', () => {
    const b = trafficBuckets(appendNetEvents([], 'a', [net(1, 200_000)]), { now: 100_000 });
    expect(b).toHaveLength(30);
    expect(trafficTotals(b).counts.EVENT).toBe(0);
    expect(b[29].start + 2_000).toBeGreaterThan(100_000);
  });
});

describe('expected and suspicious drops', () => {
  const drop = (reason: string | null, direction: 'dropped' | 'rejected' = 'dropped') => ({ direction, reason });

  it('a restart’s stale echo, offline, cuts and the simulated network’s faults are expected', () => {
    for (const reason of ['stale_echo', 'offline', 'blocked', 'budget', 'loss', 'partition', 'cut']) {
      expect(isSuspicious(drop(reason), false), reason).toBe(false);
      expect(expectedDrop(drop(reason), false), reason).not.toBeNull();
    }
  });

  it('forged, corrupted, replayed or unexplained drops are suspicious on real UDP', () => {
    for (const reason of ['bad_mac', 'replayed', 'malformed', 'unknown_source', 'bad_signature', null]) {
      expect(isSuspicious(drop(reason), false), String(reason)).toBe(true);
    }
    expect(isSuspicious(drop('bad_signature', 'rejected'), false)).toBe(true);
    expect(isSuspicious({ direction: 'sent', reason: null }, false)).toBe(false);
  });

  it('in simulated mode the network’s duplicates and corruption are expected', () => {
    expect(isSuspicious(drop('replayed'), true)).toBe(false);
    expect(isSuspicious(drop('bad_mac'), true)).toBe(false);
    expect(isSuspicious(drop('bad_signature', 'rejected'), true)).toBe(true);
  });

  it('counts each kind, and the traffic chart puts only suspicious drops in its problem lane', () => {
    let log = appendNetEvents([], 'bob', [
      net(1, 1_000, { direction: 'dropped', reason: 'stale_echo' }),
      net(2, 1_100, { direction: 'dropped', reason: 'stale_echo' }),
      net(3, 1_200, { direction: 'dropped', reason: 'bad_mac' }),
    ]);
    expect(dropCounts(log, false)).toEqual({ expected: 2, suspicious: 1 });
    const b = trafficTotals(trafficBuckets(log, { now: 1_500, windowMs: 2_000, bucketMs: 2_000 }));
    expect([b.expected, b.problems]).toEqual([2, 1]);
    log = appendNetEvents([], 'bob', [net(1, 1_000, { direction: 'dropped', reason: 'stale_echo' })]);
    expect(trafficTotals(trafficBuckets(log, { now: 1_500, windowMs: 2_000, bucketMs: 2_000 })).problems).toBe(0);
  });
});
