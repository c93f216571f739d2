// SPDX-License-Identifier: GPL-2.0
//! Local I/O errors: what happens when the backing disk fails a request
//! (8.4's `__drbd_chk_io_error` and `drbd_go_diskless`).
//!
//! A failed read or write of an application bio comes back from its
//! completion (interrupt context) as a [`FailedBio`] and waits on the
//! device's list for its worker thread. The worker marks the blocks out of
//! sync (a write is in sync only when both disks have it), applies the
//! `on-io-error` policy (`include/src/io_error.rs`), retries a failed read
//! on an UpToDate peer, and only then completes the bio: the application
//! sees an error only when no disk could serve it. Under `detach` and
//! `call-local-io-error` the disk becomes Failed, the worker runs the
//! `local-io-error` helper (for the latter), releases the backing disk
//! and the device goes on Diskless, through the peer. The receiver's own
//! reads and writes for the peer report their errors here too.
//!
//! The worker also keeps `disk-timeout`: every third of it, the requests
//! in flight to the disk age by a generation (`DiskAges`); any still there
//! from a whole disk-timeout ago make the disk Failed under every policy,
//! as a metadata error does. The late requests themselves complete when
//! the disk returns them (8.4 completes them at once, from the peer or
//! with an error, and panics if the disk later writes into their pages);
//! meanwhile new I/O goes to the peer.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::drbd_include::disk_timeout::{missed, tick_ms};
use crate::drbd_include::genl::{self as api, DiskState};
use crate::drbd_include::io_error::{disk_verdict, retry_failed_read, DiskVerdict, IoFailure, OnIoError, ReadSource};
use crate::drbd_req::DeviceIo;
use crate::kernel_glue::block::{DiskOps, FailedBio, FailedBios};
use crate::kernel_glue::now_ms;
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// No detach is pending.
const DETACH_NONE: u32 = 0;
/// The disk failed: the worker detaches it.
const DETACH_PENDING: u32 = 1;
/// ... after running the `local-io-error` helper.
const DETACH_WITH_HELPER: u32 = 2;

/// Errors of one device's backing disk, waiting for its worker.
#[pin_data]
pub(crate) struct IoErrors {
    failed: FailedBios,
    /// Woken when a failed bio or a detach waits, and to stop.
    #[pin]
    work: WaitQueue,
    /// `on-io-error` of the attached disk (`OnIoError::to_raw`).
    policy: AtomicU32,
    /// `DETACH_*`.
    detach: AtomicU32,
    /// Errors logged since the disk was attached (the log is capped).
    logged: AtomicU32,
    /// `disk-timeout` of the attached disk, 0.1 s (0: off).
    timeout_ds: AtomicU32,
    /// When the disk was attached (no timeout within one of that).
    attached_at_ms: AtomicU64,
}

/// Errors after which the log goes quiet until the next attach.
const LOG_LIMIT: u32 = 20;

impl IoErrors {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            failed: FailedBios::new(),
            work <- new_wait_queue!("rdrbd::IoErrors::work"),
            policy: AtomicU32::new(OnIoError::Detach.to_raw()),
            detach: AtomicU32::new(DETACH_NONE),
            logged: AtomicU32::new(0),
            timeout_ds: AtomicU32::new(0),
            attached_at_ms: AtomicU64::new(0),
        })
    }

    /// The `on-io-error` policy and `disk-timeout` of a newly attached
    /// disk, or of `disk-options`.
    pub(crate) fn configure(&self, policy: OnIoError, timeout_ds: u32, attaching: bool) {
        self.policy.store(policy.to_raw(), Ordering::Relaxed);
        if attaching {
            self.logged.store(0, Ordering::Relaxed);
            self.detach.store(DETACH_NONE, Ordering::SeqCst);
            self.attached_at_ms.store(now_ms(), Ordering::Relaxed);
        }
        self.timeout_ds.store(timeout_ds, Ordering::Relaxed);
        // A worker sleeping without a tick starts ticking.
        self.work.wake_all();
    }

    fn policy(&self) -> OnIoError {
        OnIoError::from_raw(self.policy.load(Ordering::Relaxed)).unwrap_or(OnIoError::Detach)
    }

    /// Queues a failed bio for the worker (any context).
    pub(crate) fn queue(&self, failed: FailedBio) {
        self.failed.push(failed);
        self.work.wake_all();
    }

    /// Wakes the worker to stop (before its thread is stopped).
    fn should_wake(&self) -> bool {
        !self.failed.is_empty() || self.detach.load(Ordering::SeqCst) != DETACH_NONE
    }
}

