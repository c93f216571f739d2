//! Online resize: carrying out a new size (8.4's `drbd_determine_dev_size`
//! after `drbd_new_dev_size` decided), telling the peer (`drbd_send_sizes`),
//! the peer's P_SIZES on a live connection (`receive_sizes`) and the resync
//! of the new area (`resync_after_online_grow`).
//!
//! The size decisions are `drbd_include::mgmt` (`new_dev_size`, `resize`);
//! the new metadata layout is `Layout::compute`, carried out by
//! `MetaData::resize`. `resize` (netlink, `drbd_mgmt.rs`) and the receiver
//! both come here; neither takes the registry lock, so the gendisk's size
//! is set through `DeviceIo`.

use kernel::prelude::*;

use crate::drbd_include::state::PeerDeviceStates;
use crate::drbd_include::genl::{ConnState, DiskState};
use crate::drbd_include::md::Layout;
use crate::drbd_include::mgmt::{self, SizeInputs};
use crate::drbd_include::protocol::{dds_flags, Packet, Sizes};
use crate::drbd_req::DeviceIo;
use crate::drbd_peer_device::PeerDevice;
use crate::drbd_sender::Replica;

/// The layout the metadata gets for the backing device as large as it is
/// now; `None` without a disk.
pub(crate) fn layout_now(io: &DeviceIo) -> Option<Result<Layout, crate::AdmError>> {
    io.with_md(|md, dev| md.layout_now(dev))
}

/// Carries out `size` over `layout` (`drbd_determine_dev_size` after the
/// decision): the metadata moves if the layout did, the bitmap follows
/// (the new area out of sync when `mark_new`), the disk gets its size.
/// Nothing happens when neither changed.
pub(crate) fn apply(name: &str, io: &DeviceIo, layout: Layout, size: u64, mark_new: bool) -> Result {
    let old = io.exposed_sectors();
    io.with_md(|md, dev| md.resize(dev, layout, old, size, mark_new)).ok_or(EIO)??;
    io.refresh_capacity();
    if size != old {
        io.set_exposed_sectors(size);
        let (shown, unit) = mgmt::ppsize(size >> 1);
        pr_info!("{}: size = {} {}B ({} KB)\n", name, shown, unit, size >> 1);
    }
    Ok(())
}

/// `drbd_send_sizes`: our disk's size (what the metadata allows now), the
/// user's size, the size exposed, and the resize flags (`dds_flags`).
pub(crate) fn send_sizes(io: &DeviceIo, replica: &Replica, user_size: u64, flags: u16) -> Result {
    let link = replica.link();
    let d_size = io.with_md(|md, _| md.capacity()).unwrap_or(0);
    let sizes = Sizes::ours(link, d_size, user_size, io.exposed_sectors(), flags);
    replica.send_small(Packet::Sizes, |out| sizes.encode(link, out))
}

/// The peer's P_SIZES at the handshake (`receive_sizes` before the
/// connection is established): the device takes the smaller of both
/// disks (`mgmt::handshake_size`), growing with the new area out of sync,
/// or shrinking if our disk has no usable data yet. Returns the decision:
/// `PeerTooSmall` (logged here) refuses the connection.
pub(crate) fn handshake_sizes(name: &str, io: &DeviceIo, peer: &Sizes) -> Result<mgmt::HandshakeSize> {
    let disk = io.disk_state();
    let layout = match layout_now(io) {
        Some(Ok(layout)) => layout,
        Some(Err(e)) => {
            pr_err!("{}: peer's sizes: cannot place the meta data: {}\n", name, e.reason);
            return Ok(mgmt::HandshakeSize::Keep);
        }
        // Diskless: nothing of ours to size.
        None => return Ok(mgmt::HandshakeSize::Keep),
    };
    let old = io.exposed_sectors();
    let inputs = SizeInputs {
        peer_size: peer.d_size,
        last_agreed: old,
        my_max: layout.max_capacity,
        user_size: io.resize().user_size(),
        connected: true,
        assume_peer_has_space: false,
    };
    let decision = mgmt::handshake_size(&inputs, peer.u_size, disk);
    match decision {
        mgmt::HandshakeSize::Keep => {}
        mgmt::HandshakeSize::Change(size) => apply(name, io, layout, size, size > old)?,
        mgmt::HandshakeSize::PeerTooSmall { new } => {
            pr_err!("{}: The peer's disk size is too small! ({} < {} sectors)\n", name, new, old);
        }
    }
    Ok(decision)
}

