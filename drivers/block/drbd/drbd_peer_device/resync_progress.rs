// SPDX-License-Identifier: GPL-2.0
//! Resync progress of a peer device: what the receiver, the meta-socket
//! thread, the SyncTarget's worker and `/proc/drbd` share (8.4's `rs_*`
//! fields of `struct drbd_device`), and the range a SyncSource read holds
//! application writes off. The resync itself is `drbd_resync.rs`.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::new_mutex;
use kernel::sync::Mutex;

use crate::drbd_include::genl::{self as api, ConnState};
use crate::drbd_include::resync_throttle::{self, Activity};
use crate::kernel_glue::now_ms;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// Bytes of requests in flight at least (8.4's default `max-buffers`,
/// 2048 pages), and at most with the dynamic controller.
const MIN_WINDOW_BYTES: u32 = 8 << 20;
const MAX_WINDOW_BYTES: u32 = 32 << 20;

/// How fast the SyncTarget may ask for data (from the disk options).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResyncRate {
    /// KiB/s: `resync-rate` with a fixed rate, `c-max-rate` with the
    /// dynamic controller (`c-plan-ahead` > 0).
    pub(crate) kib_per_sec: u32,
    /// Bytes in flight at most.
    pub(crate) window_bytes: u32,
    /// `c-min-rate` (KiB/s): above it the resync steps aside for
    /// application I/O (`resync_throttle`); 0: never.
    pub(crate) min_kib_per_sec: u32,
}

impl ResyncRate {
    /// The rate the disk options give. The dynamic controller of C DRBD
    /// aims at `c-fill-target` in flight below `c-max-rate`; rdrbd keeps
    /// a window of requests in flight (at least 8 MiB, so that the link
    /// stays busy), capped at `c-max-rate`.
    pub(crate) fn from_options(resync_rate: u32, c_plan_ahead: u32, c_max_rate: u32, c_fill_target: u32, c_min_rate: u32) -> Self {
        if c_plan_ahead == 0 {
            Self { kib_per_sec: resync_rate.max(1), window_bytes: MIN_WINDOW_BYTES, min_kib_per_sec: c_min_rate }
        } else {
            // c-fill-target is in sectors.
            let fill = c_fill_target.saturating_mul(512).clamp(MIN_WINDOW_BYTES, MAX_WINDOW_BYTES);
            Self { kib_per_sec: c_max_rate.max(1), window_bytes: fill, min_kib_per_sec: c_min_rate }
        }
    }

    /// The 8.4 defaults (resync-rate 250, c-plan-ahead 20, c-max-rate
    /// 100 MiB/s, c-fill-target 100 sectors, c-min-rate 250).
    pub(crate) fn defaults() -> Self {
        Self::from_options(
            api::disk_conf::RESYNC_RATE_LIMITS.default,
            api::disk_conf::C_PLAN_AHEAD_LIMITS.default,
            api::disk_conf::C_MAX_RATE_LIMITS.default,
            api::disk_conf::C_FILL_TARGET_LIMITS.default,
            api::disk_conf::C_MIN_RATE_LIMITS.default,
        )
    }
}

/// Resync state a device shares between the receiver, the meta-socket
/// thread, the target's worker and `/proc/drbd`.
#[pin_data]
pub(crate) struct ResyncShared {
    /// Bits to sync when it started.
    total: AtomicU64,
    /// When it started (ms since boot).
    start_ms: AtomicU64,
    /// Blocks the peer could not provide or write.
    failed: AtomicU64,
    /// A mark for the current speed: time (ms) and bits left then.
    mark_ms: AtomicU64,
    mark_left: AtomicU64,
    /// The mark before it (`c-min-rate` measures the speed since then:
    /// 3 to 6 s, as 8.4 over its last two mark steps).
    prev_mark_ms: AtomicU64,
    prev_mark_left: AtomicU64,
    /// `c-min-rate`: the application I/O counter at its last look that
    /// found activity (or at the resync's first look: 8.4 takes it when
    /// the resync starts), whether that first look was taken, and whether
    /// this resync has stepped aside yet (it says so once).
    throttle_last: AtomicU64,
    throttle_primed: AtomicBool,
    throttle_noted: AtomicBool,
    /// Target: requests sent and not answered.
    pub(crate) in_flight: AtomicU32,
    /// Target: bytes of requests sent and not answered.
    pub(crate) in_flight_bytes: AtomicU64,
    /// Target: the worker found no more bits to ask for.
    pub(crate) requests_done: AtomicBool,
    /// The rate (KiB/s) the target wants, for /proc/drbd.
    pub(crate) want_kib: AtomicU32,
    /// This resync compares checksums (`use_csums`): the target sends
    /// them, or the source was asked with them.
    use_csums: AtomicBool,
    /// Bits found equal by checksum (`rs_same_csum`).
    same_csum: AtomicU64,
    /// Wakes the target's worker when a reply came in (from the receiver
    /// and the meta-socket thread; the worker waits for its own condition).
    #[pin]
    pub(crate) wake: WaitQueue,
    /// Configured rate (from the disk options; `disk-options` changes it
    /// while a resync runs, the worker re-reads it every tick).
    #[pin]
    pub(crate) rate: Mutex<ResyncRate>,
}

