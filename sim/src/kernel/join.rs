//! Joining: invites an admin's node makes, and devices outside the genesis roster that join
//! with them. A joining device runs the core's sans-IO `Joiner`, as the backend's
//! `meshlog device --join` does (`backend/src/device/join.rs`): the kernel puts its join
//! requests on the simulated link to the inviter, hands it whatever arrives, and when a
//! welcome opens, stores the welcome's membership events and starts the device's node from
//! the welcome's community, with the inviter as its one peer.
//!
//! The world keeps the invites by name and each joiner's first request, so an attacker can
//! tamper with an invite (`forge`) or send a request again (`replay_join`).

use meshlog_core::member::join::Joiner;
use meshlog_core::member::{Invite, Role};
use meshlog_core::testing::keys;
use meshlog_core::{Config, PacketKind, Store};

use super::device::Joining;
use super::{start_node, Happening, Item, Sender, World};
use crate::scenario::{InviteSpec, JoinSpec, ReplayJoinSpec};

impl World {
    /// `by`'s node makes the invite `spec` names; the world keeps it for the joins.
    pub fn make_invite(&mut self, index: usize, by: usize, spec: &InviteSpec) {
        let now = self.devices[by].clock.read(self.now);
        let address = self.devices[by].name.to_string();
        let made = match self.devices[by].node.as_mut() {
            None => Err("its node is down".to_owned()),
            Some(node) => node
                .create_invite(now, spec.role.role(), spec.valid_for.0, spec.uses, address)
                .map_err(|err| err.to_string()),
        };
        let outcome = match made {
            Ok(invite) => {
                let outcome = format!("invite expires at {}", invite.grant.expires_at);
                self.invites.insert(spec.name.clone(), invite);
                outcome
            }
            Err(why) => format!("refused: {why}"),
        };
        self.member_outcome(index, &outcome);
    }

    /// `spec.device` starts asking the invite's inviter to let it in.
    pub fn start_join(&mut self, index: usize, spec: &JoinSpec) {
        let device = self.device(&spec.device);
        let Some(mut invite) = self.invites.get(&spec.invite).cloned() else {
            return self.member_outcome(index, "refused: no such invite was made");
        };
        if spec.forge {
            invite = forge(invite, self.seed, self.options.forge_invites_with_admin_key);
        }
        if self.devices[device].node.is_some() || self.devices[device].joining.is_some() {
            return self.member_outcome(index, "refused: already in or joining");
        }
        let Some(&inviter) = self.index.get(&invite.inviter) else {
            return self.member_outcome(index, "refused: the inviter is unknown");
        };
        let joiner = Joiner::new(keys(spec.device.as_str(), self.seed), invite);
        self.devices[device].joining = Some(Box::new(Joining { joiner, inviter }));
        let outcome = format!("joining via {}", self.devices[inviter].name);
        self.member_outcome(index, &outcome);
        self.join_poll(device);
    }

    /// The joiner's next request, if one is due, and its next wake-up.
    pub(crate) fn join_poll(&mut self, device: usize) {
        let now = self.devices[device].clock.read(self.now);
        let Some(joining) = self.devices[device].joining.as_mut() else {
            return;
        };
        let inviter = joining.inviter;
        match joining.joiner.poll_transmit(now) {
            Ok(Some(request)) => {
                self.join_requests
                    .entry(device)
                    .or_insert_with(|| request.clone());
                let source = self.addresses.of(device);
                self.put_on_wire(
                    (device, source),
                    inviter,
                    PacketKind::Join,
                    request,
                    &"join request",
                    Sender::Node,
                );
            }
            Ok(None) => {}
            Err(gave_up) => {
                return self.join_ended(device, false, &gave_up.to_string());
            }
        }
        let Some(joining) = self.devices[device].joining.as_ref() else {
            return;
        };
        let at = self.devices[device]
            .clock
            .world_time_of(joining.joiner.poll_timeout())
            .max(self.now);
        self.schedule(at, Item::JoinPoll(device));
    }

