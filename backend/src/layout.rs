//! Where a demo's devices listen and whom they peer with: shared by real mode ([`crate::demo`]
//! starting device processes) and simulated mode ([`crate::sim_mode`] serving a world's
//! devices on the same ports), so the page finds both at the same addresses.

use meshlog_sim::scenario::Topology;

/// Where the demo's servers listen (all on 127.0.0.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub service: u16,
    /// Device i's HTTP API on this + i, skipping `service`.
    pub device_http_base: u16,
    /// Device i's UDP on this + i (real mode).
    pub device_udp_base: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            service: SIM_SERVICE_PORT,
            device_http_base: DEVICE_HTTP_PORT_BASE,
            device_udp_base: DEVICE_UDP_PORT_BASE,
        }
    }
}

pub const DEVICE_HTTP_PORT_BASE: u16 = 3001;
pub const DEVICE_UDP_PORT_BASE: u16 = 8001;
pub const SIM_SERVICE_PORT: u16 = 3005;

/// Device `index`'s HTTP port from `base`: `base + index`, one higher from the service's
/// port on (so 3001..3004, 3006..3009 around 3005); `base` 0 is any free port.
pub fn device_http_port(base: u16, index: usize, service_port: u16) -> Option<u16> {
    if base == 0 {
        return Some(0);
    }
    let port = u16::try_from(index).ok()?.checked_add(base)?;
    if base <= service_port && port >= service_port {
        return port.checked_add(1);
    }
    Some(port)
}

/// The pairs of `names` that peer under `topology`; `seed` draws a `random` one, as the
/// world does.
pub fn links(names: &[String], topology: &Topology, seed: u64) -> Vec<(String, String)> {
    topology
        .links(names, seed)
        .into_iter()
        .map(|(i, j)| (names[i].clone(), names[j].clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ports_skip_the_service_port() {
        let ports: Vec<u16> = (0..8)
            .map(|i| device_http_port(3001, i, 3005).unwrap())
            .collect();
        assert_eq!(ports, [3001, 3002, 3003, 3004, 3006, 3007, 3008, 3009]);
        assert_eq!(device_http_port(0, 5, 3005), Some(0));
    }

    #[test]
    fn a_line_links_neighbours_only() {
        let names = ["alice", "bob", "carol"].map(String::from).to_vec();
        assert_eq!(
            links(&names, &Topology::Line, 0),
            [
                ("alice".to_string(), "bob".to_string()),
                ("bob".to_string(), "carol".to_string())
            ]
        );
        assert_eq!(links(&names, &Topology::Mesh, 0).len(), 3);
    }
}