/// The peer's P_SIZES on an established connection (`receive_sizes`):
/// the size becomes the smaller of both disks (and the user's size, which
/// the peer passes on); a grown device answers with its own sizes and
/// resyncs the new area. A smaller size (the peer's `resize --size`, or
/// its disk) is followed: 8.4 allows online shrinking while connected
/// (what lies past the new end is no longer out of sync).
pub(crate) fn receive_sizes(name: &str, io: &DeviceIo, pd: &PeerDevice, replica: &Replica, peer: &Sizes, resolve_conflicts: bool) -> Result {
    let shared = io.resize();
    if io.disk_state() == DiskState::Diskless {
        return Ok(());
    }
    let layout = match layout_now(io) {
        Some(Ok(layout)) => layout,
        Some(Err(e)) => {
            pr_err!("{}: peer's sizes: cannot place the meta data: {}\n", name, e.reason);
            return Ok(());
        }
        None => return Ok(()),
    };
    // 8.4 takes over the peer's user size on a live connection.
    let my_usize = shared.user_size();
    if my_usize != peer.u_size {
        pr_info!("{}: Peer sets u_size to {} sectors (old: {})\n", name, peer.u_size, my_usize);
    }
    shared.set_user_size(peer.u_size);
    let old = io.exposed_sectors();
    let new = mgmt::new_dev_size(&SizeInputs {
        peer_size: peer.d_size,
        last_agreed: old,
        my_max: layout.max_capacity,
        user_size: peer.u_size,
        connected: true,
        assume_peer_has_space: peer.dds_flags & dds_flags::FORCED != 0,
    });
    if new.too_big {
        pr_err!("{}: Requested disk size is too big ({} > {})\n", name, peer.u_size >> 1, new.size >> 1);
    }
    let mark_new = peer.dds_flags & dds_flags::NO_RESYNC == 0;
    let moved = io.with_md(|md, _| layout.moved_from(&md.layout)).unwrap_or(false);
    apply(name, io, layout, new.size, mark_new)?;
    let grew = new.size > old;
    if peer.c_size != io.exposed_sectors() || moved {
        // The peer should know our new size.
        send_sizes(io, replica, shared.user_size(), peer.dds_flags)?;
    }
    let view = io.peer();
    if (shared.take_pending() || grew) && view.conn == ConnState::Connected {
        let usable = |d: DiskState| d >= DiskState::Inconsistent;
        if !(usable(view.pdsk) && usable(io.disk_state())) {
            pr_info!("{}: new storage is resynced with the next resync\n", name);
        } else if !mark_new {
            pr_info!("{}: Resync of new storage suppressed with --assume-clean\n", name);
        } else {
            resync_after_online_grow(name, io, pd, replica, &view, resolve_conflicts)?;
        }
    }
    Ok(())
}

/// `resync_after_online_grow`: the Primary (between two Secondaries, the
/// node that resolves conflicts) resyncs the new area as SyncSource; the
/// other waits for its sync UUID.
fn resync_after_online_grow(name: &str, io: &DeviceIo, pd: &PeerDevice, replica: &Replica, view: &PeerDeviceStates, resolve_conflicts: bool) -> Result {
    pr_info!("{}: Resync of new storage after online grow\n", name);
    let primary = io.is_primary();
    let we_are_primary = if primary { crate::drbd_include::genl::Role::Primary } else { crate::drbd_include::genl::Role::Secondary };
    let source = if view.peer != we_are_primary { primary } else { resolve_conflicts };
    if source {
        crate::drbd_mgmt::start_sync_source(name, io, pd, replica)
    } else {
        io.set_state(|s| s.peer.conn = ConnState::WfSyncUuid);
        Ok(())
    }
}