/// The device's worker thread: handles failed bios and detaches a failed
/// disk (process context, where metadata I/O and helpers may block).
pub(crate) fn run_worker(io: Arc<DeviceIo>) {
    let errors = io.io_errors();
    // When the requests in flight age next (with disk-timeout on), and
    // the tick that was computed with (a changed disk-timeout starts over).
    let mut next_tick: Option<(u64, u64)> = None;
    loop {
        let tick = tick_ms(errors.timeout_ds.load(Ordering::Relaxed));
        // Also woken when disk-timeout changes (`configure`).
        let woken = || {
            errors.should_wake() || KThread::should_stop() || tick_ms(errors.timeout_ds.load(Ordering::Relaxed)) != tick
        };
        match tick {
            None => {
                next_tick = None;
                errors.work.wait_until(woken);
            }
            Some(tick) => {
                let now = now_ms();
                if next_tick.is_some_and(|(_, with)| with != tick) {
                    next_tick = None;
                }
                let (due, _) = *next_tick.get_or_insert((now.saturating_add(tick), tick));
                if now >= due {
                    next_tick = Some((now.saturating_add(tick), tick));
                    check_disk_timeout(&io);
                } else {
                    let wait = u32::try_from(due.saturating_sub(now)).unwrap_or(u32::MAX);
                    errors.work.wait_until_timeout(woken, wait);
                }
            }
        }
        for failed in errors.failed.take_all() {
            handle_failed(&io, failed);
        }
        match errors.detach.swap(DETACH_NONE, Ordering::SeqCst) {
            DETACH_NONE => {}
            how => go_diskless(&io, how == DETACH_WITH_HELPER),
        }
        if KThread::should_stop() && !errors.should_wake() {
            return;
        }
    }
}

/// A tick of `disk-timeout`: the requests in flight to the disk age by a
/// generation; if some are a whole disk-timeout old, the disk has failed
/// (8.4's `request_timer_fn`, then `DRBD_FORCE_DETACH`).
fn check_disk_timeout(io: &DeviceIo) {
    let errors = io.io_errors();
    let left = io.lower_gate().ages().next_generation();
    let timeout_ds = errors.timeout_ds.load(Ordering::Relaxed);
    if missed(left, timeout_ds, now_ms(), errors.attached_at_ms.load(Ordering::Relaxed)) {
        local_io_failed(io, IoFailure::Timeout, 0, 0, Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32)));
    }
}

/// One failed application bio: out of sync, the policy, then a retry on
/// the peer (reads) or the error (8.4's `drbd_request_endio` with
/// READ/WRITE_COMPLETED_WITH_ERROR, and the read's retry).
fn handle_failed(io: &DeviceIo, failed: FailedBio) {
    let (sector, size, error) = (failed.sector(), failed.size(), failed.error());
    let failure = match (failed.is_write(), failed.is_readahead()) {
        (true, _) => IoFailure::Write,
        (false, true) => IoFailure::ReadAhead,
        (false, false) => IoFailure::Read,
    };
    if failure == IoFailure::Write {
        // No barrier ack may clear these bits (first, so that one coming
        // in between cannot clear the bits set next).
        if let Some(replica) = io.replica() {
            replica.local_write_failed(sector, size);
        }
    }
    if failure != IoFailure::ReadAhead {
        // Our copy of these blocks is bad: the bit stays set, whatever the
        // peer answers, until a resync brings them.
        io.set_out_of_sync(sector, size);
    }
    io.al_write_done(failed.tag());
    let mut upper = failed.into_upper();
    local_io_failed(io, failure, sector, size, error);
    if failure == IoFailure::Write {
        // Completes when the peer has answered too. The error is on the
        // bio since the failure; the peer's success, if it comes after,
        // makes the write succeed (`PeerToken::peer_succeeded`).
        return upper.end_as_set();
    }
    let peer = io.peer();
    if retry_failed_read(failure, peer.conn, peer.pdsk) == ReadSource::Peer {
        if let Some(replica) = io.replica() {
            match replica.send_read(upper) {
                Ok(()) => return,
                Err(back) => upper = back,
            }
        }
    }
    upper.end(Err(error));
}

