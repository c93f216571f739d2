// SPDX-License-Identifier: GPL-2.0
//! Online verify progress of a peer device (8.4's `ov_*` fields): shared
//! by the netlink request, the VerifyS worker, the receiver and the
//! meta-socket thread. The verify itself is `drbd_verify.rs`.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::new_mutex;
use kernel::sync::Mutex;

use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// Verify progress a device shares between the netlink request, the
/// VerifyS worker, the receiver and the meta-socket thread.
#[pin_data]
pub(crate) struct VerifyShared {
    /// Blocks not yet compared (`ov_left`).
    left: AtomicU64,
    /// Blocks found different in this run.
    pub(crate) out_of_sync: AtomicU64,
    /// VerifyS: requests sent and not answered.
    pub(crate) in_flight: AtomicU32,
    /// VerifyT: the first request came (its sector is the start).
    pub(crate) started: AtomicBool,
    /// The run of differing sectors not yet logged: start, length.
    #[pin]
    run: Mutex<(u64, u64)>,
    /// Wakes the VerifyS worker when a reply came in.
    #[pin]
    pub(crate) wake: WaitQueue,
    /// VerifyS: the request worker.
    #[pin]
    pub(crate) worker: Mutex<Option<KThread>>,
}

impl VerifyShared {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            left: AtomicU64::new(0),
            out_of_sync: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            started: AtomicBool::new(false),
            run <- new_mutex!((0, 0), "rdrbd::VerifyShared::run"),
            wake <- new_wait_queue!("rdrbd::VerifyShared::wake"),
            worker <- new_mutex!(None, "rdrbd::VerifyShared::worker"),
        })
    }

    /// Blocks left to compare (for /proc/drbd).
    pub(crate) fn left(&self) -> u64 {
        self.left.load(Ordering::Relaxed)
    }

    pub(crate) fn reset(&self, left: u64) {
        self.left.store(left, Ordering::Relaxed);
        self.out_of_sync.store(0, Ordering::Relaxed);
        self.in_flight.store(0, Ordering::Relaxed);
        *self.run.lock() = (0, 0);
    }

    /// VerifyT from now on: the first request will give the start.
    pub(crate) fn begin_target(&self) {
        self.started.store(false, Ordering::Release);
    }

    /// Stops the VerifyS worker (connection lost, or a new verify).
    pub(crate) fn stop_worker(&self) {
        let worker = self.worker.lock().take();
        drop(worker);
    }

    /// One block fewer to compare; whether it was the last.
    pub(crate) fn block_done(&self) -> bool {
        let prev = self.left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
        prev == Ok(1)
    }

    /// `drbd_ov_out_of_sync_found`: a differing block extends the run
    /// being collected, or logs the previous run and starts a new one.
    pub(crate) fn found_out_of_sync(&self, name: &str, sector: u64, size: u32) {
        self.out_of_sync.fetch_add(1, Ordering::Relaxed);
        let sectors = u64::from(size).div_ceil(512);
        let mut run = self.run.lock();
        if run.1 != 0 && run.0.saturating_add(run.1) == sector {
            run.1 = run.1.saturating_add(sectors);
            return;
        }
        log_run(name, *run);
        *run = (sector, sectors);
    }

    /// `ov_out_of_sync_print`: logs the run being collected.
    pub(crate) fn flush_run(&self, name: &str) {
        let mut run = self.run.lock();
        log_run(name, *run);
        *run = (0, 0);
    }
}

fn log_run(name: &str, (start, len): (u64, u64)) {
    if len != 0 {
        pr_info!("{}: Out of sync: start={}, size={} (sectors)\n", name, start, len);
    }
}
