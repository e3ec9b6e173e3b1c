// A file sent by the blob transfer: its progress while it arrives (polled from the device's
// blob store), an image drawn from its verified prefix as that grows, then the whole file.
import { useEffect, useRef, useState } from 'react';
import { deviceApi, fetchPrefix } from '../api';
import { formatBytes } from '../state/format';
import type { Attachment, FileProgress } from '../state/types';
import { WholeAttachment } from './WholeAttachment';

/** How often an arriving file's progress is asked for: a bar that moves, not a request storm. */
const POLL_MS = 700;
/** A prefix is fetched again once it grew by this much (and by a quarter): a 100 MB photo is
 * redrawn a handful of times, not once per group. */
const REDRAW_GROWTH_BYTES = 256 * 1024;
/** Too little to draw anything useful from (a progressive JPEG's first scan, a PNG's first rows). */
const PREFIX_MIN_BYTES = 16 * 1024;

export function BlobAttachment({ a, deviceUrl }: { a: Attachment; deviceUrl: string }) {
  const [progress, setProgress] = useState<FileProgress | null>(null);
  const [partial, setPartial] = useState<{ url: string; len: number } | null>(null);
  const drawing = useRef(false);
  const complete = a.complete || progress?.complete === true;
  const image = a.mime.startsWith('image/');
  const src = deviceUrl + a.url;

  useEffect(() => {
    if (complete) return;
    let live = true;
    const poll = async () => {
      try {
        const p = await deviceApi.fileProgress(deviceUrl, a.file_id);
        if (live && p) setProgress(p);
      } catch {
        // The device is down or busy: the next poll tries again.
      }
    };
    void poll();
    const timer = setInterval(() => void poll(), POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [complete, deviceUrl, a.file_id]);

  // Draw what is verified so far of an image, as its prefix grows.
  const prefix = progress?.prefix_bytes ?? 0;
  useEffect(() => {
    if (!image || complete || drawing.current || prefix < PREFIX_MIN_BYTES) return;
    const drawn = partial?.len ?? 0;
    if (prefix < drawn + REDRAW_GROWTH_BYTES && prefix < drawn * 1.25) return;
    drawing.current = true;
    fetchPrefix(src, prefix, a.mime)
      .then((blob) => setPartial({ url: URL.createObjectURL(blob), len: prefix }))
      .catch(() => undefined)
      .finally(() => {
        drawing.current = false;
      });
  }, [image, complete, prefix, partial, src, a.mime]);
  useEffect(() => {
    const url = partial?.url;
    return () => {
      if (url) URL.revokeObjectURL(url);
    };
  }, [partial]);

  if (complete) return <WholeAttachment a={a} src={src} />;
  const have = progress?.chunks_have ?? a.chunks_have;
  const total = progress?.chunks_total ?? a.chunks_total;
  const pct = total > 0 ? Math.floor((have / total) * 100) : 0;
  const rate = progress?.bytes_per_second ?? 0;
  return (
    <div className="att-progress" data-testid="attachment-progress" data-have={have} data-total={total}>
      {partial && <img data-testid="attachment-partial-img" className="att-img" src={partial.url} alt={`${a.name} (arriving)`} />}
      <div className="att-progress-label">
        <span className="att-icon">⇣</span> receiving {pct}% of {formatBytes(a.size)}
        {rate > 0 ? ` · ${formatBytes(rate)}/s` : ''}
      </div>
      <div className="bar">
        <div className="bar-fill" style={{ width: `${pct}%` }} />
      </div>
      <div className="att-name">{a.name}</div>
    </div>
  );
}
