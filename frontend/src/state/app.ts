// The page's whole state and its reducer. Pure: no fetches, no timers, no clocks.
import { describeMessageChange, pushActivity, type Activity, type ActivityItem } from './activity';
import { MESSAGES_HELD_MAX, applyReaction, keepNewest, normalizeMessages, upsertMany, upsertMessage } from './messages';
import { NETLOG_MAX, appendNetEvents, type LogEntry } from './netlog';
import { trackHeard, type Clocks, type PeerHeard } from './peers';
import type { Member, Message, NetEvent, SimDevice, SimState, Stats } from './types';

export type ConnState = 'connecting' | 'live' | 'reconnecting';

export type DeviceState = {
  name: string;
  url: string;
  conn: ConnState;
  messages: Message[];
  /** GET /api/messages has answered at least once. */
  loaded: boolean;
  /** A GET /api/messages is in flight; live updates meanwhile are kept and re-applied on top. */
  fetching: boolean;
  liveDuringFetch: Message[];
  stats: Stats | null;
  online: boolean | null;
  error: string | null;
  /** `next` cursor for GET /api/network-events. */
  netNext: number;
  /** Cursor for the page of messages older than those held; null when none are left. */
  olderCursor: string | null;
  /** The community as this device sees it (GET /api/members, `members` frames); null: not read yet. */
  members: Member[] | null;
  /** When each peer's last exchange was last seen to move (state/peers.ts). */
  peersHeard: Record<string, PeerHeard>;
};

export type AppState = {
  simUrl: string;
  sim: SimState | null;
  simConn: ConnState;
  simError: string | null;
  /** Devices given on the URL (?devices=) instead of discovered from the simulation service. */
  fixedDevices: boolean;
  order: string[];
  devices: Record<string, DeviceState>;
  netlog: LogEntry[];
  activity: Activity[];
};

export type Action =
  | { type: 'sim/state'; state: SimState }
  | { type: 'sim/conn'; conn: ConnState; error?: string | null }
  | { type: 'devices/set'; devices: { name: string; url: string }[] }
  | { type: 'dev/conn'; device: string; conn: ConnState }
  | { type: 'dev/fetchStart'; device: string }
  | { type: 'dev/loaded'; device: string; messages: Message[]; next?: string | null }
  | { type: 'dev/older'; device: string; messages: Message[]; next: string | null }
  | { type: 'dev/message'; device: string; message: Message; now: number }
  /** Many live messages of one device at once (a batch of stream frames, coalesced). */
  | { type: 'dev/messages'; device: string; messages: Message[]; now: number }
  | { type: 'dev/reaction'; device: string; id: string; emoji: string; remove: boolean }
  /** `at`: when the report came, for telling how long a peer has been silent (absent: not tracked). */
  | { type: 'dev/stats'; device: string; stats: Stats; at?: Clocks }
  | { type: 'dev/online'; device: string; online: boolean }
  | { type: 'dev/error'; device: string; error: string | null }
  | { type: 'dev/net'; device: string; events: NetEvent[]; next?: number }
  | { type: 'dev/members'; device: string; members: Member[] }
  | { type: 'batch'; actions: Action[] };

export function newDevice(name: string, url: string): DeviceState {
  return {
    name,
    url: url.replace(/\/+$/, ''),
    conn: 'connecting',
    messages: [],
    loaded: false,
    fetching: false,
    liveDuringFetch: [],
    stats: null,
    online: null,
    error: null,
    netNext: 0,
    olderCursor: null,
    members: null,
    peersHeard: {},
  };
}

export function initialState(simUrl: string, fixed?: { name: string; url: string }[]): AppState {
  const base: AppState = {
    simUrl,
    sim: null,
    simConn: 'connecting',
    simError: null,
    fixedDevices: !!fixed && fixed.length > 0,
    order: [],
    devices: {},
    netlog: [],
    activity: [],
  };
  return fixed && fixed.length > 0 ? setDevices(base, fixed) : base;
}

function setDevices(state: AppState, list: { name: string; url: string }[]): AppState {
  const devices: Record<string, DeviceState> = {};
  const order: string[] = [];
  for (const d of list) {
    if (devices[d.name]) continue;
    const url = d.url.replace(/\/+$/, '');
    const old = state.devices[d.name];
    // Keep what we know about a device unless it moved to another server.
    devices[d.name] = old && old.url === url ? old : newDevice(d.name, url);
    order.push(d.name);
  }
  const same =
    order.length === state.order.length &&
    order.every((n, i) => n === state.order[i] && devices[n] === state.devices[n]);
  return same ? state : { ...state, order, devices };
}

/**
 * A device's list after live messages came: the newest MESSAGES_HELD_MAX, and the cursor moved
 * to what was let go. (A page of older ones asked for by scrolling up, `dev/older`, is kept:
 * that grows only as fast as a person scrolls.)
 */
function held(d: Pick<DeviceState, 'olderCursor'>, list: Message[]): Pick<DeviceState, 'messages' | 'olderCursor'> {
  const { messages, cut } = keepNewest(list);
  return { messages, olderCursor: cut ?? d.olderCursor };
}

