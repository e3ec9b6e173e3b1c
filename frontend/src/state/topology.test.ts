import { describe, expect, it } from 'vitest';
import { device, msg, net, sim, stats } from '../test/fixtures';
import { initialState, reducer } from './app';
import { latencyToSlider, parseLatency, sliderToLatency } from './format';
import { appendNetEvents } from './netlog';
import {
  choiceFromSim,
  cutCalls,
  groupsFromChoice,
  isLine,
  layout,
  linkFound,
  linkPath,
  linkState,
  linkTraffic,
  syncMeter,
} from './topology';
import type { SimNetwork, Stats } from './types';
import { simState } from './validate';
import { shiftDown, shiftUp, windowRange } from './window';

const three = ['alice', 'bob', 'carol'];
const network = (over: Partial<SimNetwork> = {}): SimNetwork => ({
  loss: null,
  latency_ms_min: null,
  latency_ms_max: null,
  partitioned: false,
  groups: [],
  cuts: [],
  ...over,
});
const s3 = (over: Partial<SimNetwork> = {}) =>
  sim({
    devices: three.map((n, i) => device(n, `http://127.0.0.1:300${i + 1}`)),
    links: [['alice', 'bob'], ['alice', 'carol'], ['bob', 'carol']],
    network: network(over),
  });

describe('links', () => {
  it('tells a one-way cut from a both-ways cut and from a partition', () => {
    const s = s3({ cuts: [{ from: 'alice', to: 'carol' }, { from: 'bob', to: 'carol' }, { from: 'carol', to: 'bob' }] });
    expect(linkState(s, 'alice', 'carol')).toBe('cut-ab');
    expect(linkState(s, 'carol', 'alice')).toBe('cut-ba');
    expect(linkState(s, 'bob', 'carol')).toBe('cut-both');
    expect(linkState(s, 'alice', 'bob')).toBe('up');
    const p = s3({ partitioned: true, groups: [['alice', 'bob'], ['carol']] });
    expect(linkState(p, 'alice', 'carol')).toBe('partitioned');
    expect(linkState(p, 'alice', 'bob')).toBe('up');
  });

  it('asks for the fewest cut calls to reach the chosen state', () => {
    const s = s3({ cuts: [{ from: 'alice', to: 'carol' }] });
    expect(cutCalls(s, 'alice', 'carol', 'up')).toEqual([{ from: 'alice', to: 'carol', cut: false, both_ways: true }]);
    expect(cutCalls(s, 'alice', 'carol', 'cut-both')).toEqual([{ from: 'alice', to: 'carol', cut: true, both_ways: true }]);
    expect(cutCalls(s, 'alice', 'carol', 'cut-ba')).toEqual([
      { from: 'alice', to: 'carol', cut: false, both_ways: false },
      { from: 'carol', to: 'alice', cut: true, both_ways: false },
    ]);
    expect(cutCalls(s, 'alice', 'carol', 'cut-ab')).toEqual([]);
  });

  it('makes partition groups from a choice, and none from a single group', () => {
    expect(groupsFromChoice(three, { alice: 0, bob: 1, carol: 1 })).toEqual([['alice'], ['bob', 'carol']]);
    expect(groupsFromChoice(three, { alice: 2, bob: 2, carol: 2 })).toEqual([]);
    expect(choiceFromSim(s3({ partitioned: true, groups: [['carol'], ['alice', 'bob']] }))).toEqual({ alice: 1, bob: 1, carol: 0 });
  });

  it('lays out a line in list order so the relay sits between its ends', () => {
    const line: [string, string][] = [['alice', 'bob'], ['bob', 'carol']];
    expect(isLine(three, line)).toBe(true);
    expect(isLine(three, [...line, ['alice', 'carol']])).toBe(false);
    const p = layout(three, line, 500, 200);
    expect(p.alice.x).toBeLessThan(p.bob.x);
    expect(p.bob.x).toBeLessThan(p.carol.x);
    expect(p.alice.y).toBe(p.carol.y);
  });

  it('counts packets sent over each link, once (sent, not received copies)', () => {
    let log = appendNetEvents([], 'alice', [net(1, 10, { from: 'alice', to: 'bob' })]);
    log = appendNetEvents(log, 'bob', [net(1, 11, { direction: 'received', from: 'alice', to: 'bob' }), net(2, 12, { from: 'bob', to: 'carol' })]);
    const t = linkTraffic(log);
    expect(t.get('alice|bob')).toBe(1);
    expect(t.get('bob|carol')).toBe(1);
    expect(t.get('alice|carol')).toBeUndefined();
  });
});

