// SPDX-License-Identifier: GPL-2.0
//! Two Primaries (`allow-two-primaries`): the receiving side of 8.4's
//! write conflict resolution (`receive_Data`'s `wait_for_and_update_peer_seq`
//! and `handle_write_conflicts`, `got_BlockAck`'s P_SUPERSEDED and
//! P_RETRY_WRITE). The rules are `drbd_include::write_conflicts`'; the
//! tracking of writes in flight is `drbd_conflicts.rs`.
//!
//! Only an rdrbd peer gets this far: the C driver of Linux 6.12 fails
//! concurrent writes of two Primaries itself, so a peer without rdrbd's
//! feature flag is refused when two Primaries are allowed
//! (`drbd_include::write_conflicts::refuses_peer`).

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;

use crate::drbd_conflicts::Interval;
use crate::drbd_include::protocol::{self as proto, Link, Packet};
use crate::drbd_include::write_conflicts::{PeerVerdict, Range};
use crate::drbd_net::NetError;
use crate::drbd_req::DeviceIo;
use crate::kernel_glue::net::TcpSocket;

/// What the judging of a peer write needs of its connection.
pub(crate) struct PeerLink<'a> {
    pub(crate) name: &'a str,
    pub(crate) data: &'a TcpSocket,
    pub(crate) link: Link,
    /// allow-two-primaries in force.
    pub(crate) two_primaries: bool,
    /// We hold RESOLVE_CONFLICTS.
    pub(crate) resolver: bool,
    /// How long the peer's missing acks are waited for (ping-timeout).
    pub(crate) ack_wait_ms: u32,
    /// How long a conflicting write is waited for (ko-count * timeout;
    /// 0: no limit).
    pub(crate) conflict_wait_ms: u32,
    /// Sends an ack of a replicated write on the meta socket (numbered).
    pub(crate) send_ack: &'a dyn Fn(Packet, proto::BlockAck) -> core::result::Result<(), NetError>,
}

/// What becomes of a peer write (P_DATA, P_TRIM) before it is written.
pub(crate) enum Admitted {
    /// Write it; it is tracked as `Interval` (0: not tracked, one
    /// Primary), to be ended with [`peer_write_done`].
    Write(Interval),
    /// Answered without writing it (P_SUPERSEDED or P_RETRY_WRITE): its
    /// data is to be read past.
    Answered,
}

fn timed_out() -> Error {
    Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32))
}

/// Conflict reports logged so far (all alike: the first few, then one
/// in a thousand).
static REPORTS: AtomicU32 = AtomicU32::new(0);

fn report_concurrent(name: &str, local: Range, remote: Range, first: &str) {
    let n = REPORTS.fetch_add(1, Ordering::Relaxed);
    if n < 8 || n % 1024 == 0 {
        pr_alert!("{}: Concurrent writes detected: local={}s +{}, remote={}s +{}, assuming {} came first ({} so far)\n",
            name, local.start, (local.end - local.start) << 9, remote.start, (remote.end - remote.start) << 9, first, n + 1);
    }
}

/// Before a peer write of `size` bytes is written: with two Primaries,
/// the resolving node first waits until every ack the peer sent before it
/// is processed, then the write is tracked and judged against our writes
/// in flight (8.4's `handle_write_conflicts`). Without, its number only
/// counts as processed.
pub(crate) fn admit_peer_write(
    to: &PeerLink<'_>,
    io: &DeviceIo,
    head: &proto::DataPacket,
    size: u32,
) -> core::result::Result<Admitted, NetError> {
    let (name, two_primaries) = (to.name, to.two_primaries);
    let replica = io.replica();
    let seq = replica.as_deref().map(|r| r.packet_seq());
    if let (true, Some(seq)) = (to.resolver, seq) {
        if !two_primaries {
            seq.peer_processed(head.seq_num);
        } else if !seq.wait_for_peer(head.seq_num, to.ack_wait_ms, || to.data.is_alive()) {
            pr_err!("{}: Timed out waiting for missing ack packets; disconnecting\n", name);
            return Err(NetError::Io(timed_out()));
        }
    }
    if !two_primaries {
        return Ok(Admitted::Write(0));
    }
    let conflicts = io.conflicts();
    let interval = conflicts.track_peer(head.sector, size);
    let remote = Range::of(head.sector, size);
    let limit_ms = to.conflict_wait_ms;
    let mut waited = 0u32;
    loop {
        match conflicts.judge_peer(interval, to.resolver) {
            PeerVerdict::Write { restarts } => {
                if restarts {
                    conflicts.set_restarts(interval);
                }
                return Ok(Admitted::Write(interval));
            }
            PeerVerdict::Superseded { local } | PeerVerdict::Retry { local } => {
                conflicts.peer_done(interval);
                let superseded = local.contains(&remote);
                if local != remote {
                    report_concurrent(name, local, remote, if superseded { "local" } else { "remote" });
                }
                // Protocol 100 has P_RETRY_WRITE; before, a retry is a
                // superseded write (8.4's e_send_retry_write).
                let cmd = if superseded || to.link.version < 100 { Packet::Superseded } else { Packet::RetryWrite };
                let ack = proto::BlockAck { sector: head.sector, block_id: head.block_id, blksize: size, seq_num: 0 };
                (to.send_ack)(cmd, ack)?;
                return Ok(Admitted::Answered);
            }
            PeerVerdict::Wait => {
                if conflicts.wait_for_change(interval, to.resolver, 100) {
                    continue;
                }
                waited = waited.saturating_add(100);
                if !to.data.is_alive() || (limit_ms != 0 && waited >= limit_ms) {
                    conflicts.peer_done(interval);
                    pr_err!("{}: waiting for a conflicting write at sector {} timed out; disconnecting\n", name, head.sector);
                    return Err(NetError::Io(timed_out()));
                }
            }
        }
    }
}

/// P_RETRY_WRITE for our write `block_id`: it is postponed until the
/// peer's conflicting write is done here, then written and sent again.
/// False if no such write waits for an ack.
pub(crate) fn got_retry_write(io: &DeviceIo, replica: &crate::drbd_sender::Replica, block_id: u64) -> bool {
    let Some((sector, ack)) = replica.take_for_retry(block_id) else { return false };
    if let Err(ack) = io.conflicts().postpone(sector, ack) {
        // Not tracked: a write of ours while diskless, which cannot be
        // written again here. It fails (only the peer's success would
        // have made it succeed); neither disk has it.
        pr_warn!("drbd{}: the peer asked to retry our write at sector {}, which has no local part: failing it\n",
            io.events().minor(), sector);
        drop(ack);
    }
    true
}