/** Live messages kept while a re-read is in flight: no more than the list will hold after it. */
function heldDuringFetch(list: Message[]): Message[] {
  return list.length > MESSAGES_HELD_MAX ? list.slice(list.length - MESSAGES_HELD_MAX) : list;
}

function updateDevice(state: AppState, name: string, f: (d: DeviceState) => DeviceState): AppState {
  const d = state.devices[name];
  if (!d) return state;
  const nd = f(d);
  return nd === d ? state : { ...state, devices: { ...state.devices, [name]: nd } };
}

function sameDeviceList(a: SimDevice[], order: string[], devices: Record<string, DeviceState>): boolean {
  return a.length === order.length && a.every((d, i) => d.name === order[i] && devices[d.name]?.url === d.url.replace(/\/+$/, ''));
}

export function reducer(state: AppState, action: Action): AppState {
  switch (action.type) {
    case 'batch':
      return coalesce(action.actions).reduce(reducer, state);
    case 'sim/state': {
      let s: AppState = { ...state, sim: action.state, simError: null };
      if (isNewRun(state.sim, action.state)) s = clearRun(s);
      if (!state.fixedDevices && !sameDeviceList(action.state.devices, state.order, state.devices)) {
        s = setDevices(s, action.state.devices);
      }
      return s;
    }
    case 'sim/conn':
      return { ...state, simConn: action.conn, simError: action.error === undefined ? state.simError : action.error };
    case 'devices/set':
      return setDevices(state, action.devices);
    case 'dev/conn':
      return updateDevice(state, action.device, (d) => (d.conn === action.conn ? d : { ...d, conn: action.conn }));
    case 'dev/fetchStart':
      return updateDevice(state, action.device, (d) => ({ ...d, fetching: true, liveDuringFetch: [] }));
    case 'dev/loaded':
      return updateDevice(state, action.device, (d) => ({
        ...d,
        ...held({ olderCursor: action.next ?? null }, upsertMany(normalizeMessages(action.messages), d.liveDuringFetch)),
        loaded: true,
        fetching: false,
        liveDuringFetch: [],
        error: null,
      }));
    case 'dev/older':
      return updateDevice(state, action.device, (d) => ({
        ...d,
        messages: upsertMany(d.messages, action.messages),
        olderCursor: action.next,
      }));
    case 'dev/message': {
      const d = state.devices[action.device];
      if (!d) return state;
      const prev = d.messages.find((m) => m.id === action.message.id);
      const nd: DeviceState = {
        ...d,
        ...held(d, upsertMessage(d.messages, action.message)),
        liveDuringFetch: d.fetching ? heldDuringFetch([...d.liveDuringFetch, action.message]) : d.liveDuringFetch,
      };
      // Only narrate once the initial list is in, so a reload does not flood the log.
      const items = d.loaded ? describeMessageChange(action.device, prev, action.message, action.now) : [];
      return {
        ...state,
        devices: { ...state.devices, [action.device]: nd },
        activity: pushActivity(state.activity, items),
      };
    }
    case 'dev/messages': {
      const d = state.devices[action.device];
      if (!d || action.messages.length === 0) return state;
      const byId = new Map(d.messages.map((m) => [m.id, m]));
      const items: ActivityItem[] = [];
      for (const m of action.messages) {
        // Only narrate once the initial list is in, so a reload does not flood the log.
        if (d.loaded) items.push(...describeMessageChange(action.device, byId.get(m.id), m, action.now));
        byId.set(m.id, m);
      }
      const nd: DeviceState = {
        ...d,
        ...held(d, upsertMany(d.messages, action.messages)),
        liveDuringFetch: d.fetching ? heldDuringFetch([...d.liveDuringFetch, ...action.messages]) : d.liveDuringFetch,
      };
      return { ...state, devices: { ...state.devices, [action.device]: nd }, activity: pushActivity(state.activity, items) };
    }
    case 'dev/reaction':
      return updateDevice(state, action.device, (d) => {
        const m = d.messages.find((x) => x.id === action.id);
        if (!m) return d;
        return { ...d, messages: upsertMessage(d.messages, applyReaction(m, action.emoji, d.name, action.remove)) };
      });
    case 'dev/stats':
      return updateDevice(state, action.device, (d) => ({
        ...d,
        stats: action.stats,
        online: action.stats.online,
        peersHeard: action.at ? trackHeard(d.peersHeard, action.stats.peers ?? [], action.at) : d.peersHeard,
      }));
    case 'dev/online':
      return updateDevice(state, action.device, (d) => ({
        ...d,
        online: action.online,
        stats: d.stats ? { ...d.stats, online: action.online } : d.stats,
      }));
    case 'dev/error':
      return updateDevice(state, action.device, (d) => (d.error === action.error ? d : { ...d, error: action.error }));
    case 'dev/members':
      return updateDevice(state, action.device, (d) => ({ ...d, members: action.members }));
    case 'dev/net': {
      const d = state.devices[action.device];
      if (!d) return state;
      const maxSeq = action.events.reduce((m, e) => Math.max(m, e.seq), d.netNext);
      const netNext = action.next ?? maxSeq;
      const netlog = appendNetEvents(state.netlog, action.device, action.events);
      if (netlog === state.netlog && netNext === d.netNext) return state;
      return { ...state, netlog, devices: { ...state.devices, [action.device]: { ...d, netNext } } };
    }
  }
}

