import { describe, expect, it } from 'vitest';
import { LiveStream, type EventSourceLike } from './live';
import type { ConnState } from './state/app';

class FakeES implements EventSourceLike {
  onopen: ((ev: Event) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  closed = false;
  listeners = new Map<string, ((ev: MessageEvent) => void)[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, l: (ev: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), l]);
  }
  close() {
    this.closed = true;
  }
  emit(type: string, data: string) {
    for (const l of this.listeners.get(type) ?? []) l({ data } as MessageEvent);
  }
}

function harness() {
  const sources: FakeES[] = [];
  const timers: { f: () => void; ms: number }[] = [];
  const conns: ConnState[] = [];
  const got: unknown[] = [];
  const stream = new LiveStream({
    url: 'http://x/api/stream',
    handlers: { message: (d) => got.push(d) },
    onConn: (c) => conns.push(c),
    create: (u) => {
      const es = new FakeES(u);
      sources.push(es);
      return es;
    },
    setTimer: (f, ms) => {
      timers.push({ f, ms });
      return timers.length;
    },
    clearTimer: () => undefined,
    random: () => 0,
  });
  return { stream, sources, timers, conns, got };
}

describe('LiveStream', () => {
  it('delivers parsed frames and skips malformed ones', () => {
    const h = harness();
    h.sources[0].onopen?.(new Event('open'));
    h.sources[0].emit('message', '{"id":"a"}');
    h.sources[0].emit('message', 'not json');
    expect(h.got).toEqual([{ id: 'a' }]);
    expect(h.conns).toEqual(['live']);
  });

  it('on error closes the source, reports reconnecting, and reopens after a growing backoff', () => {
    const h = harness();
    h.sources[0].onerror?.(new Event('error'));
    expect(h.sources[0].closed).toBe(true);
    expect(h.conns).toEqual(['reconnecting']);
    expect(h.timers.map((t) => t.ms)).toEqual([500]);
    h.timers[0].f();
    expect(h.sources).toHaveLength(2);
    h.sources[1].onerror?.(new Event('error'));
    expect(h.timers.map((t) => t.ms)).toEqual([500, 1000]);
    h.timers[1].f();
    h.sources[2].onopen?.(new Event('open'));
    expect(h.conns.at(-1)).toBe('live');
    // after a successful open the backoff starts over
    h.sources[2].onerror?.(new Event('error'));
    expect(h.timers.at(-1)?.ms).toBe(500);
  });

  it('ignores frames from a replaced source and stops for good on close', () => {
    const h = harness();
    const first = h.sources[0];
    first.onerror?.(new Event('error'));
    first.emit('message', '{"late":true}');
    expect(h.got).toEqual([]);
    h.stream.close();
    h.timers[0].f();
    expect(h.sources).toHaveLength(1);
  });
});
