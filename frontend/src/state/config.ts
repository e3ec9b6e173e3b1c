// Where the page finds its backends: ?sim=URL, else the port its page server names (`meshlog
// demo` puts `<meta name="meshlog-config" content='{"service_port": N}'>` into index.html, so a
// demo on moved ports is found there, not at whatever answers on the default port), else
// http://<page host>:3005 (Vite's dev server, which serves no configuration); and optionally
// ?devices=name=url,name=url (or bare urls) to skip discovery.

export type PageConfig = {
  simUrl: string;
  devices: { name: string; url: string }[] | null;
};

const trimSlash = (u: string) => u.replace(/\/+$/, '');

function withScheme(u: string): string {
  return /^https?:\/\//i.test(u) ? u : `http://${u}`;
}

/** The simulation service's port when the page server names none. */
export const DEFAULT_SERVICE_PORT = 3005;

/** What the page server says about the demo (backend/src/demo/page.rs, `PageConfig`). */
export type ServedConfig = { service_port: number | null };

/**
 * The page server's configuration from the `content` of `<meta name="meshlog-config">`; null
 * without one (Vite's dev server). Anything unreadable in it is left out, with a warning.
 */
export function parseServedConfig(content: string | null | undefined): ServedConfig | null {
  if (content == null || content.trim() === '') return null;
  let raw: unknown;
  try {
    raw = JSON.parse(content);
  } catch {
    console.warn(`meshlog: the page server's configuration is not JSON: ${content}`);
    return null;
  }
  const port = raw && typeof raw === 'object' ? (raw as { service_port?: unknown }).service_port : undefined;
  const valid = typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536;
  if (!valid) console.warn(`meshlog: the page server's configuration names no port: ${content}`);
  return { service_port: valid ? port : null };
}

export function parseConfig(search: string, hostname: string, served: ServedConfig | null = null): PageConfig {
  const q = new URLSearchParams(search);
  const host = hostname && hostname.length > 0 ? hostname : '127.0.0.1';
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const sim = q.get('sim');
  const port = served?.service_port ?? DEFAULT_SERVICE_PORT;
  const simUrl = trimSlash(sim && sim.trim() ? withScheme(sim.trim()) : `http://${hostPart}:${port}`);
  let devices: PageConfig['devices'] = null;
  const raw = q.get('devices');
  if (raw && raw.trim()) {
    devices = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((item, i) => {
        const eq = item.indexOf('=');
        if (eq > 0) return { name: item.slice(0, eq), url: trimSlash(withScheme(item.slice(eq + 1))) };
        return { name: `device${i + 1}`, url: trimSlash(withScheme(item)) };
      });
  }
  return { simUrl, devices };
}
