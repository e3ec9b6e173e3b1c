// Live frames, queued and applied in batches, in lanes taken in turn: one lane per device's chat
// (its messages and stats: its pane and the event list) and one for the network (the log, the
// chart, the topology). Each batch is one React commit and one layout and paint of what it
// changed; taking the lanes in turn, spread over the period, puts each pane's and the log's work
// in a frame of its own instead of one frame doing them all.

export type BatcherOptions<A> = {
  /** Applies one batch (in the order the actions came). */
  apply: (actions: A[]) => void;
  /** Each lane is applied about once per period while all are busy. */
  periodMs: number;
  /**
   * A lane that reaches `laneMax` actions is replaced by `compact(lane)` (what applying it would
   * leave the same), and applied at once if that is still as long. Without it a lane grows with
   * every frame until its turn, which in a hidden tab (timers throttled to once a minute) is a
   * minute of frames.
   */
  compact?: (actions: A[]) => A[];
  laneMax?: number;
  /** Injectable for tests. */
  setTimer?: (f: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
};

export class Batcher<A> {
  /** Lanes in the order they were first used (the turn goes round in that order). */
  private readonly lanes = new Map<string, A[]>();
  private last: string | null = null;
  private timer: unknown = null;
  private readonly o: Required<BatcherOptions<A>>;

  constructor(opts: BatcherOptions<A>) {
    this.o = {
      setTimer: (f, ms) => setTimeout(f, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      compact: (actions) => actions,
      laneMax: Infinity,
      ...opts,
    };
  }

  push(lane: string, action: A): void {
    const q = this.lanes.get(lane);
    if (q) q.push(action);
    else this.lanes.set(lane, [action]);
    const queued = this.lanes.get(lane)!;
    if (queued.length >= this.o.laneMax) {
      const compacted = this.o.compact(queued);
      this.lanes.set(lane, compacted);
      if (compacted.length >= this.o.laneMax) this.take(lane);
    }
    this.schedule();
  }

  pending(): boolean {
    return this.busy().length > 0;
  }

  /** Applies everything queued now, lane by lane, e.g. before an action that must come after it. */
  flushAll(): void {
    this.cancel();
    for (const lane of this.busy()) this.take(lane);
  }

  close(): void {
    this.cancel();
    this.lanes.clear();
  }

  private busy(): string[] {
    return [...this.lanes].filter(([, q]) => q.length > 0).map(([lane]) => lane);
  }

  private schedule(): void {
    if (this.timer !== null) return;
    // Spread the busy lanes over the period (at least two turns a period, so a lone lane waits
    // half a period, not a whole one).
    const turns = Math.max(2, this.busy().length);
    this.timer = this.o.setTimer(() => {
      this.timer = null;
      this.tick();
    }, this.o.periodMs / turns);
  }

  private tick(): void {
    // The next busy lane after the one taken last, round in first-use order.
    const lanes = [...this.lanes.keys()];
    const from = this.last === null ? -1 : lanes.indexOf(this.last);
    for (let i = 1; i <= lanes.length; i++) {
      const lane = lanes[(from + i) % lanes.length];
      if ((this.lanes.get(lane)?.length ?? 0) > 0) {
        this.take(lane);
        this.last = lane;
        break;
      }
    }
    if (this.pending()) this.schedule();
  }

  private take(lane: string): void {
    const actions = this.lanes.get(lane) ?? [];
    if (actions.length === 0) return;
    this.lanes.set(lane, []);
    this.o.apply(actions);
  }

  private cancel(): void {
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
  }
}
