// Thin fetch wrappers for the device servers and the simulation service (docs/API.md).
// Every call carries credentials: the servers want their API token, which `meshlog demo`'s
// page server gave the browser as an HttpOnly cookie (the page's script never sees it).
import type { FileProgress, Invite, Member, Message, NewAttachment, StoredAttachment, SimState } from './state/types';
import * as check from './state/validate';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Parses and checks a response body; throws `check.ShapeError` when it has the wrong shape. */
type Check<T> = (body: unknown) => T;

async function request<T>(
  url: string,
  valid: Check<T>,
  init?: { method?: string; body?: unknown; timeoutMs?: number },
): Promise<T> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), init?.timeoutMs ?? 15_000);
  let res: Response;
  try {
    res = await fetch(url, {
      method: init?.method ?? (init?.body !== undefined ? 'POST' : 'GET'),
      headers: init?.body !== undefined ? { 'Content-Type': 'application/json' } : undefined,
      body: init?.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal: ctrl.signal,
      credentials: 'include',
    });
  } catch (e) {
    throw new ApiError(ctrl.signal.aborted ? `timed out: ${url}` : `cannot reach ${new URL(url).host}`, 0);
  } finally {
    clearTimeout(timer);
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const msg =
      body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : `HTTP ${res.status}`;
    throw new ApiError(msg, res.status);
  }
  try {
    return valid(body);
  } catch (e) {
    throw new ApiError(`${new URL(url).pathname}: ${(e as Error).message}`, res.status);
  }
}

const sim: Check<SimState> = check.simState;

/** The attachment types a device accepts (docs/API.md); any other file is sent as opaque bytes. */
export const ATTACHMENT_MIMES = [
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp',
  'text/plain', 'text/csv', 'text/markdown', 'application/pdf', 'application/octet-stream',
  'application/zip', 'application/json', 'audio/mpeg', 'audio/ogg', 'audio/wav', 'video/mp4', 'video/webm',
];

function safeAttachment<A extends { mime: string }>(a: A): A {
  const mime = a.mime.toLowerCase();
  return { ...a, mime: ATTACHMENT_MIMES.includes(mime) ? mime : 'application/octet-stream' };
}

