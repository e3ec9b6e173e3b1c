import { useEffect, useRef, useState } from 'react';
import { ApiError, uploadFile } from '../api';
import { formatBytes } from '../state/format';
import { ATTACHMENT_MAX_BYTES } from '../state/limits';
import type { NewAttachment, StoredAttachment } from '../state/types';
import { prepareAttachment } from './image';
import { errorText } from './util';

type Props = {
  device: string;
  /** The device's API base, where a large file is uploaded (POST /api/files). */
  deviceUrl: string;
  disabled: boolean;
  onSend: (text: string, attachment?: NewAttachment | StoredAttachment) => Promise<void>;
};

/**
 * A picked file: small ones travel inline (base64 in the message, as chunk events); one over
 * the JSON body's room is uploaded to the blob store as it is, then referred to by id.
 */
type Staged =
  | { kind: 'inline'; attachment: NewAttachment; name: string; mime: string; size: number; preview: string; note?: string }
  | { kind: 'upload'; file: File; name: string; mime: string; size: number; preview: string };

export function Composer({ device, deviceUrl, disabled, onSend }: Props) {
  const [text, setText] = useState('');
  const [staged, setStaged] = useState<Staged | null>(null);
  const [busy, setBusy] = useState(false);
  const [uploaded, setUploaded] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  // An upload's preview is an object URL of the picked file: freed when it is unstaged.
  useEffect(() => {
    const url = staged?.kind === 'upload' ? staged.preview : null;
    return () => {
      if (url) URL.revokeObjectURL(url);
    };
  }, [staged]);

  const pick = async (file: File | undefined) => {
    if (!file) return;
    setError(null);
    try {
      const mime = file.type || 'application/octet-stream';
      if (file.size > ATTACHMENT_MAX_BYTES) {
        const preview = mime.startsWith('image/') ? URL.createObjectURL(file) : '';
        setStaged({ kind: 'upload', file, name: file.name, mime, size: file.size, preview });
      } else {
        const p = await prepareAttachment(file);
        const preview = `data:${p.attachment.mime};base64,${p.attachment.data_base64}`;
        setStaged({ kind: 'inline', ...p, name: p.attachment.name, mime: p.attachment.mime, preview });
      }
      inputRef.current?.focus();
    } catch (e) {
      setError(errorText(e));
    } finally {
      if (fileRef.current) fileRef.current.value = '';
    }
  };

  /** What the message carries for `staged`: uploads it first if it is large. */
  const attachmentOf = async (s: Staged): Promise<NewAttachment | StoredAttachment> => {
    if (s.kind === 'inline') return s.attachment;
    setUploaded(0);
    try {
      const done = await uploadFile(deviceUrl, s.file, (sent) => setUploaded(sent));
      return { file_id: done.file_id, name: s.name, mime: s.mime };
    } catch (e) {
      // A simulated device keeps no file store (404): an image still goes, scaled to fit inline.
      if (e instanceof ApiError && e.status === 404 && s.mime.startsWith('image/')) {
        return (await prepareAttachment(s.file)).attachment;
      }
      throw e;
    } finally {
      setUploaded(null);
    }
  };

  const send = async () => {
    const t = text.trim();
    if ((!t && !staged) || busy) return;
    setBusy(true);
    setError(null);
    try {
      await onSend(t, staged ? await attachmentOf(staged) : undefined);
      setText('');
      setStaged(null);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
      inputRef.current?.focus();
    }
  };

  return (
    <div className="composer-wrap">
      {staged && (
        <div className="staged">
          {staged.preview && staged.mime.startsWith('image/') ? (
            <img src={staged.preview} alt="" className="staged-thumb" />
          ) : (
            <span className="staged-thumb file">📎</span>
          )}
          <div className="staged-info">
            <div className="staged-name">{staged.name}</div>
            <div className="muted small">
              {formatBytes(staged.size)}
              {staged.kind === 'inline' && staged.note ? ` · ${staged.note}` : ''}
              {uploaded !== null ? ` · uploading ${Math.floor((uploaded / Math.max(1, staged.size)) * 100)}%` : ''}
            </div>
            {uploaded !== null && (
              <div className="bar" data-testid={`upload-progress-${device}`}>
                <div className="bar-fill" style={{ width: `${Math.min(100, (uploaded / Math.max(1, staged.size)) * 100)}%` }} />
              </div>
            )}
          </div>
          <button type="button" className="icon-btn" aria-label="Remove attachment" onClick={() => setStaged(null)}>
            ✕
          </button>
        </div>
      )}
      {error && (
        <div className="composer-error" role="alert">
          {error}
        </div>
      )}
      <form
        className="composer"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <label className="icon-btn attach-btn" title="Attach a file">
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <path
              d="M16.5 6.5l-7.8 7.8a2 2 0 102.8 2.8l7.8-7.8a4 4 0 10-5.7-5.7L5.8 11.4a6 6 0 108.5 8.5l6.4-6.4"
              fill="none"
              stroke="currentColor"
              strokeWidth="1.8"
              strokeLinecap="round"
            />
          </svg>
          <input
            ref={fileRef}
            type="file"
            hidden
            data-testid={`attach-${device}`}
            onChange={(e) => void pick(e.target.files?.[0])}
          />
        </label>
        <input
          ref={inputRef}
          className="composer-input"
          data-testid={`composer-input-${device}`}
          placeholder={staged ? 'Add a caption…' : `Message as ${device}…`}
          value={text}
          maxLength={4000}
          onChange={(e) => setText(e.target.value)}
        />
        <button
          type="submit"
          className="send-btn"
          data-testid={`send-${device}`}
          disabled={busy || disabled || (!text.trim() && !staged)}
          aria-label="Send"
          title="Send"
        >
          {busy ? (
            <span className="spinner" />
          ) : (
            <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
              <path d="M3 20.5l18-8.5L3 3.5v6.6l12.5 1.9L3 13.9z" fill="currentColor" />
            </svg>
          )}
        </button>
      </form>
    </div>
  );
}
