// Thin fetch wrappers for the device servers and the simulation service (docs/API.md).
// Every call carries credentials: the servers want their API token, which `meshlog demo`'s
// page server gave the browser as an HttpOnly cookie (the page's script never sees it).
import type { Invite, Member, Message, NewAttachment, SimState } from './state/types';
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

function safeAttachment(a: NewAttachment): NewAttachment {
  const mime = a.mime.toLowerCase();
  return { ...a, mime: ATTACHMENT_MIMES.includes(mime) ? mime : 'application/octet-stream' };
}

export const deviceApi = {
  send: (base: string, text: string, attachment?: NewAttachment) =>
    request<Message>(`${base}/api/messages`, check.message, {
      body: attachment ? { text, attachment: safeAttachment(attachment) } : { text },
      timeoutMs: 30_000,
    }),
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
