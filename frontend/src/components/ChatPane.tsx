import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { fetchMessagePage, type MessagePage } from '../api';
import type { DeviceState } from '../state/app';
import { deviceColor } from '../state/colors';
import { formatAgo, formatCount } from '../state/format';
import { personOf } from '../state/members';
import { peerState, silentAfterMs, type PeerState } from '../state/peers';
import { toSearchQuery } from '../state/messages';
import { syncMeter } from '../state/topology';
import { shiftDown, shiftUp, windowRange } from '../state/window';
import type { NewAttachment, StoredAttachment } from '../state/types';
import { Composer } from './Composer';
import { MembersPanel } from './MembersPanel';
import { MessageBubble } from './MessageBubble';
import { StatsPanel } from './StatsPanel';
import { errorText } from './util';

type Props = {
  d: DeviceState;
  /** The device's process (or simulated device) runs; false after a crash. */
  up: boolean;
  /** The pane a narrow screen shows (the others wait behind their tabs). */
  active: boolean;
  /** The page's clock: virtual time in simulated mode, the wall clock otherwise. */
  now: number;
  /** The wall clock (ticks with `now`). */
  wallNow: number;
  /** Simulated mode: the virtual network's faults count as expected drops. */
  simulated: boolean;
  /** Devices the demo knows are down (crashed): their chips say so at once. */
  down: readonly string[];
  onSend: (device: string, text: string, attachment?: NewAttachment | StoredAttachment) => Promise<void>;
  onReact: (device: string, id: string, emoji: string, remove: boolean) => Promise<void>;
  onOnline: (device: string, online: boolean) => Promise<void>;
  /** Loads the page of messages older than those held (GET /api/messages?before=). */
  onOlder?: (device: string) => Promise<void>;
};

/** Results of the search box: pages of GET /api/messages?q=, newest page first. */
type SearchState = { typed: string; page: MessagePage | null; loading: boolean; error: string | null };

function ConnBadge({ d }: { d: DeviceState }) {
  if (d.conn === 'live') return null;
  return (
    <span className={`conn-badge ${d.conn}`} data-testid={`conn-${d.name}`}>
      <span className="pulse" /> {d.conn === 'connecting' ? 'connecting…' : 'reconnecting…'}
    </span>
  );
}

const PEER_LABEL: Record<PeerState, string> = { 'in-sync': 'in sync', behind: '', silent: 'not heard', down: 'down', cut: 'cut' };

