import { EXPECTED_DROP_COLOR, KIND_COLORS, PROBLEM_COLOR } from '../state/colors';
import { formatBytes, formatCount } from '../state/format';
import { bucketMax, trafficTotals, type TrafficBucket } from '../state/netlog';
import { LOG_KINDS, PACKET_KINDS, type LogKind } from '../state/types';

const W = 360;
const H = 74;
const PROBLEM_LANE = 8;

function Sparkline({ buckets, kind }: { buckets: TrafficBucket[]; kind: LogKind }) {
  const max = bucketMax(buckets, kind);
  const w = 64;
  const h = 16;
  const pts = buckets
    .map((b, i) => `${((i + 0.5) / buckets.length) * w},${h - 1 - (b.counts[kind] / max) * (h - 2)}`)
    .join(' ');
  return (
    <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} className="spark" aria-hidden="true">
      <polyline points={pts} fill="none" stroke={KIND_COLORS[kind]} strokeWidth="1.5" strokeLinejoin="round" />
    </svg>
  );
}

export function TrafficChart({ buckets, label }: { buckets: TrafficBucket[]; label: string }) {
  const max = bucketMax(buckets);
  const totals = trafficTotals(buckets);
  const bw = W / buckets.length;
  const chartH = H - PROBLEM_LANE - 2;
  // The sync's kinds always; a file's (BLOB) and the rest only when there are some.
  const kinds: LogKind[] = LOG_KINDS.filter((k) => (PACKET_KINDS as readonly string[]).includes(k) || totals.counts[k] > 0);
  return (
    <div className="traffic" data-testid="traffic-chart">
      <div className="traffic-head">
        <span className="card-sub">packets sent · {label}</span>
        <span className="muted small">
          {formatCount(kinds.reduce((s, k) => s + totals.counts[k], 0))} pkts · {formatBytes(totals.bytes)}
          {totals.expected > 0 && <span> · {formatCount(totals.expected)} expected {totals.expected === 1 ? 'drop' : 'drops'}</span>}
          {totals.problems > 0 && <span className="problem-text"> · {formatCount(totals.problems)} suspicious</span>}
        </span>
      </div>
      <svg className="traffic-svg" viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label="traffic chart">
        {[0.5, 1].map((f) => (
          <line key={f} x1="0" x2={W} y1={H - f * chartH} y2={H - f * chartH} className="grid-line" />
        ))}
        {buckets.map((b, i) => {
          let y = H;
          const x = i * bw + 0.6;
          return (
            <g key={b.start}>
              <title>
                {kinds.map((k) => `${k} ${b.counts[k]}`).join(' · ')}
                {b.expected ? ` · expected drops ${b.expected}` : ''}
                {b.problems ? ` · suspicious ${b.problems}` : ''}
              </title>
              <rect x={i * bw} y={0} width={bw} height={H} fill="transparent" />
              {kinds.map((k) => {
                const h = (b.counts[k] / max) * chartH;
                if (h <= 0) return null;
                y -= h;
                return <rect key={k} x={x} y={y} width={Math.max(1, bw - 1.2)} height={h} fill={KIND_COLORS[k]} rx="1" />;
              })}
              {(b.problems > 0 || b.expected > 0) && (
                <rect
                  x={x}
                  y={0}
                  width={Math.max(1, bw - 1.2)}
                  height={PROBLEM_LANE - 2}
                  fill={b.problems > 0 ? PROBLEM_COLOR : EXPECTED_DROP_COLOR}
                  rx="1.5"
                />
              )}
            </g>
          );
        })}
      </svg>
      <div className="legend">
        {kinds.map((k) => (
          <span key={k} className="legend-item" title={`${k}: ${totals.counts[k]} packets in the window`}>
            <span className="kind-dot" style={{ background: KIND_COLORS[k] }} />
            <span className="legend-name">{k}</span>
            <Sparkline buckets={buckets} kind={k} />
            <b>{formatCount(totals.counts[k])}</b>
          </span>
        ))}
      </div>
    </div>
  );
}
