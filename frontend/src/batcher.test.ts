import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher';

function harness() {
  const timers: { f: () => void; ms: number; cleared: boolean }[] = [];
  const applied: string[][] = [];
  const b = new Batcher<string>({
    apply: (a) => applied.push(a),
    periodMs: 300,
    setTimer: (f, ms) => {
      const t = { f, ms, cleared: false };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => {
      (t as { cleared: boolean }).cleared = true;
    },
  });
  const fire = () => {
    const t = timers.find((x) => !x.cleared);
    if (!t) throw new Error('no timer');
    t.cleared = true;
    t.f();
  };
  return { b, timers, applied, fire };
}

describe('Batcher', () => {
  it('applies the lanes in turn, spread over the period, each as one batch in arrival order', () => {
    const { b, timers, applied, fire } = harness();
    b.push('chat:alice', 'a1');
    b.push('net', 'n1');
    b.push('chat:alice', 'a2');
    b.push('chat:bob', 'b1');
    b.push('net', 'n2');
    expect(timers).toHaveLength(1); // one timer however many frames
    expect(timers[0].ms).toBe(150); // scheduled when one lane was busy: half a period
    fire();
    expect(applied).toEqual([['a1', 'a2']]);
    expect(timers[1].ms).toBe(150); // two lanes busy
    b.push('chat:alice', 'a3');
    fire();
    fire();
    expect(applied).toEqual([['a1', 'a2'], ['n1', 'n2'], ['b1']]);
    fire();
    expect(applied[3]).toEqual(['a3']);
    expect(timers.filter((t) => !t.cleared)).toHaveLength(0); // idle: no timer left
  });

  it('spreads the busy lanes over the period', () => {
    const { b, timers, applied, fire } = harness();
    for (const lane of ['w', 'x', 'y', 'z']) b.push(lane, lane);
    fire();
    expect(timers[1].ms).toBe(100); // x, y, z busy: three turns a period
    fire();
    expect(timers[2].ms).toBe(150); // y, z: two
    fire();
    fire();
    expect(applied.flat()).toEqual(['w', 'x', 'y', 'z']);
  });

  it('skips idle lanes', () => {
    const { b, applied, fire } = harness();
    b.push('a', '1');
    b.push('b', '2');
    fire();
    fire();
    b.push('b', '3');
    fire();
    expect(applied).toEqual([['1'], ['2'], ['3']]);
  });

  it('flushAll applies everything now, lane by lane, and cancels the timer; close drops the rest', () => {
    const { b, timers, applied } = harness();
    b.push('net', 'n1');
    b.push('chat:alice', 'a1');
    b.flushAll();
    expect(applied).toEqual([['n1'], ['a1']]);
    expect(timers[0].cleared).toBe(true);
    expect(b.pending()).toBe(false);
    b.push('chat:alice', 'a2');
    b.close();
    expect(b.pending()).toBe(false);
    expect(timers[1].cleared).toBe(true);
  });
});

describe('Batcher bounds', () => {
  it('a lane that is not applied (a hidden tab’s timers) stays bounded: compacted at laneMax', () => {
    const applied: number[][] = [];
    // Timers that never fire: nothing is applied on its own.
    const b = new Batcher<number>({
      apply: (a) => applied.push(a),
      periodMs: 200,
      laneMax: 10,
      // Keep the newest three (what the lists would keep anyway).
      compact: (a) => a.slice(-3),
      setTimer: () => ({}),
      clearTimer: () => undefined,
    });
    let most = 0;
    for (let i = 0; i < 10_000; i++) {
      b.push('chat:alice', i);
      most = Math.max(most, (b as unknown as { lanes: Map<string, number[]> }).lanes.get('chat:alice')!.length);
    }
    expect(most).toBeLessThanOrEqual(10);
    expect(applied).toEqual([]);
    b.flushAll();
    expect(applied.at(-1)?.at(-1)).toBe(9_999);
  });

  it('a lane that compaction cannot shrink is applied at once rather than kept growing', () => {
    const applied: number[][] = [];
    const b = new Batcher<number>({ apply: (a) => applied.push(a), periodMs: 200, laneMax: 4, setTimer: () => ({}), clearTimer: () => undefined });
    for (let i = 0; i < 8; i++) b.push('net', i);
    expect(applied).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
  });
});
