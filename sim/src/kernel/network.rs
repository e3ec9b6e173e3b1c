//! The virtual network: per-link fault models, partitions and cuts, and the fate of each
//! datagram (dropped with a cause, or delivered once or twice, late, maybe with a flipped bit).
//!
//! Rates are kept in parts per million and drawn with integer arithmetic from the network's
//! own ChaCha stream, so a run means the same on every platform. A rate of zero draws nothing,
//! so turning a fault off does not shift the dice of the others.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use meshlog_core::{Duration, Instant, PacketKind};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::scenario::{ForgeKeys, LinkSpec};

const PPM: u32 = 1_000_000;

/// Datagrams an attacker on one directed link keeps for replay, newest last. An attacker's
/// memory is finite, and the world's must be: 64 × 1,200 B is 77 KB a link at most (a ten-device
/// mesh: 7 MB). 64 reaches back several rounds on a busy link, further than a real capture
/// needs to, yet well inside a 1,024-counter replay window, so a replay is refused for having
/// been seen, not merely for being old.
pub const REPLAY_STORE_MAX: usize = 64;

fn ppm(rate: f64) -> u32 {
    (rate * f64::from(PPM)).round() as u32
}

/// How one directed link treats datagrams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkModel {
    pub latency_us_min: u64,
    pub latency_us_max: u64,
    /// 0: no limit.
    pub capacity_bytes_per_s: u64,
    pub queue_delay_us_max: u64,
    pub loss_ppm: u32,
    pub burst: Option<BurstModel>,
    pub duplicate_ppm: u32,
    pub reorder_ppm: u32,
    pub reorder_delay_us: u64,
    pub corrupt_ppm: u32,
    pub replay_ppm: u32,
    pub replay_delay_us: u64,
    pub forge_ppm: u32,
    /// The forger holds the claimed sender's keys (only to break a world).
    pub forge_stolen: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BurstModel {
    pub enter_ppm: u32,
    pub exit_ppm: u32,
    pub loss_ppm: u32,
}

impl Default for LinkModel {
    /// A quiet LAN: 5–20 ms, nothing lost.
    fn default() -> Self {
        LinkModel {
            latency_us_min: 5_000,
            latency_us_max: 20_000,
            capacity_bytes_per_s: 0,
            queue_delay_us_max: 100_000,
            loss_ppm: 0,
            burst: None,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_delay_us: 200_000,
            corrupt_ppm: 0,
            replay_ppm: 0,
            replay_delay_us: 2_000_000,
            forge_ppm: 0,
            forge_stolen: false,
        }
    }
}

impl LinkModel {
    /// Layers the fields `spec` sets over this model.
    pub fn apply(&mut self, spec: &LinkSpec) {
        if let Some(latency) = spec.latency {
            self.latency_us_min = latency.min.as_micros();
            self.latency_us_max = latency.max.as_micros();
        }
        if let Some(capacity) = spec.capacity_bytes_per_s {
            self.capacity_bytes_per_s = capacity;
        }
        if let Some(queue) = spec.queue_delay_max {
            self.queue_delay_us_max = queue.as_micros();
        }
        if let Some(loss) = spec.loss {
            self.loss_ppm = ppm(loss);
        }
        if let Some(burst) = spec.burst {
            self.burst = Some(BurstModel {
                enter_ppm: ppm(burst.enter),
                exit_ppm: ppm(burst.exit),
                loss_ppm: ppm(burst.loss),
            });
        }
        if let Some(rate) = spec.duplicate {
            self.duplicate_ppm = ppm(rate);
        }
        if let Some(rate) = spec.reorder {
            self.reorder_ppm = ppm(rate);
        }
        if let Some(delay) = spec.reorder_delay {
            self.reorder_delay_us = delay.as_micros();
        }
        if let Some(rate) = spec.corrupt {
            self.corrupt_ppm = ppm(rate);
        }
        if let Some(rate) = spec.replay {
            self.replay_ppm = ppm(rate);
        }
        if let Some(delay) = spec.replay_delay {
            self.replay_delay_us = delay.as_micros();
        }
        if let Some(rate) = spec.forge {
            self.forge_ppm = ppm(rate);
        }
        if let Some(keys) = spec.forge_keys {
            self.forge_stolen = keys == ForgeKeys::Stolen;
        }
    }
}

