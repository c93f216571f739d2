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
    let events = io.events();
    let minor = events.minor();
    let (Ok(event_arg), Ok(minor_arg)) = (
        CString::try_from_fmt(fmt!("{}", event)),
        CString::try_from_fmt(fmt!("minor-{}", minor)),
    ) else {
        return 0;
    };
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
    pr_info!("drbd{}: helper command: {} {} minor-{}\n", minor, helper, event, minor);
    events.helper(event, None, addrs);
    let ret = call_usermode_helper(
        &path,
        &[event_arg.as_bytes_with_nul(), minor_arg.as_bytes_with_nul()],
        env.get(..env_len).unwrap_or(&[]),
    );
    let code = (ret >> 8) & 0xff;
    if ret != 0 {
        pr_warn!("drbd{}: helper command: {} {} minor-{} exit code {} (0x{:x})\n", minor, helper, event, minor, code, ret);
    } else {
        pr_info!("drbd{}: helper command: {} {} minor-{} exit code 0 (0x0)\n", minor, helper, event, minor);
    }
    events.helper(event, Some(ret), addrs);
    if ret < 0 { 0 } else { ret }
}
