// SPDX-License-Identifier: GPL-2.0
//! What online resize remembers of a peer device between the command and
//! the peer's answers (8.4's `p_size`, `RESIZE_PENDING`). The resize
//! itself is `drbd_resize.rs`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What resize remembers between the command and the peer's answers.
pub(crate) struct ResizeShared {
    /// The peer's disk size from its last P_SIZES (`device->p_size`),
    /// 0 before any.
    peer_size: AtomicU64,
    /// The user's size (`disk_conf->disk_size`), sectors, 0: all.
    user_size: AtomicU64,
    /// We grew and the resync of the new area waits for the peer's
    /// answer (`RESIZE_PENDING`).
    pending: AtomicBool,
}

impl ResizeShared {
    pub(crate) const fn new() -> Self {
        Self { peer_size: AtomicU64::new(0), user_size: AtomicU64::new(0), pending: AtomicBool::new(false) }
    }

    pub(crate) fn peer_size(&self) -> u64 {
        self.peer_size.load(Ordering::Relaxed)
    }

    /// The peer's P_SIZES, at the handshake or later.
    pub(crate) fn set_peer_size(&self, sectors: u64) {
        self.peer_size.store(sectors, Ordering::Relaxed);
    }

    pub(crate) fn user_size(&self) -> u64 {
        self.user_size.load(Ordering::Relaxed)
    }

    /// The user's size as configured (attach's `--size`, resize's).
    pub(crate) fn set_user_size(&self, sectors: u64) {
        self.user_size.store(sectors, Ordering::Relaxed);
    }

    pub(crate) fn set_pending(&self) {
        self.pending.store(true, Ordering::Relaxed);
    }

    pub(crate) fn take_pending(&self) -> bool {
        self.pending.swap(false, Ordering::Relaxed)
    }
}
