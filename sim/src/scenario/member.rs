//! `[[member]]`: one membership change an admin makes at `at`. In the file it is a table with
//! exactly one action (`remove = "carol"`, `rotate = true`, `set_role = { device, role }`)
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
}

impl MemberAction {
    /// The field that names it in a file.
    pub fn name(&self) -> &'static str {
        match self {
            MemberAction::Remove(_) => "remove",
            MemberAction::Rotate => "rotate",
            MemberAction::SetRole { .. } => "set_role",
        }
    }
    /// The device it acts on, if any.
    pub fn device(&self) -> Option<&str> {
        match self {
            MemberAction::Remove(d) | MemberAction::SetRole { device: d, .. } => Some(d),
            MemberAction::Rotate => None,
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

const ACTIONS: &str = "remove, rotate, set_role";

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
    /// Not supported yet: a device outside the genesis roster needs the invite and welcome
    /// path (issue 23), which the simulator does not model. Read only to say so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) add: Option<String>,
}

impl TryFrom<MemberSpec> for MemberChange {
    type Error = String;

    fn try_from(spec: MemberSpec) -> Result<MemberChange, String> {
        if spec.add.is_some() {
            return Err(
                "`add` is not supported yet: a device outside the genesis roster \
                        needs the invite and welcome path, which the simulator does not model"
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
        }
        spec
    }
}
