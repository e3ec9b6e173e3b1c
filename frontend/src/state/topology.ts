// What the topology view draws, from SimState and the network log. Pure.
import type { LogEntry } from './netlog';
import type { SimState, Stats } from './types';

/** How a link between a and b carries packets now. */
export type LinkState =
  | 'up'
  /** a's packets to b are cut (one way). */
  | 'cut-ab'
  | 'cut-ba'
  | 'cut-both'
  /** a and b are in different partition groups. */
  | 'partitioned';

export function linkState(sim: SimState, a: string, b: string): LinkState {
  const net = sim.network;
  if (!net) return 'up';
  const g = groupIndex(sim, a);
  if (g !== null && g !== groupIndex(sim, b)) return 'partitioned';
  return cutChoice(sim, a, b);
}

/** Index of the partition group holding `name`; null when not partitioned. */
export function groupIndex(sim: SimState, name: string): number | null {
  const groups = sim.network?.groups ?? [];
  if (groups.length < 2) return null;
  const i = groups.findIndex((g) => g.includes(name));
  return i < 0 ? null : i;
}

/** One key for the link between a and b, whichever way round. */
export const linkKey = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);

export type Point = { x: number; y: number };

/**
 * Where each device sits, in a width×height box: on one row when the links form a line in list
 * order (so a relay sits between its ends), else on a circle (an ellipse when the box is wide).
 */
export function layout(names: readonly string[], links: readonly [string, string][], width: number, height: number): Record<string, Point> {
  const out: Record<string, Point> = {};
  const n = names.length;
  const pad = 36;
  if (n === 0) return out;
  if (n === 2 || isLine(names, links)) {
    names.forEach((name, i) => {
      out[name] = { x: n === 1 ? width / 2 : pad + ((width - 2 * pad) * i) / (n - 1), y: height / 2 };
    });
    return out;
  }
  const rx = width / 2 - pad;
  const ry = height / 2 - pad - 8; // room for the name under the lowest device
  names.forEach((name, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    out[name] = { x: width / 2 + rx * Math.cos(a), y: height / 2 + ry * Math.sin(a) };
  });
  return out;
}

/** The links are exactly the neighbours in list order (n ≥ 3: for 2 a line is also a mesh). */
export function isLine(names: readonly string[], links: readonly [string, string][]): boolean {
  if (names.length < 3 || links.length !== names.length - 1) return false;
  const have = new Set(links.map(([a, b]) => linkKey(a, b)));
  return names.slice(1).every((b, i) => have.has(linkKey(names[i], b)));
}

