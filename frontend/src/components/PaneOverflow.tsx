import { useEffect, useState, type RefObject } from 'react';

/** Panes cut off at either side of the scrolling strip. */
export type OutOfView = { left: string[]; right: string[] };

const NONE: OutOfView = { left: [], right: [] };

/** Less than this much of a pane hidden still counts as in view (rounding, borders). */
const SLACK_PX = 2;

function measure(strip: HTMLElement, names: readonly string[]): OutOfView {
  const box = strip.getBoundingClientRect();
  const left: string[] = [];
  const right: string[] = [];
  for (const name of names) {
    const pane = strip.querySelector<HTMLElement>(`[data-testid="pane-${CSS.escape(name)}"]`);
    if (!pane) continue;
    const r = pane.getBoundingClientRect();
    // A pane behind a tab (narrow screens) is not laid out at all.
    if (r.width === 0) continue;
    if (r.left < box.left - SLACK_PX) left.push(name);
    else if (r.right > box.right + SLACK_PX) right.push(name);
  }
  return left.length === 0 && right.length === 0 ? NONE : { left, right };
}

const same = (a: OutOfView, b: OutOfView) => a.left.join() === b.left.join() && a.right.join() === b.right.join();

/**
 * Which panes the strip `strip` cuts off, kept current as it scrolls or resizes: a screen too
 * narrow for every pane side by side scrolls them sideways, which nothing else would show.
 */
export function useOutOfView(strip: RefObject<HTMLElement | null>, names: readonly string[]): OutOfView {
  const [out, setOut] = useState<OutOfView>(NONE);
  const key = names.join(',');
  useEffect(() => {
    const el = strip.current;
    if (!el) return;
    const list = key === '' ? [] : key.split(',');
    const update = () => setOut((prev) => {
      const next = measure(el, list);
      return same(prev, next) ? prev : next;
    });
    update();
    el.addEventListener('scroll', update, { passive: true });
    const resized = new ResizeObserver(update);
    resized.observe(el);
    return () => {
      el.removeEventListener('scroll', update);
      resized.disconnect();
    };
  }, [strip, key]);
  return out;
}

/** Brings pane `name` fully into the strip's view. */
export function scrollToPane(name: string): void {
  document.querySelector(`[data-testid="pane-${CSS.escape(name)}"]`)?.scrollIntoView({ block: 'nearest', inline: 'nearest', behavior: 'smooth' });
}

/** The strip's edge markers: how many panes are cut off on each side, and which; a click shows the nearest. */
export function PaneEdges({ out }: { out: OutOfView }) {
  return (
    <>
      {out.left.length > 0 && (
        <button
          type="button"
          className="panes-more left"
          data-testid="panes-more-left"
          title={`scroll to ${out.left.at(-1)}`}
          onClick={() => scrollToPane(out.left[out.left.length - 1])}
        >
          ← {out.left.length} more: {out.left.join(', ')}
        </button>
      )}
      {out.right.length > 0 && (
        <button
          type="button"
          className="panes-more right"
          data-testid="panes-more-right"
          title={`scroll to ${out.right[0]}`}
          onClick={() => scrollToPane(out.right[0])}
        >
          {out.right.length} more: {out.right.join(', ')} →
        </button>
      )}
    </>
  );
}
