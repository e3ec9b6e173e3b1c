// Live frames, queued and applied in batches, in two lanes taken in turn: the chat lane
// (messages, stats: the panes and the event list) and the network lane (the log, the chart, the
// topology). Each batch is one React commit and one layout and paint of what it changed; taking
// the lanes in turn, half a period apart, puts the panes' and the log's work in different frames
// instead of one frame doing both.

export type Lane = 'chat' | 'net';

export type BatcherOptions<A> = {
  /** Applies one batch (in the order the actions came). */
  apply: (actions: A[]) => void;
  /** Each lane is applied at most once per period while both are busy. */
  periodMs: number;
  /** Injectable for tests. */
  setTimer?: (f: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
};

export class Batcher<A> {
  private readonly lanes: Record<Lane, A[]> = { chat: [], net: [] };
  private turn: Lane = 'chat';
  private timer: unknown = null;
  private readonly o: Required<BatcherOptions<A>>;

  constructor(opts: BatcherOptions<A>) {
    this.o = {
      setTimer: (f, ms) => setTimeout(f, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      ...opts,
    };
  }

  push(lane: Lane, action: A): void {
    this.lanes[lane].push(action);
    this.schedule();
  }

  pending(): boolean {
    return this.lanes.chat.length + this.lanes.net.length > 0;
  }

  /** Applies everything queued now (chat first), e.g. before an action that must come after it. */
  flushAll(): void {
    this.cancel();
    for (const lane of ['chat', 'net'] as const) this.take(lane);
  }

  close(): void {
    this.cancel();
    this.lanes.chat = [];
    this.lanes.net = [];
  }

  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = this.o.setTimer(() => {
      this.timer = null;
      this.tick();
    }, this.o.periodMs / 2);
  }

  private tick(): void {
    // This lane's turn, or the other's when this one has nothing.
    const lane = this.lanes[this.turn].length > 0 ? this.turn : other(this.turn);
    this.take(lane);
    this.turn = other(lane);
    if (this.pending()) this.schedule();
  }

  private take(lane: Lane): void {
    const actions = this.lanes[lane];
    if (actions.length === 0) return;
    this.lanes[lane] = [];
    this.o.apply(actions);
  }

  private cancel(): void {
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
  }
}

const other = (lane: Lane): Lane => (lane === 'chat' ? 'net' : 'chat');
