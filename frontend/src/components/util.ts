import { useEffect, useMemo, useRef, useState } from 'react';

/** A value that follows `value` from the server unless the user is editing it. */
export function useDraft<T>(value: T): [T, (v: T) => void, () => void, boolean] {
  const [draft, setDraft] = useState<T>(value);
  const [dirty, setDirty] = useState(false);
  useEffect(() => {
    if (!dirty) setDraft(value);
  }, [value, dirty]);
  return [
    draft,
    (v: T) => {
      setDraft(v);
      setDirty(true);
    },
    () => setDirty(false),
    dirty,
  ];
}

/** Debounced commit that can also be flushed now (e.g. before pressing start). */
export function useDebouncedCommit(commit: () => Promise<unknown> | void, ms: number) {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const commitRef = useRef(commit);
  commitRef.current = commit;
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);
  return useMemo(
    () => ({
    schedule() {
      if (timer.current) clearTimeout(timer.current);
      timer.current = setTimeout(() => {
        timer.current = null;
        void commitRef.current();
      }, ms);
    },
    async flush() {
      if (!timer.current) return;
      clearTimeout(timer.current);
      timer.current = null;
      await commitRef.current();
    },
    }),
    [ms],
  );
}

/** Functions to run before a control that depends on pending edits (start) acts. */
export class PendingEdits {
  private items = new Set<() => Promise<void>>();
  add(f: () => Promise<void>): () => void {
    this.items.add(f);
    return () => this.items.delete(f);
  }
  async flushAll(): Promise<void> {
    await Promise.all([...this.items].map((f) => f().catch(() => undefined)));
  }
}

/** Re-render every `ms` (for "12 s ago" labels and the chart's moving window). */
export function useTick(ms: number): number {
  const [t, setT] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setT(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return t;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