export const ChatPane = memo(function ChatPane({ d, up, active, now, wallNow, simulated, down, onSend, onReact, onOnline, onOlder }: Props) {
  const [showStats, setShowStats] = useState(false);
  const [showMembers, setShowMembers] = useState(false);
  // First row of the window, or null to follow the newest (see state/window.ts).
  const [topId, setTopId] = useState<string | null>(null);
  const [toggling, setToggling] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState<SearchState>({ typed: '', page: null, loading: false, error: null });
  const loadingOlder = useRef(false);
  // The row in view (and its distance from the top) before the window moved, to keep it still.
  const anchor = useRef<{ id: string; offset: number } | null>(null);
  // Scrolled to the top while older messages were being fetched: move up once they are in.
  const wantUp = useRef(false);
  const listRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  // scrollTop we set ourselves: the scroll event it causes must not unpin the list.
  const autoTop = useRef<number | null>(null);
  // Pinning reads the list's height, which forces a layout: at most once a frame, however many
  // messages, images and resizes asked for it (at 100× that is hundreds a second).
  const pinFrame = useRef<number | null>(null);
  const pin = (el: HTMLDivElement) => {
    if (pinFrame.current !== null) return;
    pinFrame.current = requestAnimationFrame(() => {
      pinFrame.current = null;
      if (!atBottom.current) return;
      el.scrollTop = el.scrollHeight;
      autoTop.current = el.scrollTop;
    });
  };
  useEffect(() => () => {
    if (pinFrame.current !== null) cancelAnimationFrame(pinFrame.current);
  }, []);
  const color = deviceColor(d.name);
  // Whose device this is, from its own roster: the person's name heads the pane, the device's beneath.
  const person = personOf(d.members?.find((m) => m.name === d.name));
  const online = d.online ?? true;
  const s = d.stats;
  const lastExchange = s?.peers?.reduce<number | null>(
    (m, p) => (p.last_exchange_ms != null && (m == null || p.last_exchange_ms > m) ? p.last_exchange_ms : m),
    null,
  );
  const sync = syncMeter(s);

  const range = windowRange(d.messages, topId);
  const visible = d.messages.slice(range.lo, range.hi);
  const newest = d.messages[d.messages.length - 1];
  const hiddenEarlier = range.lo > 0 || d.olderCursor !== null;
  const hiddenLater = range.hi < d.messages.length;

  const keepAnchor = () => {
    const el = listRef.current;
    if (!el) return;
    const rows = el.querySelectorAll<HTMLElement>('[data-testid="message"]');
    for (const r of rows) {
      if (r.offsetTop + r.offsetHeight > el.scrollTop) {
        anchor.current = { id: r.dataset.id ?? '', offset: r.offsetTop - el.scrollTop };
        return;
      }
    }
  };

  const showEarlier = useCallback(() => {
    if (range.lo > 0) {
      keepAnchor();
      setTopId(shiftUp(d.messages, range));
      return;
    }
    if (!onOlder || d.olderCursor === null || loadingOlder.current) return;
    loadingOlder.current = true;
    wantUp.current = true;
    // Hold the window where it is while the older page goes in front of it.
    if (topId === null && visible.length > 0) setTopId(visible[0].id);
    onOlder(d.name)
      .catch((e) => setError(errorText(e)))
      .finally(() => {
        loadingOlder.current = false;
      });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [d.messages, d.olderCursor, d.name, range.lo, range.hi, topId, onOlder]);

  const showLater = () => {
    keepAnchor();
    setTopId(shiftDown(d.messages, range));
  };

  // An older page came in while the list was at its top: show some of it.
  useEffect(() => {
    if (!wantUp.current || range.lo === 0) return;
    wantUp.current = false;
    keepAnchor();
    setTopId(shiftUp(d.messages, range));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [d.messages[0]?.id]);

  // The window moved: put the row that was in view back where it was.
  useLayoutEffect(() => {
    const el = listRef.current;
    const a = anchor.current;
    if (!el || !a) return;
    anchor.current = null;
    const row = el.querySelector<HTMLElement>(`[data-id="${CSS.escape(a.id)}"]`);
    if (row) {
      el.scrollTop = row.offsetTop - a.offset;
      autoTop.current = el.scrollTop;
    }
  }, [visible[0]?.id, visible[visible.length - 1]?.id]);

  useEffect(() => {
    const q = toSearchQuery(search.typed);
    if (!q) return;
    let stale = false;
    const timer = setTimeout(() => {
      setSearch((s) => ({ ...s, loading: true }));
      fetchMessagePage(d.url, { q })
        .then((page) => !stale && setSearch((s) => ({ ...s, page, loading: false, error: null })))
        .catch((e) => !stale && setSearch((s) => ({ ...s, page: null, loading: false, error: errorText(e) })));
    }, 250);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [search.typed, d.url]);

  const moreResults = () => {
    const page = search.page;
    if (!page?.next) return;
    fetchMessagePage(d.url, { q: toSearchQuery(search.typed), before: page.next })
      .then((older) =>
        setSearch((s) => ({ ...s, page: { messages: [...older.messages, ...(s.page?.messages ?? [])], next: older.next } })),
      )
      .catch((e) => setSearch((s) => ({ ...s, error: errorText(e) })));
  };
  const searching = toSearchQuery(search.typed) !== '';

  useLayoutEffect(() => {
    const el = listRef.current;
    if (el && atBottom.current) pin(el);
  }, [newest?.id, newest?.attachment?.complete, d.messages.length]);

  // Images grow their bubble when they load: stay pinned to the bottom if we were there...
  useEffect(() => {
    const el = listRef.current;
    if (!el) return;
    const onLoad = () => {
      if (atBottom.current) pin(el);
    };
    el.addEventListener('load', onLoad, true);
    // ...and so does the header growing (peers, stats panel) or the window resizing.
    const ro = typeof ResizeObserver !== 'undefined' ? new ResizeObserver(onLoad) : null;
    ro?.observe(el);
    return () => {
      el.removeEventListener('load', onLoad, true);
      ro?.disconnect();
    };
  }, []);

  const react = useCallback(
    (id: string, emoji: string, remove: boolean) => {
      onReact(d.name, id, emoji, remove).catch((e) => setError(errorText(e)));
    },
    [onReact, d.name],
  );

  const toggle = async () => {
    setToggling(true);
    setError(null);
    try {
      await onOnline(d.name, !online);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setToggling(false);
    }
  };

  return (
    <section
      className={`pane ${online ? '' : 'is-offline'} ${up ? '' : 'is-down'} ${active ? 'active-tab' : ''}`}
      data-testid={`pane-${d.name}`}
      data-up={String(up)}
      style={{ ['--dev' as string]: color }}
    >
      <header className="pane-head">
        <div className="pane-title">
          <div className="avatar" style={{ background: color }}>
            {d.name.slice(0, 1).toUpperCase()}
          </div>
          <div className="pane-name">
            <div className="name-line">
              <b data-testid={`pane-title-${d.name}`}>{person ?? d.name}</b> <ConnBadge d={d} />
            </div>
            <div className="muted small" title={d.url}>
              {person && <span data-testid={`pane-device-${d.name}`}>{d.name} · </span>}
              {d.url.replace(/^https?:\/\//, '')}
            </div>
          </div>
          <button
            type="button"
            className={`switch ${online ? 'on' : 'off'}`}
            data-testid={`online-toggle-${d.name}`}
            data-online={online ? 'true' : 'false'}
            aria-pressed={online}
            disabled={toggling || d.stats === null && !d.loaded}
            onClick={() => void toggle()}
            title={online ? 'Online: syncing with peers. Click to go offline.' : 'Offline: not syncing. Click to go online.'}
          >
            <span className="switch-knob" />
            <span className="switch-label">{online ? 'online' : 'offline'}</span>
          </button>
        </div>
        <div className="sync-line">
          <span title="events held in this device's store">
            <b>{s ? formatCount(s.events) : '–'}</b> events
          </span>
          <span
            className="sync-meter"
            data-testid={`sync-${d.name}`}
            data-exact={sync ? String(sync.exact) : ''}
            title={
              sync?.exact
                ? 'every peer reports it holds the same events: in sync'
                : 'an estimate: how much of what peers last advertised this device holds'
            }
          >
            <span className="bar small">
              <span className={`bar-fill ${sync?.exact ? 'full' : ''}`} style={{ width: `${sync?.percent ?? 0}%` }} />
            </span>
            <b>{sync == null ? '–' : sync.exact ? '100%' : `≈${Math.floor(sync.percent)}%`}</b> {sync && !sync.exact ? 'synced (est.)' : 'synced'}
          </span>
          <span title="last exchange with a peer">⇄ {formatAgo(lastExchange ?? null, now)}</span>
          <button type="button" className="link-btn" onClick={() => setShowStats((v) => !v)} aria-expanded={showStats}>
            {showStats ? 'hide stats ▴' : 'stats ▾'}
          </button>
          <button
            type="button"
            className="link-btn"
            data-testid={`members-toggle-${d.name}`}
            onClick={() => setShowMembers((v) => !v)}
            aria-expanded={showMembers}
          >
            {showMembers ? 'hide members ▴' : 'members ▾'}
          </button>
        </div>
        {s && s.peers && s.peers.length > 0 && (
          <div className="peers">
            {s.peers.map((p) => {
              const heard = d.peersHeard[p.name];
              const state = peerState(p, heard, s.peers.length, down.includes(p.name) ? false : undefined, { ref: now, wall: wallNow });
              const silence = heard ? formatAgo(heard.at.ref, now) : 'never';
              const title =
                state === 'silent'
                  ? `${d.name} has not heard from ${p.name} for over ${Math.round(silentAfterMs(s.peers.length) / 1000)} s (last ${silence}): unreachable, or down`
                  : state === 'down'
                    ? `${p.name}'s process is down`
                    : state === 'cut'
                      ? `datagrams to and from ${p.name} are dropped (a cut)`
                      : `${p.name} advertises ${p.events_advertised ?? '?'} events`;
              return (
                <span key={p.name} className={`peer ${state}`} data-testid={`peer-${d.name}-${p.name}`} data-state={state} title={title}>
                  <span className="peer-dot" /> {p.name}{' '}
                  {state === 'behind' ? `· ${p.events_advertised ?? '?'} advertised` : state === 'silent' ? `not heard ${silence}` : PEER_LABEL[state]}
                </span>
              );
            })}
          </div>
        )}
        {showStats && s && <StatsPanel stats={s} simulated={simulated} />}
        {showStats && !s && <div className="muted small pad">no stats yet</div>}
        {showMembers && <MembersPanel name={d.name} url={d.url} keyEpoch={s?.key_epoch} live={d.members} />}
      </header>

      {!up && (
        <div className="down-banner" data-testid={`down-${d.name}`} role="status">
          {d.name} is down (crashed): its process is not running. Restart it from the topology card; it comes back on the same data.
        </div>
      )}
      {!online && <div className="offline-banner">offline — messages stay here until {d.name} is back online</div>}
      {(error || d.error) && (
        <div className="pane-error" role="alert">
          {error ?? d.error}
          {error && (
            <button type="button" className="icon-btn tiny" onClick={() => setError(null)} aria-label="dismiss">
              ✕
            </button>
          )}
        </div>
      )}

      <div className="search-line">
        <input
          type="search"
          className="search-box"
          placeholder="search messages and file names"
          aria-label={`search ${d.name}'s messages`}
          data-testid={`search-${d.name}`}
          value={search.typed}
          onChange={(e) => setSearch({ typed: e.target.value, page: null, loading: false, error: null })}
        />
        {searching && (
          <span className="muted small">
            {search.loading ? 'searching…' : search.error ? search.error : `${formatCount(search.page?.messages.length ?? 0)}${search.page?.next ? '+' : ''} found`}
          </span>
        )}
      </div>

      {searching ? (
        <div className="messages" data-testid={`results-${d.name}`}>
          {search.page?.next && (
            <button type="button" className="earlier-btn" onClick={moreResults}>
              older results
            </button>
          )}
          {search.page?.messages.map((m) => (
            <MessageBubble key={m.id} msg={m} device={d.name} deviceUrl={d.url} onReact={react} />
          ))}
        </div>
      ) : (
      <div
        className="messages"
        ref={listRef}
        onScroll={(e) => {
          const el = e.currentTarget;
          if (autoTop.current !== null && Math.abs(el.scrollTop - autoTop.current) < 2) return;
          autoTop.current = null;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
          // Reading older rows: hold the window still instead of following the newest.
          if (!atBottom.current && topId === null && visible.length > 0) setTopId(visible[0].id);
          // Scrolled to an end: move the window (older rows come from the server when needed).
          if (el.scrollTop < 40 && hiddenEarlier) showEarlier();
          else if (atBottom.current && hiddenLater) showLater();
          else if (atBottom.current && topId !== null && !hiddenLater) setTopId(null);
        }}
      >
        {hiddenEarlier && (
          <button type="button" className="earlier-btn" onClick={showEarlier}>
            show earlier
            {range.lo > 0 ? ` (${formatCount(range.lo)} more)` : ''}
          </button>
        )}
        {!d.loaded && d.messages.length === 0 && <div className="empty">loading…</div>}
        {d.loaded && d.messages.length === 0 && <div className="empty">No messages yet. Say hello 👋</div>}
        {visible.map((m) => (
          <MessageBubble key={m.id} msg={m} device={d.name} deviceUrl={d.url} onReact={react} />
        ))}
        {hiddenLater && (
          <button type="button" className="earlier-btn" data-testid={`jump-newest-${d.name}`} onClick={() => {
              atBottom.current = true;
              setTopId(null);
            }}>
            newer messages ({formatCount(d.messages.length - range.hi)}) — jump to newest
          </button>
        )}
      </div>
      )}

      <Composer device={d.name} deviceUrl={d.url} disabled={!d.loaded || !up} onSend={(t, a) => onSend(d.name, t, a)} />
    </section>
  );
});
