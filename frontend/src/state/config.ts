// Where the page finds its backends: ?sim=URL (default http://<page host>:3005) and optionally
// ?devices=name=url,name=url (or bare urls) to skip discovery.

export type PageConfig = {
  simUrl: string;
  devices: { name: string; url: string }[] | null;
};

const trimSlash = (u: string) => u.replace(/\/+$/, '');

function withScheme(u: string): string {
  return /^https?:\/\//i.test(u) ? u : `http://${u}`;
}

export function parseConfig(search: string, hostname: string): PageConfig {
  const q = new URLSearchParams(search);
  const host = hostname && hostname.length > 0 ? hostname : '127.0.0.1';
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const sim = q.get('sim');
  const simUrl = trimSlash(sim && sim.trim() ? withScheme(sim.trim()) : `http://${hostPart}:3005`);
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
