// The topology view: devices, links (cut one way, both ways, or across partition groups), which
// group each device is in, and packets flying between them from the devices' `network` events
// (on a canvas over the picture, see state/flights.ts).
import { memo, useCallback, useEffect, useMemo, useRef, type RefObject } from 'react';
import type { AppState } from '../state/app';
import { deviceColor, KIND_COLORS } from '../state/colors';
import { addFlights, fitViewBox, flightAt, freshFlights, type Flight } from '../state/flights';
import type { LogEntry } from '../state/netlog';
import { FOUND_TEXT, groupIndex, layout, linkFound, linkKey, linkPath, linkState, linkTraffic, type LinkFound, type LinkPath, type LinkState, type Point } from '../state/topology';
import type { SimState } from '../state/types';

const W = 560;
const H = 230;
const R = 22;
const GROUP_COLORS = ['#6366f1', '#f59e0b', '#10b981', '#ec4899', '#0ea5e9', '#84cc16', '#a855f7', '#ef4444'];

const LINK_TEXT: Record<LinkState, string> = {
  up: 'connected',
  'cut-ab': 'cut one way',
  'cut-ba': 'cut one way',
  'cut-both': 'cut both ways',
  partitioned: 'partitioned apart',
};

const pathProps = (p: LinkPath) => ({ path: p.path, via: p.via.join(',') });

/** Unit vector and the points where a link leaves and enters the device circles. */
function ends(a: Point, b: Point) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.max(1, Math.hypot(dx, dy));
  const ux = dx / len;
  const uy = dy / len;
  return { ux, uy, a: { x: a.x + ux * R, y: a.y + uy * R }, b: { x: b.x - ux * R, y: b.y - uy * R } };
}

