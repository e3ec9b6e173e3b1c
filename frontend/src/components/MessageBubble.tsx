import { memo, useEffect, useRef, useState } from 'react';
import { deviceColor } from '../state/colors';
import { formatBytes, formatClock } from '../state/format';
import type { Message } from '../state/types';
import { BlobAttachment } from './BlobAttachment';
import { WholeAttachment } from './WholeAttachment';

export const EMOJIS = ['👍', '❤️', '😂', '😮', '🎉', '🙏', '🔥'];

type Props = {
  msg: Message;
  device: string;
  deviceUrl: string;
  onReact: (id: string, emoji: string, remove: boolean) => void;
};

function Attachment({ msg, deviceUrl }: { msg: Message; deviceUrl: string }) {
  const a = msg.attachment!;
  if (a.blob) return <BlobAttachment a={a} deviceUrl={deviceUrl} />;
  if (!a.complete) {
    const pct = a.chunks_total > 0 ? Math.round((a.chunks_have / a.chunks_total) * 100) : 0;
    return (
      <div className="att-progress" data-testid="attachment-progress">
        <div className="att-progress-label">
          <span className="att-icon">⇣</span> receiving {a.chunks_have}/{a.chunks_total} chunks
        </div>
        <div className="bar">
          <div className="bar-fill" style={{ width: `${pct}%` }} />
        </div>
        <div className="att-name">
          {a.name} · {formatBytes(a.size)}
        </div>
      </div>
    );
  }
  return <WholeAttachment a={a} src={deviceUrl + a.url} />;
}

function BubbleImpl({ msg, device, deviceUrl, onReact }: Props) {
  const mine = msg.author === device;
  const [picker, setPicker] = useState(false);
  const [below, setBelow] = useState(false);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!picker) return;
    const close = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setPicker(false);
    };
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setPicker(false);
    document.addEventListener('mousedown', close);
    document.addEventListener('keydown', esc);
    return () => {
      document.removeEventListener('mousedown', close);
      document.removeEventListener('keydown', esc);
    };
  }, [picker]);

  const mineReacted = (emoji: string) => msg.reactions.some((r) => r.emoji === emoji && r.authors.includes(device));

  return (
    <div
      className={`bubble-row ${mine ? 'mine' : 'theirs'}${msg.reactions.length > 0 ? ' has-reactions' : ''}`}
      data-testid="message"
      data-id={msg.id}
      data-author={msg.author}
      data-auto={msg.auto ? 'true' : 'false'}
    >
      <div className="bubble" ref={ref}>
        {!mine && (
          <div className="bubble-author" style={{ color: deviceColor(msg.author) }}>
            {msg.author}
          </div>
        )}
        {msg.attachment && <Attachment msg={msg} deviceUrl={deviceUrl} />}
        {msg.text && <div className="bubble-text">{msg.text}</div>}
        <div className="bubble-meta">
          {msg.auto && (
            <span className="auto-badge" title="made by the simulation service's generator">
              auto
            </span>
          )}
          <span className="bubble-time" title={new Date(msg.created_at_ms).toString()}>
            {formatClock(msg.created_at_ms)}
          </span>
        </div>
        <button
          type="button"
          className={`react-btn ${picker ? 'open' : ''}`}
          data-testid="reaction-button"
          aria-label="React"
          title="React"
          onClick={() => {
            // Open downwards when the bubble is at the top of the scroll box, so nothing is clipped.
            const el = ref.current;
            const box = el?.closest('.messages')?.getBoundingClientRect();
            if (el && box) setBelow(el.getBoundingClientRect().top - box.top < 60);
            setPicker((p) => !p);
          }}
        >
          ☺︎
        </button>
        {picker && (
          <div className={`picker ${below ? 'below' : ''}`} role="menu">
            {EMOJIS.map((e) => (
              <button
                key={e}
                type="button"
                className={`picker-emoji ${mineReacted(e) ? 'active' : ''}`}
                data-testid={`emoji-${e}`}
                title={mineReacted(e) ? 'Remove your reaction' : 'React'}
                onClick={() => {
                  setPicker(false);
                  onReact(msg.id, e, mineReacted(e));
                }}
              >
                {e}
              </button>
            ))}
          </div>
        )}
        {msg.reactions.length > 0 && (
          <div className="reactions">
            {msg.reactions.map((r) => {
              const m = r.authors.includes(device);
              return (
                <button
                  key={r.emoji}
                  type="button"
                  className={`reaction-chip ${m ? 'mine' : ''}`}
                  data-testid="reaction-chip"
                  data-emoji={r.emoji}
                  title={`${r.authors.join(', ')}${m ? ' — click to remove yours' : ' — click to add yours'}`}
                  onClick={() => onReact(msg.id, r.emoji, m)}
                >
                  {r.emoji}
                  {r.authors.length > 1 && <span className="chip-count">{r.authors.length}</span>}
                </button>
              );
            })}
          </div>
        )}
      </div>
    </div>
  );
}

export const MessageBubble = memo(BubbleImpl);
