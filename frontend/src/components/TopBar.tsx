import { useState } from 'react';
import type { AppState } from '../state/app';
import { formatSpeed, formatVirtualTime, sliderToSpeed, speedToSlider } from '../state/format';
import type { SimState } from '../state/types';
import type { MeshActions } from '../useMeshlog';
import { errorText, useDebouncedCommit, useDraft, type PendingEdits } from './util';

const PRESETS = [0.1, 1, 10, 100];
const STEPS: [number, string][] = [
  [10, '10 s'],
  [60, '1 min'],
  [600, '10 min'],
  [3600, '1 h'],
];

type Props = { state: AppState; actions: MeshActions; pending: PendingEdits; onError: (e: string | null) => void };

export function TopBar({ state, actions, pending, onError }: Props) {
  const sim = state.sim;
  const [busy, setBusy] = useState(false);
  const [stepS, setStepS] = useState(60);
  const [speed, setSpeed, clean] = useDraft(sim?.speed ?? 1);
  const commitSpeed = useDebouncedCommit(async () => {
    await run(() => actions.speed(speed));
    clean();
  }, 250);

  async function run(f: () => Promise<SimState>) {
    setBusy(true);
    try {
      await f();
      onError(null);
    } catch (e) {
      onError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  const start = () =>
    run(async () => {
      await commitSpeed.flush();
      await pending.flushAll();
      return actions.start();
    });

  return (
    <header className="topbar">
      <div className="brand">
        <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
          <path d="M8 16L24 8L24 24Z" stroke="#94a3b8" strokeWidth="2" fill="none" />
          <circle cx="8" cy="16" r="5" fill="#10b981" />
          <circle cx="24" cy="8" r="5" fill="#6366f1" />
          <circle cx="24" cy="24" r="5" fill="#f59e0b" />
        </svg>
        <h1>meshlog</h1>
        {sim && (
          <span className={`mode-badge ${sim.mode}`} data-testid="mode-badge" title={sim.mode === 'sim' ? 'simulated network on virtual time' : 'real UDP between device servers'}>
            {sim.mode === 'sim' ? 'simulated network' : 'real network'}
          </span>
        )}
        {state.simConn !== 'live' && (
          <span className="conn-badge reconnecting" data-testid="sim-conn" title={state.simError ?? `simulation service at ${state.simUrl}`}>
            <span className="pulse" /> {state.simConn === 'connecting' ? 'connecting…' : 'reconnecting…'}
          </span>
        )}
      </div>

      <div className="clock">
        <span className={`run-dot ${sim?.running ? 'running' : ''}`} />
        <span className="clock-label" data-testid="run-state">{sim?.running ? 'running' : 'paused'}</span>
        <span className="virtual-time" data-testid="virtual-time" title="virtual time">
          {sim ? formatVirtualTime(sim.virtual_time_ms) : '––:––:––'}
        </span>
      </div>

      <div className="sim-controls">
        <div className="seg">
          <button type="button" className={`seg-btn play ${sim?.running ? 'active' : ''}`} data-testid="gen-start" disabled={!sim || busy} onClick={() => void start()} title="Start the generator and the clock">
            ▶ start
          </button>
          <button type="button" className={`seg-btn ${sim && !sim.running ? 'active' : ''}`} data-testid="gen-pause" disabled={!sim || busy} onClick={() => void run(actions.pause)} title="Pause">
            ❚❚ pause
          </button>
        </div>
        <div className="speed">
          <input
            type="range"
            min={0}
            max={1000}
            data-testid="gen-speed"
            value={speedToSlider(speed)}
            disabled={!sim}
            aria-label="speed"
            onChange={(e) => {
              setSpeed(sliderToSpeed(Number(e.target.value)));
              commitSpeed.schedule();
            }}
          />
          <span className="speed-value" data-testid="speed-value">
            {formatSpeed(speed)}
          </span>
          <div className="presets">
            {PRESETS.map((p) => (
              <button
                key={p}
                type="button"
                className={`preset ${Math.abs((sim?.speed ?? 0) - p) < 1e-9 ? 'active' : ''}`}
                data-testid={`speed-${p}`}
                disabled={!sim}
                onClick={() => {
                  setSpeed(p);
                  void run(() => actions.speed(p)).then(clean);
                }}
              >
                {formatSpeed(p)}
              </button>
            ))}
          </div>
        </div>
        <div className="step">
          <select value={stepS} onChange={(e) => setStepS(Number(e.target.value))} aria-label="step size" data-testid="gen-step-size">
            {STEPS.map(([s, l]) => (
              <option key={s} value={s}>
                {l}
              </option>
            ))}
          </select>
          <button
            type="button"
            className="btn"
            data-testid="gen-step"
            disabled={!sim || sim.running || busy}
            onClick={() => void run(() => actions.step(stepS))}
            title={sim?.running ? 'Pause first: stepping advances virtual time while paused' : 'Advance virtual time'}
          >
            step ›
          </button>
        </div>
      </div>
    </header>
  );
}
