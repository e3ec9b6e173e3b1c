import { describe, expect, it } from 'vitest';
import { msg } from '../test/fixtures';
import { describeMessageChange, pushActivity } from './activity';

const att = (have: number, total: number) => ({
  file_id: 'f',
  name: 'cat.png',
  mime: 'image/png',
  size: 10,
  chunks_total: total,
  chunks_have: have,
  complete: have === total,
  blob: false,
  url: '/api/files/f',
});

describe('describeMessageChange', () => {
  it('tells own posts from received ones', () => {
    expect(describeMessageChange('alice', undefined, msg('a', 5, { author: 'alice', text: 'hello' }), 9)[0]).toMatchObject({
      kind: 'posted',
      at_ms: 5,
      text: 'alice posted “hello”',
    });
    const r = describeMessageChange('bob', undefined, msg('a', 5, { author: 'alice', text: 'hello', auto: true }), 9);
    expect(r).toEqual([{ device: 'bob', kind: 'received', at_ms: 9, text: 'bob got “hello” from alice', auto: true }]);
  });

  it('reports added and removed reactions', () => {
    const before = msg('a', 1, { reactions: [{ emoji: '👍', authors: ['bob'] }] });
    const after = msg('a', 1, { reactions: [{ emoji: '🎉', authors: ['carol'] }] });
    const texts = describeMessageChange('alice', before, after, 2).map((x) => x.text);
    expect(texts).toHaveLength(2);
    expect(texts[0]).toContain('carol react 🎉');
    expect(texts[1]).toContain('bob remove 👍');
  });

  it('reports a file once, when its last chunk arrives on a receiving device', () => {
    const m1 = msg('a', 1, { author: 'alice', attachment: att(1, 3) });
    const m2 = msg('a', 1, { author: 'alice', attachment: att(3, 3) });
    expect(describeMessageChange('bob', m1, m1, 2)).toEqual([]);
    expect(describeMessageChange('bob', m1, m2, 2).map((x) => x.kind)).toEqual(['file']);
    expect(describeMessageChange('bob', m2, m2, 2)).toEqual([]);
    expect(describeMessageChange('alice', m1, m2, 2)).toEqual([]);
  });
});

describe('pushActivity', () => {
  it('puts the newest first and bounds the list', () => {
    const mk = (t: number) => ({ device: 'a', kind: 'posted' as const, at_ms: t, text: String(t), auto: false });
    let l = pushActivity([], [mk(1), mk(2)], 3);
    l = pushActivity(l, [mk(3), mk(4)], 3);
    expect(l.map((a) => a.at_ms)).toEqual([4, 3, 2]);
    expect(l.map((a) => a.id)).toEqual([4, 3, 2]);
  });
});
