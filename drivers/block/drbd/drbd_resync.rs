//! Resynchronisation (the resync parts of DRBD 8.4's `drbd_worker.c`,
//! `drbd_receiver.c` and `drbd_proc.c`).
//!
//! After a handshake that found the disks differ, both nodes exchange
//! bitmaps (each ORs the other's into its own), the SyncSource picks a new
//! sync UUID and sends it (P_SYNC_UUID), and the SyncTarget's worker
//! thread then asks for every out-of-sync block (P_RS_DATA_REQUEST). The
//! source reads the block and sends it (P_RS_DATA_REPLY); the target writes
//! it and acks it (P_RS_WRITE_ACK), and both clear its bit. When the
//! target's bitmap is empty it adopts the source's UUIDs, becomes UpToDate
//! and tells the source with a P_STATE of Connected.
//!
//! A block the source reads for the target must not be older than a write
//! the source replicated before it: the source locks the request's whole
//! activity-log extents against new application writes, waits for the
//! ones in flight to drain, then reads ([`ResyncShared::lock_range`]).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::new_condvar;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};

use crate::drbd_include::genl::{self as api, ConnState, DiskState};
use crate::drbd_include::uuid::Uuids;
use crate::drbd_req::DeviceIo;
use crate::drbd_sender::Replica;
use crate::kernel_glue::block::BlockPages;
use crate::kernel_glue::crypto::Digest;
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::now_ms;

/// Bytes one resync request asks for at most (C DRBD merges up to its
/// max bio size; 128 KiB keeps the source's reads short).
const MAX_REQUEST_BYTES: u32 = 128 * 1024;
/// Bits (4 KiB blocks) one request covers at most.
const MAX_REQUEST_BITS: u64 = (MAX_REQUEST_BYTES / 4096) as u64;
/// How often the worker plans requests (`SLEEP_TIME`, 100 ms in C).
const TICK_MS: u32 = 100;

/// How fast the SyncTarget may ask for data (from the disk options).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResyncRate {
    /// KiB/s: `resync-rate` with a fixed rate, `c-max-rate` with the
    /// dynamic controller (`c-plan-ahead` > 0).
    pub(crate) kib_per_sec: u32,
    /// Bytes in flight at most.
    pub(crate) window_bytes: u32,
}

impl ResyncRate {
    /// The rate the disk options give. The dynamic controller of C DRBD
    /// aims at `c-fill-target` in flight below `c-max-rate`; rdrbd keeps
    /// a window of requests in flight, capped at `c-max-rate`.
    pub(crate) fn from_options(resync_rate: u32, c_plan_ahead: u32, c_max_rate: u32, c_fill_target: u32) -> Self {
        if c_plan_ahead == 0 {
            Self { kib_per_sec: resync_rate.max(1), window_bytes: 8 * MAX_REQUEST_BYTES }
        } else {
            // c-fill-target is in sectors.
            let fill = c_fill_target.saturating_mul(512).max(8 * MAX_REQUEST_BYTES);
            Self { kib_per_sec: c_max_rate.max(1), window_bytes: fill.min(64 * MAX_REQUEST_BYTES) }
        }
    }

