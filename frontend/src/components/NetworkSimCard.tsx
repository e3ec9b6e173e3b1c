import { useState } from 'react';
import type { SimNetwork } from '../state/types';
import type { MeshActions } from '../useMeshlog';
import { errorText, useDebouncedCommit, useDraft } from './util';

const LAT_MAX = 2000;

export function NetworkSimCard({ net, actions }: { net: SimNetwork; actions: MeshActions }) {
  const [error, setError] = useState<string | null>(null);
  const [loss, setLoss, cleanLoss] = useDraft(net.loss);
  const [lmin, setLmin, cleanMin] = useDraft(net.latency_ms_min);
  const [lmax, setLmax, cleanMax] = useDraft(net.latency_ms_max);
  const wrap = async (f: () => Promise<unknown>) => {
    try {
      await f();
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  };
  const commit = useDebouncedCommit(async () => {
    await wrap(() => actions.network({ loss, latency_ms_min: lmin, latency_ms_max: Math.max(lmin, lmax) }));
    cleanLoss();
    cleanMin();
    cleanMax();
  }, 300);

  return (
    <section className="card net-card" data-testid="network-controls">
      <div className="card-head">
        <h2>Simulated network</h2>
        <button
          type="button"
          className={`switch small ${net.partitioned ? 'danger' : 'on'}`}
          data-testid="net-partition"
          aria-pressed={net.partitioned}
          onClick={() => void wrap(() => actions.partition(!net.partitioned))}
          title="Cut the devices apart"
        >
          <span className="switch-knob" />
          <span className="switch-label">{net.partitioned ? 'partitioned' : 'connected'}</span>
        </button>
      </div>
      <label className="slider-field">
        <span>loss</span>
        <input
          type="range"
          min={0}
          max={100}
          step={1}
          data-testid="net-loss"
          value={Math.round(loss * 100)}
          onChange={(e) => {
            setLoss(Number(e.target.value) / 100);
            commit.schedule();
          }}
        />
        <b>{Math.round(loss * 100)}%</b>
      </label>
      <label className="slider-field">
        <span>latency min</span>
        <input
          type="range"
          min={0}
          max={LAT_MAX}
          step={5}
          data-testid="net-latency-min"
          value={lmin}
          onChange={(e) => {
            const v = Number(e.target.value);
            setLmin(v);
            if (v > lmax) setLmax(v);
            commit.schedule();
          }}
        />
        <b>{lmin} ms</b>
      </label>
      <label className="slider-field">
        <span>latency max</span>
        <input
          type="range"
          min={0}
          max={LAT_MAX}
          step={5}
          data-testid="net-latency-max"
          value={lmax}
          onChange={(e) => {
            const v = Number(e.target.value);
            setLmax(v);
            if (v < lmin) setLmin(v);
            commit.schedule();
          }}
        />
        <b>{lmax} ms</b>
      </label>
      {error && (
        <div className="inline-error" role="alert">
          {error}
        </div>
      )}
    </section>
  );
}
