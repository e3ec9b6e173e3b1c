import { useRef, useState } from 'react';
import { formatBytes } from '../state/format';
import type { NewAttachment } from '../state/types';
import { prepareAttachment } from './image';
import { errorText } from './util';

type Props = {
  device: string;
  disabled: boolean;
  onSend: (text: string, attachment?: NewAttachment) => Promise<void>;
};

export function Composer({ device, disabled, onSend }: Props) {
  const [text, setText] = useState('');
  const [staged, setStaged] = useState<{ attachment: NewAttachment; size: number; preview: string; note?: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  const pick = async (file: File | undefined) => {
    if (!file) return;
    setError(null);
    try {
      const p = await prepareAttachment(file);
      const preview = `data:${p.attachment.mime};base64,${p.attachment.data_base64}`;
      setStaged({ ...p, preview });
      inputRef.current?.focus();
    } catch (e) {
      setError(errorText(e));
    } finally {
      if (fileRef.current) fileRef.current.value = '';
    }
  };

  const send = async () => {
    const t = text.trim();
    if ((!t && !staged) || busy) return;
    setBusy(true);
    setError(null);
    try {
      await onSend(t, staged?.attachment);
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
          {staged.attachment.mime.startsWith('image/') ? (
            <img src={staged.preview} alt="" className="staged-thumb" />
          ) : (
            <span className="staged-thumb file">📎</span>
          )}
          <div className="staged-info">
            <div className="staged-name">{staged.attachment.name}</div>
            <div className="muted small">
              {formatBytes(staged.size)}
              {staged.note ? ` · ${staged.note}` : ''}
            </div>
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
        <label className="icon-btn attach-btn" title="Attach an image">
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
            accept="image/*"
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