    /// The 8.4 defaults (resync-rate 250, c-plan-ahead 20, c-max-rate
    /// 100 MiB/s, c-fill-target 100 sectors).
    pub(crate) fn defaults() -> Self {
        Self::from_options(
            api::disk_conf::RESYNC_RATE_LIMITS.default,
            api::disk_conf::C_PLAN_AHEAD_LIMITS.default,
            api::disk_conf::C_MAX_RATE_LIMITS.default,
            api::disk_conf::C_FILL_TARGET_LIMITS.default,
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
    /// Target: requests sent and not answered.
    in_flight: AtomicU32,
    /// Target: bytes of requests sent and not answered.
    in_flight_bytes: AtomicU64,
    /// Target: the worker found no more bits to ask for.
    requests_done: AtomicBool,
    /// The rate (KiB/s) the target wants, for /proc/drbd.
    want_kib: AtomicU32,
    /// This resync compares checksums (`use_csums`): the target sends
    /// them, or the source was asked with them.
    use_csums: AtomicBool,
    /// Bits found equal by checksum (`rs_same_csum`).
    same_csum: AtomicU64,
    /// Source: the sector range `[start, end)` application writes must
    /// wait for (end 0: none), set under the metadata lock.
    locked_start: AtomicU64,
    locked_end: AtomicU64,
    #[pin]
    wake_lock: Mutex<()>,
    /// Wakes the worker when a reply came in.
    #[pin]
    wake: CondVar,
    /// Configured rate (from the disk options; `disk-options` changes it
    /// while a resync runs, the worker re-reads it every tick).
    #[pin]
    rate: Mutex<ResyncRate>,
}

impl ResyncShared {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            total: AtomicU64::new(0),
            start_ms: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            mark_ms: AtomicU64::new(0),
            mark_left: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            in_flight_bytes: AtomicU64::new(0),
            requests_done: AtomicBool::new(false),
            want_kib: AtomicU32::new(0),
            use_csums: AtomicBool::new(false),
            same_csum: AtomicU64::new(0),
            locked_start: AtomicU64::new(0),
            locked_end: AtomicU64::new(0),
            wake_lock <- new_mutex!((), "rdrbd::ResyncShared::wake_lock"),
            wake <- new_condvar!("rdrbd::ResyncShared::wake"),
            rate <- new_mutex!(ResyncRate::defaults(), "rdrbd::ResyncShared::rate"),
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
        let _guard = self.wake_lock.lock();
        self.wake.notify_all();
    }

    /// Moves the speed mark forward every few seconds (`drbd_advance_rs_marks`).
    pub(crate) fn note_left(&self, left: impl FnOnce() -> u64) {
        let now = now_ms();
        if now.saturating_sub(self.mark_ms.load(Ordering::Relaxed)) >= 3000 {
            self.mark_ms.store(now, Ordering::Relaxed);
            self.mark_left.store(left(), Ordering::Relaxed);
        }
    }

    /// Whether `[sector, sector + size)` overlaps the range a resync read
    /// holds (checked under the metadata lock).
    pub(crate) fn range_locked(&self, sector: u64, size: u32) -> bool {
        let end = self.locked_end.load(Ordering::Acquire);
        end != 0
            && sector < end
            && sector.saturating_add(u64::from(size).div_ceil(512)) > self.locked_start.load(Ordering::Acquire)
    }

    /// Holds application writes off `[sector, sector + bytes / 512)`: set
    /// under the metadata lock, so every write admitted before is counted
    /// in flight and every later one sees the lock.
    pub(crate) fn lock_range(&self, sector: u64, bytes: u64) {
        self.locked_start.store(sector, Ordering::Release);
        self.locked_end.store(sector.saturating_add(bytes.div_ceil(512)).max(1), Ordering::Release);
    }

    /// Lets application writes through again.
    pub(crate) fn unlock_range(&self) {
        self.locked_end.store(0, Ordering::Release);
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

/// The SyncTarget's worker: requests out-of-sync blocks at the configured
/// rate and, when none is left and every request is answered, finishes
/// the resync. Stops when dropped.
pub(crate) struct SyncTargetWorker {
    _thread: KThread,
}

/// What the worker needs to finish the resync.
pub(crate) struct TargetJob {
    pub(crate) name: crate::ResourceName,
    pub(crate) io: Arc<DeviceIo>,
    pub(crate) replica: Arc<Replica>,
    pub(crate) peer_uuids: Uuids,
    /// The csums-alg transform when this resync compares checksums.
    pub(crate) csums: Option<Digest>,
}

impl SyncTargetWorker {
    /// Starts the worker of a resync that has just begun.
    pub(crate) fn start(job: TargetJob) -> Result<Self> {
        let name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_w_{}", job.name.as_str()))?;
        let thread = KThread::spawn(&name, move || run_target(job))?;
        Ok(Self { _thread: thread })
    }
}

/// Buffers the target reads its own blocks into for their checksums.
struct CsumBuffers {
    pages: BlockPages,
    data: KVVec<u8>,
}

impl CsumBuffers {
    fn new() -> Result<Self> {
        let size = MAX_REQUEST_BYTES as usize;
        Ok(Self { pages: BlockPages::new(size)?, data: KVVec::from_elem(0u8, size, GFP_KERNEL).map_err(|_| ENOMEM)? })
    }
}

fn run_target(mut job: TargetJob) {
    let io = job.io.clone();
    let rs = io.resync();
    let name = job.name;
    // With checksums the worker reads each block before asking for it.
    let mut csums = job.csums.take().and_then(|digest| match CsumBuffers::new() {
        Ok(bufs) => Some((digest, bufs)),
        Err(e) => {
            pr_warn!("{}: no memory for checksum-based resync (error {}); requesting every block\n",
                name.as_str(), e.to_errno());
            None
        }
    });
    if csums.is_some() {
        rs.note_csums_used();
    }
    let mut rate = *rs.rate.lock();
    rs.want_kib.store(rate.kib_per_sec, Ordering::Relaxed);
    // Bytes the rate allows per tick; unused budget does not pile up
    // beyond one tick, and a request may overdraw it (repaid later).
    let tick_budget = |rate: &ResyncRate| i64::from(rate.kib_per_sec).saturating_mul(1024) * i64::from(TICK_MS) / 1000;
    let mut per_tick = tick_budget(&rate);
    let mut budget = per_tick;
    let mut tick_start = now_ms();
    let mut cursor = 0u64;
    // Requests sent in the current pass over the bitmap.
    let mut requested = 0u64;
    loop {
        if KThread::should_stop() {
            return;
        }
        // pause-sync here or on the peer (PausedSyncT): no new requests;
        // the ones in flight are still answered.
        if io.states().sync_paused() {
            let mut guard = rs.wake_lock.lock();
            let _ = rs.wake.wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(u32::from(TICK_MS)));
            continue;
        }
        if now_ms().saturating_sub(tick_start) >= u64::from(TICK_MS) {
            tick_start = now_ms();
            // As 8.4's controller reads the disk options at every step,
            // a changed resync-rate/c-* applies to the running resync.
            let configured = *rs.rate.lock();
            if configured != rate {
                rate = configured;
                per_tick = tick_budget(&rate);
                rs.want_kib.store(rate.kib_per_sec, Ordering::Relaxed);
            }
            budget = budget.saturating_add(per_tick).min(per_tick);
        }
        while !rs.requests_done.load(Ordering::Acquire)
            && budget > 0
            && rs.in_flight_bytes.load(Ordering::Acquire) < u64::from(rate.window_bytes)
        {
            let Some((sector, size, next)) = io.next_resync_request(cursor, MAX_REQUEST_BITS) else {
                rs.requests_done.store(true, Ordering::Release);
                break;
            };
            cursor = next;
            requested = requested.saturating_add(1);
            rs.in_flight.fetch_add(1, Ordering::AcqRel);
            rs.in_flight_bytes.fetch_add(u64::from(size), Ordering::AcqRel);
            let sent = match csums.as_mut() {
                Some((digest, bufs)) => crate::drbd_csums::send_request(
                    &io, &job.replica, digest, &mut bufs.pages, &mut bufs.data, sector, size,
                ),
                None => job.replica.send_rs_request(sector, size),
            };
            if sent.is_err() {
                // The receiver sees the broken connection and stops us.
                return;
            }
            budget = budget.saturating_sub(i64::from(size));
        }
        if rs.requests_done.load(Ordering::Acquire) && rs.in_flight.load(Ordering::Acquire) == 0 {
            let left = io.out_of_sync_bits();
            if left > rs.failed() {
                // A bit set after this pass's scan went by (a replicated
                // write not covering whole blocks) is found by a new scan.
                let another_scan_finds_one = io.next_resync_request(0, MAX_REQUEST_BITS).is_some();
                if requested == 0 && !another_scan_finds_one {
                    // Bits the walk cannot turn into requests: never claim
                    // UpToDate over them; they count as failed blocks.
                    pr_err!("{}: resync found no request for {} blocks still out of sync; counting them as failed\n",
                        name.as_str(), left - rs.failed());
                    rs.add_failed(left - rs.failed());
                } else {
                    // Bits set again meanwhile (a replicated write not
                    // covering whole blocks, a block the source declined):
                    // another pass. The target is UpToDate only when no bit
                    // is left but those of failed blocks.
                    cursor = 0;
                    requested = 0;
                    rs.requests_done.store(false, Ordering::Release);
                    continue;
                }
            }
            finish_target(&mut job);
            return;
        }
        let mut guard = rs.wake_lock.lock();
        let _ = rs.wake.wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(10));
    }
}

/// `drbd_resync_finished` on the SyncTarget: take the source's UUIDs,
/// become UpToDate (unless blocks failed), persist, tell the peer.
fn finish_target(job: &mut TargetJob) {
    let io = &job.io;
    let rs = io.resync();
    let failed = rs.failed();
    let primary = io.is_primary();
    let (disk, pdsk) = if failed == 0 {
        (DiskState::UpToDate, DiskState::UpToDate)
    } else {
        (DiskState::Inconsistent, DiskState::UpToDate)
    };
    let name = job.name.as_str();
    let dt = rs.elapsed_secs();
    pr_info!("{}: Resync done (total {} sec; paused 0 sec; {} K/sec)\n", name, dt, rs.total() * 4 / dt);
    crate::drbd_csums::log_summary(name, rs);
    if failed != 0 {
        pr_info!("{}:             {} failed blocks\n", name, failed);
    }
    let mut peer_uuids = job.peer_uuids;
    let written = io.with_md(|md, dev| md.resync_finished(dev, &mut peer_uuids, true, primary, failed == 0, disk, pdsk));
    if let Some(Err(e)) = written {
        pr_err!("{}: writing meta data after resync failed: error {}\n", name, e.to_errno());
    }
    let t = io.set_state(|s| {
        s.device.disk = disk;
        s.peer.conn = ConnState::Connected;
        s.peer.pdsk = pdsk;
    });
    // Sync target done: tell the peer explicitly (after_state_ch).
    let _ = job.replica.send_state(t.new.word());
}
