// Thin fetch wrappers for the device servers and the simulation service (docs/API.md).
// Every call carries credentials: the servers want their API token, which `meshlog demo`'s
// page server gave the browser as an HttpOnly cookie (the page's script never sees it).
import type { Message, NetEvent, NewAttachment, SimState, Stats } from './state/types';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function request<T>(url: string, init?: { method?: string; body?: unknown; timeoutMs?: number }): Promise<T> {
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
  return body as T;
}

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
  messages: (base: string) => request<{ messages: Message[] }>(`${base}/api/messages`).then((r) => r.messages ?? []),
  send: (base: string, text: string, attachment?: NewAttachment) =>
    request<Message>(`${base}/api/messages`, {
      body: attachment ? { text, attachment: safeAttachment(attachment) } : { text },
      timeoutMs: 30_000,
    }),
  react: (base: string, id: string, emoji: string, remove: boolean) =>
    request<{ event_id: string }>(`${base}/api/messages/${id}/reactions`, { body: remove ? { emoji, remove } : { emoji } }),
  stats: (base: string) => request<Stats>(`${base}/api/stats`, { timeoutMs: 5_000 }),
  setOnline: (base: string, online: boolean) => request<{ online: boolean }>(`${base}/api/device-status`, { body: { online } }),
  netEvents: (base: string, since: number) =>
    request<{ events: NetEvent[]; next: number }>(`${base}/api/network-events?since=${since}`),
};

export const simApi = {
  state: (sim: string) => request<SimState>(`${sim}/api/simulation`, { timeoutMs: 5_000 }),
  start: (sim: string) => request<SimState>(`${sim}/api/simulation/start`, { method: 'POST', body: {} }),
  pause: (sim: string) => request<SimState>(`${sim}/api/simulation/pause`, { method: 'POST', body: {} }),
  speed: (sim: string, speed: number) => request<SimState>(`${sim}/api/simulation/speed`, { body: { speed } }),
  step: (sim: string, seconds: number) => request<SimState>(`${sim}/api/simulation/step`, { body: { seconds } }),
  rate: (sim: string, messages_per_hour: number) =>
    request<SimState>(`${sim}/api/simulation/message-rate`, { body: { messages_per_hour } }),
  attachRate: (sim: string, percent: number) =>
    request<SimState>(`${sim}/api/simulation/attachment-rate`, { body: { percent } }),
  enable: (sim: string, device: string, enabled: boolean) =>
    request<SimState>(`${sim}/api/devices/${encodeURIComponent(device)}/enabled`, { body: { enabled } }),
  network: (sim: string, body: { loss?: number; latency_ms_min?: number; latency_ms_max?: number }) =>
    request<SimState>(`${sim}/api/network`, { body }),
  partition: (sim: string, partitioned: boolean) => request<SimState>(`${sim}/api/network/partition`, { body: { partitioned } }),
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
  return request<Partial<MessagePage>>(`${base}/api/messages${query ? `?${query}` : ''}`).then((r) => ({
    messages: r.messages ?? [],
    next: r.next ?? null,
  }));
}
