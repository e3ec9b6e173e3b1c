//! `[[member]]`: one membership change an admin makes at `at` (or a joiner's or a thief's
//! act). In the file it is a table with exactly one action (`remove = "carol"`,
//! `rotate = true`, `set_role = { device, role }`, `steal_keys = "bob"`, ...)
//! and an optional `by` (the admin who acts; the first of `[world] admins` by default). In
//! the program it is a [`MemberChange`] whose [`MemberAction`] is that action, so "exactly
//! one" is settled when the file is read. `faults/member.rs` carries it out through the
//! kernel's control surface.

use serde::{Deserialize, Serialize};

use super::duration::SimDuration;

/// A role as a scenario file writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSpec {
    Admin,
    Member,
}

impl RoleSpec {
    pub fn role(self) -> meshlog_core::member::Role {
        match self {
            RoleSpec::Admin => meshlog_core::member::Role::Admin,
            RoleSpec::Member => meshlog_core::member::Role::Member,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetRoleSpec {
    pub device: String,
    pub role: RoleSpec,
}

/// `invite = { name, role, valid_for, uses }`: the admin's node makes an invite (its
/// `create_invite`), kept by the world under `name` for a later `join`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InviteSpec {
    pub name: String,
    #[serde(default = "member_role")]
    pub role: RoleSpec,
    /// How long it stays good, on the admin's clock (default 1h).
    #[serde(default = "one_hour")]
    pub valid_for: SimDuration,
    #[serde(default = "one_use")]
    pub uses: u16,
}

fn member_role() -> RoleSpec {
    RoleSpec::Member
}
fn one_hour() -> SimDuration {
    SimDuration::from_secs(3_600)
}
fn one_use() -> u16 {
    1
}

/// How a join is expected to be refused (`expect`), by its drop code less `join_`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinRefusal {
    Forged,
    Expired,
    UsedUp,
    /// A join request already answered, sent again (`replay_join`).
    Repeat,
}

impl JoinRefusal {
    /// The drop code the admitting node counts.
    pub fn code(self) -> &'static str {
        match self {
            JoinRefusal::Forged => "join_forged",
            JoinRefusal::Expired => "join_expired",
            JoinRefusal::UsedUp => "join_used_up",
            JoinRefusal::Repeat => "join_repeat",
        }
    }
}

/// `join = { device, invite, forge, expect }`: a device outside the genesis roster joins with
/// the invite named; `forge = true` tampers with the grant after the admin signed it (an
/// attacker's invite); `expect` says the join must be refused, and with which code.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    pub device: String,
    pub invite: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forge: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<JoinRefusal>,
}

impl JoinSpec {
    /// What must become of it: `None`, welcomed.
    pub fn refusal(&self) -> Option<JoinRefusal> {
        if self.forge {
            Some(JoinRefusal::Forged)
        } else {
            self.expect
        }
    }
}

/// `replay_join = { device, to }`: an eavesdropper sends the join request `device` sent (the
/// same bytes) to the member `to`, who must answer it as a repeat and store nothing.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayJoinSpec {
    pub device: String,
    pub to: String,
}

/// One membership change at `at`, made by `by` (`None`: the first genesis admin).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "MemberSpec", into = "MemberSpec")]
pub struct MemberChange {
    pub at: SimDuration,
    pub by: Option<String>,
    pub action: MemberAction,
}

/// What a membership change does.
#[derive(Clone, Debug, PartialEq)]
pub enum MemberAction {
    /// The device is removed; the admin's node starts a new key epoch at once.
    Remove(String),
    /// A new key epoch on demand.
    Rotate,
    /// The device gets `role`.
    SetRole { device: String, role: RoleSpec },
    /// An invite made by the admin's node.
    Invite(InviteSpec),
    /// A device outside the genesis roster joins (or tries to).
    Join(JoinSpec),
    /// A recorded join request sent again.
    ReplayJoin(ReplayJoinSpec),
    /// A thief takes the device's keys as they are now (its device key, the epoch keys it
    /// keeps, its receive secrets): the `forward_secrecy` checker judges what they open.
    StealKeys(String),
}