    /// A datagram reached a joining device: a welcome that opens starts its node.
    pub(crate) fn joiner_receives(&mut self, device: usize, bytes: &[u8]) {
        let Some(joining) = self.devices[device].joining.as_mut() else {
            return;
        };
        let welcomed = match joining.joiner.handle_datagram(bytes) {
            Ok(Some(welcomed)) => welcomed,
            Ok(None) => return,
            Err(err) => {
                return self.join_ended(device, false, &err.to_string());
            }
        };
        let inviter = joining.inviter;
        self.devices[device].joining = None;
        let mut community = welcomed.community;
        if self.options.welcome_without_keys {
            community = community.with_epoch_keys(Default::default());
        }
        if self.options.signature_memo {
            community = community.with_signature_memo();
        }
        let d = &mut self.devices[device];
        {
            let mut store = d.store.borrow_mut();
            store
                .insert_all(&welcomed.events, self.now.as_micros())
                .expect("a joining device's store takes the welcome");
            store.commit().expect("and commits it");
        }
        let mut config = Config::new(
            d.config.keys.clone(),
            community,
            vec![self.devices[inviter].name.clone()],
            [0; 32],
        );
        super::build::tune(&mut config, &self.scenario, &self.options);
        // It knows where its inviter was when the invite reached it.
        let inviter_at = (
            self.devices[inviter].name.clone(),
            self.addresses.of(inviter),
        );
        let own = self
            .scenario
            .world
            .peer_exchange
            .then(|| self.addresses.of(device));
        let d = &mut self.devices[device];
        d.config = config;
        d.outsider = false;
        d.down_for_good = false;
        d.configured = std::collections::BTreeMap::from([inviter_at]);
        let node = start_node(d, self.seed, self.now, own).expect("a welcome makes a valid config");
        d.node = Some(node);
        let outcome = format!(
            "welcomed by {} with {} events",
            self.devices[inviter].name,
            welcomed.events.len()
        );
        self.join_ended(device, true, &outcome);
        self.emit(Happening::Restarted { device });
        self.drain(device);
        self.start_announcing(device);
    }

    /// An eavesdropper sends `spec.device`'s recorded join request to `spec.to`.
    pub fn replay_join(&mut self, index: usize, spec: &ReplayJoinSpec) {
        let (from, to) = (self.device(&spec.device), self.device(&spec.to));
        let Some(request) = self.join_requests.get(&from).cloned() else {
            return self.member_outcome(index, "refused: no request of it was seen");
        };
        self.member_outcome(index, "sent again");
        // From the eavesdropper's own socket, past the link's loss: the attack is judged,
        // not the dice.
        let arrives = self.now
            + meshlog_core::Duration::from_micros(self.link_model(from, to).latency_us_min);
        self.emit(Happening::HostileSent {
            from,
            to,
            kind: PacketKind::Join,
            bytes: request.len(),
            attack: "join_replay",
        });
        self.schedule(
            arrives,
            Item::Deliver {
                from,
                to,
                kind: PacketKind::Join,
                bytes: request,
                origin: Sender::Hostile,
                corrupted: false,
                source: self.addresses.of(from),
            },
        );
    }

    fn join_ended(&mut self, device: usize, welcomed: bool, outcome: &str) {
        self.devices[device].joining = None;
        self.emit(Happening::JoinEnded {
            device,
            welcomed,
            outcome,
        });
    }

    pub(super) fn member_outcome(&mut self, index: usize, outcome: &str) {
        let change = self.scenario.members[index].clone();
        self.emit(Happening::Member {
            change: &change,
            outcome: Some(outcome),
        });
    }
}

/// An attacker's invite: the grant claims admin rights for a thousand uses, which the admin
/// never signed. With `admin_key` (a world broken on purpose) the attacker holds the admin's
/// signing key and makes such an invite properly signed, as a stolen admin key would.
fn forge(invite: Invite, seed: u64, admin_key: bool) -> Invite {
    let uses = meshlog_core::member::invite::INVITE_USES_MAX;
    if admin_key {
        let admin = keys(invite.grant.admin.as_str(), seed);
        let secret = meshlog_core::testing::derive_seed(seed, "stolen admin key invite");
        return Invite::new(
            &admin,
            invite.grant.community,
            Role::Admin,
            invite.grant.expires_at,
            uses,
            secret,
            invite.address.clone(),
        )
        .expect("a valid invite");
    }
    let mut invite = invite;
    invite.grant.role = Role::Admin;
    invite.grant.uses = uses;
    invite
}