/// Why the network lost a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropCause {
    Loss,
    Burst,
    Partition,
    Cut,
    /// The link's queue was full: the datagram would have waited longer than the link's
    /// `queue_delay_max` behind those before it.
    Queue,
    /// Nobody holds the address the sender's driver resolved the peer to (it moved, or was
    /// never known there).
    NoRoute,
    /// A NAT box let it not in: no live mapping on that port, or none that sent to its
    /// source (`nat.rs`).
    Unsolicited,
    /// A NAT box had no free port for a new mapping.
    NatPorts,
}

impl DropCause {
    pub fn code(self) -> &'static str {
        match self {
            DropCause::Loss => "loss",
            DropCause::Burst => "burst_loss",
            DropCause::Partition => "partition",
            DropCause::Cut => "cut",
            DropCause::Queue => "queue_full",
            DropCause::NoRoute => "no_route",
            DropCause::Unsolicited => "unsolicited",
            DropCause::NatPorts => "nat_ports",
        }
    }
}

/// One copy of a datagram on its way.
#[derive(Debug)]
pub struct Delivery {
    pub at: Instant,
    pub bytes: Vec<u8>,
    pub duplicate: bool,
    pub reordered: bool,
    pub corrupted: bool,
}

/// A datagram recorded off a link, as its receiver accepted it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub kind: PacketKind,
    pub bytes: Vec<u8>,
    /// The receiver's incarnation that accepted it: a restarted node has not seen it.
    pub incarnation: u32,
    /// The source address it arrived from (a replay claims it again).
    pub source: std::net::SocketAddr,
}

/// A recorded datagram to be re-sent on its link at `at`.
#[derive(Debug)]
pub struct Replay {
    pub at: Instant,
    pub datagram: Recorded,
}

/// Who set a link rule: the scenario's own network, or a fault (lifted at the final heal
/// unless permanent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Scenario,
    Fault { permanent: bool },
}

/// A directed link, sender first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Link {
    from: usize,
    to: usize,
}

#[derive(Debug)]
pub struct Network {
    devices: usize,
    /// Rules for every link, in the order they were set; later ones win field by field.
    rules_all: Vec<(Source, LinkSpec)>,
    /// Rules for single directed links.
    rules_link: Vec<(Source, usize, usize, LinkSpec)>,
    // Per-link state is sparse, keyed by `Link`: a dense array per directed link grows as
    // devices² (a 1,000-device world: a million links, 80 MB of models and 32 MB of empty
    // replay queues), while a world's traffic and faults touch N × k links at most.
    /// The effective model of every link without a rule of its own.
    model_all: LinkModel,
    /// The effective model of each link with a `rules_link` rule (no more than there are rules).
    models_link: BTreeMap<Link, LinkModel>,
    /// Gilbert-Elliott state: the links in the bad state now (at most the links that carried
    /// a datagram while a burst model applied).
    burst_bad: BTreeSet<Link>,
    /// Partition group of each device; equal groups reach each other.
    groups: Vec<u32>,
    groups_permanent: bool,
    /// One-way cuts and whether each survives the final heal (no more than the faults made).
    cuts: BTreeMap<Link, bool>,
    /// When the last datagram queued on each capacity-limited link has left it (no more than
    /// the links that carried a datagram under a capacity).
    busy_until: BTreeMap<Link, Instant>,
    rng: ChaCha20Rng,
    /// What an attacker recorded on each link that replays and carried a datagram.
    recorded: BTreeMap<Link, VecDeque<Recorded>>,
    /// The replays' own dice: turning replay on does not shift loss, latency or the rest.
    replay_rng: ChaCha20Rng,
    /// The forger's own dice, for the same reason.
    forge_rng: ChaCha20Rng,
}

impl Network {
    /// `seeds`: the network's own dice, the replaying attacker's and the forger's.
    pub fn new(devices: usize, seeds: [[u8; 32]; 3], all: &LinkSpec) -> Self {
        let [seed, replay_seed, forge_seed] = seeds;
        let mut network = Network {
            devices,
            rules_all: vec![(Source::Scenario, all.clone())],
            rules_link: Vec::new(),
            model_all: LinkModel::default(),
            models_link: BTreeMap::new(),
            burst_bad: BTreeSet::new(),
            groups: vec![0; devices],
            groups_permanent: false,
            cuts: BTreeMap::new(),
            busy_until: BTreeMap::new(),
            rng: ChaCha20Rng::from_seed(seed),
            recorded: BTreeMap::new(),
            replay_rng: ChaCha20Rng::from_seed(replay_seed),
            forge_rng: ChaCha20Rng::from_seed(forge_seed),
        };
        network.rebuild();
        network
    }

