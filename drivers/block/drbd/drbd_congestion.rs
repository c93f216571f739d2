// SPDX-License-Identifier: GPL-2.0
//! Ahead/Behind (`on-congestion pull-ahead`; the rules are
//! `drbd_include::congestion`): how an Ahead Primary gets back to
//! replicating, and how its peer follows it.
//!
//! Going Ahead is the bio path's ([`crate::drbd_req::DeviceIo`] judges each
//! replicated write, the replica's sender tells the peer with P_STATE and
//! sends P_OUT_OF_SYNC for every write from then on). Coming back is here:
//! the meta-socket thread sees the link drained (every write sent before
//! is covered by a barrier ack) and, a second later, has the sender start
//! the resync as SyncSource after the P_OUT_OF_SYNC queued so far. The
//! peer goes Behind at our P_STATE (its disk Outdated), marks what each
//! P_OUT_OF_SYNC names, and becomes SyncTarget at our P_SYNC_UUID.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::drbd_include::congestion;
use crate::drbd_include::genl::ConnState;
use crate::drbd_include::request_timer::time_after;
use crate::drbd_peer_device::PeerDevice;
use crate::drbd_req::DeviceIo;
use crate::drbd_sender::Replica;

/// Called by the meta-socket thread at every wake-up: once an Ahead
/// Primary has nothing in flight, [`congestion::RESYNC_DELAY_MS`] later
/// (8.4's `start_resync_timer`, armed by `got_BarrierAck`) it leaves Ahead.
/// `armed`: when, if already decided. Returns when to look again.
pub(crate) fn leave_ahead_when_drained(io: &DeviceIo, armed: Option<u64>, now: u64) -> Option<u64> {
    let replica = io.replica()?;
    if !congestion::may_leave_ahead(io.peer().conn, replica.sectors_in_flight()) {
        return None;
    }
    match armed {
        None => Some(now.wrapping_add(congestion::RESYNC_DELAY_MS)),
        Some(at) if time_after(at, now) => Some(at),
        Some(_) => {
            replica.leave_ahead();
            None
        }
    }
}

/// What the sender does when it reaches the end of Ahead in its queue
/// (every P_OUT_OF_SYNC before it is sent): `drbd_start_resync(C_SYNC_SOURCE)`
/// and the sync UUID, as after a bitmap exchange.
pub(crate) fn resync_after_ahead(name: crate::ResourceName, io: Arc<DeviceIo>, pd: Arc<PeerDevice>) -> impl Fn(&Replica) + Send + 'static {
    move |replica: &Replica| {
        if io.peer().conn != ConnState::Ahead {
            return;
        }
        if let Err(e) = crate::drbd_mgmt::start_sync_source(name.as_str(), &io, &pd, replica) {
            pr_err!("{}: starting the resync after Ahead failed: error {}\n", name.as_str(), e.to_errno());
        }
    }
}

/// The peer's P_STATE says it went Ahead (`receive_state`): we are Behind,
/// our disk Outdated until the resync it starts.
pub(crate) fn peer_went_ahead(io: &DeviceIo) {
    io.set_state(|s| {
        if s.peer.conn == ConnState::Connected {
            s.peer.conn = ConnState::Behind;
        }
    });
}
