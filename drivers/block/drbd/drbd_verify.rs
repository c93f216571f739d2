//! Online verify (`drbdsetup verify`, 8.4's `w_make_ov_request`,
//! `w_e_end_ov_req`, `w_e_end_ov_reply`, `got_OVResult`).
//!
//! VerifyS walks the device in 4 KiB blocks and sends P_OV_REQUEST for
//! each (a worker thread, a window of requests in flight). VerifyT reads
//! the block and answers P_OV_REPLY with its digest (`verify-alg`).
//! VerifyS reads its own block, compares the digests, marks a differing
//! block out of sync and tells VerifyT the verdict in P_OV_RESULT, which
//! marks it there too. Neither side changes data: as in 8.4 the blocks
//! found different are resynced on the next disconnect/connect. Each side
//! counts the blocks left and goes back to Connected at zero; VerifyS
//! then sends P_STATE (which also ends a VerifyT whose count differs,
//! e.g. after a stop sector).

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::drbd_block_digest::{send_block_digest, with_block_digest};
use crate::drbd_include::genl::{ConnState, Role};
use crate::drbd_include::protocol::{self as proto, Packet, ID_IN_SYNC, ID_OUT_OF_SYNC, ID_SYNCER};
use crate::drbd_req::DeviceIo;
use crate::drbd_peer_device::PeerDevice;
use crate::drbd_sender::Replica;
use crate::kernel_glue::block::BlockPages;
use crate::kernel_glue::crypto::Digest;
use crate::kernel_glue::thread::KThread;

/// Sectors of one verify request (`BM_BLOCK_SIZE`).
const BLOCK_SECTORS: u64 = 8;
/// Requests VerifyS keeps in flight.
const WINDOW: u32 = 64;
/// How often a full window looks at the connection state again.
const WINDOW_RECHECK_MS: u32 = 100;

