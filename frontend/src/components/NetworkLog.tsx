import { memo, useMemo, useState } from 'react';
import { KIND_COLORS, deviceColor } from '../state/colors';
import { formatBytes, formatClockMs } from '../state/format';
import { DEFAULT_FILTER, dropCounts, expectedDrop, filterLog, isProblem, trafficBuckets, type LogEntry, type LogFilter } from '../state/netlog';
import { LOG_KINDS, type Direction } from '../state/types';
import { TrafficChart } from './TrafficChart';

/**
 * Rows in the DOM: the newest ones, twice what the list shows (the log keeps 2,000; freeze and
 * filter to read older ones). Every row is laid out and painted again on each new batch.
 */
export const NETLOG_ROWS = 30;

const DIR_ICON: Record<Direction, string> = { sent: '↑', received: '↓', dropped: '✕', rejected: '⛔' };

const Row = memo(function Row({ e, simulated }: { e: LogEntry; simulated: boolean }) {
  const drop = isProblem(e.direction);
  // Expected drops (a restart's stale echo, a cut made on the page) are drops, not alarms.
  const expected = drop ? expectedDrop(e, simulated) : null;
  const problem = drop && expected === null;
  return (
    <div
      className={`netlog-row ${problem ? 'problem' : ''} ${expected !== null ? 'expected-drop' : ''} dir-${e.direction}`}
      data-testid="netlog-row"
      data-kind={e.kind}
      data-direction={e.direction}
      data-device={e.device}
      data-reason={e.reason ?? ''}
      title={expected ?? undefined}
    >
      <span className="nl-time">{formatClockMs(e.at_ms)}</span>
      <span className="nl-dev" style={{ color: deviceColor(e.device) }} title={`seen by ${e.device}`}>
        {e.device}
      </span>
      <span className="nl-dir" title={e.direction}>
        {DIR_ICON[e.direction] ?? '·'}
      </span>
      <span className="nl-kind" style={{ background: KIND_COLORS[e.kind] }}>
        {e.kind}
      </span>
      <span className="nl-summary" title={e.summary}>
        {e.summary || `${e.from} → ${e.to} ${e.kind} (${formatBytes(e.bytes)})`}
        {drop && (
          <span className="nl-reason">
            {e.direction} · {e.reason ?? 'no reason given'}
          </span>
        )}
      </span>
    </div>
  );
});

type Props = { log: LogEntry[]; devices: string[]; now: number; virtual: boolean };

export function NetworkLog({ log, devices, now, virtual }: Props) {
  const [filter, setFilter] = useState<LogFilter>(DEFAULT_FILTER);
  const [frozen, setFrozen] = useState<LogEntry[] | null>(null);
  const source = frozen ?? log;
  const rows = useMemo(() => filterLog(source, filter, NETLOG_ROWS), [source, filter]);
  const matching = useMemo(() => filterLog(source, filter).length, [source, filter]);
  const buckets = useMemo(() => trafficBuckets(log, { now, device: filter.device, simulated: virtual }), [log, now, filter.device, virtual]);
  const drops = useMemo(() => dropCounts(log, virtual), [log, virtual]);

  return (
    <section className="card netlog-card" data-testid="netlog">
      <div className="card-head">
        <h2>Network</h2>
        <span className="muted small">
          {matching.toLocaleString('en-US')} of {log.length.toLocaleString('en-US')} packets
          {drops.expected > 0 && (
            <span data-testid="netlog-expected" title="drops the protocol or the demo cause on purpose (stale echo, offline, cuts, simulated faults)">
              {' '}
              · {drops.expected.toLocaleString('en-US')} expected {drops.expected === 1 ? 'drop' : 'drops'}
            </span>
          )}
          {drops.suspicious > 0 && (
            <span className="problem-text" data-testid="netlog-suspicious" title="dropped or rejected for a reason the demo does not cause: forged, corrupted, replayed, unknown">
              {' '}
              · {drops.suspicious.toLocaleString('en-US')} suspicious
            </span>
          )}
        </span>
        <button
          type="button"
          className={`chip-btn ${frozen ? 'active' : ''}`}
          onClick={() => setFrozen((f) => (f ? null : log))}
          title="Freeze the list to read it"
        >
          {frozen ? '▶ resume' : '❚❚ freeze'}
        </button>
      </div>
      <TrafficChart buckets={buckets} label={virtual ? 'last 60 s (virtual)' : 'last 60 s'} />
      <div className="filters">
        {LOG_KINDS.map((k) => (
          <button
            key={k}
            type="button"
            className={`kind-toggle ${filter.kinds[k] ? 'on' : ''}`}
            data-testid={`netlog-kind-${k}`}
            style={{ ['--k' as string]: KIND_COLORS[k] }}
            aria-pressed={filter.kinds[k]}
            onClick={() => setFilter((f) => ({ ...f, kinds: { ...f.kinds, [k]: !f.kinds[k] } }))}
          >
            {k}
          </button>
        ))}
        <select
          data-testid="netlog-device"
          value={filter.device ?? ''}
          onChange={(e) => setFilter((f) => ({ ...f, device: e.target.value || null }))}
          aria-label="seen by device"
        >
          <option value="">all devices</option>
          {devices.map((d) => (
            <option key={d} value={d}>
              seen by {d}
            </option>
          ))}
        </select>
        <label className="check small">
          <input
            type="checkbox"
            data-testid="netlog-problems"
            checked={filter.problemsOnly}
            onChange={(e) => setFilter((f) => ({ ...f, problemsOnly: e.target.checked }))}
          />
          drops only
        </label>
      </div>
      <div className="netlog-list">
        {rows.length === 0 && <div className="empty small">{log.length === 0 ? 'No packets yet.' : 'Nothing matches the filters.'}</div>}
        {rows.map((e) => (
          <Row key={e.key} e={e} simulated={virtual} />
        ))}
      </div>
    </section>
  );
}
