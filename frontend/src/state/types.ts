// Types of the meshlog HTTP/SSE contract (docs/API.md).
import type * as Gen from '../generated/api';

export type PacketKind = 'EVENT' | 'SUMMARY' | 'DIGEST' | 'FILTER' | 'SKETCH';
export const PACKET_KINDS: readonly PacketKind[] = ['EVENT', 'SUMMARY', 'DIGEST', 'FILTER', 'SKETCH'];
/** The log's kinds: the sync's, an event stream's recovery shards (RECOVERY), a file's shards
 * and asks (BLOB), and the rest (UNKNOWN). */
export type LogKind = PacketKind | 'RECOVERY' | 'BLOB' | 'UNKNOWN';
export const LOG_KINDS: readonly LogKind[] = ['EVENT', 'SUMMARY', 'DIGEST', 'FILTER', 'SKETCH', 'RECOVERY', 'BLOB', 'UNKNOWN'];

// The wire shapes come from the Rust views (src/generated/api.ts, ts-rs); the page narrows a few.
export type Reaction = Gen.ReactionView;
export type Attachment = Gen.AttachmentView;
export type Message = Gen.MessageView;
export type PacketCounter = Gen.TrafficView;
export type PeerInfo = Gen.PeerView;
export type Stats = Gen.StatsView;
/**
 * A member as `GET /api/members` lists it. `person`: the name of whoever the device belongs to;
 * null: the page shows the device name alone.
 */
export type Member = Gen.MemberView;
/** `POST /api/invites`'s answer. */
export type Invite = { token: string; role: string; uses: number; expires_at_ms: number; address: string };

export type Direction = Gen.NetEvent['direction'];

/** A network log line; `kind` is one the page knows ('UNKNOWN' for any other). */
export type NetEvent = Omit<Gen.NetEvent, 'kind'> & { kind: LogKind };

/** A device as the simulation service lists it. `up` and `restarts` came with issue 11. */
export type SimDevice = Gen.DeviceState & {
  /** Process (or simulated device) running; false after a crash until restarted. */
  up: boolean;
  restarts: number;
};

export type Cut = { from: string; to: string };

export type SimNetwork = Omit<NonNullable<Gen.SimState['network']>, 'loss' | 'latency_ms_min' | 'latency_ms_max'> & {
  /** null in real mode (not settable there). */
  loss: number | null;
  latency_ms_min: number | null;
  latency_ms_max: number | null;
  /** Partition groups; [] when not partitioned. */
  groups: string[][];
  /** One-way cuts; a cut both ways is two entries. */
  cuts: Cut[];
};

/**
 * SimState as the page uses it: every field present. `simState` (state/validate.ts) fills in what an
 * older simulation service does not send (run_id, links, groups, cuts, up, ...).
 */
export type SimState = Omit<Gen.SimState, 'devices' | 'network'> & {
  /** Changes whenever a fresh run starts; '' from a service that does not say. */
  run_id: string;
  /** false: simulated mode without --data-dir, which starts empty. */
  persistent: boolean;
  devices: SimDevice[];
  /** Pairs that peer with each other. */
  links: [string, string][];
  network: null | SimNetwork;
  /** The service sent the topology fields (links, up, cuts): the controls for them work. */
  topology_api: boolean;
};

export type NewAttachment = { name: string; mime: string; data_base64: string };
/** A file already uploaded to the device's blob store (POST /api/files), attached by id. */
export type StoredAttachment = { file_id: string; name: string; mime: string };
/** GET /api/files/:id/progress. */
export type FileProgress = {
  file_id: string;
  size: number;
  chunks_have: number;
  chunks_total: number;
  complete: boolean;
  prefix_bytes: number;
  bytes_per_second: number;
};
