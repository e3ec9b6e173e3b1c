// Wires the pure reducer to the backends: discovery, SSE streams with reconnect, slow stats refresh,
// and the actions the UI calls.
import { startTransition, useCallback, useEffect, useMemo, useReducer, useRef } from 'react';
import { deviceApi, simApi, fetchMessagePage } from './api';
import { Batcher } from './batcher';
import { LiveStream } from './live';
import { compactLive, initialState, mustFollowQueued, reducer, referenceNow, type Action, type AppState } from './state/app';
import type { PageConfig } from './state/config';
import type { NewAttachment, SimState, StoredAttachment } from './state/types';
import * as check from './state/validate';

/**
 * Each lane of live frames (each device's chat, the network; see batcher.ts) is applied about this
 * often: each batch is one render and one layout of the lists it changed.
 */
const FLUSH_MS = 200;
/**
 * Live frames a lane holds before it is compacted (coalesced, and trimmed to what the lists keep):
 * about 5 s of one device's frames at 100×. A lane waits a period normally, but a hidden tab's
 * timers may run once a minute, and frames keep coming.
 */
const LANE_ACTIONS_MAX = 500;
const STATS_REFRESH_MS = 5_000;

export type MeshActions = ReturnType<typeof useMeshlog>['actions'];

export function useMeshlog(config: PageConfig) {
  const [state, rawDispatch] = useReducer(reducer, undefined, () => initialState(config.simUrl, config.devices ?? undefined));
  const stateRef = useRef<AppState>(state);
  stateRef.current = state;

  // Live frames arrive in bursts (hundreds a second with the generator at 100×): queue and apply
  // them together so React renders a few times a second, not once per packet.
  const batcher = useMemo(
    () =>
      new Batcher<Action>({
        periodMs: FLUSH_MS,
        compact: compactLive,
        laneMax: LANE_ACTIONS_MAX,
        // A transition: React renders the batch in slices that yield to the browser (input,
        // frames) instead of in one task; only the commit is one piece.
        apply: (actions) => startTransition(() => rawDispatch({ type: 'batch', actions })),
      }),
    [],
  );
  const dispatch = useCallback(
    (a: Action, batched = false) => {
      if (!batched) {
        // Queued frames go first where the order matters: a device's list re-read, a new run.
        if (mustFollowQueued(a, stateRef.current)) batcher.flushAll();
        rawDispatch(a);
        return;
      }
      batcher.push(a.type === 'dev/net' ? 'net' : 'device' in a ? `chat:${a.device}` : 'chat', a);
    },
    [batcher],
  );
  useEffect(() => () => batcher.close(), [batcher]);
  // A live frame of the wrong shape is dropped (and said once in the console), not rendered.
  const dispatchChecked = useCallback(
    (make: () => Action, batched = false) => {
      let a: Action;
      try {
        a = make();
      } catch (e) {
        console.warn(`meshlog: ${(e as Error).message}`);
        return;
      }
      dispatch(a, batched);
    },
    [dispatch],
  );

  const now = () => referenceNow(stateRef.current, Date.now());
  const clocks = () => ({ ref: now(), wall: Date.now() });

  // ---- simulation service -------------------------------------------------------------------
  const simUrl = config.simUrl;
  const fetchSim = useCallback(async () => {
    try {
      const s = await simApi.state(simUrl);
      dispatch({ type: 'sim/state', state: s });
    } catch (e) {
      dispatch({ type: 'sim/conn', conn: 'reconnecting', error: (e as Error).message });
    }
  }, [simUrl, dispatch]);

  useEffect(() => {
    const stream = new LiveStream({
      url: `${simUrl}/api/simulation/stream`,
      handlers: { state: (d) => dispatchChecked(() => ({ type: 'sim/state', state: check.simState(d) })) },
      onConn: (conn) => {
        dispatch({
          type: 'sim/conn',
          conn,
          error: conn === 'reconnecting' ? `cannot reach the simulation service at ${simUrl}` : null,
        });
        if (conn === 'live') void fetchSim();
      },
    });
    void fetchSim();
    return () => stream.close();
  }, [simUrl, fetchSim, dispatch]);

  // ---- device servers -----------------------------------------------------------------------
  const reload = useCallback(
    async (name: string, url: string) => {
      dispatch({ type: 'dev/fetchStart', device: name });
      try {
        const page = await fetchMessagePage(url);
        dispatch({ type: 'dev/loaded', device: name, messages: page.messages, next: page.next });
      } catch (e) {
        dispatch({ type: 'dev/error', device: name, error: (e as Error).message });
      }
      deviceApi
        .stats(url)
        .then((stats) => dispatch({ type: 'dev/stats', device: name, stats, at: clocks() }))
        .catch(() => undefined);
      deviceApi
        .members(url)
        .then((members) => dispatch({ type: 'dev/members', device: name, members }))
        .catch(() => undefined);
      const since = stateRef.current.devices[name]?.netNext ?? 0;
      deviceApi
        .netEvents(url, since)
        .then((r) => dispatch({ type: 'dev/net', device: name, events: r.events ?? [], next: r.next }))
        .catch(() => undefined);
    },
    [dispatch],
  );

  const streamsRef = useRef(new Map<string, LiveStream>());

  // A device that came back up (restarted) is reconnected now instead of after the stream's
  // backoff; a new run re-reads every device.
  const sim = state.sim;
  const upKey = JSON.stringify(sim?.devices.map((d) => [d.name, d.up]) ?? []);
  const prevUp = useRef<Record<string, boolean>>({});
  useEffect(() => {
    const now: Record<string, boolean> = Object.fromEntries(JSON.parse(upKey) as [string, boolean][]);
    for (const [name, up] of Object.entries(now)) {
      if (up && prevUp.current[name] === false) streamsRef.current.get(name)?.reconnectNow();
    }
    prevUp.current = now;
  }, [upKey]);
  const runId = sim?.run_id ?? '';
  const prevRun = useRef(runId);
  useEffect(() => {
    if (prevRun.current !== '' && runId !== '' && prevRun.current !== runId) {
      for (const n of stateRef.current.order) void reload(n, stateRef.current.devices[n].url);
    }
    prevRun.current = runId;
  }, [runId, reload]);

  const deviceKey = JSON.stringify(state.order.map((n) => [n, state.devices[n].url]));
  useEffect(() => {
    const list = JSON.parse(deviceKey) as [string, string][];
    const streams = list.map(
      ([name, url]) =>
        [name, new LiveStream({
          url: `${url}/api/stream`,
          handlers: {
            hello: () => {
              dispatch({ type: 'dev/conn', device: name, conn: 'live' });
              dispatch({ type: 'dev/error', device: name, error: null });
              void reload(name, url);
            },
            message: (m) => dispatchChecked(() => ({ type: 'dev/message', device: name, message: check.message(m), now: now() }), true),
            network: (ev) => dispatchChecked(() => ({ type: 'dev/net', device: name, events: [check.netEvent(ev)] }), true),
            stats: (s) => dispatchChecked(() => ({ type: 'dev/stats', device: name, stats: check.stats(s), at: clocks() }), true),
            // Whenever the roster changes (a join, a removal): not batched, a new pane may follow.
            members: (m) => dispatchChecked(() => ({ type: 'dev/members', device: name, members: check.members(m) })),
          },
          onConn: (conn) => {
            // 'live' is reported by `hello`, which is when the data is re-read.
            if (conn !== 'live') dispatch({ type: 'dev/conn', device: name, conn });
          },
        })] as const,
    );
    streamsRef.current = new Map(streams);
    // A slow safety net for stats (the stream pushes them at most once a second anyway).
    const timer = setInterval(() => {
      for (const [name, url] of list) {
        deviceApi
          .stats(url)
          .then((stats) => dispatch({ type: 'dev/stats', device: name, stats, at: clocks() }))
          .catch(() => undefined);
      }
    }, STATS_REFRESH_MS);
    return () => {
      clearInterval(timer);
      streams.forEach(([, s]) => s.close());
      streamsRef.current = new Map();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [deviceKey, reload, dispatch]);

  // ---- actions --------------------------------------------------------------------------------
  const actions = useMemo(() => {
    const dev = (name: string) => stateRef.current.devices[name];
    const simCall = async (p: Promise<SimState>) => {
      const s = await p;
      dispatch({ type: 'sim/state', state: s });
      return s;
    };
    return {
      async send(name: string, text: string, attachment?: NewAttachment | StoredAttachment) {
        const d = dev(name);
        if (!d) return;
        const m = await deviceApi.send(d.url, text, attachment);
        dispatch({ type: 'dev/message', device: name, message: m, now: now() });
      },
      async react(name: string, id: string, emoji: string, remove: boolean) {
        const d = dev(name);
        if (!d) return;
        dispatch({ type: 'dev/reaction', device: name, id, emoji, remove });
        try {
          await deviceApi.react(d.url, id, emoji, remove);
        } catch (e) {
          // Undo the optimistic change.
          dispatch({ type: 'dev/reaction', device: name, id, emoji, remove: !remove });
          throw e;
        }
      },
      async loadOlder(name: string) {
        const d = dev(name);
        if (!d || !d.olderCursor) return;
        const page = await fetchMessagePage(d.url, { before: d.olderCursor });
        dispatch({ type: 'dev/older', device: name, messages: page.messages, next: page.next });
      },
      async setOnline(name: string, online: boolean) {
        const d = dev(name);
        if (!d) return;
        const r = await deviceApi.setOnline(d.url, online);
        dispatch({ type: 'dev/online', device: name, online: r.online });
      },
      start: () => simCall(simApi.start(simUrl)),
      pause: () => simCall(simApi.pause(simUrl)),
      speed: (v: number) => simCall(simApi.speed(simUrl, v)),
      step: (seconds: number) => simCall(simApi.step(simUrl, seconds)),
      rate: (v: number) => simCall(simApi.rate(simUrl, v)),
      attachRate: (v: number) => simCall(simApi.attachRate(simUrl, v)),
      enable: (name: string, on: boolean) => simCall(simApi.enable(simUrl, name, on)),
      network: (body: { loss?: number; latency_ms_min?: number; latency_ms_max?: number }) =>
        simCall(simApi.network(simUrl, body)),
      partition: (on: boolean) => simCall(simApi.partition(simUrl, on)),
      groups: (groups: string[][]) => simCall(simApi.groups(simUrl, groups)),
      cut: (from: string, to: string, cut: boolean, bothWays: boolean) => simCall(simApi.cut(simUrl, from, to, cut, bothWays)),
      crash: (name: string) => simCall(simApi.crash(simUrl, name)),
      restart: (name: string) => simCall(simApi.restart(simUrl, name)),
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [simUrl, dispatch]);

  return { state, actions };
}