/// `__drbd_chk_io_error`: the backing disk failed `failure` of `size`
/// bytes at `sector` with `error`; the disk state follows the policy.
/// Process context; the detach itself is left to the worker, which may
/// wait for I/O in flight that the caller holds.
pub(crate) fn local_io_failed(io: &DeviceIo, failure: IoFailure, sector: u64, size: u32, error: Error) {
    let errors = io.io_errors();
    let minor = io.events().minor();
    let disk = io.disk_state();
    let what = match failure {
        IoFailure::Read => "read",
        IoFailure::ReadAhead => "read-ahead",
        IoFailure::Write => "write",
        IoFailure::Meta => "meta data",
        IoFailure::Timeout => {
            if disk > DiskState::Failed {
                pr_warn!("drbd{}: Local backing device failed to meet the disk-timeout\n", minor);
            }
            ""
        }
    };
    if failure != IoFailure::Timeout && errors.logged.fetch_add(1, Ordering::Relaxed) < LOG_LIMIT {
        pr_err!("drbd{}: local {} I/O error {} at sector {}+{}\n", minor, what, error.to_errno(), sector, size >> 9);
    }
    match disk_verdict(errors.policy(), failure, disk) {
        DiskVerdict::Keep => {}
        DiskVerdict::Inconsistent => {
            pr_err!("drbd{}: Local IO failed, passed on: the disk is Inconsistent now\n", minor);
            io.set_disk_state(DiskState::Inconsistent);
            persist(io);
        }
        DiskVerdict::Detach { run_helper } => {
            pr_err!("drbd{}: Local IO failed. Detaching...\n", minor);
            // The peer hears of Failed at once, not only of Diskless
            // (`DeviceIo::after_state_change`): it marks what it writes from
            // now on out of sync (writes go on, to it only).
            io.set_disk_state(DiskState::Failed);
            let how = if run_helper { DETACH_WITH_HELPER } else { DETACH_PENDING };
            errors.detach.store(how, Ordering::SeqCst);
            errors.work.wake_all();
        }
    }
}

/// A disk attached while connected that the sync handshake refused (8.4
/// forces it Failed): detached by the worker, without the local-io-error
/// helper; the device goes on Diskless.
pub(crate) fn fail_refused_disk(io: &DeviceIo) {
    io.set_disk_state(DiskState::Failed);
    let errors = io.io_errors();
    errors.detach.store(DETACH_PENDING, Ordering::SeqCst);
    errors.work.wake_all();
}

/// Writes the state flags (best effort: the disk is failing).
fn persist(io: &DeviceIo) {
    let (primary, disk, peer) = (io.is_primary(), io.disk_state(), io.peer());
    let _ = io.with_md(|md, dev| md.persist_state(dev, primary, disk, peer.pdsk, peer.conn));
}

/// `drbd_go_diskless`: the helper (`call-local-io-error`), then the disk
/// goes, once the I/O in flight to it has ended. Its metadata is written
/// if it still can be; the device stays, Diskless, served by the peer.
fn go_diskless(io: &DeviceIo, run_helper: bool) {
    let minor = io.events().minor();
    if run_helper {
        let status = crate::drbd_helpers::run(io, None, "local-io-error");
        pr_info!("drbd{}: helper command: drbdadm local-io-error minor-{} exit code {}\n", minor, minor, (status >> 8) & 0xff);
    }
    // Bios failing meanwhile hold the drain until handled here.
    let errors = io.io_errors();
    let detached = io.detach_lower_while(
        || {
            for failed in errors.failed.take_all() {
                handle_failed(io, failed);
            }
        },
        || !errors.failed.is_empty(),
    );
    if let Some((lower, md)) = detached {
        if let Some(Err(e)) = md.map(|md| md.close(lower.bdev_ref())) {
            pr_err!("drbd{}: writing meta data of the failed disk: error {}\n", minor, e.to_errno());
        }
    }
    io.set_disk_state(DiskState::Diskless);
}

/// The peer's disk changed from `old` to `new` while connected: if it lost
/// its disk, the data moves on without it (a new current UUID, sent to the
/// peer), and from now on our bitmap records every write it lacks.
pub(crate) fn peer_disk_changed(name: &str, io: &DeviceIo, old: DiskState, new: DiskState, peer_role: api::Role) {
    let lost = crate::drbd_include::uuid::lost_contact_to_peer_data(old, new);
    if !lost {
        return;
    }
    let (primary, disk) = (io.is_primary(), io.disk_state());
    match io.with_md(|md, dev| md.peer_lost_disk(dev, primary, peer_role, disk, new)) {
        Some(Ok(true)) => {
            pr_info!("{}: new current UUID: the peer's disk is {}\n", name, new.name());
            if let (Some(replica), Some((uuids, bits, flags))) = (io.replica(), io.with_md(|md, _| (md.uuids(), md.bitmap.count(), md.uuid_flags()))) {
                let _ = replica.send_uuids(uuids, bits, flags);
            }
        }
        Some(Err(e)) => pr_err!("{}: writing meta data failed: error {}\n", name, e.to_errno()),
        _ => {}
    }
}
