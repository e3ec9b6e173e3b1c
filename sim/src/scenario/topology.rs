//! Who peers with whom. A scenario names a shape (`mesh`, `line`, `ring`, `star`), a seeded
//! random graph (`{ random = 3 }`: every device gets at least 3 peers, and the graph is
//! connected), its own edges (`{ edges = [["alice", "bob"], ...] }`), or `none`. Links are
//! two-way: both ends list each other as peers. `[knows]` overrides one device's list
//! (`scenario/net.rs`).

use std::collections::BTreeSet;

use meshlog_core::testing::derive_seed;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Every device peers with every other.
    #[default]
    Mesh,
    /// Each device peers with its neighbours in `devices` order: a–b–c needs relay.
    Line,
    /// A line whose ends are neighbours too: each device peers with exactly two others.
    Ring,
    /// The first device peers with every other; the others only with it.
    Star,
    /// A random connected graph, drawn from the run's seed, in which every device has at
    /// least this many peers.
    Random(usize),
    /// Exactly these links, by device name.
    Edges(Vec<[String; 2]>),
    /// No links: devices start knowing no peer's address (but `[knows]`'s) and find each
    /// other by LAN discovery or peer exchange.
    None,
}

impl Topology {
    /// The two-way links among `devices`, as index pairs `(i, j)` with `i < j`. `seed` is the
    /// run's root seed (only `random` draws from it).
    pub fn links(&self, devices: &[String], seed: u64) -> BTreeSet<(usize, usize)> {
        let n = devices.len();
        let pair = |a: usize, b: usize| (a.min(b), a.max(b));
        let mut links = BTreeSet::new();
        match self {
            Topology::Mesh => {
                for i in 0..n {
                    links.extend((i + 1..n).map(|j| (i, j)));
                }
            }
            Topology::Line => links.extend((1..n).map(|i| (i - 1, i))),
            Topology::Ring => {
                links.extend((1..n).map(|i| (i - 1, i)));
                if n > 2 {
                    links.insert((0, n - 1));
                }
            }
            Topology::Star => links.extend((1..n).map(|i| (0, i))),
            Topology::Random(degree) => {
                let mut rng = ChaCha20Rng::from_seed(derive_seed(seed, "topology"));
                let mut draw = |bound: usize| (rng.next_u64() % bound as u64) as usize;
                // A random path through every device keeps the graph connected ...
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    order.swap(i, draw(i + 1));
                }
                links.extend(order.windows(2).map(|w| pair(w[0], w[1])));
                // ... then random links until every device has enough peers.
                let wanted = (*degree).min(n.saturating_sub(1));
                for i in 0..n {
                    let degree_of = |links: &BTreeSet<(usize, usize)>, d: usize| {
                        links.iter().filter(|(a, b)| *a == d || *b == d).count()
                    };
                    while degree_of(&links, i) < wanted {
                        let j = draw(n);
                        if j != i {
                            links.insert(pair(i, j));
                        }
                    }
                }
            }
            Topology::None => {}
            Topology::Edges(edges) => {
                let at = |name: &String| devices.iter().position(|d| d == name);
                for [a, b] in edges {
                    if let (Some(a), Some(b)) = (at(a), at(b)) {
                        links.insert(pair(a, b));
                    }
                }
            }
        }
        links
    }

    /// Each device's peers, by index, in index order.
    pub fn peer_lists(&self, devices: &[String], seed: u64) -> Vec<Vec<usize>> {
        let mut peers = vec![Vec::new(); devices.len()];
        for (a, b) in self.links(devices, seed) {
            peers[a].push(b);
            peers[b].push(a);
        }
        peers.iter_mut().for_each(|p| p.sort_unstable());
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("d{i}")).collect()
    }

    fn connected(peers: &[Vec<usize>]) -> bool {
        let mut seen = BTreeSet::from([0]);
        let mut todo = vec![0];
        while let Some(d) = todo.pop() {
            for &p in &peers[d] {
                if seen.insert(p) {
                    todo.push(p);
                }
            }
        }
        seen.len() == peers.len()
    }

    #[test]
    fn shapes_have_their_links() {
        let n = names(5);
        let peers = |t: Topology| t.peer_lists(&n, 0);
        assert_eq!(peers(Topology::Ring)[0], [1, 4]);
        assert_eq!(peers(Topology::Ring)[2], [1, 3]);
        assert_eq!(peers(Topology::Line)[0], [1]);
        assert_eq!(peers(Topology::Star)[0], [1, 2, 3, 4]);
        assert_eq!(peers(Topology::Star)[3], [0]);
        assert_eq!(peers(Topology::Mesh)[2], [0, 1, 3, 4]);
        let edges = Topology::Edges(vec![["d0".into(), "d3".into()], ["d3".into(), "d4".into()]]);
        assert_eq!(peers(edges.clone())[3], [0, 4]);
        assert!(peers(edges)[1].is_empty());
    }

    #[test]
    fn random_graphs_are_connected_have_the_degree_and_follow_the_seed() {
        let n = names(30);
        for seed in 0..20 {
            let peers = Topology::Random(3).peer_lists(&n, seed);
            assert!(connected(&peers), "seed {seed}");
            assert!(peers.iter().all(|p| p.len() >= 3), "seed {seed}");
            assert_eq!(peers, Topology::Random(3).peer_lists(&n, seed));
        }
        assert_ne!(
            Topology::Random(3).peer_lists(&n, 1),
            Topology::Random(3).peer_lists(&n, 2)
        );
    }
}
