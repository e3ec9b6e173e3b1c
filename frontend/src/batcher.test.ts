import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher';

function harness() {
  const timers: { f: () => void; ms: number; cleared: boolean }[] = [];
  const applied: string[][] = [];
  const b = new Batcher<string>({
    apply: (a) => applied.push(a),
    periodMs: 200,
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
  it('applies the lanes in turn, half a period apart, each as one batch in arrival order', () => {
    const { b, timers, applied, fire } = harness();
    b.push('chat', 'm1');
    b.push('net', 'n1');
    b.push('chat', 'm2');
    b.push('net', 'n2');
    expect(timers).toHaveLength(1); // one timer however many frames
    expect(timers[0].ms).toBe(100);
    fire();
    expect(applied).toEqual([['m1', 'm2']]);
    b.push('chat', 'm3');
    fire();
    expect(applied).toEqual([['m1', 'm2'], ['n1', 'n2']]);
    fire();
    expect(applied[2]).toEqual(['m3']);
    expect(timers.filter((t) => !t.cleared)).toHaveLength(0); // idle: no timer left
  });

  it('takes the other lane when this turn’s is empty', () => {
    const { b, applied, fire } = harness();
    b.push('net', 'n1');
    fire();
    b.push('net', 'n2');
    fire();
    expect(applied).toEqual([['n1'], ['n2']]);
  });

  it('flushAll applies everything now, chat first, and cancels the timer; close drops the rest', () => {
    const { b, timers, applied } = harness();
    b.push('net', 'n1');
    b.push('chat', 'm1');
    b.flushAll();
    expect(applied).toEqual([['m1'], ['n1']]);
    expect(timers[0].cleared).toBe(true);
    expect(b.pending()).toBe(false);
    b.push('chat', 'm2');
    b.close();
    expect(b.pending()).toBe(false);
    expect(timers[1].cleared).toBe(true);
  });
});
