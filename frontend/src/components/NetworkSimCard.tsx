import { useState } from 'react';
import { LATENCY_MS_MAX, latencyToSlider, parseLatency, sliderToLatency } from '../state/format';
import type { SimNetwork } from '../state/types';
import type { MeshActions } from '../useMeshlog';
import { errorText, useDebouncedCommit, useDraft } from './util';

/** A latency in ms: a number box for exact values and a log-scale slider across 0..60 000 ms. */
function LatencyField({ label, id, value, onChange }: { label: string; id: string; value: number; onChange: (v: number) => void }) {
  const [typed, setTyped] = useState<string | null>(null);
  return (
    <label className="slider-field latency-field">
      <span>{label}</span>
      <input
        type="range"
        min={0}
        max={1000}
        step={1}
        data-testid={`net-latency-${id}`}
        aria-label={`${label} (log scale)`}
        value={latencyToSlider(value)}
        onChange={(e) => onChange(sliderToLatency(Number(e.target.value)))}
      />
      <span className="num-unit">
        <input
          type="number"
          min={0}
          max={LATENCY_MS_MAX}
          step={1}
          inputMode="numeric"
          data-testid={`net-latency-${id}-ms`}
          aria-label={`${label} in ms`}
          value={typed ?? String(value)}
          onChange={(e) => {
            setTyped(e.target.value);
            const v = parseLatency(e.target.value);
            if (v !== null) onChange(v);
          }}
          onBlur={() => setTyped(null)}
        />
        ms
      </span>
    </label>
  );
}

export function NetworkSimCard({ net, actions }: { net: SimNetwork; actions: MeshActions }) {
  const [error, setError] = useState<string | null>(null);
  const [loss, setLoss, cleanLoss] = useDraft(net.loss ?? 0);
  const [lmin, setLmin, cleanMin] = useDraft(net.latency_ms_min ?? 0);
  const [lmax, setLmax, cleanMax] = useDraft(net.latency_ms_max ?? 0);
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
        <span className="muted small">every link</span>
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
      <LatencyField
        label="latency min"
        id="min"
        value={lmin}
        onChange={(v) => {
          setLmin(v);
          if (v > lmax) setLmax(v);
          commit.schedule();
        }}
      />
      <LatencyField
        label="latency max"
        id="max"
        value={lmax}
        onChange={(v) => {
          setLmax(v);
          if (v < lmin) setLmin(v);
          commit.schedule();
        }}
      />
      {error && (
        <div className="inline-error" role="alert">
          {error}
        </div>
      )}
    </section>
  );
}
