//! The membership verbs a device's owner (or the simulator) calls: remove, add, set a role,
//! rotate, invite, certify this device for its person, remove a person. Each checks what the
//! settled roster allows, then appends membership events; the roster, not the verb, decides
//! what they did.

use rand_core::RngCore;

use super::super::Node;
use super::MemberError;
use crate::crypto::PublicKey;
use crate::id::DeviceId;
use crate::member::{Invite, MemberOp, PersonKeys, Role, Status};
use crate::store::Store;
use crate::time::{Duration, Instant};

impl<S: Store> Node<S> {
    fn require_admin(&self) -> Result<(), MemberError> {
        let me = &self.config.keys.device;
        if !self.membership.roster.is_active(me) {
            return Err(MemberError::Removed);
        }
        if !self.membership.roster.is_admin(me) {
            return Err(MemberError::NotAnAdmin);
        }
        Ok(())
    }

    /// Removes `device` (admins only); a new key epoch follows in the same call.
    pub fn remove_member(&mut self, now: Instant, device: &DeviceId) -> Result<u32, MemberError> {
        self.require_admin()?;
        let roster = &self.membership.roster;
        if !roster.is_active(device) {
            return Err(MemberError::NotAMember(device.to_string()));
        }
        if roster.is_admin(device)
            && roster
                .active()
                .filter(|(_, m)| m.role == Role::Admin)
                .count()
                == 1
        {
            return Err(MemberError::LastAdmin);
        }
        self.append_ops_now(
            now,
            vec![MemberOp::Remove {
                device: device.clone(),
            }],
        )?;
        // `observe_stored` saw the removal and, this device being an admin, started the epoch.
        Ok(self.key_epoch())
    }

    /// Adds a device whose key an admin already knows.
    pub fn add_member(
        &mut self,
        now: Instant,
        device: &DeviceId,
        key: PublicKey,
        role: Role,
    ) -> Result<(), MemberError> {
        self.require_admin()?;
        if self.membership.roster.members.contains_key(device) {
            return Err(MemberError::NameTaken(device.to_string()));
        }
        self.append_ops_now(
            now,
            vec![MemberOp::Add {
                device: device.clone(),
                key,
                role,
            }],
        )?;
        Ok(())
    }

    pub fn set_role(
        &mut self,
        now: Instant,
        device: &DeviceId,
        role: Role,
    ) -> Result<(), MemberError> {
        self.require_admin()?;
        let roster = &self.membership.roster;
        if !roster.is_active(device) {
            return Err(MemberError::NotAMember(device.to_string()));
        }
        let admins = roster
            .active()
            .filter(|(_, m)| m.role == Role::Admin)
            .count();
        if roster.is_admin(device) && role != Role::Admin && admins == 1 {
            return Err(MemberError::LastAdmin);
        }
        self.append_ops_now(
            now,
            vec![MemberOp::SetRole {
                device: device.clone(),
                role,
            }],
        )?;
        Ok(())
    }

    /// Starts a new key epoch on demand (admins only).
    pub fn rotate_keys(&mut self, now: Instant) -> Result<u32, MemberError> {
        self.require_admin()?;
        self.start_epoch(now)?;
        self.drop_leaving_peers();
        Ok(self.key_epoch())
    }

    /// An invite signed by this device (admins only), valid for `valid_for` from `now` on
    /// this device's clock. `address` tells the new device where to find this one.
    pub fn create_invite(
        &mut self,
        now: Instant,
        role: Role,
        valid_for: Duration,
        uses: u16,
        address: String,
    ) -> Result<Invite, MemberError> {
        self.require_admin()?;
        let mut secret = [0u8; 32];
        self.rng.fill_bytes(&mut secret);
        let now = self.advance(now);
        let expires_at = Instant::from_micros(
            self.clock
                .last()
                .max(now)
                .as_micros()
                .saturating_add(valid_for.as_micros()),
        );
        Ok(Invite::new(
            &self.config.keys,
            *self.config.community.id(),
            role,
            expires_at,
            uses,
            secret,
            address,
        )?)
    }
    /// Publishes `person`'s certificate for this device, once: the roster then knows the
    /// device as theirs. Nothing to do if it already does.
    pub fn certify(&mut self, now: Instant, person: &PersonKeys) -> Result<(), MemberError> {
        let me = self.config.keys.device.clone();
        let Some(info) = self.membership.roster.members.get(&me) else {
            return Err(MemberError::Removed);
        };
        if info.status != Status::Active {
            return Err(MemberError::Removed);
        }
        match &info.person {
            Some(known) if known == person.name() => return Ok(()),
            Some(known) => return Err(MemberError::Certified(known.to_string())),
            None => {}
        }
        if let Some(known) = self.membership.roster.persons.get(person.name()) {
            if known.key != person.public() {
                return Err(MemberError::PersonKeyMismatch(person.name().to_string()));
            }
        }
        let cert = person.certify(self.config.community.id(), &me, &self.config.keys.public());
        self.append_ops_now(now, vec![MemberOp::Certify(Box::new(cert))])?;
        Ok(())
    }

    /// Removes `person` and every device certified for them (admins only); one new key epoch
    /// follows, as for a removal.
    pub fn remove_person(&mut self, now: Instant, person: &DeviceId) -> Result<u32, MemberError> {
        self.require_admin()?;
        let roster = &self.membership.roster;
        if roster
            .persons
            .get(person)
            .is_none_or(|p| p.status != Status::Active)
        {
            return Err(MemberError::NotAPerson(person.to_string()));
        }
        let admins_left = roster
            .active()
            .filter(|(_, m)| m.role == Role::Admin && m.person.as_ref() != Some(person))
            .count();
        if admins_left == 0 {
            return Err(MemberError::LastAdmin);
        }
        self.append_ops_now(
            now,
            vec![MemberOp::RemovePerson {
                person: person.clone(),
            }],
        )?;
        Ok(self.key_epoch())
    }
}