/** Packets sent over each link (either way, keyed "a|b" with a < b) among the newest log entries. */
export function linkTraffic(log: readonly LogEntry[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of log) {
    if (e.direction !== 'sent') continue;
    const k = linkKey(e.from, e.to);
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

/**
 * The groups a partition editor's choice makes: devices by chosen group number, empty groups
 * dropped; one group (or none) is no partition, which the API says with [].
 */
export function groupsFromChoice(names: readonly string[], choice: Record<string, number>): string[][] {
  const by = new Map<number, string[]>();
  for (const n of names) {
    const g = choice[n] ?? 0;
    by.set(g, [...(by.get(g) ?? []), n]);
  }
  const groups = [...by.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
  return groups.length < 2 ? [] : groups;
}

/** The group number of each device under the current partition (0 for all when none). */
export function choiceFromSim(sim: SimState): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of sim.devices) out[d.name] = groupIndex(sim, d.name) ?? 0;
  return out;
}

/**
 * The sync meter: exact (100%) when every peer reports in sync, otherwise the server's
 * `sync_percent`, which estimates from what peers last advertised, so it is labelled as such.
 */
export function syncMeter(stats: Stats | null): { percent: number; exact: boolean } | null {
  if (!stats) return null;
  const peers = stats.peers ?? [];
  if (peers.length > 0 && peers.every((p) => p.in_sync)) return { percent: 100, exact: true };
  return { percent: Math.max(0, Math.min(100, stats.sync_percent)), exact: false };
}

/** What a link's cut control can ask for. */
export type CutChoice = 'up' | 'cut-ab' | 'cut-ba' | 'cut-both';

export type CutCall = { from: string; to: string; cut: boolean; both_ways: boolean };

/** The POST /api/network/cut calls that take the link a–b from its cuts now to `want`. */
export function cutCalls(sim: SimState, a: string, b: string, want: CutChoice): CutCall[] {
  const cuts = sim.network?.cuts ?? [];
  const ab = cuts.some((c) => c.from === a && c.to === b);
  const ba = cuts.some((c) => c.from === b && c.to === a);
  const wantAb = want === 'cut-ab' || want === 'cut-both';
  const wantBa = want === 'cut-ba' || want === 'cut-both';
  if (wantAb === wantBa && (ab !== wantAb || ba !== wantBa)) return [{ from: a, to: b, cut: wantAb, both_ways: true }];
  const out: CutCall[] = [];
  if (ab !== wantAb) out.push({ from: a, to: b, cut: wantAb, both_ways: false });
  if (ba !== wantBa) out.push({ from: b, to: a, cut: wantBa, both_ways: false });
  return out;
}

/** The cut control's value for the link a–b (partition groups are shown apart from cuts). */
export function cutChoice(sim: SimState, a: string, b: string): CutChoice {
  const cuts = sim.network?.cuts ?? [];
  const ab = cuts.some((c) => c.from === a && c.to === b);
  const ba = cuts.some((c) => c.from === b && c.to === a);
  return ab && ba ? 'cut-both' : ab ? 'cut-ab' : ba ? 'cut-ba' : 'up';
}

/** How a link's ends met, from their stats (`peers[].met_by`). */
export type LinkFound = 'unmet' | 'named' | 'discovered' | 'exchanged' | 'introduced' | 'joined' | 'reached';

const FOUND: Record<string, LinkFound> = {
  discovered: 'discovered',
  record: 'exchanged',
  introduced: 'introduced',
  joined: 'joined',
  packet: 'reached',
};

export const FOUND_TEXT: Record<LinkFound, string> = {
  unmet: 'not met yet',
  named: 'known from the start (--peer)',
  discovered: 'found on the LAN',
  exchanged: 'found through a member (peer exchange)',
  introduced: 'introduced by a member both reach (to punch through NATs)',
  joined: 'met when one joined',
  reached: 'one reached out to the other',
};

/**
 * How a and b met: what a says of b, else what b says of a (a discovery or a record says
 * more than either end being reached first); `unmet` while neither is the other's peer, as
 * for devices that have not heard each other's announcements yet.
 */
export function linkFound(a: Stats | null, b: Stats | null, nameA: string, nameB: string): LinkFound {
  const of = (s: Stats | null, other: string) => s?.peers?.find((p) => p.name === other);
  const ends = [of(a, nameB), of(b, nameA)];
  if (!ends[0] && !ends[1]) return 'unmet';
  const found = ends.map((p) => (p?.met_by ? FOUND[p.met_by] : undefined));
  return found.find((f) => f && f !== 'reached') ?? found.find((f) => f) ?? 'named';
}

/**
 * Whether a link's datagrams go straight between its ends or through a third device that
 * relays them (`peers[].relayed_via`: set while a punch through NATs has not got through).
 */
export type LinkPath = { path: 'direct' | 'relayed'; via: string[] };

/**
 * The path between a and b as their ends report it: relayed when either end sends through a
 * relay (a datagram takes that end's path, so one relaying end is enough to draw the link
 * relayed), naming each relay once; direct otherwise, also before they have met (the view
 * draws an unmet link apart already).
 */
export function linkPath(a: Stats | null, b: Stats | null, nameA: string, nameB: string): LinkPath {
  const via = (s: Stats | null, other: string) => s?.peers?.find((p) => p.name === other)?.relayed_via ?? null;
  const relays = [via(a, nameB), via(b, nameA)].filter((r): r is string => r !== null);
  const unique = [...new Set(relays)];
  return unique.length > 0 ? { path: 'relayed', via: unique } : { path: 'direct', via: [] };
}
