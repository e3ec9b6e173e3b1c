//! Joins in a scenario: which devices start outside the genesis roster (those a `join`
//! names), and what the file must get right about invites and joins before a world is built.

use super::member::{JoinRefusal, MemberAction, MemberChange};
use super::{Scenario, ScenarioError};

impl Scenario {
    /// The devices a `[[member]] join` names: outside the genesis roster, with no node until
    /// a welcome starts one. In the order of `devices`.
    pub fn outsiders(&self) -> Vec<&str> {
        self.devices
            .iter()
            .map(String::as_str)
            .filter(|name| {
                self.members
                    .iter()
                    .any(|c| matches!(&c.action, MemberAction::Join(j) if j.device == *name))
            })
            .collect()
    }

    pub fn is_outsider(&self, name: &str) -> bool {
        self.outsiders().contains(&name)
    }
}

/// One change's join rules: an invite's name is new and its uses sane; a join names an
/// invite made earlier in the file, is made by nobody (`by` is for admins' changes), and a
/// device is welcomed at most once; an outsider is no admin and makes no change itself; a
/// replay copies a join expected to be welcomed, to a genesis member.
pub(crate) fn validate_join(
    scenario: &Scenario,
    index: usize,
    change: &MemberChange,
    field: &str,
    // `validate.rs`'s `Invalid`, spelled out: that file calls this one.
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<(), ScenarioError> {
    let earlier = &scenario.members[..index];
    let outsider = |name: &str| scenario.is_outsider(name);
    let by = scenario.member_by(change);
    if outsider(&by) {
        return Err(invalid(
            field,
            format!("{by:?} joins with an invite: it is no genesis admin to make a change"),
        ));
    }
    let invite_made = |name: &str| {
        earlier
            .iter()
            .any(|c| matches!(&c.action, MemberAction::Invite(i) if i.name == name))
    };
    match &change.action {
        MemberAction::Invite(invite) => {
            if invite_made(&invite.name) {
                return Err(invalid(
                    field,
                    format!("invite {:?} made twice", invite.name),
                ));
            }
            if invite.uses == 0 || invite.uses > meshlog_core::member::invite::INVITE_USES_MAX {
                return Err(invalid(field, format!("uses = {}, 1..=1000", invite.uses)));
            }
        }
        MemberAction::Join(join) => {
            if !invite_made(&join.invite) {
                return Err(invalid(
                    field,
                    format!("no invite {:?} made before it", join.invite),
                ));
            }
            if change.by.is_some() {
                return Err(invalid(
                    field,
                    "a join is made by its device: no `by`".into(),
                ));
            }
            if join.expect == Some(JoinRefusal::Repeat) {
                return Err(invalid(
                    field,
                    "`repeat` is what `replay_join` expects".into(),
                ));
            }
            let welcomed_before = earlier.iter().any(|c| {
                matches!(&c.action, MemberAction::Join(j)
                    if j.device == join.device && j.refusal().is_none())
            });
            if welcomed_before {
                return Err(invalid(
                    field,
                    format!("{:?} already joins earlier in the file", join.device),
                ));
            }
        }
        MemberAction::ReplayJoin(replay) => {
            let copied = earlier.iter().any(|c| {
                matches!(&c.action, MemberAction::Join(j)
                    if j.device == replay.device && j.refusal().is_none())
            });
            if !copied {
                return Err(invalid(
                    field,
                    format!("no join of {:?} to copy earlier in the file", replay.device),
                ));
            }
            if !scenario.devices.contains(&replay.to) || outsider(&replay.to) {
                return Err(invalid(
                    field,
                    format!("{:?} is no genesis member to send it to", replay.to),
                ));
            }
        }
        MemberAction::Remove(d) | MemberAction::SetRole { device: d, .. } if outsider(d) => {
            return Err(invalid(
                field,
                format!(
                    "{d:?} joins with an invite: removing it or changing its role is not modelled"
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}
