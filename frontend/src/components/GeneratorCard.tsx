import { useEffect, useState } from 'react';
import type { Activity } from '../state/activity';
import type { AppState } from '../state/app';
import { deviceColor } from '../state/colors';
import { formatClock, formatCount } from '../state/format';
import type { MeshActions } from '../useMeshlog';
import { errorText, useDebouncedCommit, useDraft, type PendingEdits } from './util';

type Props = { state: AppState; actions: MeshActions; pending: PendingEdits };

/** Events in the DOM: the newest, four times what the box shows (it is 9 rows high). */
export const ACTIVITY_ROWS = 36;

function clamp(v: number, lo: number, hi: number) {
  return Math.min(hi, Math.max(lo, v));
}

const ACT_ICON: Record<Activity['kind'], string> = { posted: '✎', received: '⇣', reaction: '☺', file: '🖼' };

export function GeneratorCard({ state, actions, pending }: Props) {
  const sim = state.sim;
  const [error, setError] = useState<string | null>(null);
  const [rate, setRate, cleanRate] = useDraft(String(sim?.messages_per_hour ?? ''));
  const [att, setAtt, cleanAtt] = useDraft(String(sim?.attachment_percent ?? ''));

  const wrap = async (f: () => Promise<unknown>) => {
    try {
      await f();
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  };
  const rateCommit = useDebouncedCommit(async () => {
    const v = Number(rate);
    if (rate.trim() === '' || !Number.isFinite(v)) return;
    await wrap(() => actions.rate(clamp(Math.round(v), 0, 36000)));
    cleanRate();
  }, 500);
  const attCommit = useDebouncedCommit(async () => {
    const v = Number(att);
    if (att.trim() === '' || !Number.isFinite(v)) return;
    await wrap(() => actions.attachRate(clamp(Math.round(v), 0, 100)));
    cleanAtt();
  }, 500);
  useEffect(() => pending.add(() => rateCommit.flush()), [pending, rateCommit]);
  useEffect(() => pending.add(() => attCommit.flush()), [pending, attCommit]);

  const enabled = sim?.devices.filter((d) => d.enabled).length ?? 0;
  const perDevice = sim && enabled > 0 ? sim.messages_per_hour / enabled : 0;

  return (
    <section className="card gen-card" data-testid="generator">
      <div className="card-head">
        <h2>Generator</h2>
        <span className="muted small">
          {sim ? (sim.running ? `running at ${sim.speed}×` : 'paused') : 'no simulation service'}
        </span>
      </div>
      <div className="gen-grid">
        <label className="field">
          <span>messages / hour</span>
          <input
            type="number"
            min={0}
            max={36000}
            step={60}
            data-testid="gen-rate"
            value={rate}
            disabled={!sim}
            onChange={(e) => {
              setRate(e.target.value);
              rateCommit.schedule();
            }}
            onBlur={() => void rateCommit.flush()}
            onKeyDown={(e) => e.key === 'Enter' && void rateCommit.flush()}
          />
        </label>
        <label className="field">
          <span>attachments %</span>
          <input
            type="number"
            min={0}
            max={100}
            data-testid="gen-attach"
            value={att}
            disabled={!sim}
            onChange={(e) => {
              setAtt(e.target.value);
              attCommit.schedule();
            }}
            onBlur={() => void attCommit.flush()}
            onKeyDown={(e) => e.key === 'Enter' && void attCommit.flush()}
          />
        </label>
      </div>
      <div className="gen-devices">
        {sim?.devices.map((d) => (
          <label key={d.name} className="gen-device" title={`${d.url}`}>
            <input
              type="checkbox"
              data-testid={`gen-enabled-${d.name}`}
              checked={d.enabled}
              onChange={(e) => void wrap(() => actions.enable(d.name, e.target.checked))}
            />
            <span className="dot" style={{ background: deviceColor(d.name) }} />
            <span className="gen-dev-name">{d.name}</span>
            <span className="muted small">
              {formatCount(d.generated)} made{d.enabled && perDevice > 0 ? ` · ${formatCount(perDevice)}/h` : ''}
            </span>
          </label>
        ))}
      </div>
      {error && (
        <div className="inline-error" role="alert">
          {error}
        </div>
      )}
      <div className="card-sub activity-head">events</div>
      <div className="activity" data-testid="activity">
        {state.activity.length === 0 && <div className="empty small">Messages, reactions and files arriving on each device show here.</div>}
        {state.activity.slice(0, ACTIVITY_ROWS).map((a) => (
          <div key={a.id} className={`act act-${a.kind}`}>
            <span className="act-time">{formatClock(a.at_ms)}</span>
            <span className="act-icon" style={{ color: deviceColor(a.device) }}>
              {ACT_ICON[a.kind]}
            </span>
            <span className="act-text">{a.text}</span>
            {a.auto && <span className="auto-badge">auto</span>}
          </div>
        ))}
      </div>
    </section>
  );
}