export const deviceApi = {
  send: (base: string, text: string, attachment?: NewAttachment | StoredAttachment) =>
    request<Message>(`${base}/api/messages`, check.message, {
      body: !attachment
        ? { text }
        : 'file_id' in attachment
          ? { text, ...safeAttachment(attachment) }
          : { text, attachment: safeAttachment(attachment) },
      timeoutMs: 30_000,
    }),
  /** How much of a blob the device holds (GET /api/files/:id/progress); null while it has none. */
  fileProgress: async (base: string, fileId: string): Promise<FileProgress | null> => {
    try {
      return await request(`${base}/api/files/${fileId}/progress`, check.fileProgress, { timeoutMs: 5_000 });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  },
  react: (base: string, id: string, emoji: string, remove: boolean) =>
    request(`${base}/api/messages/${id}/reactions`, (b) => check.obj(b, 'reaction'), { body: remove ? { emoji, remove } : { emoji } }),
  stats: (base: string) => request(`${base}/api/stats`, (b) => check.stats(b), { timeoutMs: 5_000 }),
  setOnline: (base: string, online: boolean) =>
    request(`${base}/api/device-status`, (b) => ({ online: check.bool(check.obj(b, 'status').online, 'status.online') }), {
      body: { online },
    }),
  netEvents: (base: string, since: number) => request(`${base}/api/network-events?since=${since}`, check.netEventPage),
  members: (base: string): Promise<Member[]> => request(`${base}/api/members`, check.members, { timeoutMs: 5_000 }),
  /** Admins only: removes `name`; answers the key epoch after the removal. */
  removeMember: (base: string, name: string) =>
    request(`${base}/api/members/${encodeURIComponent(name)}`, (b) => num(check.obj(b, 'removal').key_epoch, 'key_epoch'), {
      method: 'DELETE',
    }),
  /** Admins only: removes person `name` with every device of theirs; answers the key epoch after. */
  removePerson: (base: string, name: string) =>
    request(`${base}/api/people/${encodeURIComponent(name)}`, (b) => num(check.obj(b, 'removal').key_epoch, 'key_epoch'), {
      method: 'DELETE',
    }),
  /** Admins only: a new invite token (POST /api/invites). */
  invite: (base: string, body: { role: 'admin' | 'member'; expires_in_s: number; uses: number }): Promise<Invite> =>
    request(`${base}/api/invites`, check.invite, { body }),
};

const num = check.num;

const dev = (name: string) => encodeURIComponent(name);

export const simApi = {
  state: (s: string) => request(`${s}/api/simulation`, sim, { timeoutMs: 5_000 }),
  start: (s: string) => request(`${s}/api/simulation/start`, sim, { method: 'POST', body: {} }),
  pause: (s: string) => request(`${s}/api/simulation/pause`, sim, { method: 'POST', body: {} }),
  speed: (s: string, speed: number) => request(`${s}/api/simulation/speed`, sim, { body: { speed } }),
  step: (s: string, seconds: number) => request(`${s}/api/simulation/step`, sim, { body: { seconds } }),
  rate: (s: string, messages_per_hour: number) => request(`${s}/api/simulation/message-rate`, sim, { body: { messages_per_hour } }),
  attachRate: (s: string, percent: number) => request(`${s}/api/simulation/attachment-rate`, sim, { body: { percent } }),
  enable: (s: string, device: string, enabled: boolean) =>
    request(`${s}/api/devices/${dev(device)}/enabled`, sim, { body: { enabled } }),
  network: (s: string, body: { loss?: number; latency_ms_min?: number; latency_ms_max?: number }) =>
    request(`${s}/api/network`, sim, { body }),
  partition: (s: string, partitioned: boolean) => request(`${s}/api/network/partition`, sim, { body: { partitioned } }),
  /** Split into groups (every device in exactly one); [] heals. */
  groups: (s: string, groups: string[][]) => request(`${s}/api/network/partition`, sim, { body: { groups } }),
  cut: (s: string, from: string, to: string, cut: boolean, both_ways: boolean) =>
    request(`${s}/api/network/cut`, sim, { body: { from, to, cut, both_ways } }),
  crash: (s: string, device: string) => request(`${s}/api/devices/${dev(device)}/crash`, sim, { method: 'POST', body: {} }),
  restart: (s: string, device: string) => request(`${s}/api/devices/${dev(device)}/restart`, sim, { method: 'POST', body: {} }),
};

export type Uploaded = { file_id: string; size: number; chunks: number };

/**
 * Streams `file` into the device's blob store (POST /api/files, the raw bytes as the body);
 * `onProgress(sent, total)` as the browser sends it. XHR, not fetch: fetch reports no upload
 * progress. No timeout: a 2 GB file takes minutes; the server cuts off a stalled one.
 */
export function uploadFile(base: string, file: Blob, onProgress: (sent: number, total: number) => void): Promise<Uploaded> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${base}/api/files`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new ApiError(`cannot reach ${new URL(base).host}`, 0));
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status < 200 || xhr.status >= 300) {
        const msg = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : `HTTP ${xhr.status}`;
        reject(new ApiError(msg, xhr.status));
        return;
      }
      try {
        const o = check.obj(body, 'upload');
        resolve({ file_id: check.str(o.file_id, 'upload.file_id'), size: check.num(o.size, 'upload.size'), chunks: check.num(o.chunks, 'upload.chunks') });
      } catch (e) {
        reject(new ApiError(`/api/files: ${(e as Error).message}`, xhr.status));
      }
    };
    xhr.send(file);
  });
}

/**
 * The first `len` bytes of an attachment (`Range`), as a blob of its type: a progressive image
 * draws from what is verified so far. The device serves only verified bytes.
 */
export async function fetchPrefix(url: string, len: number, mime: string): Promise<Blob> {
  const res = await fetch(url, { headers: { Range: `bytes=0-${len - 1}` }, credentials: 'include' });
  if (res.status !== 206 && res.status !== 200) throw new ApiError(`HTTP ${res.status}`, res.status);
  return new Blob([await res.arrayBuffer()], { type: mime });
}

/** Read a picked file as base64 (without the data: prefix). */
export function fileToBase64(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onerror = () => reject(r.error ?? new Error('cannot read file'));
    r.onload = () => {
      const s = String(r.result);
      const comma = s.indexOf(',');
      resolve(comma >= 0 ? s.slice(comma + 1) : s);
    };
    r.readAsDataURL(file);
  });
}

/** One page of GET /api/messages: oldest first; `next` asks for the page of older ones. */
export type MessagePage = { messages: Message[]; next: string | null };

/** A page of messages before `before` (newest when absent), matching `q` if given. */
export function fetchMessagePage(base: string, opts: { before?: string | null; q?: string; limit?: number } = {}): Promise<MessagePage> {
  const params = new URLSearchParams();
  if (opts.before) params.set('before', opts.before);
  if (opts.q) params.set('q', opts.q);
  if (opts.limit) params.set('limit', String(opts.limit));
  const query = params.toString();
  return request(`${base}/api/messages${query ? `?${query}` : ''}`, check.messagePage);
}
