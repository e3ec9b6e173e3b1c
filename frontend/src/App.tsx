import { useCallback, useMemo, useState } from 'react';
import { ChatPane } from './components/ChatPane';
import { GeneratorCard } from './components/GeneratorCard';
import { NetworkLog } from './components/NetworkLog';
import { NetworkSimCard } from './components/NetworkSimCard';
import { TopBar } from './components/TopBar';
import { PendingEdits, useTick } from './components/util';
import { referenceNow } from './state/app';
import type { PageConfig } from './state/config';
import type { NewAttachment } from './state/types';
import { useMeshlog } from './useMeshlog';

export function App({ config }: { config: PageConfig }) {
  const { state, actions } = useMeshlog(config);
  const [topError, setTopError] = useState<string | null>(null);
  const pending = useMemo(() => new PendingEdits(), []);
  const wall = useTick(1000);
  const now = referenceNow(state, wall);
  const virtual = state.sim?.mode === 'sim';

  const onSend = useCallback((d: string, t: string, a?: NewAttachment) => actions.send(d, t, a), [actions]);
  const onReact = useCallback((d: string, id: string, e: string, r: boolean) => actions.react(d, id, e, r), [actions]);
  const onOnline = useCallback((d: string, o: boolean) => actions.setOnline(d, o), [actions]);
  const onOlder = useCallback((d: string) => actions.loadOlder(d), [actions]);

  const noDevices = state.order.length === 0;

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
      <main className="layout">
        <div className="panes" style={{ ['--panes' as string]: Math.max(1, state.order.length) }}>
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
          {state.order.map((n) => (
            <ChatPane key={n} d={state.devices[n]} now={now} onSend={onSend} onReact={onReact} onOnline={onOnline} onOlder={onOlder} />
          ))}
        </div>
        <aside className="side">
          {state.sim?.mode === 'sim' && state.sim.network && <NetworkSimCard net={state.sim.network} actions={actions} />}
          <NetworkLog log={state.netlog} devices={state.order} now={now} virtual={virtual} />
          <GeneratorCard state={state} actions={actions} pending={pending} />
        </aside>
      </main>
    </div>
  );
}
