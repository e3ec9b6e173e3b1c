import { describe, expect, it } from 'vitest';
import { msg } from '../test/fixtures';
import { applyReaction, hasReactionFrom, messagePreview, normalizeMessages, toSearchQuery, upsertMany, upsertMessage } from './messages';

const ids = (l: { id: string }[]) => l.map((m) => m.id);

describe('upsertMessage', () => {
  it('inserts in created_at_ms order wherever the update lands', () => {
    let l = upsertMessage([], msg('b', 20));
    l = upsertMessage(l, msg('c', 30));
    l = upsertMessage(l, msg('a', 10));
    l = upsertMessage(l, msg('bb', 25));
    expect(ids(l)).toEqual(['a', 'b', 'bb', 'c']);
  });

  it('replaces a message with the same id instead of duplicating it', () => {
    const l0 = [msg('a', 10), msg('b', 20)];
    const l = upsertMessage(l0, msg('a', 10, { text: 'edited', reactions: [{ emoji: '👍', authors: ['bob'] }] }));
    expect(ids(l)).toEqual(['a', 'b']);
    expect(l[0].text).toBe('edited');
    expect(l[0].reactions).toHaveLength(1);
  });

  it('moves a replaced message if its time changed, and never mutates the input', () => {
    const l0 = [msg('a', 10), msg('b', 20)];
    const l = upsertMessage(l0, msg('a', 30));
    expect(ids(l)).toEqual(['b', 'a']);
    expect(ids(l0)).toEqual(['a', 'b']);
  });

  it('breaks ties on equal times by id so every device shows the same order', () => {
    const l = upsertMessage(upsertMessage([], msg('f2', 5)), msg('e1', 5));
    expect(ids(l)).toEqual(['e1', 'f2']);
  });
});

describe('upsertMany / normalizeMessages', () => {
  it('sorts, de-duplicates, and lets later copies win', () => {
    const l = normalizeMessages([msg('c', 3), msg('a', 1), msg('c', 3, { text: 'new' }), msg('b', 2)]);
    expect(ids(l)).toEqual(['a', 'b', 'c']);
    expect(l[2].text).toBe('new');
  });

  it('merges incoming over existing', () => {
    const l = upsertMany([msg('a', 1), msg('b', 2)], [msg('b', 2, { text: 'B' }), msg('c', 0)]);
    expect(ids(l)).toEqual(['c', 'a', 'b']);
    expect(l[2].text).toBe('B');
  });

  it('merges into the middle, at both ends, and keeps the list sorted and unique', () => {
    const held = [msg('b', 2), msg('d', 4), msg('f', 6)];
    const l = upsertMany(held, [msg('g', 7), msg('c', 3), msg('a', 1), msg('d', 4, { text: 'D' }), msg('e', 5), msg('c', 3, { text: 'C' })]);
    expect(ids(l)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(l[2].text).toBe('C');
    expect(l[3].text).toBe('D');
    expect(ids(upsertMany(held, [msg('h', 8)]))).toEqual(['b', 'd', 'f', 'h']);
    expect(ids(upsertMany(held, []))).toEqual(['b', 'd', 'f']);
    // Same time: ordered by id.
    expect(ids(upsertMany([msg('x', 5)], [msg('w', 5), msg('y', 5)]))).toEqual(['w', 'x', 'y']);
  });
});

describe('applyReaction', () => {
  it('adds a new emoji, appends to an existing one, and removes only the given author', () => {
    let m = msg('a', 1);
    m = applyReaction(m, '👍', 'bob', false);
    expect(m.reactions).toEqual([{ emoji: '👍', authors: ['bob'] }]);
    m = applyReaction(m, '👍', 'alice', false);
    expect(m.reactions).toEqual([{ emoji: '👍', authors: ['bob', 'alice'] }]);
    expect(hasReactionFrom(m, '👍', 'alice')).toBe(true);
    m = applyReaction(m, '👍', 'bob', true);
    expect(m.reactions).toEqual([{ emoji: '👍', authors: ['alice'] }]);
    expect(hasReactionFrom(m, '👍', 'bob')).toBe(false);
  });

  it('drops an emoji whose last author removed it and does not duplicate an author', () => {
    let m = applyReaction(msg('a', 1), '🎉', 'bob', false);
    m = applyReaction(m, '🎉', 'bob', false);
    expect(m.reactions).toEqual([{ emoji: '🎉', authors: ['bob'] }]);
    m = applyReaction(m, '🎉', 'bob', true);
    expect(m.reactions).toEqual([]);
    expect(applyReaction(m, '😮', 'bob', true).reactions).toEqual([]);
  });
});

describe('messagePreview', () => {
  it('truncates long text and names attachments of empty messages', () => {
    expect(messagePreview(msg('a', 1, { text: 'x'.repeat(100) }), 10)).toBe('xxxxxxxxx…');
    const att = { file_id: 'f', name: 'cat.png', mime: 'image/png', size: 1, chunks_total: 1, chunks_have: 1, complete: true, blob: false, url: '/api/files/f' };
    expect(messagePreview(msg('a', 1, { text: '', attachment: att }))).toBe('📎 cat.png');
  });
});

describe('toSearchQuery', () => {
  it('quotes every word and makes the last a prefix', () => {
    expect(toSearchQuery('  report.pdf  lun ')).toBe('"report.pdf" "lun"*');
  });
  it('escapes quotes and is empty for blank input', () => {
    expect(toSearchQuery('say "hi"')).toBe('"say" """hi"""*');
    expect(toSearchQuery('   ')).toBe('');
  });
});
