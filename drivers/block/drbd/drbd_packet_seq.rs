// SPDX-License-Identifier: GPL-2.0
//! 8.4's packet sequence numbers (`packet_seq`, `peer_seq`), which keep
//! the two sockets in order where two Primaries need it.
//!
//! Every P_DATA and every ack of a replicated write takes the next number
//! of the sender's count, at the moment it goes on its socket. The node
//! that resolves write conflicts processes a peer's P_DATA (data socket)
//! only once every ack the peer sent before it (meta socket) is processed
//! (`wait_for_and_update_peer_seq`): a write the peer issued after it saw
//! one of ours complete must not be judged concurrent with it.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;

use crate::drbd_include::write_conflicts::seq_newer;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// One connection's sequence numbers for one volume.
#[pin_data]
pub(crate) struct PacketSeq {
    /// The last number we gave.
    ours: AtomicU32,
    /// The newest number of the peer's processed so far.
    peer: AtomicU32,
    /// Woken when `peer` moves on.
    #[pin]
    advanced: WaitQueue,
}

impl PacketSeq {
    /// Both counts at 0 (a new connection).
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            ours: AtomicU32::new(0),
            peer: AtomicU32::new(0),
            advanced <- new_wait_queue!("rdrbd::PacketSeq::advanced"),
        })
    }

    /// The number of the packet we send now.
    pub(crate) fn next(&self) -> u32 {
        self.ours.fetch_add(1, Ordering::AcqRel).wrapping_add(1)
    }

    /// The peer's packet `seq` was processed (`update_peer_seq`).
    pub(crate) fn peer_processed(&self, seq: u32) {
        let moved = self
            .peer
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| seq_newer(seq, now).then_some(seq))
            .is_ok();
        if moved {
            self.advanced.wake_all();
        }
    }

    /// `wait_for_and_update_peer_seq`: waits until every packet the peer
    /// numbered before `seq` was processed, then counts `seq` processed.
    /// Gives up (false) after `timeout_ms`, or when `alive` says the
    /// connection is gone.
    pub(crate) fn wait_for_peer(&self, seq: u32, timeout_ms: u32, alive: impl Fn() -> bool) -> bool {
        let ready = || !seq_newer(seq.wrapping_sub(1), self.peer.load(Ordering::Acquire));
        let mut waited = 0;
        // `alive` may sleep: not in the wait's condition.
        while !self.advanced.wait_until_timeout(ready, 100) {
            waited += 100;
            if waited >= timeout_ms || !alive() {
                return false;
            }
        }
        self.peer_processed(seq);
        true
    }
}