const Link = memo(function Link({
  a,
  b,
  pa,
  pb,
  state,
  packets,
  found,
  path,
  via,
}: {
  a: string;
  b: string;
  pa: Point;
  pb: Point;
  state: LinkState;
  packets: number;
  found: LinkFound;
  /** `LinkPath`'s parts apart, not the object: `memo` compares props by identity. */
  path: LinkPath['path'];
  via: string;
}) {
  const e = ends(pa, pb);
  const mid = { x: (pa.x + pb.x) / 2, y: (pa.y + pb.y) / 2 };
  // A one-way cut: a bar across the link near the side whose packets are stopped.
  const near = state === 'cut-ab' ? e.a : state === 'cut-ba' ? e.b : mid;
  const toward = state === 'cut-ba' ? -1 : 1;
  const bar = { x: near.x + e.ux * 16 * toward, y: near.y + e.uy * 16 * toward };
  const from = state === 'cut-ba' ? b : a;
  const to = state === 'cut-ba' ? a : b;
  const relayedText = path === 'relayed' ? `relayed through ${via.split(',').join(' and ')} (no direct path yet)` : 'direct';
  return (
    <g
      className={`topo-link ${state} found-${found} path-${path}`}
      data-testid={`topo-link-${linkKey(a, b).replace('|', '-')}`}
      data-state={state}
      data-packets={packets}
      data-found={found}
      data-path={path}
      data-via={via}
    >
      <title>
        {a} ↔ {b}: {LINK_TEXT[state]}
        {state === 'cut-ab' || state === 'cut-ba' ? ` (${from} → ${to} dropped)` : ''} · {FOUND_TEXT[found]} · {relayedText} · {packets} packets sent
        recently
      </title>
      <line x1={e.a.x} y1={e.a.y} x2={e.b.x} y2={e.b.y} />
      {path === 'relayed' && state === 'up' && (
        <text className="relay-via" x={mid.x} y={mid.y - 6} textAnchor="middle">
          via {via.split(',').join(', ')}
        </text>
      )}
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

/**
 * Draws the packets sent since the last look at the log on `canvas`, one animation frame at a
 * time while any is in the air. Nothing of it goes through React or the DOM: a new batch of
 * packets costs no render, and a frame costs one canvas clear and a few dozen arcs.
 */
function usePacketCanvas(canvas: RefObject<HTMLCanvasElement | null>, log: readonly LogEntry[], pos: Record<string, Point>) {
  const flights = useRef<Flight[]>([]);
  const seen = useRef<string | null>(null);
  const frame = useRef<number | null>(null);
  const size = useRef({ w: 0, h: 0 });

  const draw = useCallback(() => {
    frame.current = null;
    const el = canvas.current;
    const ctx = el?.getContext('2d');
    if (!el || !ctx) return;
    const now = performance.now();
    flights.current = addFlights(flights.current, [], now);
    const dpr = window.devicePixelRatio || 1;
    const { w, h } = size.current;
    if (el.width !== Math.round(w * dpr) || el.height !== Math.round(h * dpr)) {
      el.width = Math.round(w * dpr);
      el.height = Math.round(h * dpr);
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, el.width, el.height);
    // Draw in the picture's own units (the SVG's view box), wherever the box sits in the canvas.
    const fit = fitViewBox(w, h, W, H);
    ctx.setTransform(dpr * fit.scale, 0, 0, dpr * fit.scale, dpr * fit.dx, dpr * fit.dy);
    for (const f of flights.current) {
      const p = flightAt(f, now);
      if (!p) continue;
      ctx.globalAlpha = p.alpha;
      ctx.fillStyle = f.color;
      ctx.beginPath();
      ctx.arc(p.x, p.y, 4, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (flights.current.length > 0) frame.current = requestAnimationFrame(draw);
  }, [canvas]);

  // The canvas's CSS size, from a ResizeObserver so a frame never reads layout.
  useEffect(() => {
    const el = canvas.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(([entry]) => {
      size.current = { w: entry.contentRect.width, h: entry.contentRect.height };
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, [canvas]);
  useEffect(() => () => {
    if (frame.current !== null) cancelAnimationFrame(frame.current);
  }, []);

  useEffect(() => {
    // Only what arrived since the last look flies; the first look shows none of the backlog.
    const last = seen.current;
    seen.current = log.length > 0 ? log[log.length - 1].key : null;
    const now = performance.now();
    const fresh = freshFlights(log, last, pos, (e) => KIND_COLORS[e.kind], now, R);
    if (fresh.length === 0) return;
    flights.current = addFlights(flights.current, fresh, now);
    if (frame.current === null) frame.current = requestAnimationFrame(draw);
  }, [log, pos, draw]);
}

type Props = { state: AppState; sim: SimState };

export function TopologyView({ state, sim }: Props) {
  const names = sim.devices.map((d) => d.name);
  const namesKey = names.join(',');
  const linksKey = JSON.stringify(sim.links);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const pos = useMemo(() => layout(names, sim.links, W, H), [namesKey, linksKey]);
  const traffic = useMemo(() => linkTraffic(state.netlog.slice(-400)), [state.netlog]);
  const canvas = useRef<HTMLCanvasElement>(null);
  usePacketCanvas(canvas, state.netlog, pos);
  const groups = sim.network?.groups ?? [];

  return (
    <div className="topo-wrap">
    <svg className="topo-svg" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="devices and their links" data-testid="topology">
      {sim.links.map(([a, b]) =>
        pos[a] && pos[b] ? (
          <Link
            key={linkKey(a, b)}
            a={a}
            b={b}
            pa={pos[a]}
            pb={pos[b]}
            state={linkState(sim, a, b)}
            packets={traffic.get(linkKey(a, b)) ?? 0}
            found={linkFound(state.devices[a]?.stats ?? null, state.devices[b]?.stats ?? null, a, b)}
            {...pathProps(linkPath(state.devices[a]?.stats ?? null, state.devices[b]?.stats ?? null, a, b))}
          />
        ) : null,
      )}
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
    <canvas ref={canvas} className="topo-packets" aria-hidden="true" data-testid="topo-packets" />
    </div>
  );
}
