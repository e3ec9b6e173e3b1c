// An EventSource that comes back after the server restarts: on error it closes the source and
// opens a new one after an exponential backoff, reporting 'reconnecting' meanwhile.
import { backoffDelay } from './state/backoff';
import type { ConnState } from './state/app';

export type EventSourceLike = {
  onopen: ((ev: Event) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  addEventListener(type: string, listener: (ev: MessageEvent) => void): void;
  close(): void;
};

export type LiveStreamOptions = {
  url: string;
  /** Named SSE events to listen for; handler gets the parsed JSON `data`. */
  handlers: Record<string, (data: unknown) => void>;
  onConn: (conn: ConnState) => void;
  /** Injectable for tests. */
  create?: (url: string) => EventSourceLike;
  setTimer?: (f: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  random?: () => number;
};

export class LiveStream {
  private es: EventSourceLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private closed = false;
  private readonly o: Required<LiveStreamOptions>;

  constructor(opts: LiveStreamOptions) {
    this.o = {
      // With credentials: the API token cookie goes to the servers' other ports too.
      create: (url) => new EventSource(url, { withCredentials: true }) as unknown as EventSourceLike,
      setTimer: (f, ms) => setTimeout(f, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      random: Math.random,
      ...opts,
    };
    this.open();
  }

  private open(): void {
    if (this.closed) return;
    const es = this.o.create(this.o.url);
    this.es = es;
    es.onopen = () => {
      if (this.es !== es) return;
      this.attempt = 0;
      this.o.onConn('live');
    };
    es.onerror = () => {
      if (this.es !== es) return;
      // Close ourselves: the browser's own retry keeps no backoff and hides the state from us.
      es.close();
      this.es = null;
      this.o.onConn('reconnecting');
      const delay = backoffDelay(this.attempt++, this.o.random());
      this.timer = this.o.setTimer(() => {
        this.timer = null;
        this.open();
      }, delay);
    };
    for (const [name, handler] of Object.entries(this.o.handlers)) {
      es.addEventListener(name, (ev: MessageEvent) => {
        if (this.es !== es) return;
        let data: unknown;
        try {
          data = JSON.parse(String(ev.data));
        } catch {
          return; // a malformed frame is skipped, the stream goes on
        }
        handler(data);
      });
    }
  }

  /** Reconnect at once if waiting out a backoff (the server is known to be back). */
  reconnectNow(): void {
    if (this.closed || this.timer === null) return;
    this.o.clearTimer(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.open();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
    this.es?.close();
    this.es = null;
  }
}
