// Types of the meshlog HTTP/SSE contract (docs/API.md).

export type PacketKind = 'EVENT' | 'SUMMARY' | 'DIGEST' | 'FILTER' | 'SKETCH';
export const PACKET_KINDS: readonly PacketKind[] = ['EVENT', 'SUMMARY', 'DIGEST', 'FILTER', 'SKETCH'];
export type LogKind = PacketKind | 'UNKNOWN';
export const LOG_KINDS: readonly LogKind[] = ['EVENT', 'SUMMARY', 'DIGEST', 'FILTER', 'SKETCH', 'UNKNOWN'];

export type Reaction = { emoji: string; authors: string[] };

export type Attachment = {
  file_id: string;
  name: string;
  mime: string;
  size: number;
  chunks_total: number;
  chunks_have: number;
  complete: boolean;
  url: string;
};

export type Message = {
  id: string;
  author: string;
  text: string;
  created_at_ms: number;
  auto: boolean;
  reactions: Reaction[];
  attachment: null | Attachment;
};

export type PacketCounter = { count: number; bytes: number };

export type PeerInfo = {
  name: string;
  events_advertised: number | null;
  in_sync: boolean;
  last_exchange_ms: number | null;
};

export type Stats = {
  device: string;
  online: boolean;
  events: number;
  messages: number;
  reactions: number;
  events_by_origin: { local: number; peer: number };
  packets_sent: Partial<Record<PacketKind, PacketCounter>>;
  packets_received: Partial<Record<PacketKind, PacketCounter>>;
  drops: Record<string, number>;
  peers: PeerInfo[];
  sync_percent: number;
};

export type Direction = 'sent' | 'received' | 'dropped' | 'rejected';

export type NetEvent = {
  seq: number;
  at_ms: number;
  direction: Direction;
  from: string;
  to: string;
  kind: LogKind;
  bytes: number;
  summary: string;
  reason: string | null;
};

/** A device as the simulation service lists it. `up` and `restarts` came with issue 11. */
export type SimDevice = {
  name: string;
  url: string;
  enabled: boolean;
  generated: number;
  /** Process (or simulated device) running; false after a crash until restarted. */
  up: boolean;
  restarts: number;
};

export type Cut = { from: string; to: string };

export type SimNetwork = {
  /** null in real mode (not settable there). */
  loss: number | null;
  latency_ms_min: number | null;
  latency_ms_max: number | null;
  partitioned: boolean;
  /** Partition groups; [] when not partitioned. */
  groups: string[][];
  /** One-way cuts; a cut both ways is two entries. */
  cuts: Cut[];
};

/**
 * SimState as the page uses it: every field present. `normalizeSim` (state/sim.ts) fills in what an
 * older simulation service does not send (run_id, links, groups, cuts, up, ...).
 */
export type SimState = {
  mode: 'real' | 'sim';
  /** Changes whenever a fresh run starts; '' from a service that does not say. */
  run_id: string;
  /** false: simulated mode without --data-dir, which starts empty. */
  persistent: boolean;
  running: boolean;
  speed: number;
  virtual_time_ms: number;
  messages_per_hour: number;
  attachment_percent: number;
  devices: SimDevice[];
  /** Pairs that peer with each other. */
  links: [string, string][];
  network: null | SimNetwork;
  /** The service sent the topology fields (links, up, cuts): the controls for them work. */
  topology_api: boolean;
};

export type NewAttachment = { name: string; mime: string; data_base64: string };
