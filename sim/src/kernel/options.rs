//! How a world runs beyond its scenario and seed: the switches of [`WorldOptions`].

use std::rc::Rc;

use super::store::StoreProvider;

/// How a world runs, beyond its scenario and seed. `signature_memo` changes no trace;
/// `stores` opens the devices' stores when the scenario asks for real ones; the other fields
/// break the world on purpose.
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// Share signature checks between the devices (see `meshlog_core::crypto::SignatureMemo`):
    /// all ten devices of a mesh check each event's author signature, and a check costs more
    /// than the rest of a delivery together. On by default; off only to show it changes no
    /// digest.
    pub signature_memo: bool,
    /// A broken driver, only to show the prompt-delivery checker failing (it changes the
    /// trace): what a device appends waits in its node's queue until the device next wakes or
    /// receives a datagram, instead of going out at once.
    pub hold_appends: bool,
    /// A store that commits the device's own events as lazily as received ones, only to show
    /// the own-event checker failing: a power cut takes them too.
    pub power_cut_loses_own: bool,
    /// Nodes that stamp events with their device's raw clock, not the hybrid clock, only to
    /// show the clock-order checker failing under skew.
    pub raw_clocks: bool,
    /// Opens each device's store for a scenario with `[world] store = "sqlite"` (the
    /// `meshlog` binary's SQLite files); unused by a memory world. A SQLite scenario without
    /// one does not build.
    pub stores: Option<Rc<dyn StoreProvider>>,
    /// A driver that starts a welcomed device without the epoch keys its welcome carried,
    /// only to show the `joined` checker failing: it cannot open what was sealed before.
    pub welcome_without_keys: bool,
    /// An attacker who holds an admin's signing key, only to show the join-attack checker
    /// failing: a `forge = true` invite is signed properly, and admitted.
    pub forge_invites_with_admin_key: bool,
    /// A node that skips the author-signature check, only to show the forged-author
    /// checker failing; the core has no such switch, so the kernel stores each forged event
    /// straight into its target's store.
    pub store_forged_events: bool,
    /// Nodes that keep every key for ever whatever `[sync] key_retention` says, only to show
    /// the forward-secrecy checker failing.
    pub ignore_key_retention: bool,
    /// Strangers (`[world] strangers`) that hold the community's key, only to show the
    /// strangers checker failing: they open the members' announcements.
    pub strangers_hold_the_key: bool,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            signature_memo: true,
            hold_appends: false,
            power_cut_loses_own: false,
            raw_clocks: false,
            stores: None,
            welcome_without_keys: false,
            forge_invites_with_admin_key: false,
            store_forged_events: false,
            ignore_key_retention: false,
            strangers_hold_the_key: false,
        }
    }
}
