import { describe, expect, it } from 'vitest';
import { device, sim } from '../test/fixtures';
import { initialState, paneOrder, reducer, type Action, type AppState } from './app';
import { personOf } from './members';
import type { Member } from './types';
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

describe("a member's person", () => {
  it('is read when the device says it, and null when it does not', () => {
    const roster = members([
      { name: 'alice-phone', role: 'admin', status: 'active', added_by: null, added_at_ms: 0, person: 'Alice' },
      { name: 'bob', role: 'member', status: 'active', added_by: null, added_at_ms: 0, person: null },
      { name: 'carol', role: 'member', status: 'active', added_by: null, added_at_ms: 0 },
    ]);
    expect(roster.map((m) => m.person)).toEqual(['Alice', null, null]);
    expect(roster.map(personOf)).toEqual(['Alice', null, null]);
    expect(personOf({ ...roster[0], person: '  ' })).toBe(null);
    expect(personOf(undefined)).toBe(null);
    expect(() => members([{ name: 'bob', role: 'member', status: 'active', added_by: null, added_at_ms: 0, person: 7 }])).toThrow(
      /members\[0\]\.person/,
    );
  });
});

const run = (s: AppState, ...actions: Action[]) => actions.reduce(reducer, s);
const m = (name: string, status: Member['status'] = 'active'): Member => ({
  name,
  role: 'member',
  status,
  added_by: null,
  added_at_ms: 0,
  person: null,
});
/** alice, bob and dave as the demo lists them; dave is still joining. */
const demo = () =>
  run(initialState('x'), {
    type: 'sim/state',
    state: sim({ devices: [device('alice', 'http://h:1'), device('bob', 'http://h:2'), device('dave', 'http://h:3')] }),
  });

describe('a pane per member the demo runs', () => {
  it('shows every device before any roster is read', () => {
    expect(paneOrder(demo())).toEqual(['alice', 'bob', 'dave']);
  });

  it('has no pane for a device no roster names, and one as soon as a members frame names it', () => {
    let s = run(demo(), { type: 'dev/members', device: 'alice', members: [m('alice'), m('bob')] });
    expect(paneOrder(s)).toEqual(['alice', 'bob']);
    s = run(s, { type: 'dev/members', device: 'bob', members: [m('alice'), m('bob')] });
    expect(paneOrder(s)).toEqual(['alice', 'bob']);
    // alice admits dave: her stream's next roster names him.
    s = run(s, { type: 'dev/members', device: 'alice', members: [m('alice'), m('bob'), m('dave')] });
    expect(paneOrder(s)).toEqual(['alice', 'bob', 'dave']);
    expect(s.devices.alice.members?.map((x) => x.name)).toEqual(['alice', 'bob', 'dave']);
  });

  it('keeps the pane of a removed device', () => {
    const s = run(demo(), { type: 'dev/members', device: 'alice', members: [m('alice'), m('bob', 'removed'), m('dave')] });
    expect(paneOrder(s)).toEqual(['alice', 'bob', 'dave']);
  });

  it('gives a device its pane when its own roster names it', () => {
    const s = run(
      demo(),
      { type: 'dev/members', device: 'alice', members: [m('alice'), m('bob')] },
      { type: 'dev/members', device: 'dave', members: [m('alice'), m('bob'), m('dave')] },
    );
    expect(paneOrder(s)).toEqual(['alice', 'bob', 'dave']);
  });

  it('answers the same order when nothing is hidden', () => {
    const s = run(demo(), { type: 'dev/members', device: 'alice', members: [m('alice'), m('bob'), m('dave')] });
    expect(paneOrder(s)).toBe(s.order);
  });
});
