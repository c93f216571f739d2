// SPDX-License-Identifier: GPL-2.0
//! DRBD's usermode helper (`drbd_khelper`): on events such as a split
//! brain the driver runs the program of the `usermode_helper` module
//! parameter (drbdadm) as `<helper> <event> minor-<N>`, with the peer's
//! address in the environment, waits for it, and tells listeners before
//! and after (`drbdsetup events` UH lines, events2 `call`/`response
//! helper`). drbdadm then runs the handler drbd.conf names for the event.

use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;

use crate::drbd_events::ConnAddrs;
use crate::drbd_include::genl::DiskState;
use crate::drbd_include::mgmt::{self, FenceVerdict};
use crate::drbd_req::DeviceIo;
use crate::kernel_glue::net::SockAddr;
use crate::kernel_glue::umh::{call_usermode_helper, HelperPath};

/// The address part of `addr` as `%pI4`/`%pI6` print it.
fn address_text(addr: &SockAddr) -> Result<CString> {
    let ip = addr.ip_bytes();
    if let [a, b, c, d] = *ip {
        return CString::try_from_fmt(fmt!("DRBD_PEER_ADDRESS={}.{}.{}.{}", a, b, c, d));
    }
    let word = |i: usize| u16::from_be_bytes([ip.get(2 * i).copied().unwrap_or(0), ip.get(2 * i + 1).copied().unwrap_or(0)]);
    CString::try_from_fmt(fmt!(
        "DRBD_PEER_ADDRESS={:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
        word(0), word(1), word(2), word(3), word(4), word(5), word(6), word(7)
    ))
}

/// Runs helper event `event` for the device behind `io` and returns its
/// exit code (0 when it could not run at all, as C DRBD ignores errnos).
/// Blocks until the helper exits: call it only from a connection or
/// worker thread, never with a lock held that a helper's own drbdsetup
/// call would need.
pub(crate) fn run(io: &DeviceIo, addrs: Option<ConnAddrs>, event: &str) -> i32 {
    match CString::try_from_fmt(fmt!("minor-{}", io.events().minor())) {
        Ok(subject) => run_for(io, addrs, event, &subject),
        Err(_) => 0,
    }
}

/// `conn_try_outdate_peer`: runs fence-peer for `resource` (as
/// `conn_khelper`, with the resource name as argument) and applies what
/// its exit code says: the peer's disk is Outdated or Inconsistent (kept
/// while unconnected and persisted as MDF_PEER_OUT_DATED), or the peer is
/// Primary and our own disk becomes Outdated. Returns whether the peer is
/// now known to be outdated (or worse).
pub(crate) fn try_outdate_peer(resource: &str, io: &DeviceIo, addrs: Option<ConnAddrs>) -> bool {
    let Ok(subject) = CString::try_from_fmt(fmt!("{}", resource)) else { return false };
    let ret = run_for(io, addrs, "fence-peer", &subject);
    let code = ((ret >> 8) & 0xff) as u8;
    let persist = |pdsk: DiskState| {
        let (primary, disk, conn) = (io.is_primary(), io.disk_state(), io.peer().conn);
        if let Some(Err(e)) = io.with_md(|md, dev| md.persist_state(dev, primary, disk, pdsk, conn)) {
            pr_err!("{}: writing meta data failed: error {}\n", resource, e.to_errno());
        }
    };
    match mgmt::fence_peer_verdict(code, io.disk_state()) {
        FenceVerdict::PeerDisk(pdsk, why) => {
            pr_info!("{}: fence-peer helper returned {} ({})\n", resource, code, why);
            io.set_state(|s| s.peer.pdsk = pdsk);
            persist(pdsk);
            true
        }
        FenceVerdict::OutdateSelf => {
            pr_info!("{}: fence-peer helper returned {} (peer is active)\n", resource, code);
            pr_warn!("{}: Peer is primary, outdating myself.\n", resource);
            io.set_disk_state(DiskState::Outdated);
            persist(io.peer().pdsk);
            false
        }
        FenceVerdict::Nothing(why) => {
            pr_info!("{}: fence-peer helper returned {} ({})\n", resource, code, why);
            false
        }
        FenceVerdict::Broken => {
            pr_err!("{}: fence-peer helper broken, returned {}\n", resource, code);
            false
        }
    }
}

/// Runs helper `event` with argument `subject` (see [`run`]).
fn run_for(io: &DeviceIo, addrs: Option<ConnAddrs>, event: &str, subject: &CString) -> i32 {
    let events = io.events();
    let minor = events.minor();
    let Ok(event_arg) = CString::try_from_fmt(fmt!("{}", event)) else {
        return 0;
    };
    let minor_arg = subject;
    let peer_env = addrs.and_then(|a| {
        let af = CString::try_from_fmt(fmt!("DRBD_PEER_AF={}", a.peer_addr.family_name())).ok()?;
        Some((af, address_text(&a.peer_addr).ok()?))
    });
    let mut env: [&[u8]; 5] = [b"HOME=/\0", b"TERM=linux\0", b"PATH=/sbin:/usr/sbin:/bin:/usr/bin\0", b"", b""];
    let mut env_len = 3;
    if let Some((af, address)) = &peer_env {
        env[3] = af.as_bytes_with_nul();
        env[4] = address.as_bytes_with_nul();
        env_len = 5;
    }
    let path = HelperPath::get();
    let helper = path.as_str();
    let shown = subject.to_str().unwrap_or("?");
    pr_info!("drbd{}: helper command: {} {} {}\n", minor, helper, event, shown);
    events.helper(event, None, addrs);
    let ret = call_usermode_helper(
        &path,
        &[event_arg.as_bytes_with_nul(), minor_arg.as_bytes_with_nul()],
        env.get(..env_len).unwrap_or(&[]),
    );
    let code = (ret >> 8) & 0xff;
    if ret != 0 {
        pr_warn!("drbd{}: helper command: {} {} {} exit code {} (0x{:x})\n", minor, helper, event, shown, code, ret);
    } else {
        pr_info!("drbd{}: helper command: {} {} {} exit code 0 (0x0)\n", minor, helper, event, shown);
    }
    events.helper(event, Some(ret), addrs);
    if ret < 0 { 0 } else { ret }
}
