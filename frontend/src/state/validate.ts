// Runtime checks of what the servers answer, so a wrong shape fails at the boundary with a message
// naming the field instead of as an `undefined` deep in a render. Small on purpose: the shapes are
// the generated ones in src/generated/ (ts-rs, from the Rust views).
import type { FileProgress, Invite, Member, Message, NetEvent, SimDevice, SimNetwork, SimState, Stats } from './types';

export class ShapeError extends Error {}

type Obj = Record<string, unknown>;

function fail(path: string, want: string, got: unknown): never {
  const shown = got === null ? 'null' : Array.isArray(got) ? 'array' : typeof got;
  throw new ShapeError(`bad response: ${path} should be ${want}, is ${shown}`);
}

export function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object', v);
  return v as Obj;
}
export function str(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, 'a string', v);
  return v as string;
}
export function num(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'a number', v);
  return v as number;
}
export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, 'a boolean', v);
  return v as boolean;
}
export function arr<T>(v: unknown, path: string, item: (x: unknown, p: string) => T): T[] {
  if (!Array.isArray(v)) fail(path, 'an array', v);
  return (v as unknown[]).map((x, i) => item(x, `${path}[${i}]`));
}
function nullable<T>(v: unknown, path: string, f: (x: unknown, p: string) => T): T | null {
  return v === null || v === undefined ? null : f(v, path);
}
function numRecord(v: unknown, path: string): Record<string, number> {
  const o = obj(v, path);
  for (const [k, x] of Object.entries(o)) num(x, `${path}.${k}`);
  return o as Record<string, number>;
}

export function message(v: unknown, path = 'message'): Message {
  const o = obj(v, path);
  str(o.id, `${path}.id`);
  str(o.author, `${path}.author`);
  str(o.text, `${path}.text`);
  num(o.created_at_ms, `${path}.created_at_ms`);
  arr(o.reactions, `${path}.reactions`, (r, p) => {
    const x = obj(r, p);
    str(x.emoji, `${p}.emoji`);
    arr(x.authors, `${p}.authors`, str);
    return x;
  });
  const attachment = nullable(o.attachment, `${path}.attachment`, (a, p) => {
    const x = obj(a, p);
    str(x.name, `${p}.name`);
    str(x.url, `${p}.url`);
    num(x.chunks_total, `${p}.chunks_total`);
    num(x.chunks_have, `${p}.chunks_have`);
    // Older devices do not say: a file sent as chunks.
    return { ...x, blob: x.blob === true };
  });
  return { ...(o as Message), auto: o.auto === true, attachment: attachment as Message['attachment'] };
}

export function fileProgress(v: unknown, path = 'progress'): FileProgress {
  const o = obj(v, path);
  return {
    file_id: str(o.file_id, `${path}.file_id`),
    size: num(o.size, `${path}.size`),
    chunks_have: num(o.chunks_have, `${path}.chunks_have`),
    chunks_total: num(o.chunks_total, `${path}.chunks_total`),
    complete: bool(o.complete, `${path}.complete`),
    prefix_bytes: num(o.prefix_bytes, `${path}.prefix_bytes`),
    bytes_per_second: num(o.bytes_per_second, `${path}.bytes_per_second`),
  };
}

export function messagePage(v: unknown): { messages: Message[]; next: string | null } {
  const o = obj(v, 'page');
  return {
    messages: arr(o.messages ?? [], 'page.messages', message),
    next: nullable(o.next, 'page.next', str),
  };
}

export function stats(v: unknown, path = 'stats'): Stats {
  const o = obj(v, path);
  str(o.device, `${path}.device`);
  bool(o.online, `${path}.online`);
  num(o.events, `${path}.events`);
  num(o.sync_percent, `${path}.sync_percent`);
  arr(o.peers, `${path}.peers`, (p, q) => {
    const x = obj(p, q);
    str(x.name, `${q}.name`);
    bool(x.in_sync, `${q}.in_sync`);
    return x;
  });
  if (o.drops !== undefined) numRecord(o.drops, `${path}.drops`);
  return o as Stats;
}

export function member(v: unknown, path = 'member'): Member {
  const o = obj(v, path);
  str(o.name, `${path}.name`);
  const role = str(o.role, `${path}.role`);
  if (role !== 'admin' && role !== 'member') fail(`${path}.role`, '"admin" or "member"', v);
  const status = str(o.status, `${path}.status`);
  if (status !== 'active' && status !== 'removed') fail(`${path}.status`, '"active" or "removed"', v);
  nullable(o.added_by, `${path}.added_by`, str);
  num(o.added_at_ms, `${path}.added_at_ms`);
  nullable(o.person, `${path}.person`, str);
  return { ...(o as Member), added_by: (o.added_by ?? null) as string | null, person: (o.person ?? null) as string | null };
}

