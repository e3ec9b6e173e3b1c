import { describe, expect, it } from 'vitest';
import { net } from '../test/fixtures';
import { FLIGHT_MS, addFlights, fitViewBox, flightAt, freshFlights, type Flight } from './flights';
import { appendNetEvents } from './netlog';

const pos = { alice: { x: 0, y: 0 }, bob: { x: 100, y: 0 }, carol: { x: 100, y: 100 } };
const blue = () => 'blue';

describe('packets in flight', () => {
  const log = appendNetEvents([], 'alice', [
    net(1, 10),
    net(2, 20, { direction: 'received', from: 'bob', to: 'alice' }),
    net(3, 30, { to: 'carol' }),
    net(4, 40, { to: 'nobody' }),
  ]);

  it('flies only what was sent since the last look, none of the backlog on the first', () => {
    expect(freshFlights(log, null, pos, blue, 0, 10)).toEqual([]);
    const fresh = freshFlights(log, log[0].key, pos, blue, 5, 10);
    // #2 was received (its sender's copy flies), #4 goes to a device not drawn.
    expect(fresh).toHaveLength(1);
    expect(fresh[0].born).toBe(5);
    // Leaves and enters the circles (radius 10), not their centres.
    expect(fresh[0].from.x).toBeCloseTo(Math.SQRT1_2 * 10);
    expect(fresh[0].to.y).toBeCloseTo(100 - Math.SQRT1_2 * 10);
    expect(freshFlights(log, log[log.length - 1].key, pos, blue, 5, 10)).toEqual([]);
  });

  it('keeps at most the newest `max` in the air and drops the landed', () => {
    const f = (born: number): Flight => ({ from: pos.alice, to: pos.bob, color: 'x', born });
    const air = addFlights([f(0), f(100)], [f(700), f(701), f(702)], 700, 3);
    expect(air.map((x) => x.born)).toEqual([700, 701, 702]);
    expect(addFlights([f(0), f(100)], [], 700).map((x) => x.born)).toEqual([100]);
  });

  it('moves from end to end, easing and fading, then lands', () => {
    const f: Flight = { from: { x: 0, y: 0 }, to: { x: 100, y: 50 }, color: 'x', born: 1000 };
    expect(flightAt(f, 1000)).toEqual({ x: 0, y: 0, alpha: 1 });
    const mid = flightAt(f, 1000 + FLIGHT_MS / 2)!;
    expect(mid.x).toBeCloseTo(50);
    expect(mid.y).toBeCloseTo(25);
    expect(flightAt(f, 1000 + FLIGHT_MS * 0.99)!.alpha).toBeCloseTo(0.7, 2);
    expect(flightAt(f, 1000 + FLIGHT_MS)).toBeNull();
    expect(flightAt(f, 999)).toBeNull();
  });

  it('maps the view box as SVG does (fit, centred)', () => {
    expect(fitViewBox(560, 230, 560, 230)).toEqual({ scale: 1, dx: 0, dy: 0 });
    // A box capped in height: scaled to the height, centred across.
    expect(fitViewBox(1000, 200, 560, 230)).toEqual({ scale: 200 / 230, dx: (1000 - 560 * (200 / 230)) / 2, dy: 0 });
  });
});
