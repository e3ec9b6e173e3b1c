// An attachment that is all here: an image drawn inline (a link to the full size), or a
// download link when it is not an image or will not draw. Shared by inline and blob files.
import { useState } from 'react';
import { formatBytes } from '../state/format';
import type { Attachment } from '../state/types';

export function WholeAttachment({ a, src }: { a: Attachment; src: string }) {
  const [broken, setBroken] = useState(false);
  if (a.mime.startsWith('image/') && !broken) {
    return (
      <a href={src} target="_blank" rel="noreferrer" className="att-img-link">
        <img data-testid="attachment-img" className="att-img" src={src} alt={a.name} loading="lazy" onError={() => setBroken(true)} />
      </a>
    );
  }
  return (
    <a className="att-file" href={src} target="_blank" rel="noreferrer">
      📎 {a.name} <span className="muted">({formatBytes(a.size)})</span>
    </a>
  );
}
