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
//! ones in flight to drain, then reads (`ResyncLock` in `drbd_actlog.rs`).
//! And a block the target asks for must not overwrite a newer write of
//! its own, when it is Primary (an `attach` under a running application,
//! `invalidate`): each request is tracked with the device's writes in
//! flight from before it is sent until it is answered; it waits for the
//! local writes it overlaps and they for it (`drbd_include::write_conflicts`).

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::drbd_include::genl::{ConnState, DiskState};
use crate::drbd_include::uuid::Uuids;
use crate::drbd_peer_device::{PeerDevice, ResyncRate};
use crate::drbd_req::DeviceIo;
use crate::drbd_sender::Replica;
use crate::kernel_glue::block::BlockPages;
use crate::kernel_glue::crypto::Digest;
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::now_ms;

/// How often the worker plans requests (`SLEEP_TIME`, 100 ms in C).
const TICK_MS: u32 = 100;

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
    pub(crate) pd: Arc<PeerDevice>,
    pub(crate) replica: Arc<Replica>,
    pub(crate) peer_uuids: Uuids,
    /// The csums-alg transform when this resync compares checksums.
    pub(crate) csums: Option<Digest>,
    /// Bytes one request asks for at most
    /// (`resync_request::request_bytes`).
    pub(crate) request_bytes: u32,
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
    fn new(size: u32) -> Result<Self> {
        let size = size as usize;
        Ok(Self { pages: BlockPages::new(size)?, data: KVVec::from_elem(0u8, size, GFP_KERNEL).map_err(|_| ENOMEM)? })
    }
}

fn run_target(mut job: TargetJob) {
    let io = job.io.clone();
    let rs = &job.pd.resync;
    let name = job.name;
    // With checksums the worker reads each block before asking for it.
    let max_bits = u64::from(job.request_bytes / 4096);
    let mut csums = job.csums.take().and_then(|digest| match CsumBuffers::new(job.request_bytes) {
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
            // Looked at again every tick, as 8.4's resync timer does.
            rs.wake.pause_unless(|| false, u32::from(TICK_MS));
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
            // c-min-rate: with application I/O on this disk and the resync
            // above that rate, no request this tick (8.4's
            // `drbd_try_rs_begin_io` requeues the resync work).
            if rs.should_slow_down(name.as_str(), io.app_activity(), io.out_of_sync_bits().saturating_sub(rs.failed())) {
                budget = 0;
            }
        }
        while !rs.requests_done.load(Ordering::Acquire)
            && budget > 0
            && rs.in_flight_bytes.load(Ordering::Acquire) < u64::from(rate.window_bytes)
        {
            let Some((sector, size, next)) = io.next_resync_request(cursor, max_bits) else {
                rs.requests_done.store(true, Ordering::Release);
                break;
            };
            cursor = next;
            // Local writes into the range wait for its reply (a Primary
            // SyncTarget's), and it for theirs.
            if io.conflicts().admit_resync(sector, size, KThread::should_stop).is_none() {
                return;
            }
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
                let another_scan_finds_one = io.next_resync_request(0, max_bits).is_some();
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
        // Until an answer lets more requests out (or ends the pass), or
        // the next tick refills the rate's budget.
        let until_tick = u64::from(TICK_MS).saturating_sub(now_ms().saturating_sub(tick_start));
        let window = u64::from(rate.window_bytes);
        let can_send = budget > 0;
        rs.wake.pause_unless(
            || {
                let room = rs.in_flight_bytes.load(Ordering::Acquire) < window;
                let done = rs.requests_done.load(Ordering::Acquire);
                (room && can_send && !done) || (done && rs.in_flight.load(Ordering::Acquire) == 0)
            },
            u32::try_from(until_tick).unwrap_or(u32::from(TICK_MS)).max(1),
        );
    }
}

/// The request at `sector` for `bytes` is answered (the reply written,
/// or none coming): local writes into it may go, and the worker may ask
/// for more.
pub(crate) fn request_answered(io: &DeviceIo, pd: &PeerDevice, sector: u64, bytes: u32) {
    io.conflicts().resync_answered(sector);
    pd.resync.request_answered(bytes);
}

/// `drbd_resync_finished` on the SyncTarget: take the source's UUIDs,
/// become UpToDate (unless blocks failed), persist, tell the peer.
fn finish_target(job: &mut TargetJob) {
    let io = &job.io;
    let rs = &job.pd.resync;
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
