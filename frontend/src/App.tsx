import { useCallback, useMemo, useRef, useState } from 'react';
import { ChatPane } from './components/ChatPane';
import { GeneratorCard } from './components/GeneratorCard';
import { NetworkLog } from './components/NetworkLog';
import { NetworkSimCard } from './components/NetworkSimCard';
import { PaneEdges, useOutOfView } from './components/PaneOverflow';
import { TopBar } from './components/TopBar';
import { TopologyCard } from './components/TopologyCard';
import { deviceColor } from './state/colors';
import { PendingEdits, useTick } from './components/util';
import { paneOrder, referenceNow } from './state/app';
import type { PageConfig } from './state/config';
import type { NewAttachment, StoredAttachment } from './state/types';
import { useMeshlog } from './useMeshlog';

export function App({ config }: { config: PageConfig }) {
  const { state, actions } = useMeshlog(config);
  const [topError, setTopError] = useState<string | null>(null);
  const pending = useMemo(() => new PendingEdits(), []);
  const wall = useTick(1000);
  const now = referenceNow(state, wall);
  const virtual = state.sim?.mode === 'sim';

  const onSend = useCallback((d: string, t: string, a?: NewAttachment | StoredAttachment) => actions.send(d, t, a), [actions]);
  const onReact = useCallback((d: string, id: string, e: string, r: boolean) => actions.react(d, id, e, r), [actions]);
  const onOnline = useCallback((d: string, o: boolean) => actions.setOnline(d, o), [actions]);
  const onOlder = useCallback((d: string) => actions.loadOlder(d), [actions]);

  const noDevices = state.order.length === 0;
  const sim = state.sim;
  // A device gets its pane once it is in the community (a joining device, when admitted).
  const panes = useMemo(() => paneOrder(state), [state]);
  // One array while the set is the same, so panes (memo) re-render only when it changes.
  const downKey = (sim?.devices ?? []).filter((d) => !d.up).map((d) => d.name).join(',');
  const down = useMemo(() => (downKey === '' ? [] : downKey.split(',')), [downKey]);
  // Which device pane a narrow screen shows (wide ones show them all side by side).
  const [tab, setTab] = useState<string | null>(null);
  const active = tab && panes.includes(tab) ? tab : panes[0];
  // Panes a screen too narrow for all of them cuts off: marked at the strip's edges.
  const strip = useRef<HTMLDivElement>(null);
  const out = useOutOfView(strip, panes);

  return (
    <div className="app">
      <TopBar state={state} actions={actions} pending={pending} onError={setTopError} />
      {topError && (
        <div className="top-error" role="alert">
          {topError}
          <button type="button" className="icon-btn tiny" onClick={() => setTopError(null)} aria-label="dismiss">
            ✕
          </button>
        </div>
      )}
      {sim && !sim.running && (
        <div className="hint paused-hint" data-testid="paused-hint" role="status">
          <b>Paused.</b>{' '}
          {sim.mode === 'sim'
            ? 'Virtual time stands still: nothing is delivered, generated or synced until you press ▶ start (or step).'
            : 'The message generator is paused: press ▶ start to have the devices post on their own. What you send is delivered anyway.'}
        </div>
      )}
      {sim && !sim.persistent && (
        <div className="hint" data-testid="not-persistent">
          This simulated world lives in memory: it started empty, and a restart of the demo starts it empty again (only its generator settings are kept).
        </div>
      )}
      <main className="layout">
        <div className="main-col">
        {sim && <TopologyCard state={state} sim={sim} actions={actions} />}
        {panes.length > 1 && (
          <nav className="tabs" role="tablist" aria-label="devices">
            {panes.map((n) => {
              const up = sim?.devices.find((d) => d.name === n)?.up ?? true;
              return (
                <button
                  key={n}
                  type="button"
                  role="tab"
                  aria-selected={n === active}
                  className={`tab ${n === active ? 'active' : ''} ${up ? '' : 'down'}`}
                  data-testid={`tab-${n}`}
                  style={{ ['--dev' as string]: deviceColor(n) }}
                  onClick={() => {
                    setTab(n);
                    document.querySelector(`[data-testid="pane-${n}"]`)?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
                  }}
                >
                  <span className="dot" style={{ background: deviceColor(n) }} /> {n}
                  {!up && <span className="tab-down"> down</span>}
                </button>
              );
            })}
          </nav>
        )}
        <div className="panes-wrap">
        <div className="panes" ref={strip} data-testid="panes" style={{ ['--panes' as string]: Math.max(1, panes.length) }}>
          {noDevices && (
            <div className="waiting card">
              <div className="spinner big" />
              <h2>Looking for devices…</h2>
              <p>
                Asking the simulation service at <code>{state.simUrl}</code> which devices run.
              </p>
              {state.simError && <p className="muted">{state.simError} — retrying.</p>}
              <p className="muted small">
                Point the page elsewhere with <code>?sim=http://host:3005</code>, or list device servers directly with{' '}
                <code>?devices=alice=http://127.0.0.1:3001,bob=http://127.0.0.1:3002</code>.
              </p>
            </div>
          )}
          {panes.map((n) => (
            <ChatPane
              key={n}
              d={state.devices[n]}
              up={sim?.devices.find((x) => x.name === n)?.up ?? true}
              active={n === active}
              now={now}
              wallNow={wall}
              simulated={virtual}
              down={down}
              onSend={onSend}
              onReact={onReact}
              onOnline={onOnline}
              onOlder={onOlder}
            />
          ))}
        </div>
        <PaneEdges out={out} />
        </div>
        </div>
        <aside className="side">
          {sim?.mode === 'sim' && sim.network && sim.network.loss !== null && <NetworkSimCard net={sim.network} actions={actions} />}
          <NetworkLog log={state.netlog} devices={state.order} now={now} virtual={virtual} />
          <GeneratorCard state={state} actions={actions} pending={pending} />
        </aside>
      </main>
    </div>
  );
}
