//! A member's side of joining: a join request that checks out becomes an admission event, the
//! new device becomes a peer, and the welcome goes back to it, sealed to its key.
//!
//! Join requests come from devices no member shares a key with, so they are the one input a
//! stranger can make a member work for. The bounds: cheap checks first (the datagram decodes,
//! names this community); then at most `JOIN_CHECKS_PER_ROUND_MAX` requests per sync round
//! get their two signature checks, shared fairly between source addresses (`join_gate.rs`),
//! the rest are dropped and counted. A request already
//! answered (a lost welcome, or a copy of the request) gets the welcome again within the same
//! bound; nothing is stored twice.

use std::net::SocketAddr;

use rand_core::RngCore;

use super::addresses::AddressSource;
use super::{Link, Node, NodeEvent, Output, Transmit};
use crate::id::DeviceId;
use crate::member::roster::{check_admission, OpRecord};
use crate::member::welcome::{seal_welcome, JoinDatagram, JoinRequest, WelcomeContent};
use crate::member::{Admission, MemberOp};
use crate::packet::{PacketKind, PacketNote};
use crate::stats::PeerState;
use crate::store::Store;
use crate::time::Instant;

impl<S: Store> Node<S> {
    /// A join request from `source` (the datagram's address, which the fair share is kept by).
    pub(super) fn handle_join_datagram(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        let request = match JoinDatagram::decode(bytes) {
            Ok(JoinDatagram::Request(request)) => request,
            Ok(JoinDatagram::Welcome(_)) => return self.stats.drop("join_unexpected_welcome"),
            Err(_) => return self.stats.drop("join_malformed"),
        };
        let me = self.config.keys.device.clone();
        if !self.membership.roster().is_active(&me) {
            return self.stats.drop("join_not_a_member");
        }
        if &request.grant.community != self.config.community.id() {
            return self.stats.drop("join_wrong_community");
        }
        if let Err(code) = self.join_gate.admit(source) {
            return self.stats.drop(code);
        }

        let known = self
            .membership
            .roster()
            .members
            .get(&request.device)
            .cloned();
        match known {
            Some(member) if member.key == request.key => {
                // Admitted before (by us or another member): the proof still has to hold, or
                // anyone could make us send a welcome by naming a member.
                if !crate::member::invite::verify_proof(
                    &request.grant,
                    &request.device,
                    &request.key,
                    &request.proof,
                ) || member.status != crate::member::Status::Active
                {
                    self.join_gate.refused(source);
                    return self.stats.drop("join_refused");
                }
                self.stats.drop("join_repeat");
                let _ = self.ensure_peer(&request.device);
                self.send_welcome(&request);
            }
            _ => self.admit(now, source, *request),
        }
    }

    fn admit(&mut self, now: Instant, source: SocketAddr, request: JoinRequest) {
        let me = self.config.keys.device.clone();
        let now = self.advance(now);
        let record = OpRecord {
            author: me,
            created_at: self.clock.last().max(now),
            parents: Vec::new(),
            op: MemberOp::Admit(Box::new(Admission {
                grant: request.grant.clone(),
                device: request.device.clone(),
                key: request.key,
                proof: request.proof,
            })),
        };
        let community = *self.config.community.id();
        if let Err(refusal) = check_admission(
            &community,
            self.membership.roster(),
            &request.grant,
            &request.device,
            &request.key,
            &request.proof,
            &record,
        ) {
            self.join_gate.refused(source);
            self.stats.drop(refusal_code(&refusal));
            return self.emit(NodeEvent::JoinRefused {
                device: request.device,
                reason: refusal.to_string(),
            });
        }
        if self.append_ops(now, vec![record.op]).is_err() {
            return self.stats.drop("join_store_failed");
        }
        if !self.membership.roster().is_active(&request.device) {
            // The settled roster did not count it (a concurrent change): no welcome.
            return self.stats.drop("join_not_counted");
        }
        let _ = self.ensure_peer(&request.device);
        self.emit(NodeEvent::Admitted {
            device: request.device.clone(),
        });
        // Its welcome goes where the request came from. Only a fresh admission says where a
        // device is: a repeated request names a member anyone may name, so it moves nothing.
        if self.peers.contains_key(&request.device) {
            self.learn_address(&request.device, source, AddressSource::Joined);
        }
        self.send_welcome(&request);
    }

    /// Makes `device` a peer if it is not one (bounded by `PEERS_MAX`); false if it is not one
    /// after (no room, not in the roster, or a small-order key).
    pub(super) fn ensure_peer(&mut self, device: &DeviceId) -> bool {
        if self.peers.contains_key(device) {
            return true;
        }
        if self.peers.len() >= crate::config::PEERS_MAX {
            return false;
        }
        let Some(key) = self.membership.roster().members.get(device).map(|m| m.key) else {
            return false;
        };
        let keys = self.config.keys.clone();
        if !self
            .wire
            .keyring_mut()
            .add_peer(&keys, device, &key, &self.config.community)
        {
            return false;
        }
        let mut state = PeerState {
            rtt_estimate_us: super::followup::RTT_INITIAL_US,
            ..PeerState::default()
        };
        let link = Link {
            budget: super::budget::Budget::new(&mut state.budget),
            followup: super::followup::FollowUp::default(),
            check: super::check::ForwardCheck::default(),
            stream: self.new_stream(),
            fec: super::stream_fec::LinkFec::default(),
            held_pushes: Vec::new(),
            summary_at: None,
        };
        state.stream_rate = link.stream.rate();
        self.peers.insert(device.clone(), state);
        self.links.insert(device.clone(), link);
        true
    }

    fn send_welcome(&mut self, request: &JoinRequest) {
        let mut events = Vec::new();
        for id in self.membership.event_ids() {
            if let Ok(Some(sealed)) = self.store.get(&id) {
                events.push(sealed);
            }
        }
        let content = WelcomeContent {
            community_key: *self.config.community.key(),
            genesis: self.config.community.genesis(),
            epoch_keys: self.membership.keys().iter().map(|(_, k)| *k).collect(),
            events,
            inviter: self.config.keys.device.clone(),
        };
        let mut ephemeral = [0u8; 32];
        self.rng.fill_bytes(&mut ephemeral);
        let Some(parts) = seal_welcome(
            &content,
            &request.device,
            &request.key,
            request.grant.invite_key.to_bytes(),
            ephemeral,
        ) else {
            return self.stats.drop("welcome_too_large");
        };
        let count = parts.len();
        for bytes in parts {
            self.outputs.push_back(Output::Transmit(Transmit {
                to: request.device.clone(),
                // Where the book holds it: never the request's source as such, which a replay
                // could name to reflect the welcome at someone else.
                address: None,
                bytes,
                kind: PacketKind::Join,
                note: PacketNote::new(count, []),
            }));
        }
    }
}

fn refusal_code(refusal: &crate::member::InviteError) -> &'static str {
    use crate::member::InviteError as E;
    match refusal {
        E::Malformed(_) => "join_malformed",
        E::WrongCommunity => "join_wrong_community",
        E::Forged => "join_forged",
        E::Expired => "join_expired",
        E::UsedUp => "join_used_up",
        E::NotAnAdmin(_) => "join_not_an_admin",
        E::BadProof => "join_bad_proof",
        E::AlreadyMember(_) => "join_already_member",
        E::Removed(_) => "join_removed",
    }
}
