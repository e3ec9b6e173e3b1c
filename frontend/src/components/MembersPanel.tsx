// One device's view of the community: who is in it, with which role, and who was removed
// (GET /api/members). An admin's pane can remove a member and make an invite, shown as its
// token and a QR code. The list is read again whenever the key epoch changes (every removal
// starts a new one) and after this pane's own actions, and replaced by every roster the
// device's stream sends (`members` frames: a join, a removal). A member's person, when the
// device says it, is shown with the device name in small print beneath.
import { memo, useCallback, useEffect, useState } from 'react';
import QRCode from 'qrcode';
import { deviceApi } from '../api';
import { personOf } from '../state/members';
import type { Invite, Member } from '../state/types';
import { errorText } from './util';

type Props = {
  /** This device's name and API base URL. */
  name: string;
  url: string;
  /** From the device's stats; a change means the roster may have changed. */
  keyEpoch: number | undefined;
  /** The roster from the device's stream (null until one arrives). */
  live: Member[] | null;
};

/** How long an invite made here stays valid, and how many devices it admits. */
const INVITE_EXPIRES_IN_S = 24 * 60 * 60;
const INVITE_USES = 1;

export const MembersPanel = memo(function MembersPanel({ name, url, keyEpoch, live }: Props) {
  const [members, setMembers] = useState<Member[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [invite, setInvite] = useState<{ invite: Invite; qr: string } | null>(null);
  // A removal takes two clicks: "remove", then "confirm".
  const [confirming, setConfirming] = useState<string | null>(null);

  const load = useCallback(() => {
    deviceApi
      .members(url)
      .then((m) => {
        setMembers(m);
        setError(null);
      })
      .catch((e) => setError(errorText(e)));
  }, [url]);

  useEffect(() => {
    load();
  }, [load, keyEpoch]);

  useEffect(() => {
    if (live) setMembers(live);
  }, [live]);

  const me = members?.find((m) => m.name === name);
  const isAdmin = me?.role === 'admin' && me.status === 'active';

  // `target` is a device name, or `person:NAME` for a person with all their devices.
  const remove = async (target: string) => {
    if (confirming !== target) {
      setConfirming(target);
      return;
    }
    setConfirming(null);
    setBusy(target);
    setError(null);
    try {
      if (target.startsWith('person:')) await deviceApi.removePerson(url, target.slice('person:'.length));
      else await deviceApi.removeMember(url, target);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
      load();
    }
  };

  const makeInvite = async () => {
    setBusy('invite');
    setError(null);
    try {
      const made = await deviceApi.invite(url, { role: 'member', expires_in_s: INVITE_EXPIRES_IN_S, uses: INVITE_USES });
      const qr = await QRCode.toDataURL(made.token, { errorCorrectionLevel: 'M', margin: 1, width: 220 });
      setInvite({ invite: made, qr });
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="members-panel" data-testid={`members-${name}`}>
      <div className="members-head">
        <span className="stat-label">members</span>
        {isAdmin && (
          <button
            type="button"
            className="link-btn"
            data-testid={`invite-${name}`}
            disabled={busy !== null}
            onClick={() => void makeInvite()}
            title="Make a one-use invite, valid for a day, that lets a new device join through this one"
          >
            invite device
          </button>
        )}
      </div>
      {members === null && !error && <div className="muted small">loading…</div>}
      {members && (
        <ul className="members-list">
          {members.map((m) => (
            <li
              key={m.name}
              className={`member ${m.status}`}
              data-testid={`member-${name}-${m.name}`}
              data-role={m.role}
              data-status={m.status}
            >
              <MemberName member={m} />
              <span className={`role-chip ${m.role}`}>{m.role}</span>
              {m.status === 'removed' && <span className="removed-chip">removed</span>}
              {isAdmin && m.status === 'active' && m.name !== name && (
                <button
                  type="button"
                  className="icon-btn tiny"
                  data-testid={`remove-${name}-${m.name}`}
                  disabled={busy !== null}
                  onClick={() => void remove(m.name)}
                  title={`remove ${m.name}: it keeps what it has, and a new key epoch starts which ${m.name} is not given`}
                >
                  {busy === m.name ? '…' : confirming === m.name ? `confirm: remove ${m.name}` : 'remove'}
                </button>
              )}
              {isAdmin && m.status === 'active' && m.person && m.person !== me?.person && (
                <button
                  type="button"
                  className="icon-btn tiny"
                  data-testid={`remove-person-${name}-${m.name}`}
                  disabled={busy !== null}
                  onClick={() => void remove(`person:${m.person}`)}
                  title={`remove ${m.person} with every device of theirs; one new key epoch`}
                >
                  {busy === `person:${m.person}`
                    ? '…'
                    : confirming === `person:${m.person}`
                      ? `confirm: remove ${m.person} and all their devices`
                      : `remove ${m.person}`}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <div className="pane-error" role="alert">
          {error}
        </div>
      )}
      {invite && (
        <div className="invite-box" data-testid={`invite-box-${name}`}>
          <div className="small">
            Invite for one {invite.invite.role}, valid until {new Date(invite.invite.expires_at_ms).toLocaleString()}; it
            finds {name} at {invite.invite.address}.
          </div>
          <img className="invite-qr" src={invite.qr} alt="invite token as a QR code" data-testid={`invite-qr-${name}`} />
          <textarea
            className="invite-token"
            readOnly
            rows={3}
            value={invite.invite.token}
            data-testid={`invite-token-${name}`}
            onFocus={(e) => e.currentTarget.select()}
          />
          <button type="button" className="link-btn" onClick={() => setInvite(null)}>
            close
          </button>
        </div>
      )}
    </div>
  );
});

/** The person's name with the device name in small print beneath, or the device name alone. */
export function MemberName({ member }: { member: Member }) {
  const person = personOf(member);
  if (!person) return <span className="member-name">{member.name}</span>;
  return (
    <span className="member-name with-person">
      <span className="member-person" data-testid="member-person">
        {person}
      </span>
      <span className="member-device small muted" data-testid="member-device">
        {member.name}
      </span>
    </span>
  );
}
