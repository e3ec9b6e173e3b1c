import type { Message, NetEvent, SimDevice, SimState, Stats } from '../state/types';

export function msg(id: string, created_at_ms: number, over: Partial<Message> = {}): Message {
  return { id, author: 'alice', text: `text ${id}`, created_at_ms, auto: false, reactions: [], attachment: null, ...over };
}

export function net(seq: number, at_ms: number, over: Partial<NetEvent> = {}): NetEvent {
  return {
    seq,
    at_ms,
    direction: 'sent',
    from: 'alice',
    to: 'bob',
    kind: 'EVENT',
    bytes: 100,
    summary: `alice → bob EVENT #${seq}`,
    reason: null,
    ...over,
  };
}

export function stats(device: string, over: Partial<Stats> = {}): Stats {
  return {
    device,
    online: true,
    events: 0,
    messages: 0,
    reactions: 0,
    events_by_origin: { local: 0, peer: 0 },
    blobs: { wants_sent: 0, shard_bytes_received: 0, shard_bytes_sent: 0, outboard_bytes_received: 0, groups_verified: 0, forgeries: 0, files_fetched: 0 },
    packets_sent: {},
    packets_received: {},
    drops: {},
    peers: [],
    sync_percent: 100,
    key_epoch: 0,
    peer_moves: 0,
    introductions_sent: 0,
    relayed_datagrams: 0,
    relayed_bytes: 0,
    ...over,
  };
}

export function device(name: string, url: string, over: Partial<SimDevice> = {}): SimDevice {
  return { name, url, enabled: true, generated: 0, up: true, restarts: 0, ...over };
}

export function sim(over: Partial<SimState> = {}): SimState {
  return {
    mode: 'real',
    run_id: 'run-1',
    persistent: true,
    running: false,
    speed: 1,
    virtual_time_ms: 1_700_000_000_000,
    messages_per_hour: 60,
    attachment_percent: 10,
    devices: [device('alice', 'http://127.0.0.1:3001'), device('bob', 'http://127.0.0.1:3002')],
    links: [['alice', 'bob']],
    network: null,
    topology_api: true,
    ...over,
  };
}