impl ResyncShared {
    pub(crate) fn new(rate: ResyncRate) -> impl PinInit<Self> {
        pin_init!(Self {
            total: AtomicU64::new(0),
            start_ms: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            mark_ms: AtomicU64::new(0),
            mark_left: AtomicU64::new(0),
            prev_mark_ms: AtomicU64::new(0),
            prev_mark_left: AtomicU64::new(0),
            throttle_last: AtomicU64::new(0),
            throttle_primed: AtomicBool::new(false),
            throttle_noted: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            in_flight_bytes: AtomicU64::new(0),
            requests_done: AtomicBool::new(false),
            want_kib: AtomicU32::new(0),
            use_csums: AtomicBool::new(false),
            same_csum: AtomicU64::new(0),
            wake <- new_wait_queue!("rdrbd::ResyncShared::wake"),
            rate <- new_mutex!(rate, "rdrbd::ResyncShared::rate"),
        })
    }

    /// Sets the rate the disk options ask for.
    pub(crate) fn set_rate(&self, rate: ResyncRate) {
        *self.rate.lock() = rate;
    }

    /// A resync of `bits` out-of-sync blocks begins.
    pub(crate) fn begin(&self, bits: u64) {
        let now = now_ms();
        self.total.store(bits, Ordering::Relaxed);
        self.start_ms.store(now, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
        self.mark_ms.store(now, Ordering::Relaxed);
        self.mark_left.store(bits, Ordering::Relaxed);
        self.prev_mark_ms.store(now, Ordering::Relaxed);
        self.prev_mark_left.store(bits, Ordering::Relaxed);
        self.throttle_primed.store(false, Ordering::Relaxed);
        self.throttle_noted.store(false, Ordering::Relaxed);
        self.in_flight.store(0, Ordering::Relaxed);
        self.in_flight_bytes.store(0, Ordering::Relaxed);
        self.requests_done.store(false, Ordering::Relaxed);
        self.use_csums.store(false, Ordering::Relaxed);
        self.same_csum.store(0, Ordering::Relaxed);
    }

    /// This resync compares checksums.
    pub(crate) fn note_csums_used(&self) {
        self.use_csums.store(true, Ordering::Relaxed);
    }

    /// Whether this resync compared checksums.
    pub(crate) fn csums_used(&self) -> bool {
        self.use_csums.load(Ordering::Relaxed)
    }

    /// `bits` more blocks had equal checksums.
    pub(crate) fn add_same_csum(&self, bits: u64) {
        self.same_csum.fetch_add(bits, Ordering::Relaxed);
    }

    /// Blocks found equal by checksum in this resync.
    pub(crate) fn same_csum(&self) -> u64 {
        self.same_csum.load(Ordering::Relaxed)
    }

    /// Blocks the peer could not sync.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Counts `n` more blocks that failed to sync.
    pub(crate) fn add_failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }

    /// Seconds since the resync began (at least 1).
    pub(crate) fn elapsed_secs(&self) -> u64 {
        (now_ms().saturating_sub(self.start_ms.load(Ordering::Relaxed)) / 1000).max(1)
    }

