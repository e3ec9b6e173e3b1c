import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { fetchMessagePage, type MessagePage } from '../api';
import type { DeviceState } from '../state/app';
import { deviceColor } from '../state/colors';
import { formatAgo, formatCount } from '../state/format';
import { toSearchQuery } from '../state/messages';
import type { NewAttachment } from '../state/types';
import { Composer } from './Composer';
import { MessageBubble } from './MessageBubble';
import { StatsPanel } from './StatsPanel';
import { errorText } from './util';

const PAGE = 150;

type Props = {
  d: DeviceState;
  now: number;
  onSend: (device: string, text: string, attachment?: NewAttachment) => Promise<void>;
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

export function ChatPane({ d, now, onSend, onReact, onOnline, onOlder }: Props) {
  const [showStats, setShowStats] = useState(false);
  const [shown, setShown] = useState(PAGE);
  const [toggling, setToggling] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState<SearchState>({ typed: '', page: null, loading: false, error: null });
  const loadingOlder = useRef(false);
  // Height of the list before older messages were put on top, to keep what was in view still.
  const heightBeforeOlder = useRef<number | null>(null);
  const listRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  // scrollTop we set ourselves: the scroll event it causes must not unpin the list.
  const autoTop = useRef<number | null>(null);
  const pin = (el: HTMLDivElement) => {
    el.scrollTop = el.scrollHeight;
    autoTop.current = el.scrollTop;
  };
  const color = deviceColor(d.name);
  const online = d.online ?? true;
  const s = d.stats;
  const lastExchange = s?.peers?.reduce<number | null>(
    (m, p) => (p.last_exchange_ms != null && (m == null || p.last_exchange_ms > m) ? p.last_exchange_ms : m),
    null,
  );
  const syncPct = s ? Math.max(0, Math.min(100, s.sync_percent)) : null;

  const visible = d.messages.length > shown ? d.messages.slice(d.messages.length - shown) : d.messages;
  const newest = d.messages[d.messages.length - 1];
  const hiddenEarlier = d.messages.length > shown || d.olderCursor !== null;

  const showEarlier = useCallback(() => {
    const el = listRef.current;
    if (el) heightBeforeOlder.current = el.scrollHeight;
    if (d.messages.length > shown) {
      setShown((n) => n + PAGE);
      return;
    }
    if (!onOlder || d.olderCursor === null || loadingOlder.current) return;
    loadingOlder.current = true;
    setShown((n) => n + PAGE);
    onOlder(d.name)
      .catch((e) => setError(errorText(e)))
      .finally(() => {
        loadingOlder.current = false;
      });
  }, [d.messages.length, d.olderCursor, d.name, shown, onOlder]);

  // Older messages went in above: keep the ones in view where they were.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el || heightBeforeOlder.current === null) return;
    el.scrollTop += el.scrollHeight - heightBeforeOlder.current;
    heightBeforeOlder.current = null;
  }, [visible[0]?.id]);

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
    <section className={`pane ${online ? '' : 'is-offline'}`} data-testid={`pane-${d.name}`} style={{ ['--dev' as string]: color }}>
      <header className="pane-head">
        <div className="pane-title">
          <div className="avatar" style={{ background: color }}>
            {d.name.slice(0, 1).toUpperCase()}
          </div>
          <div className="pane-name">
            <div className="name-line">
              <b>{d.name}</b> <ConnBadge d={d} />
            </div>
            <div className="muted small" title={d.url}>
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
          <span className="sync-meter" title="how much of what peers advertise this device holds">
            <span className="bar small">
              <span className={`bar-fill ${syncPct === 100 ? 'full' : ''}`} style={{ width: `${syncPct ?? 0}%` }} />
            </span>
            <b>{syncPct == null ? '–' : `${Math.floor(syncPct)}%`}</b> synced
          </span>
          <span title="last exchange with a peer">⇄ {formatAgo(lastExchange ?? null, now)}</span>
          <button type="button" className="link-btn" onClick={() => setShowStats((v) => !v)} aria-expanded={showStats}>
            {showStats ? 'hide stats ▴' : 'stats ▾'}
          </button>
        </div>
        {s && s.peers && s.peers.length > 0 && (
          <div className="peers">
            {s.peers.map((p) => (
              <span key={p.name} className={`peer ${p.in_sync ? 'in-sync' : ''}`} title={`${p.name} advertises ${p.events_advertised ?? '?'} events`}>
                <span className="peer-dot" /> {p.name} {p.in_sync ? 'in sync' : `· ${p.events_advertised ?? '?'} advertised`}
              </span>
            ))}
          </div>
        )}
        {showStats && s && <StatsPanel stats={s} />}
        {showStats && !s && <div className="muted small pad">no stats yet</div>}
      </header>

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
          // Scrolled up to the top: bring in earlier messages.
          if (el.scrollTop < 40 && hiddenEarlier) showEarlier();
        }}
      >
        {hiddenEarlier && (
          <button type="button" className="earlier-btn" onClick={showEarlier}>
            show earlier
            {d.messages.length > shown ? ` (${formatCount(d.messages.length - shown)} more)` : ''}
          </button>
        )}
        {!d.loaded && d.messages.length === 0 && <div className="empty">loading…</div>}
        {d.loaded && d.messages.length === 0 && <div className="empty">No messages yet. Say hello 👋</div>}
        {visible.map((m) => (
          <MessageBubble key={m.id} msg={m} device={d.name} deviceUrl={d.url} onReact={react} />
        ))}
      </div>
      )}

      <Composer device={d.name} disabled={!d.loaded} onSend={(t, a) => onSend(d.name, t, a)} />
    </section>
  );
}
