import { formatBytes, formatCount } from '../state/format';
import { KIND_COLORS } from '../state/colors';
import { expectedDrop } from '../state/netlog';
import { PACKET_KINDS, type Stats } from '../state/types';

export function StatsPanel({ stats, simulated }: { stats: Stats; simulated: boolean }) {
  const drops = Object.entries(stats.drops ?? {}).filter((e): e is [string, number] => (e[1] ?? 0) > 0);
  return (
    <div className="stats-panel" data-testid={`stats-${stats.device}`}>
      <table className="stats-table">
        <thead>
          <tr>
            <th>packets</th>
            <th>sent</th>
            <th>received</th>
          </tr>
        </thead>
        <tbody>
          {PACKET_KINDS.map((k) => {
            const s = stats.packets_sent?.[k] ?? { count: 0, bytes: 0 };
            const r = stats.packets_received?.[k] ?? { count: 0, bytes: 0 };
            return (
              <tr key={k}>
                <td>
                  <span className="kind-dot" style={{ background: KIND_COLORS[k] }} />
                  {k}
                </td>
                <td>
                  {formatCount(s.count)} <span className="muted">· {formatBytes(s.bytes)}</span>
                </td>
                <td>
                  {formatCount(r.count)} <span className="muted">· {formatBytes(r.bytes)}</span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="stats-grid">
        <div>
          <div className="stat-label">messages</div>
          <div className="stat-value">{formatCount(stats.messages)}</div>
        </div>
        <div>
          <div className="stat-label">reactions</div>
          <div className="stat-value">{formatCount(stats.reactions)}</div>
        </div>
        <div>
          <div className="stat-label">made here</div>
          <div className="stat-value">{formatCount(stats.events_by_origin?.local ?? 0)}</div>
        </div>
        <div>
          <div className="stat-label">from peers</div>
          <div className="stat-value">{formatCount(stats.events_by_origin?.peer ?? 0)}</div>
        </div>
        <div title="the key epoch new events are sealed under: each removal (or rotation) starts the next">
          <div className="stat-label">key epoch</div>
          <div className="stat-value" data-testid={`key-epoch-${stats.device}`}>
            {stats.key_epoch ?? 0}
          </div>
        </div>
      </div>
      <div className="drops">
        <span className="stat-label">drops</span>{' '}
        {drops.length === 0 ? (
          <span className="muted">none</span>
        ) : (
          drops.map(([reason, n]) => {
            const expected = expectedDrop({ direction: 'dropped', reason }, simulated);
            return (
              <span
                key={reason}
                className={`drop-chip ${expected !== null ? 'expected' : ''}`}
                data-testid={`drop-${stats.device}-${reason}`}
                title={expected !== null ? `${reason}: expected, ${expected}` : `${reason}: suspicious`}
              >
                {reason.replace(/_/g, ' ')} <b>{formatCount(n)}</b>
              </span>
            );
          })
        )}
      </div>
    </div>
  );
}