impl MemberAction {
    /// The field that names it in a file.
    pub fn name(&self) -> &'static str {
        match self {
            MemberAction::Remove(_) => "remove",
            MemberAction::Rotate => "rotate",
            MemberAction::SetRole { .. } => "set_role",
            MemberAction::Invite(_) => "invite",
            MemberAction::Join(_) => "join",
            MemberAction::ReplayJoin(_) => "replay_join",
            MemberAction::StealKeys(_) => "steal_keys",
        }
    }
    /// The device it acts on, if any.
    pub fn device(&self) -> Option<&str> {
        match self {
            MemberAction::Remove(d)
            | MemberAction::StealKeys(d)
            | MemberAction::SetRole { device: d, .. } => Some(d),
            MemberAction::Join(JoinSpec { device, .. })
            | MemberAction::ReplayJoin(ReplayJoinSpec { device, .. }) => Some(device),
            MemberAction::Rotate | MemberAction::Invite(_) => None,
        }
    }
}

impl MemberChange {
    /// The line the trace writes for it: its TOML, one line.
    pub fn to_line(&self) -> String {
        toml::to_string(self)
            .unwrap_or_default()
            .replace('\n', "; ")
    }
}

const ACTIONS: &str = "remove, rotate, set_role, invite, join, replay_join, steal_keys";

/// A change as the file writes it: one optional field per action, exactly one of them set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberSpec {
    pub(super) at: SimDuration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) remove: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rotate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) set_role: Option<SetRoleSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) invite: Option<InviteSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) join: Option<JoinSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) replay_join: Option<ReplayJoinSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) steal_keys: Option<String>,
    /// Not supported: a device outside the genesis roster joins with `invite` and `join`.
    /// Read only to say so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) add: Option<String>,
}

impl TryFrom<MemberSpec> for MemberChange {
    type Error = String;

    fn try_from(spec: MemberSpec) -> Result<MemberChange, String> {
        if spec.add.is_some() {
            return Err(
                "`add` is not supported: a device outside the genesis roster joins \
                        with `invite` and `join`"
                    .into(),
            );
        }
        let mut actions = Vec::new();
        if let Some(device) = spec.remove {
            actions.push(MemberAction::Remove(device));
        }
        match spec.rotate {
            Some(true) => actions.push(MemberAction::Rotate),
            Some(false) => return Err("`rotate = false` does nothing: leave the change out".into()),
            None => {}
        }
        if let Some(SetRoleSpec { device, role }) = spec.set_role {
            actions.push(MemberAction::SetRole { device, role });
        }
        actions.extend(spec.invite.map(MemberAction::Invite));
        actions.extend(spec.join.map(MemberAction::Join));
        actions.extend(spec.replay_join.map(MemberAction::ReplayJoin));
        actions.extend(spec.steal_keys.map(MemberAction::StealKeys));
        if actions.len() != 1 {
            return Err(format!("needs exactly one of {ACTIONS}"));
        }
        Ok(MemberChange {
            at: spec.at,
            by: spec.by,
            action: actions.pop().expect("one"),
        })
    }
}

impl From<MemberChange> for MemberSpec {
    fn from(change: MemberChange) -> MemberSpec {
        let mut spec = MemberSpec {
            at: change.at,
            by: change.by,
            ..MemberSpec::default()
        };
        match change.action {
            MemberAction::Remove(d) => spec.remove = Some(d),
            MemberAction::Rotate => spec.rotate = Some(true),
            MemberAction::SetRole { device, role } => {
                spec.set_role = Some(SetRoleSpec { device, role });
            }
            MemberAction::Invite(invite) => spec.invite = Some(invite),
            MemberAction::Join(join) => spec.join = Some(join),
            MemberAction::ReplayJoin(replay) => spec.replay_join = Some(replay),
            MemberAction::StealKeys(device) => spec.steal_keys = Some(device),
        }
        spec
    }
}
