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

export type SimDevice = { name: string; url: string; enabled: boolean; generated: number };

export type SimNetwork = {
  loss: number;
  latency_ms_min: number;
  latency_ms_max: number;
  partitioned: boolean;
};

export type SimState = {
  mode: 'real' | 'sim';
  running: boolean;
  speed: number;
  virtual_time_ms: number;
  messages_per_hour: number;
  attachment_percent: number;
  devices: SimDevice[];
  network: null | SimNetwork;
};

export type NewAttachment = { name: string; mime: string; data_base64: string };