    /// A scenario `[[link]]` override (`both` already expanded by the caller).
    pub fn set_link(&mut self, from: usize, to: usize, spec: &LinkSpec) {
        self.rules_link
            .push((Source::Scenario, from, to, spec.clone()));
        self.rebuild();
    }

    /// A fault's `network = {…}`: every link, or one link when `link` is given.
    pub fn change(&mut self, link: Option<(usize, usize)>, spec: &LinkSpec, permanent: bool) {
        let source = Source::Fault { permanent };
        match link {
            None => self.rules_all.push((source, spec.clone())),
            Some((from, to)) => self.rules_link.push((source, from, to, spec.clone())),
        }
        self.rebuild();
    }

    pub fn partition(&mut self, groups: Vec<u32>, permanent: bool) {
        assert_eq!(groups.len(), self.devices);
        self.groups = groups;
        self.groups_permanent = permanent;
    }

    pub fn cut(&mut self, from: usize, to: usize, permanent: bool) {
        self.cuts.insert(self.link(from, to), permanent);
    }

    pub fn restore(&mut self, from: usize, to: usize) {
        self.cuts.remove(&self.link(from, to));
    }

    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.cuts.contains_key(&self.link(from, to))
    }

    /// Lifts partitions and cuts; with `final_heal`, also fault-made link changes. Whatever
    /// was marked permanent stays, at any heal.
    pub fn heal(&mut self, final_heal: bool) {
        let keep = |source: Source| !final_heal || source != Source::Fault { permanent: false };
        if !self.groups_permanent {
            self.groups.iter_mut().for_each(|g| *g = 0);
        }
        self.cuts.retain(|_, permanent| *permanent);
        self.rules_all.retain(|(source, _)| keep(*source));
        self.rules_link.retain(|(source, ..)| keep(*source));
        self.rebuild();
    }

    pub fn model(&self, from: usize, to: usize) -> &LinkModel {
        self.model_of(self.link(from, to))
    }

    fn model_of(&self, link: Link) -> &LinkModel {
        self.models_link.get(&link).unwrap_or(&self.model_all)
    }

    fn link(&self, from: usize, to: usize) -> Link {
        debug_assert!(from < self.devices && to < self.devices);
        Link { from, to }
    }

    /// The longest a datagram sent now from `from` to `to` can take, if it is sure to arrive
    /// intact: no partition, cut, loss, burst loss or corruption on the link.
    pub fn sure_latency_us(&self, from: usize, to: usize) -> Option<u64> {
        let link = self.link(from, to);
        let model = self.model_of(link);
        let clean = self.groups[from] == self.groups[to]
            && !self.cuts.contains_key(&link)
            && model.loss_ppm == 0
            && model.capacity_bytes_per_s == 0
            && model.burst.is_none()
            && model.corrupt_ppm == 0;
        let reorder_us = if model.reorder_ppm > 0 {
            model.reorder_delay_us
        } else {
            0
        };
        clean.then_some(model.latency_us_max + reorder_us)
    }

    /// Whether the forger on the link sends a forgery beside a datagram sent now. Draws
    /// nothing where the rate is zero.
    pub fn forge_now(&mut self, from: usize, to: usize) -> bool {
        let ppm = self.model(from, to).forge_ppm;
        chance(&mut self.forge_rng, ppm)
    }

    /// A number from the forger's dice (counters, garbage).
    pub fn forge_draw(&mut self) -> u64 {
        self.forge_rng.next_u64()
    }

    /// Decides what becomes of a datagram sent now from `from` to `to`.
    pub fn transmit(
        &mut self,
        now: Instant,
        from: usize,
        to: usize,
        mut bytes: Vec<u8>,
    ) -> Result<Vec<Delivery>, DropCause> {
        let link = self.link(from, to);
        if self.groups[from] != self.groups[to] {
            return Err(DropCause::Partition);
        }
        if self.cuts.contains_key(&link) {
            return Err(DropCause::Cut);
        }
        let model = self.models_link.get(&link).unwrap_or(&self.model_all);
        // A limited link serialises: this datagram leaves once those before it have, unless
        // that is too long a wait. Loss is drawn after, so a lost datagram used its turn.
        let mut leaves = now;
        if model.capacity_bytes_per_s > 0 {
            let starts = match self.busy_until.get(&link) {
                Some(&busy) if busy > now => busy,
                _ => now,
            };
            if starts.saturating_since(now).as_micros() > model.queue_delay_us_max {
                return Err(DropCause::Queue);
            }
            let size_bytes = bytes.len() as u64;
            let sending_us = (size_bytes * 1_000_000).div_ceil(model.capacity_bytes_per_s);
            leaves = starts + Duration::from_micros(sending_us);
            self.busy_until.insert(link, leaves);
        }
        let (loss_ppm, cause) = match model.burst {
            Some(burst) => {
                let mut bad = self.burst_bad.contains(&link);
                let flip = if bad { burst.exit_ppm } else { burst.enter_ppm };
                if chance(&mut self.rng, flip) {
                    bad = !bad;
                    if bad {
                        self.burst_bad.insert(link);
                    } else {
                        self.burst_bad.remove(&link);
                    }
                }
                if bad {
                    (burst.loss_ppm, DropCause::Burst)
                } else {
                    (model.loss_ppm, DropCause::Loss)
                }
            }
            None => (model.loss_ppm, DropCause::Loss),
        };
        if chance(&mut self.rng, loss_ppm) {
            return Err(cause);
        }
        let copies = if chance(&mut self.rng, model.duplicate_ppm) {
            2
        } else {
            1
        };
        let mut deliveries = Vec::with_capacity(copies);
        for copy in 0..copies {
            let spread = model.latency_us_max - model.latency_us_min;
            let mut delay = model.latency_us_min;
            if spread > 0 {
                delay += self.rng.next_u64() % (spread + 1);
            }
            let reordered = chance(&mut self.rng, model.reorder_ppm);
            if reordered {
                delay += model.reorder_delay_us;
            }
            let mut copy_bytes = if copy + 1 == copies {
                std::mem::take(&mut bytes)
            } else {
                bytes.clone()
            };
            let corrupted = !copy_bytes.is_empty() && chance(&mut self.rng, model.corrupt_ppm);
            if corrupted {
                let bit = self.rng.next_u64() % (copy_bytes.len() as u64 * 8);
                copy_bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            }
            deliveries.push(Delivery {
                at: leaves + Duration::from_micros(delay),
                bytes: copy_bytes,
                duplicate: copy > 0,
                reordered,
                corrupted,
            });
        }
        Ok(deliveries)
    }

    /// `to` accepted `bytes` from `from`: on a link that replays, the attacker records it and,
    /// at the link's rate, re-sends one of its recordings `replay_delay` from now. Draws
    /// nothing where the rate is zero.
    pub fn accepted(
        &mut self,
        now: Instant,
        from: usize,
        to: usize,
        datagram: Recorded,
    ) -> Option<Replay> {
        let link = self.link(from, to);
        let model = self.models_link.get(&link).unwrap_or(&self.model_all);
        if model.replay_ppm == 0 {
            return None;
        }
        let store = self.recorded.entry(link).or_default();
        if store.len() == REPLAY_STORE_MAX {
            store.pop_front();
        }
        store.push_back(datagram);
        if !chance(&mut self.replay_rng, model.replay_ppm) {
            return None;
        }
        let pick = (self.replay_rng.next_u64() % store.len() as u64) as usize;
        Some(Replay {
            at: now + Duration::from_micros(model.replay_delay_us),
            datagram: store[pick].clone(),
        })
    }

    fn rebuild(&mut self) {
        let mut all = LinkModel::default();
        for (_, spec) in &self.rules_all {
            all.apply(spec);
        }
        self.models_link.clear();
        for (_, from, to, spec) in &self.rules_link {
            let link = Link {
                from: *from,
                to: *to,
            };
            self.models_link
                .entry(link)
                .or_insert_with(|| all.clone())
                .apply(spec);
        }
        self.model_all = all;
    }
}

/// True with probability `ppm` / 1,000,000; draws nothing when `ppm` is zero.
fn chance(rng: &mut ChaCha20Rng, ppm: u32) -> bool {
    ppm > 0 && (ppm >= PPM || rng.next_u32() % PPM < ppm)
}

#[cfg(test)]
mod tests;