    /// Bits to sync when it began.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Target: a request of `bytes` was answered (data, or a refusal).
    pub(crate) fn request_answered(&self, bytes: u32) {
        // Never below zero, whatever a confused peer sends.
        let _ = self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
        let _ = self.in_flight_bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            Some(n.saturating_sub(u64::from(bytes)))
        });
        self.wake.wake_all();
    }

    /// Moves the speed mark forward every few seconds (`drbd_advance_rs_marks`).
    pub(crate) fn note_left(&self, left: impl FnOnce() -> u64) {
        let now = now_ms();
        let mark_ms = self.mark_ms.load(Ordering::Relaxed);
        if now.saturating_sub(mark_ms) >= 3000 {
            self.prev_mark_ms.store(mark_ms, Ordering::Relaxed);
            self.prev_mark_left.store(self.mark_left.load(Ordering::Relaxed), Ordering::Relaxed);
            self.mark_ms.store(now, Ordering::Relaxed);
            self.mark_left.store(left(), Ordering::Relaxed);
        }
    }

    /// `c-min-rate` (`drbd_rs_c_min_rate_throttle`): whether the resync,
    /// with `left` blocks to go, steps aside for application I/O now
    /// (`resync_throttle`). The first time in a resync it says so.
    pub(crate) fn should_slow_down(&self, name: &str, activity: Activity, left: u64) -> bool {
        if !self.throttle_primed.swap(true, Ordering::Relaxed) {
            // I/O before the resync began is no activity during it.
            self.throttle_last.store(activity.app_sectors, Ordering::Relaxed);
            return false;
        }
        let c_min_rate = self.rate.lock().min_kib_per_sec;
        let since_ms = now_ms().saturating_sub(self.prev_mark_ms.load(Ordering::Relaxed));
        let speed = resync_throttle::speed_kib(self.prev_mark_left.load(Ordering::Relaxed), left, since_ms);
        let mut last = self.throttle_last.load(Ordering::Relaxed);
        let slow = resync_throttle::should_slow_down(c_min_rate, activity, &mut last, speed);
        self.throttle_last.store(last, Ordering::Relaxed);
        if slow && !self.throttle_noted.swap(true, Ordering::Relaxed) {
            pr_info!("{}: resync steps aside for application I/O ({} K/sec > c-min-rate {} K/sec)\n", name, speed, c_min_rate);
        }
        slow
    }

    /// [`Self::should_slow_down`], and if so waits 100 ms (8.4's
    /// SyncSource and VerifyT before they serve a request).
    pub(crate) fn step_aside(&self, name: &str, activity: Activity, left: u64) -> bool {
        let slow = self.should_slow_down(name, activity, left);
        if slow {
            self.wake.pause_unless(|| false, 100);
        }
        slow
    }

    /// The resync progress lines of `/proc/drbd` (`drbd_syncer_progress`).
    pub(crate) fn show_progress(&self, out: &mut impl Write, conn: ConnState, left: u64) -> fmt::Result {
        let total = self.total().max(left);
        // Permille done; C computes it the same way.
        let res = if total == 0 { 1000 } else { 1000u64.saturating_sub(left.saturating_mul(1000) / total) };
        let x = res / 50;
        out.write_str("\t[")?;
        for _ in 1..x {
            out.write_char('=')?;
        }
        out.write_char('>')?;
        for _ in 0..20u64.saturating_sub(x) {
            out.write_char('.')?;
        }
        let verify = matches!(conn, ConnState::VerifyS | ConnState::VerifyT);
        out.write_str(if verify { "] verified:" } else { "] sync'ed:" })?;
        write!(out, "{:3}.{}% ", res / 10, res % 10)?;
        if total > (4u64 << 18) {
            write!(out, "({}/{})M", (left >> 10) * 4, (total >> 10) * 4)?;
        } else {
            write!(out, "({}/{})K", left * 4, total * 4)?;
        }
        out.write_str("\n\t")?;
        let now = now_ms();
        let mark_dt = (now.saturating_sub(self.mark_ms.load(Ordering::Relaxed)) / 1000).max(1);
        let mark_db = self.mark_left.load(Ordering::Relaxed).saturating_sub(left);
        let rt = (mark_dt * (left / (mark_db / 100 + 1))) / 100;
        write!(out, "finish: {}:{:02}:{:02} speed: ", rt / 3600, (rt % 3600) / 60, rt % 60)?;
        write_thousands(out, mark_db / mark_dt * 4)?;
        out.write_str(" (")?;
        let dt = self.elapsed_secs();
        write_thousands(out, total.saturating_sub(left) / dt * 4)?;
        out.write_char(')')?;
        if conn == ConnState::SyncTarget {
            out.write_str(" want: ")?;
            write_thousands(out, u64::from(self.want_kib.load(Ordering::Relaxed)))?;
        }
        out.write_str(" K/sec\n")
    }
}

/// `seq_printf_with_thousands_grouping`.
fn write_thousands(out: &mut impl Write, v: u64) -> fmt::Result {
    if v >= 1_000_000 {
        write!(out, "{},{:03},{:03}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
    } else if v >= 1000 {
        write!(out, "{},{:03}", v / 1000, v % 1000)
    } else {
        write!(out, "{}", v)
    }
}

