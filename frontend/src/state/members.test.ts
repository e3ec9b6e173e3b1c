import { describe, expect, it } from 'vitest';
import { invite, members, ShapeError } from './validate';

describe('members and invites from the wire', () => {
  it('accepts the roster a device answers', () => {
    const roster = members([
      { name: 'alice', role: 'admin', status: 'active', added_by: null, added_at_ms: 0 },
      { name: 'carol', role: 'member', status: 'removed', added_by: 'alice', added_at_ms: 1_700_000_000_000 },
    ]);
    expect(roster.map((m) => [m.name, m.role, m.status])).toEqual([
      ['alice', 'admin', 'active'],
      ['carol', 'member', 'removed'],
    ]);
    expect(roster[1].added_by).toBe('alice');
  });

  it('names the field that is wrong', () => {
    expect(() => members([{ name: 'bob', role: 'owner', status: 'active', added_by: null, added_at_ms: 0 }])).toThrow(/members\[0\]\.role/);
    expect(() => members([{ name: 'bob', role: 'member', status: 'gone', added_by: null, added_at_ms: 0 }])).toThrow(ShapeError);
    expect(() => members({})).toThrow(/members should be an array/);
  });

  it('reads an invite', () => {
    const made = invite({ token: 'meshlog-invite-1.abc', role: 'member', uses: 1, expires_at_ms: 5, address: '127.0.0.1:8001' });
    expect(made.token).toBe('meshlog-invite-1.abc');
    expect(() => invite({ role: 'member' })).toThrow(/invite\.token/);
  });
});