export function members(v: unknown): Member[] {
  return arr(v, 'members', member);
}

export function invite(v: unknown): Invite {
  const o = obj(v, 'invite');
  return {
    token: str(o.token, 'invite.token'),
    role: str(o.role, 'invite.role'),
    uses: num(o.uses, 'invite.uses'),
    expires_at_ms: num(o.expires_at_ms, 'invite.expires_at_ms'),
    address: str(o.address, 'invite.address'),
  };
}

export function netEvent(v: unknown, path = 'network event'): NetEvent {
  const o = obj(v, path);
  num(o.seq, `${path}.seq`);
  num(o.at_ms, `${path}.at_ms`);
  str(o.direction, `${path}.direction`);
  str(o.from, `${path}.from`);
  str(o.to, `${path}.to`);
  str(o.kind, `${path}.kind`);
  return { ...(o as NetEvent), bytes: typeof o.bytes === 'number' ? o.bytes : 0, summary: typeof o.summary === 'string' ? o.summary : '' };
}

export function netEventPage(v: unknown): { events: NetEvent[]; next: number } {
  const o = obj(v, 'network events');
  return { events: arr(o.events ?? [], 'events', netEvent), next: num(o.next, 'next') };
}

function pair(v: unknown, path: string): [string, string] {
  const a = arr(v, path, str);
  if (a.length !== 2) fail(path, 'a pair of names', v);
  return [a[0], a[1]];
}

/** Every pair of devices: the links of a full mesh (what an older service always ran). */
export function meshLinks(names: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < names.length; i++) for (let j = i + 1; j < names.length; j++) out.push([names[i], names[j]]);
  return out;
}

/**
 * A SimState from the wire, checked, with what an older service leaves out filled in: no run_id
 * (''), persistent, every device up, a full mesh, no cuts, and groups from the old partition flag.
 */
export function simState(v: unknown): SimState {
  const o = obj(v, 'simulation');
  const mode = str(o.mode, 'simulation.mode');
  if (mode !== 'real' && mode !== 'sim') fail('simulation.mode', '"real" or "sim"', v);
  const devices: SimDevice[] = arr(o.devices, 'simulation.devices', (d, p) => {
    const x = obj(d, p);
    return {
      name: str(x.name, `${p}.name`),
      url: str(x.url, `${p}.url`),
      enabled: x.enabled === undefined ? true : bool(x.enabled, `${p}.enabled`),
      generated: x.generated === undefined ? 0 : num(x.generated, `${p}.generated`),
      up: x.up === undefined ? true : bool(x.up, `${p}.up`),
      restarts: x.restarts === undefined ? 0 : num(x.restarts, `${p}.restarts`),
    };
  });
  const names = devices.map((d) => d.name);
  const network = nullable(o.network, 'simulation.network', (n, p): SimNetwork => {
    const x = obj(n, p);
    const partitioned = x.partitioned === undefined ? false : bool(x.partitioned, `${p}.partitioned`);
    // The older service split the first device from the rest.
    const oldGroups = partitioned && names.length > 1 ? [[names[0]], names.slice(1)] : [];
    return {
      loss: nullable(x.loss, `${p}.loss`, num),
      latency_ms_min: nullable(x.latency_ms_min, `${p}.latency_ms_min`, num),
      latency_ms_max: nullable(x.latency_ms_max, `${p}.latency_ms_max`, num),
      partitioned,
      groups: x.groups === undefined ? oldGroups : arr(x.groups, `${p}.groups`, (g, q) => arr(g, q, str)),
      cuts: x.cuts === undefined ? [] : arr(x.cuts, `${p}.cuts`, (c, q) => {
        const y = obj(c, q);
        return { from: str(y.from, `${q}.from`), to: str(y.to, `${q}.to`) };
      }),
    };
  });
  return {
    mode,
    run_id: o.run_id === undefined ? '' : str(o.run_id, 'simulation.run_id'),
    persistent: o.persistent === undefined ? true : bool(o.persistent, 'simulation.persistent'),
    running: bool(o.running, 'simulation.running'),
    speed: num(o.speed, 'simulation.speed'),
    virtual_time_ms: num(o.virtual_time_ms, 'simulation.virtual_time_ms'),
    messages_per_hour: num(o.messages_per_hour, 'simulation.messages_per_hour'),
    attachment_percent: num(o.attachment_percent, 'simulation.attachment_percent'),
    devices,
    links: o.links === undefined ? meshLinks(names) : arr(o.links, 'simulation.links', pair),
    network,
    topology_api: o.links !== undefined,
  };
}
