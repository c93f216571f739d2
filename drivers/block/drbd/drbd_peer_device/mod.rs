// SPDX-License-Identifier: GPL-2.0
//! A device's relation with one peer (DRBD 9's `struct drbd_peer_device`):
//! where its writes are replicated to, and the progress of a resync, an
//! online verify or a resize with that peer. Its states (connection,
//! peer role and disk, peer pause) are the peer-device part of the state
//! engine (`drbd_state.rs`).
//!
//! A connection owns one peer device per volume of its resource, from
//! `connect` until it is dropped (`disconnect`, `down`); the device
//! reaches it through [`crate::drbd_req::DeviceIo::peer_device`] while
//! it is published there. With more peers, a device has one per
//! connection.

mod peer_size;
mod resync_progress;
mod verify_progress;

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::drbd_sender::Replica;

pub(crate) use peer_size::ResizeShared;
pub(crate) use resync_progress::{ResyncRate, ResyncShared};
pub(crate) use verify_progress::VerifyShared;

/// One peer of a device.
#[pin_data]
pub(crate) struct PeerDevice {
    /// Where writes are replicated to while connected.
    #[pin]
    replica: Mutex<Option<Arc<Replica>>>,
    /// Resync progress, and the range a resync read holds writes off.
    #[pin]
    pub(crate) resync: ResyncShared,
    /// Online verify.
    #[pin]
    pub(crate) verify: VerifyShared,
    /// The answer to our P_STATE_CHG_REQ, set by the meta-socket thread.
    #[pin]
    state_reply: Mutex<Option<i32>>,
    #[pin]
    state_reply_came: CondVar,
}

impl PeerDevice {
    /// A peer device that is not connected yet, resyncing at `rate` (the
    /// device's disk options) when it does.
    pub(crate) fn new(rate: ResyncRate) -> impl PinInit<Self> {
        pin_init!(Self {
            replica <- new_mutex!(None, "rdrbd::PeerDevice::replica"),
            resync <- ResyncShared::new(rate),
            verify <- VerifyShared::new(),
            state_reply <- new_mutex!(None, "rdrbd::PeerDevice::state_reply"),
            state_reply_came <- new_condvar!("rdrbd::PeerDevice::state_reply_came"),
        })
    }

    /// The replica while connected.
    pub(crate) fn replica(&self) -> Option<Arc<Replica>> {
        self.replica.lock().clone()
    }

    /// Sets (connected) or clears (connection lost) the replica; returns
    /// the previous one.
    pub(crate) fn set_replica(&self, replica: Option<Arc<Replica>>) -> Option<Arc<Replica>> {
        core::mem::replace(&mut *self.replica.lock(), replica)
    }

    /// Forgets an earlier answer before a new P_STATE_CHG_REQ goes out.
    pub(crate) fn expect_state_reply(&self) {
        *self.state_reply.lock() = None;
    }

    /// The meta-socket thread got P_STATE_CHG_REPLY.
    pub(crate) fn got_state_reply(&self, retcode: i32) {
        *self.state_reply.lock() = Some(retcode);
        self.state_reply_came.notify_all();
    }

    /// The connection was lost: a request waiting for an answer gives up
    /// (taken under the answer's lock, so a waiter that has just seen the
    /// connection up is asleep before it is woken).
    pub(crate) fn connection_lost(&self) {
        let _reply = self.state_reply.lock();
        self.state_reply_came.notify_all();
    }

    /// Waits for the peer's answer until `deadline_ms` (since boot) or
    /// until `gone()` (the connection is lost, see
    /// [`PeerDevice::connection_lost`]).
    pub(crate) fn wait_state_reply(&self, deadline_ms: u64, gone: impl Fn() -> bool) -> Option<i32> {
        let mut reply = self.state_reply.lock();
        loop {
            if let Some(rc) = reply.take() {
                return Some(rc);
            }
            let left = deadline_ms.saturating_sub(crate::kernel_glue::now_ms());
            if gone() || left == 0 {
                return None;
            }
            let jiffies = kernel::time::msecs_to_jiffies(u32::try_from(left).unwrap_or(u32::MAX));
            let _ = self.state_reply_came.wait_interruptible_timeout(&mut reply, jiffies);
        }
    }
}