describe('sync meter', () => {
  it('is exactly 100% when every peer reports in sync, whatever the estimate', () => {
    const peer = { name: 'bob', events_advertised: 36, in_sync: true, last_exchange_ms: 1 } as Stats['peers'][number];
    expect(syncMeter(stats('alice', { sync_percent: 97, peers: [peer] }))).toEqual({ percent: 100, exact: true });
  });
  it('is a labelled estimate otherwise', () => {
    const peer = { name: 'bob', events_advertised: 40, in_sync: false, last_exchange_ms: 1 } as Stats['peers'][number];
    expect(syncMeter(stats('alice', { sync_percent: 97.5, peers: [peer] }))).toEqual({ percent: 97.5, exact: false });
    expect(syncMeter(stats('alice', { sync_percent: 100, peers: [] }))?.exact).toBe(false);
    expect(syncMeter(null)).toBeNull();
  });
});

describe('latency scale', () => {
  it('reaches every whole ms from 0 to 10 and the API maximum', () => {
    for (let ms = 0; ms <= 10; ms++) expect(sliderToLatency(latencyToSlider(ms))).toBe(ms);
    expect(sliderToLatency(1000)).toBe(60_000);
    expect(sliderToLatency(0)).toBe(0);
  });
  it('parses typed values and clamps them to the API range', () => {
    expect(parseLatency('2')).toBe(2);
    expect(parseLatency('99999')).toBe(60_000);
    expect(parseLatency('-1')).toBeNull();
    expect(parseLatency('1.5')).toBeNull();
  });
});

describe('run id', () => {
  it('a new run clears the network log, the activity and the messages', () => {
    let s = reducer(initialState('x'), { type: 'sim/state', state: sim({ run_id: 'a' }) });
    s = reducer(s, { type: 'dev/loaded', device: 'alice', messages: [msg('m', 1)] });
    s = reducer(s, { type: 'dev/net', device: 'alice', events: [net(5, 10)] });
    s = reducer(s, { type: 'sim/state', state: sim({ run_id: 'a', running: true }) });
    expect(s.netlog).toHaveLength(1);
    s = reducer(s, { type: 'sim/state', state: sim({ run_id: 'b' }) });
    expect(s.netlog).toEqual([]);
    expect(s.activity).toEqual([]);
    expect(s.devices.alice.messages).toEqual([]);
    expect(s.devices.alice.netNext).toBe(0);
  });
  it('a service that sends no run id never clears', () => {
    let s = reducer(initialState('x'), { type: 'sim/state', state: sim({ run_id: '' }) });
    s = reducer(s, { type: 'dev/net', device: 'alice', events: [net(5, 10)] });
    s = reducer(s, { type: 'sim/state', state: sim({ run_id: '' }) });
    expect(s.netlog).toHaveLength(1);
  });
});

describe('SimState validation', () => {
  const old = {
    mode: 'sim',
    running: false,
    speed: 1,
    virtual_time_ms: 0,
    messages_per_hour: 60,
    attachment_percent: 0,
    devices: [
      { name: 'alice', url: 'u1', enabled: true, generated: 0 },
      { name: 'bob', url: 'u2', enabled: true, generated: 0 },
    ],
    network: { loss: 0, latency_ms_min: 2, latency_ms_max: 5, partitioned: true },
  };
  it('fills in what an older service leaves out', () => {
    const s = simState(old);
    expect(s.topology_api).toBe(false);
    expect(s.links).toEqual([['alice', 'bob']]);
    expect(s.devices[0].up).toBe(true);
    expect(s.network?.groups).toEqual([['alice'], ['bob']]);
    expect(s.network?.cuts).toEqual([]);
    expect(s.run_id).toBe('');
  });
  it('keeps the new fields', () => {
    const s = simState({
      ...old,
      run_id: 'r',
      persistent: false,
      links: [['alice', 'bob']],
      devices: [{ name: 'alice', url: 'u1', enabled: true, generated: 0, up: false, restarts: 2 }],
      network: { loss: null, latency_ms_min: null, latency_ms_max: null, partitioned: false, groups: [], cuts: [{ from: 'alice', to: 'bob' }] },
    });
    expect(s.topology_api).toBe(true);
    expect(s.devices[0]).toMatchObject({ up: false, restarts: 2 });
    expect(s.network?.cuts).toEqual([{ from: 'alice', to: 'bob' }]);
    expect(s.persistent).toBe(false);
  });
  it('rejects a wrong shape, naming the field', () => {
    expect(() => simState({ ...old, devices: [{ name: 3 }] })).toThrow(/devices\[0\]\.name/);
    expect(() => simState({ ...old, mode: 'other' })).toThrow(/mode/);
    expect(() => simState({ ...old, links: [['a']] })).toThrow(/links\[0\]/);
    expect(() => simState(null)).toThrow(/simulation/);
  });
});

