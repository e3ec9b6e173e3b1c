//! `address_change`: a device is reached at a new address from now on (DHCP, Wi-Fi to
//! Ethernet, a new port after a restart); its peers must follow its newest authentic packet.

use std::net::SocketAddr;

use crate::kernel::World;

pub(super) fn change(world: &mut World, name: &str, address: Option<SocketAddr>) {
    let device = world.device(name);
    world.change_address(device, address);
}