/// What the VerifyS worker needs.
pub(crate) struct SourceJob {
    pub(crate) name: crate::ResourceName,
    pub(crate) io: Arc<DeviceIo>,
    pub(crate) pd: Arc<PeerDevice>,
    pub(crate) replica: Arc<Replica>,
    /// First sector (block aligned) and the sector to stop before.
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// Starts online verify as VerifyS (the peer agreed to VerifyT).
pub(crate) fn start_source(name: &str, job: SourceJob) -> Result {
    let io = job.io.clone();
    let pd = job.pd.clone();
    let v = &pd.verify;
    v.stop_worker();
    let blocks = job.end.saturating_sub(job.start).div_ceil(BLOCK_SECTORS);
    v.reset(blocks);
    pd.resync.begin(blocks);
    io.set_state(|s| s.peer.conn = ConnState::VerifyS);
    pr_info!("{}: Starting Online Verify from sector {}\n", name, job.start);
    if blocks == 0 {
        finish(name, &io, &pd, ConnState::VerifyS);
        return Ok(());
    }
    let thread_name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_ov_{}", name))?;
    let thread = KThread::spawn(&thread_name, move || run_source(job))?;
    *v.worker.lock() = Some(thread);
    Ok(())
}

fn run_source(job: SourceJob) {
    let v = &job.pd.verify;
    let mut sector = job.start;
    while sector < job.end {
        if KThread::should_stop() || job.io.peer().conn != ConnState::VerifyS {
            return;
        }
        if v.in_flight.load(Ordering::Acquire) >= WINDOW {
            // Until an answer makes room; the connection state is checked
            // again at least every WINDOW_RECHECK_MS (a lost connection
            // answers nothing).
            v.wake.pause_unless(|| v.in_flight.load(Ordering::Acquire) < WINDOW, WINDOW_RECHECK_MS);
            continue;
        }
        // c-min-rate, as for a resync (8.4's make_ov_request requeues).
        if job.pd.resync.step_aside(job.name.as_str(), job.io.app_activity(), v.left()) {
            continue;
        }
        let sectors = job.end.saturating_sub(sector).min(BLOCK_SECTORS);
        let req = proto::BlockRequest { sector, block_id: ID_SYNCER, blksize: (sectors * 512) as u32 };
        v.in_flight.fetch_add(1, Ordering::AcqRel);
        if job.replica.send_small(Packet::OvRequest, |out| req.encode(out)).is_err() {
            // The receiver sees the broken connection.
            return;
        }
        sector = sector.saturating_add(BLOCK_SECTORS);
    }
}

/// VerifyT: P_OV_REQUEST. The first one gives the start sector
/// (`ov_start_sector`); the block is read and its digest sent back in
/// P_OV_REPLY.
pub(crate) fn serve_request(
    name: &str,
    io: &DeviceIo,
    pd: &PeerDevice,
    replica: &Replica,
    digest: &Digest,
    pages: &mut BlockPages,
    buf: &mut [u8],
    req: proto::BlockRequest,
) -> Result {
    let v = &pd.verify;
    if !v.started.swap(true, Ordering::AcqRel) {
        let capacity = io.capacity_sectors();
        let blocks = capacity.div_ceil(BLOCK_SECTORS).saturating_sub(req.sector / BLOCK_SECTORS);
        v.reset(blocks);
        pd.resync.begin(blocks);
        pr_info!("{}: Online Verify start sector: {}\n", name, req.sector);
    }
    // c-min-rate, as the SyncSource (8.4's receive_DataRequest).
    if io.peer().peer != Role::Primary {
        pd.resync.step_aside(name, io.app_activity(), v.left());
    }
    send_block_digest(io, replica, digest, pages, buf, Packet::OvReply, req).map_err(|e| e.errno())
}

/// VerifyS: P_OV_REPLY. Compares the peer's digest with our block's,
/// marks a differing block out of sync, and returns the P_OV_RESULT to
/// send; ends the verify after the last block.
#[allow(clippy::too_many_arguments)]
pub(crate) fn compare_reply(
    name: &str,
    io: &DeviceIo,
    pd: &PeerDevice,
    digest: &Digest,
    pages: &mut BlockPages,
    buf: &mut [u8],
    req: proto::BlockRequest,
    peer_digest: &[u8],
) -> Result<proto::BlockAck> {
    let v = &pd.verify;
    let mut same = false;
    with_block_digest(io, digest, pages, buf, req.sector, req.blksize, |_, sum| {
        same = sum == peer_digest;
        Ok(())
    })?;
    if !same {
        io.set_out_of_sync(req.sector, req.blksize);
        v.found_out_of_sync(name, req.sector, req.blksize);
    }
    let _ = v.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
    v.wake.wake_all();
    let block_id = if same { ID_IN_SYNC } else { ID_OUT_OF_SYNC };
    Ok(proto::BlockAck { sector: req.sector, block_id, blksize: req.blksize, seq_num: 0 })
}

/// VerifyS, after the P_OV_RESULT went out: counts the block and ends
/// the verify after the last one, telling the peer (P_STATE Connected).
pub(crate) fn reply_done(name: &str, io: &DeviceIo, pd: &PeerDevice, replica: &Replica) -> Result {
    let v = &pd.verify;
    pd.resync.note_left(|| v.left());
    if v.block_done() && finish(name, io, pd, ConnState::VerifyS) {
        return replica.send_state(io.state());
    }
    Ok(())
}

/// VerifyT: P_OV_RESULT (`got_OVResult`). A block found different is
/// marked even when the result comes after the verify ended (VerifyS's
/// P_STATE on the data socket may overtake the last result on the meta
/// socket): marking is always safe.
pub(crate) fn got_result(name: &str, io: &DeviceIo, pd: &PeerDevice, ack: proto::BlockAck) {
    let in_range = ack.blksize != 0
        && ack.blksize <= 4096
        && ack.sector.checked_add(u64::from(ack.blksize / 512)).is_some_and(|end| end <= io.capacity_sectors());
    if !in_range {
        pr_err!("{}: OVResult for sector {} size {} is out of range; ignored\n", name, ack.sector, ack.blksize);
        return;
    }
    let v = &pd.verify;
    let verifying = io.peer().conn == ConnState::VerifyT;
    if ack.block_id == ID_OUT_OF_SYNC {
        io.set_out_of_sync(ack.sector, ack.blksize);
        if verifying {
            v.found_out_of_sync(name, ack.sector, ack.blksize);
        } else {
            pr_info!("{}: Out of sync: start={}, size={} (sectors)\n", name, ack.sector, ack.blksize / 512);
        }
    }
    if !verifying {
        return;
    }
    pd.resync.note_left(|| v.left());
    if v.block_done() {
        finish(name, io, pd, ConnState::VerifyT);
    }
}

/// `drbd_resync_finished` of a verify: back to Connected (if still in
/// `side`), with the 8.4 log lines. Returns whether it ended here.
pub(crate) fn finish(name: &str, io: &DeviceIo, pd: &PeerDevice, side: ConnState) -> bool {
    let t = io.set_state(|s| {
        if s.peer.conn == side {
            s.peer.conn = ConnState::Connected;
        }
    });
    if t.old.peer.conn != side || t.new.peer.conn != ConnState::Connected {
        return false;
    }
    let v = &pd.verify;
    v.flush_run(name);
    v.started.store(false, Ordering::Release);
    let rs = &pd.resync;
    let dt = rs.elapsed_secs();
    let done = rs.total().saturating_sub(v.left());
    pr_info!("{}: Online verify done (total {} sec; paused 0 sec; {} K/sec)\n", name, dt, done * 4 / dt);
    let oos = v.out_of_sync.load(Ordering::Relaxed);
    if oos != 0 {
        pr_info!("{}: Online verify found {} 4k block out of sync!\n", name, oos);
    }
    pr_info!("{}: conn( {} -> Connected )\n", name, side.name());
    true
}

/// The connection is gone: a verify in progress ends without a result.
pub(crate) fn connection_lost(name: &str, io: &DeviceIo, pd: &PeerDevice) {
    let v = &pd.verify;
    v.stop_worker();
    v.started.store(false, Ordering::Release);
    let conn = io.peer().conn;
    if matches!(conn, ConnState::VerifyS | ConnState::VerifyT) {
        v.flush_run(name);
        pr_info!("{}: online verify interrupted ({} blocks not compared)\n", name, v.left());
    }
}
