// The topology view: devices, links (cut one way, both ways, or across partition groups), which
// group each device is in, and packets flying between them from the devices' `network` events.
import { memo, useEffect, useMemo, useRef, useState } from 'react';
import type { AppState } from '../state/app';
import { deviceColor, KIND_COLORS } from '../state/colors';
import type { LogEntry } from '../state/netlog';
import { groupIndex, layout, linkKey, linkState, linkTraffic, type LinkState, type Point } from '../state/topology';
import type { SimState } from '../state/types';

const W = 560;
const H = 230;
const R = 22;
/** How long a packet takes to cross a link on screen. */
const FLIGHT_MS = 650;
/** At most this many packets in the air: at 100× hundreds a second are sent; the view samples. */
const FLIGHTS_MAX = 48;
const GROUP_COLORS = ['#6366f1', '#f59e0b', '#10b981', '#ec4899', '#0ea5e9', '#84cc16', '#a855f7', '#ef4444'];

type Flight = { id: string; from: Point; to: Point; color: string; born: number };

const LINK_TEXT: Record<LinkState, string> = {
  up: 'connected',
  'cut-ab': 'cut one way',
  'cut-ba': 'cut one way',
  'cut-both': 'cut both ways',
  partitioned: 'partitioned apart',
};

/** Unit vector and the points where a link leaves and enters the device circles. */
function ends(a: Point, b: Point) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.max(1, Math.hypot(dx, dy));
  const ux = dx / len;
  const uy = dy / len;
  return { ux, uy, a: { x: a.x + ux * R, y: a.y + uy * R }, b: { x: b.x - ux * R, y: b.y - uy * R } };
}

const Link = memo(function Link({ a, b, pa, pb, state, packets }: { a: string; b: string; pa: Point; pb: Point; state: LinkState; packets: number }) {
  const e = ends(pa, pb);
  const mid = { x: (pa.x + pb.x) / 2, y: (pa.y + pb.y) / 2 };
  // A one-way cut: a bar across the link near the side whose packets are stopped.
  const near = state === 'cut-ab' ? e.a : state === 'cut-ba' ? e.b : mid;
  const toward = state === 'cut-ba' ? -1 : 1;
  const bar = { x: near.x + e.ux * 16 * toward, y: near.y + e.uy * 16 * toward };
  const from = state === 'cut-ba' ? b : a;
  const to = state === 'cut-ba' ? a : b;
  return (
    <g
      className={`topo-link ${state}`}
      data-testid={`topo-link-${linkKey(a, b).replace('|', '-')}`}
      data-state={state}
      data-packets={packets}
    >
      <title>
        {a} ↔ {b}: {LINK_TEXT[state]}
        {state === 'cut-ab' || state === 'cut-ba' ? ` (${from} → ${to} dropped)` : ''} · {packets} packets sent recently
      </title>
      <line x1={e.a.x} y1={e.a.y} x2={e.b.x} y2={e.b.y} />
      {(state === 'cut-ab' || state === 'cut-ba') && (
        <g className="cut-mark">
          <line x1={bar.x - e.uy * 9} y1={bar.y + e.ux * 9} x2={bar.x + e.uy * 9} y2={bar.y - e.ux * 9} />
          <text x={bar.x + e.uy * 16} y={bar.y - e.ux * 16 + 4} textAnchor="middle">
            ✕→
          </text>
        </g>
      )}
      {state === 'cut-both' && (
        <text className="cut-x" x={mid.x} y={mid.y + 5} textAnchor="middle">
          ✕
        </text>
      )}
    </g>
  );
});

function useFlights(log: readonly LogEntry[], pos: Record<string, Point>): Flight[] {
  const [flights, setFlights] = useState<Flight[]>([]);
  const seen = useRef<string | null>(null);
  useEffect(() => {
    // Only what arrived since the last render flies; the first render shows none of the backlog.
    const last = seen.current;
    seen.current = log.length > 0 ? log[log.length - 1].key : null;
    if (last === null) return;
    const fresh: Flight[] = [];
    const now = performance.now();
    for (let i = log.length - 1; i >= 0 && log[i].key !== last && fresh.length < FLIGHTS_MAX; i--) {
      const e = log[i];
      const from = pos[e.from];
      const to = pos[e.to];
      if (e.direction !== 'sent' || !from || !to) continue;
      fresh.push({ id: e.key, from, to, color: KIND_COLORS[e.kind], born: now });
    }
    if (fresh.length > 0) setFlights((f) => [...f.filter((x) => now - x.born < FLIGHT_MS), ...fresh].slice(-FLIGHTS_MAX));
  }, [log, pos]);
  useEffect(() => {
    if (flights.length === 0) return;
    const t = setTimeout(() => setFlights((f) => f.filter((x) => performance.now() - x.born < FLIGHT_MS)), FLIGHT_MS);
    return () => clearTimeout(t);
  }, [flights]);
  return flights;
}

type Props = { state: AppState; sim: SimState };

export function TopologyView({ state, sim }: Props) {
  const names = sim.devices.map((d) => d.name);
  const namesKey = names.join(',');
  const linksKey = JSON.stringify(sim.links);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const pos = useMemo(() => layout(names, sim.links, W, H), [namesKey, linksKey]);
  const traffic = useMemo(() => linkTraffic(state.netlog.slice(-400)), [state.netlog]);
  const flights = useFlights(state.netlog, pos);
  const groups = sim.network?.groups ?? [];

  return (
    <svg className="topo-svg" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="devices and their links" data-testid="topology">
      {sim.links.map(([a, b]) =>
        pos[a] && pos[b] ? (
          <Link key={linkKey(a, b)} a={a} b={b} pa={pos[a]} pb={pos[b]} state={linkState(sim, a, b)} packets={traffic.get(linkKey(a, b)) ?? 0} />
        ) : null,
      )}
      {flights.map((f) => (
        <circle
          key={f.id}
          className="packet"
          r={4}
          cx={f.from.x}
          cy={f.from.y}
          fill={f.color}
          style={{ ['--dx' as string]: `${f.to.x - f.from.x}px`, ['--dy' as string]: `${f.to.y - f.from.y}px`, animationDuration: `${FLIGHT_MS}ms` }}
        />
      ))}
      {sim.devices.map((d) => {
        const p = pos[d.name];
        if (!p) return null;
        const g = groupIndex(sim, d.name);
        const online = state.devices[d.name]?.online ?? true;
        const status = !d.up ? 'down' : !online ? 'offline' : 'up';
        return (
          <g key={d.name} className={`topo-node ${status}`} data-testid={`topo-node-${d.name}`} data-status={status} data-group={g ?? ''}>
            <title>
              {d.name}: {status}
              {g !== null ? ` · group ${g + 1} of ${groups.length}` : ''}
              {d.restarts > 0 ? ` · restarted ${d.restarts}×` : ''}
            </title>
            {g !== null && <circle className="group-ring" cx={p.x} cy={p.y} r={R + 6} stroke={GROUP_COLORS[g % GROUP_COLORS.length]} />}
            <circle cx={p.x} cy={p.y} r={R} fill={status === 'up' ? deviceColor(d.name) : '#94a3b8'} />
            <text className="node-letter" x={p.x} y={p.y + 6} textAnchor="middle">
              {status === 'down' ? '✕' : d.name.slice(0, 1).toUpperCase()}
            </text>
            <text className="node-name" x={p.x} y={p.y + R + 15} textAnchor="middle">
              {d.name}
              {status !== 'up' ? ` · ${status}` : ''}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