describe('message window', () => {
  const list = Array.from({ length: 300 }, (_, i) => msg(`m${String(i).padStart(3, '0')}`, i));
  it('follows the newest with a bounded number of rows', () => {
    expect(windowRange(list, null, 120)).toEqual({ lo: 180, hi: 300 });
  });
  it('moves up and down by a shift, and follows again at the end', () => {
    const r = windowRange(list, null, 120);
    const up = shiftUp(list, r, 60);
    expect(up).toBe('m120');
    const r2 = windowRange(list, up, 120);
    expect(r2).toEqual({ lo: 120, hi: 240 });
    expect(shiftDown(list, r2, 120, 60)).toBeNull();
    expect(shiftUp(list, { lo: 10, hi: 130 }, 60)).toBe('m000');
    expect(shiftDown(list, { lo: 0, hi: 120 }, 120, 60)).toBe('m060');
  });
  it('stays on its first row when older messages are put in front', () => {
    const older = [msg('a0', -2), msg('a1', -1), ...list];
    expect(windowRange(older, 'm120', 120)).toEqual({ lo: 122, hi: 242 });
  });
});

describe('how a link was found', () => {
  const peer = (name: string, met_by: string | null, relayed_via: string | null = null) => ({
    name,
    events_advertised: null,
    in_sync: false,
    last_exchange_ms: null,
    blocked: false,
    address: '127.0.0.1:8002',
    address_source: 'packet',
    relayed_via,
    met_by,
  });
  it('is unmet until either end has the other as a peer', () => {
    expect(linkFound(stats('alice'), stats('bob'), 'alice', 'bob')).toBe('unmet');
    expect(linkFound(null, null, 'alice', 'bob')).toBe('unmet');
  });
  it('says discovered or exchanged from either end, over a start peer or a first packet', () => {
    const a = stats('alice', { peers: [peer('bob', null)] });
    const b = stats('bob', { peers: [peer('alice', 'discovered')] });
    expect(linkFound(a, b, 'alice', 'bob')).toBe('discovered');
    expect(linkFound(stats('alice', { peers: [peer('bob', 'packet')] }), b, 'alice', 'bob')).toBe('discovered');
    expect(linkFound(stats('alice', { peers: [peer('bob', 'record')] }), null, 'alice', 'bob')).toBe('exchanged');
    expect(linkFound(a, stats('bob'), 'alice', 'bob')).toBe('named');
    expect(linkFound(stats('alice', { peers: [peer('bob', 'packet')] }), null, 'alice', 'bob')).toBe('reached');
  });
});

describe('whether a link is direct or relayed', () => {
  const peer = (name: string, relayed_via: string | null, met_by: string | null = 'introduced') => ({
    name,
    events_advertised: null,
    in_sync: false,
    last_exchange_ms: null,
    blocked: false,
    address: '10.77.0.12:7000',
    address_source: 'introduced',
    relayed_via,
    met_by,
  });
  it('is direct while neither end names a relay, also before the ends have met', () => {
    expect(linkPath(null, null, 'alice', 'bob')).toEqual({ path: 'direct', via: [] });
    const a = stats('alice', { peers: [peer('bob', null)] });
    const b = stats('bob', { peers: [peer('alice', null)] });
    expect(linkPath(a, b, 'alice', 'bob')).toEqual({ path: 'direct', via: [] });
  });
  it('is relayed through the device either end sends through, named once', () => {
    const a = stats('alice', { peers: [peer('bob', 'carol')] });
    const b = stats('bob', { peers: [peer('alice', 'carol')] });
    expect(linkPath(a, b, 'alice', 'bob')).toEqual({ path: 'relayed', via: ['carol'] });
    // One end still relaying (the other's punch got through first): its datagrams go round.
    expect(linkPath(stats('alice', { peers: [peer('bob', null)] }), b, 'alice', 'bob')).toEqual({ path: 'relayed', via: ['carol'] });
    expect(linkPath(a, null, 'alice', 'bob')).toEqual({ path: 'relayed', via: ['carol'] });
    // Each end through a relay of its own: both are named.
    const d = stats('bob', { peers: [peer('alice', 'dave')] });
    expect(linkPath(a, d, 'alice', 'bob')).toEqual({ path: 'relayed', via: ['carol', 'dave'] });
  });
  it('reads only the two ends: a relay of some other link does not count', () => {
    const a = stats('alice', { peers: [peer('bob', null), peer('dave', 'carol')] });
    expect(linkPath(a, stats('bob'), 'alice', 'bob')).toEqual({ path: 'direct', via: [] });
  });
  it('says an introduced link was met by an introduction', () => {
    expect(linkFound(stats('alice', { peers: [peer('bob', null)] }), null, 'alice', 'bob')).toBe('introduced');
  });
});