/**
 * The devices that get a pane, in order. A device the demo runs shows once it is in the community:
 * once any device's roster (its own included) lists it, whatever its status (a removed device keeps
 * its pane). A device not yet joined (`meshlog device --join` still waiting to be admitted) has no
 * pane until a roster names it, which the `members` frame of the device that admits it brings.
 * While no roster has been read (a backend without `/api/members`, or the first moments), every
 * device shows.
 */
export function paneOrder(state: AppState): string[] {
  const named = new Set<string>();
  let anyRoster = false;
  for (const n of state.order) {
    const roster = state.devices[n].members;
    if (roster === null) continue;
    anyRoster = true;
    for (const m of roster) named.add(m.name);
  }
  if (!anyRoster) return state.order;
  const shown = state.order.filter((n) => named.has(n));
  return shown.length === state.order.length ? state.order : shown;
}

/**
 * A batch of live frames as few actions: per device one `dev/messages`, one `dev/net` and the last
 * `dev/stats`, so a burst of hundreds of frames (100×) costs one pass over the lists, not hundreds.
 * Batches hold only stream frames, whose relative order across kinds does not matter.
 */
export function coalesce(actions: readonly Action[]): Action[] {
  const out: Action[] = [];
  const msgs = new Map<string, Extract<Action, { type: 'dev/messages' }>>();
  const nets = new Map<string, Extract<Action, { type: 'dev/net' }>>();
  const stats = new Map<string, Action>();
  for (const a of actions) {
    if (a.type === 'dev/message' || a.type === 'dev/messages') {
      // A `dev/messages` here is an earlier batch already coalesced (Batcher's compaction).
      const incoming = a.type === 'dev/message' ? [a.message] : a.messages;
      const m = msgs.get(a.device);
      if (m) {
        m.messages.push(...incoming);
        m.now = a.now;
      } else msgs.set(a.device, { type: 'dev/messages', device: a.device, messages: [...incoming], now: a.now });
    } else if (a.type === 'dev/net' && a.next === undefined) {
      const n = nets.get(a.device);
      if (n) n.events.push(...a.events);
      else nets.set(a.device, { type: 'dev/net', device: a.device, events: [...a.events] });
    } else if (a.type === 'dev/stats') stats.set(a.device, a);
    else out.push(a);
  }
  return [...out, ...msgs.values(), ...nets.values(), ...stats.values()];
}

/**
 * A queue of live frames made small while it waits (Batcher's `compact`): coalesced, then only
 * what the lists could keep once applied, the newest MESSAGES_HELD_MAX messages of each device
 * and the newest NETLOG_MAX packets (older ones would be let go on arrival anyway).
 */
export function compactLive(actions: readonly Action[]): Action[] {
  return coalesce(actions).map((a) => {
    if (a.type === 'dev/messages' && a.messages.length > MESSAGES_HELD_MAX) {
      return { ...a, messages: normalizeMessages(a.messages).slice(-MESSAGES_HELD_MAX) };
    }
    if (a.type === 'dev/net' && a.events.length > NETLOG_MAX) {
      const events = [...a.events].sort((x, y) => x.at_ms - y.at_ms || x.seq - y.seq);
      return { ...a, events: events.slice(-NETLOG_MAX) };
    }
    return a;
  });
}

/**
 * An action that must be applied after the live frames queued before it: anything touching a
 * device's list (a re-read must not be overwritten by older queued copies) and a new run (which
 * clears the old one's). Not the simulation's state of the same run (once a second) or stats:
 * flushing every lane for those would put every pane in one commit again.
 */
export function mustFollowQueued(a: Action, state: AppState): boolean {
  if (a.type === 'sim/conn' || a.type === 'dev/stats') return false;
  if (a.type === 'sim/state') return isNewRun(state.sim, a.state);
  return true;
}

/** A fresh run started (a restarted simulation): what the page shows of the old one is stale. */
export function isNewRun(old: SimState | null, next: SimState): boolean {
  return old !== null && old.run_id !== '' && next.run_id !== '' && old.run_id !== next.run_id;
}

/** Forget the old run's logs and messages; the devices are re-read (useMeshlog does). */
function clearRun(state: AppState): AppState {
  const devices: Record<string, DeviceState> = {};
  for (const [name, d] of Object.entries(state.devices)) {
    devices[name] = { ...d, messages: [], loaded: false, liveDuringFetch: [], netNext: 0, olderCursor: null, stats: null };
  }
  return { ...state, devices, netlog: [], activity: [] };
}

/** The clock the page reasons with: virtual time in simulated mode, the wall clock otherwise. */
export function referenceNow(state: AppState, wallNow: number): number {
  if (state.sim && state.sim.mode === 'sim') {
    const newest = state.netlog.length > 0 ? state.netlog[state.netlog.length - 1].at_ms : 0;
    return Math.max(state.sim.virtual_time_ms, newest);
  }
  return wallNow;
}
