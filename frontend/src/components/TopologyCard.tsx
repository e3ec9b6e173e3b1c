// The topology card: the view, and the controls to cut and heal links, partition into groups,
// take a device offline, and crash and restart it.
import { useState } from 'react';
import type { AppState } from '../state/app';
import { choiceFromSim, cutCalls, cutChoice, groupsFromChoice, type CutChoice } from '../state/topology';
import type { SimState } from '../state/types';
import type { MeshActions } from '../useMeshlog';
import { TopologyView } from './TopologyView';
import { errorText } from './util';

type Props = { state: AppState; sim: SimState; actions: MeshActions };

export function TopologyCard({ state, sim, actions }: Props) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [choice, setChoice] = useState<Record<string, number> | null>(null);
  const names = sim.devices.map((d) => d.name);
  const groups = choice ?? choiceFromSim(sim);
  const partitioned = (sim.network?.groups.length ?? 0) > 1;

  const run = async (what: string, f: () => Promise<unknown>) => {
    setBusy(what);
    try {
      await f();
      setError(null);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
    }
  };
  const setCut = (a: string, b: string, want: CutChoice) =>
    run(`cut ${a} ${b}`, async () => {
      for (const c of cutCalls(sim, a, b, want)) await actions.cut(c.from, c.to, c.cut, c.both_ways);
    });

  return (
    <section className="card topo-card" data-testid="topology-card">
      <div className="card-head">
        <h2>Topology</h2>
        <span className="muted small">
          {names.length} devices · {sim.links.length} links{partitioned ? ` · ${sim.network?.groups.length} groups` : ''}
        </span>
      </div>
      <div className="topo-body">
      <div className="topo-pic">
      <TopologyView state={state} sim={sim} />
      <div className="topo-legend small muted">
        <span><i className="lg lg-up" /> link</span>
        <span><i className="lg lg-found" /> found on the LAN or through a member</span>
        <span><i className="lg lg-unmet" /> not met yet</span>
        <span><i className="lg lg-relayed" /> relayed through the device named on it (NATs kept the ends apart)</span>
        <span><i className="lg lg-one" /> cut one way (✕→ marks the stopped side)</span>
        <span><i className="lg lg-both" /> cut both ways</span>
        <span><i className="lg lg-part" /> other group</span>
      </div>
      </div>
      {!sim.topology_api ? (
        <div className="topo-controls">
          <span className="muted small">This simulation service has no cut, group or crash controls; only a split of the first device from the rest.</span>
          {sim.network && (
            <button type="button" className="btn light" data-testid="net-partition" onClick={() => void run('partition', () => actions.partition(!sim.network?.partitioned))}>
              {sim.network.partitioned ? 'heal' : 'partition'}
            </button>
          )}
        </div>
      ) : (
        <div className="topo-controls">
          <div className="ctl-block">
            <div className="card-sub">devices</div>
            {sim.devices.map((d) => (
              <div key={d.name} className="ctl-row" data-testid={`device-ctl-${d.name}`}>
                <b className="ctl-name">{d.name}</b>
                <span className={`state-chip ${d.up ? 'up' : 'down'}`} data-testid={`device-up-${d.name}`} data-up={String(d.up)}>
                  {d.up ? 'up' : 'down'}
                  {d.restarts > 0 ? ` · ${d.restarts} restart${d.restarts === 1 ? '' : 's'}` : ''}
                </span>
                {d.up ? (
                  <button type="button" className="btn light danger-text" data-testid={`crash-${d.name}`} disabled={busy !== null} onClick={() => void run('crash', () => actions.crash(d.name))} title={sim.mode === 'real' ? 'SIGKILL its process' : 'apply the crash fault'}>
                    crash
                  </button>
                ) : (
                  <button type="button" className="btn light" data-testid={`restart-${d.name}`} disabled={busy !== null} onClick={() => void run('restart', () => actions.restart(d.name))} title="start it again on the same data">
                    restart
                  </button>
                )}
                <label className="group-pick">
                  group
                  <select
                    data-testid={`group-${d.name}`}
                    value={groups[d.name] ?? 0}
                    onChange={(e) => setChoice({ ...groups, [d.name]: Number(e.target.value) })}
                  >
                    {names.map((_, i) => (
                      <option key={i} value={i}>
                        {i + 1}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
            ))}
            <div className="ctl-row">
              <button
                type="button"
                className="btn light"
                data-testid="partition-apply"
                disabled={busy !== null || choice === null}
                onClick={() => void run('groups', () => actions.groups(groupsFromChoice(names, groups))).then(() => setChoice(null))}
              >
                apply groups
              </button>
              <button
                type="button"
                className="btn light"
                data-testid="partition-heal"
                disabled={busy !== null || !partitioned}
                onClick={() => void run('heal', () => actions.groups([])).then(() => setChoice(null))}
              >
                heal partition
              </button>
            </div>
          </div>
          <div className="ctl-block">
            <div className="card-sub">links</div>
            {sim.links.map(([a, b]) => (
              <label key={`${a}|${b}`} className="ctl-row">
                <span className="ctl-name">
                  {a} – {b}
                </span>
                <select
                  data-testid={`cut-${a}-${b}`}
                  value={cutChoice(sim, a, b)}
                  disabled={busy !== null}
                  onChange={(e) => void setCut(a, b, e.target.value as CutChoice)}
                >
                  <option value="up">connected</option>
                  <option value="cut-ab">
                    {a} ✕→ {b}
                  </option>
                  <option value="cut-ba">
                    {b} ✕→ {a}
                  </option>
                  <option value="cut-both">cut both ways</option>
                </select>
              </label>
            ))}
          </div>
        </div>
      )}
      </div>
      {error && (
        <div className="inline-error" role="alert">
          {error}
        </div>
      )}
    </section>
  );
}
