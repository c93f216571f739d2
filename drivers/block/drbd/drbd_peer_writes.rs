//! The Secondary's replicated writes and the SyncTarget's resync writes in
//! flight (8.4's peer requests on `active_ee` and `sync_ee`, answered from
//! `done_ee`): the receiver submits each P_DATA and P_RS_DATA_REPLY to the
//! backing disk and reads on; a thread of the connection answers the peer
//! when each completes (P_WRITE_ACK or P_RS_WRITE_ACK, or P_NEG_ACK with
//! the block marked out of sync, or counted as failed, and the local error
//! handled), so the Primary's queue depth, and the SyncSource's stream of
//! resync data, reach this disk. The same thread sends each epoch's
//! P_BARRIER_ACK once the epoch's writes, and those of every epoch before,
//! are answered (after a flush of the backing disk under the `flush` write
//! ordering): an epoch's writes are on disk, and acked, before its barrier
//! ack. The receiver waits for that ack before it reads on when the epoch
//! holds a write of protocol A or B (8.4's write ordering: the next epoch
//! may depend on writes the Primary saw complete before they were on this
//! disk), not under protocol C (every write the Primary saw complete was
//! answered here after it completed; see `Documentation/design.md`). It
//! also waits for every write in flight before any write it does itself
//! (a trim) and before a write that asks for a flush. Two writes to
//! overlapping blocks are never in flight together (the later waits), so
//! the disk cannot reorder them: 8.4's Primary sends no such pair
//! (`complete_conflicting_writes`), rdrbd's Primary is not relied on for
//! it.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::{new_mutex, new_spinlock};
use kernel::sync::{Arc, Mutex, SpinLock};

use crate::drbd_include::genl::{ConnState, DiskState};
use crate::drbd_include::peer_epochs::{ClosedEpoch, PeerEpochs};
use crate::drbd_include::io_error::IoFailure;
use crate::drbd_include::protocol::{self as proto, Packet};
use crate::drbd_net::NetError;
use crate::drbd_peer_device::PeerDevice;
use crate::drbd_req::DeviceIo;
use crate::kernel_glue::net::TcpSocket;
use crate::kernel_glue::block::LowerRef;
use crate::kernel_glue::crypto::Digest;
use crate::kernel_glue::peer_write::{PeerWrite, PeerWriteQueue};
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// Writes in flight at most, and their bytes at most (8.4 bounds its peer
/// requests by `max-buffers`, 2048 pages by default: 8 MiB).
const MAX_IN_FLIGHT: u32 = 256;
const MAX_IN_FLIGHT_BYTES: u64 = 8 << 20;

/// Acks the answering thread sends at once at most
/// (`ConnShared::send_meta_acks`).
pub(crate) const ACK_BATCH: usize = 16;

/// Barrier acks sent at once at most (`ConnShared::send_meta_barrier_acks`).
pub(crate) const BARRIER_ACK_BATCH: usize = 16;

/// What the answer to a write needs once it is on disk.
#[derive(Clone, Copy)]
struct WriteAnswer {
    sector: u64,
    block_id: u64,
    /// The activity-log reference it holds (a replicated write).
    al_tag: u64,
    /// Its slot in [`PeerWrites::ranges`].
    slot: u16,
    /// Tracked against our own writes (two Primaries; 0: not).
    interval: u32,
    /// The epoch it counts in (a replicated write).
    epoch: u32,
    size: u32,
    seq_num: u32,
    /// P_WRITE_ACK on success (protocol C).
    write_ack: bool,
    /// The Primary sent it during a resync (DP_MAY_SET_IN_SYNC) with a
    /// disk of its own: if a resync still runs when it is written (and
    /// acked, protocol C), its blocks are in sync here and the ack is
    /// P_RS_WRITE_ACK, so that the Primary's are too (8.4's e_end_block).
    may_set_in_sync: bool,
    /// The Primary has a disk (we do not hold its only copy).
    peer_has_data: bool,
    /// P_NEG_ACK on failure (the peer asked for an ack of either kind).
    nack: bool,
    /// Resync data (P_RS_DATA_REPLY): in sync once written, answered with
    /// P_RS_WRITE_ACK (or P_NEG_ACK), no activity-log reference.
    resync: bool,
}

/// Where a replicated write's data is.
pub(crate) enum WriteData<'a> {
    /// Read already.
    Bytes(&'a [u8]),
    /// Still in the data socket: as many bytes as the count says, received
    /// straight into the write's pages (no copy through a buffer, as
    /// 8.4's `read_in_block`); the count is set to 0 once they are in.
    Socket(&'a TcpSocket, &'a mut u32),
}

impl WriteData<'_> {
    /// Its bytes.
    pub(crate) fn len(&self) -> Result<u32> {
        match self {
            Self::Bytes(data) => u32::try_from(data.len()).map_err(|_| EINVAL),
            Self::Socket(_, unread) => Ok(**unread),
        }
    }

    /// Puts the data into `write`'s pages.
    fn fill(self, write: &mut PeerWrite<WriteAnswer>) -> core::result::Result<(), SubmitError> {
        match self {
            Self::Bytes(data) => write.fill(data).map_err(SubmitError::Local),
            Self::Socket(sock, unread) => {
                write.receive(sock).map_err(|e| SubmitError::Network(NetError::Io(e)))?;
                *unread = 0;
                Ok(())
            }
        }
    }
}

/// The `data-integrity-alg` digest a block came with, which its data must
/// match before it is written (8.4's `read_in_block`).
#[derive(Clone, Copy)]
pub(crate) struct IntegrityCheck<'a> {
    pub(crate) digest: &'a Digest,
    pub(crate) expected: &'a [u8],
}

/// Why a replicated write was not submitted.
pub(crate) enum SubmitError {
    /// Its data does not match the digest it came with: nothing was
    /// written (the caller drops the connection).
    IntegrityFailed,
    /// No memory for it even with nothing in flight (the caller drops the
    /// connection).
    NoMemory,
    /// It failed locally at once (no disk, an injected fault, an
    /// activity-log failure), for the caller to answer; its data, if it
    /// was still in the socket, is still there.
    Local(Error),
    /// Receiving its data or acknowledging its receipt failed: the
    /// connection is gone.
    Network(NetError),
}

/// A connection's replicated writes in flight.
#[pin_data]
pub(crate) struct PeerWrites {
    #[pin]
    queue: PeerWriteQueue<WriteAnswer>,
    /// Submitted and not answered yet, and their bytes.
    pending: AtomicU32,
    pending_bytes: AtomicU64,
    /// The sectors `[start, end)` of each write in flight by slot; (0, 0)
    /// is a free slot. At most `MAX_IN_FLIGHT` are in flight.
    #[pin]
    ranges: Mutex<[(u64, u64); MAX_IN_FLIGHT as usize]>,
    /// The epochs whose barrier ack is owed, with the replicated writes
    /// in flight of each (a spinlock: wait conditions look at it).
    #[pin]
    epochs: SpinLock<PeerEpochs>,
    /// The answering thread is to end (after the last answer).
    stop: AtomicBool,
    /// Woken when an answer or a barrier ack is done (the receiver waits
    /// for room, for none in flight, or for the acks owed).
    #[pin]
    answered: WaitQueue,
}

impl PeerWrites {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            queue <- PeerWriteQueue::new(),
            pending: AtomicU32::new(0),
            pending_bytes: AtomicU64::new(0),
            ranges <- new_mutex!([(0, 0); MAX_IN_FLIGHT as usize], "rdrbd::PeerWrites::ranges"),
            epochs <- new_spinlock!(PeerEpochs::new(), "rdrbd::PeerWrites::epochs"),
            stop: AtomicBool::new(false),
            answered <- new_wait_queue!("rdrbd::PeerWrites::answered"),
        })
    }

    /// Waits until every write submitted has been answered.
    pub(crate) fn wait_idle(&self) {
        self.answered.wait_until(|| self.pending.load(Ordering::SeqCst) == 0);
    }

    /// P_BARRIER `barrier` closes the open epoch, which had `set_size`
    /// writes: the answering thread sends its P_BARRIER_ACK once they and
    /// those of the epochs before are answered. Waits while too many
    /// epochs owe their ack.
    pub(crate) fn close_epoch(&self, barrier: u32, set_size: u32) {
        self.answered.wait_until(|| self.epochs.lock().has_room());
        // Only the receiver closes epochs: the room is still there.
        let _ = self.epochs.lock().close(barrier, set_size);
        self.queue.wake();
    }

    /// Waits until every closed epoch's barrier ack was sent (or the
    /// connection is gone).
    pub(crate) fn wait_epochs_acked(&self) {
        self.answered.wait_until(|| self.epochs.lock().all_acked());
    }

    /// Submits a replicated write (`P_DATA`) of `data` to the backing disk;
    /// it is answered when it completes. `received` runs once its data is
    /// in, before the write may complete (the P_RECV_ACK of protocol B).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit(
        &self,
        io: &DeviceIo,
        head: &proto::DataPacket,
        data: WriteData<'_>,
        integrity: Option<IntegrityCheck<'_>>,
        fua: bool,
        flush: bool,
        (write_ack, nack, may_set_in_sync, peer_has_data): (bool, bool, bool, bool),
        interval: u32,
        received: impl FnOnce() -> core::result::Result<(), NetError>,
    ) -> core::result::Result<(), SubmitError> {
        let size = data.len().map_err(SubmitError::Local)?;
        if flush {
            // A flush covers the writes completed before it: let those in
            // flight complete first.
            self.wait_idle();
        }
        let answer = WriteAnswer {
            sector: head.sector,
            block_id: head.block_id,
            al_tag: 0,
            slot: 0,
            interval,
            epoch: 0,
            size,
            seq_num: head.seq_num,
            write_ack,
            may_set_in_sync,
            peer_has_data,
            nack,
            resync: false,
        };
        let start = || io.start_replicated(head.sector, size);
        self.submit_write(io, answer, start, data, integrity, fua, flush, received)
    }

    /// Submits resync data (`P_RS_DATA_REPLY`) of `data` for `sector` to
    /// the backing disk; it is answered when it completes.
    pub(crate) fn submit_resync(
        &self,
        io: &DeviceIo,
        sector: u64,
        data: WriteData<'_>,
        integrity: Option<IntegrityCheck<'_>>,
    ) -> core::result::Result<(), SubmitError> {
        let size = data.len().map_err(SubmitError::Local)?;
        let answer = WriteAnswer {
            sector,
            block_id: proto::ID_SYNCER,
            al_tag: 0,
            slot: 0,
            interval: 0,
            epoch: 0,
            size,
            seq_num: 0,
            write_ack: true,
            may_set_in_sync: false,
            peer_has_data: true,
            nack: true,
            resync: true,
        };
        let start = || io.start_resync_write().map(|lower| (lower, 0));
        self.submit_write(io, answer, start, data, integrity, false, false, || Ok(()))
    }

    /// Waits for room and for no overlapping write in flight, starts the
    /// write (`start` admits it and gives its activity-log reference),
    /// takes its data in, checks it against `integrity` and submits it.
    #[allow(clippy::too_many_arguments)]
    fn submit_write<'io>(
        &self,
        io: &'io DeviceIo,
        mut answer: WriteAnswer,
        start: impl FnOnce() -> Result<(LowerRef<'io>, u64)>,
        data: WriteData<'_>,
        integrity: Option<IntegrityCheck<'_>>,
        fua: bool,
        flush: bool,
        received: impl FnOnce() -> core::result::Result<(), NetError>,
    ) -> core::result::Result<(), SubmitError> {
        let (sector, size) = (answer.sector, answer.size);
        // Room for it (a write larger than the byte bound goes alone).
        self.answered.wait_until(|| {
            let n = self.pending.load(Ordering::SeqCst);
            n == 0
                || (n < MAX_IN_FLIGHT
                    && self.pending_bytes.load(Ordering::SeqCst).saturating_add(u64::from(size)) <= MAX_IN_FLIGHT_BYTES)
        });
        let slot = self.claim_range(sector, size);
        let (lower, al_tag) = match start() {
            Ok(started) => started,
            Err(e) => {
                self.release_range(slot);
                return Err(SubmitError::Local(e));
            }
        };
        answer.al_tag = al_tag;
        answer.slot = slot;
        if !answer.resync {
            // Counted in the open epoch (until answered, or given back).
            answer.epoch = self.epochs.lock().write_started();
        }
        let give_back = |lower, e| {
            drop(lower);
            if !answer.resync {
                io.al_write_done(al_tag);
                self.epochs.lock().write_answered(answer.epoch);
            }
            self.release_range(slot);
            e
        };
        // Short of memory: the writes in flight give theirs back first
        // (8.4's drbd_alloc_pages waits for them too); then it fails, and
        // the caller drops the connection.
        let write = PeerWrite::new(&lower, sector, size, fua, flush, answer).or_else(|e| {
            if e != ENOMEM {
                return Err(e);
            }
            self.wait_idle();
            PeerWrite::new(&lower, sector, size, fua, flush, answer)
        });
        let mut write = match write {
            Ok(write) => write,
            Err(e) if e == ENOMEM => return Err(give_back(lower, SubmitError::NoMemory)),
            Err(e) => return Err(give_back(lower, SubmitError::Local(e))),
        };
        if let Err(e) = data.fill(&mut write) {
            drop(write);
            return Err(give_back(lower, e));
        }
        if let Some(check) = integrity {
            if !write.digest(check.digest).is_ok_and(|d| d.as_bytes() == check.expected) {
                drop(write);
                return Err(give_back(lower, SubmitError::IntegrityFailed));
            }
        }
        if let Err(e) = received() {
            drop(write);
            return Err(give_back(lower, SubmitError::Network(e)));
        }
        self.pending_bytes.fetch_add(u64::from(size), Ordering::SeqCst);
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.queue.submit(lower, write);
        Ok(())
    }

    /// A slot for a write of `size` bytes at `sector`, once no write in
    /// flight overlaps it (the rare overlap waits for all in flight to be
    /// answered). The caller made sure a slot is free (`pending` below
    /// `MAX_IN_FLIGHT`; only the receiver claims).
    fn claim_range(&self, sector: u64, size: u32) -> u16 {
        let (start, end) = (sector, sector.saturating_add(u64::from(size).div_ceil(512)).max(sector + 1));
        loop {
            {
                let mut ranges = self.ranges.lock();
                if !ranges.iter().any(|&(s, e)| e != 0 && s < end && start < e) {
                    if let Some((i, range)) = ranges.iter_mut().enumerate().find(|(_, r)| r.1 == 0) {
                        *range = (start, end);
                        // MAX_IN_FLIGHT slots: the index fits.
                        return i as u16;
                    }
                }
            }
            self.wait_idle();
        }
    }

    /// The write in `slot` is answered (or never went out).
    fn release_range(&self, slot: u16) {
        if let Some(range) = self.ranges.lock().get_mut(usize::from(slot)) {
            *range = (0, 0);
        }
    }

    /// Ends the answering thread once every write is answered.
    pub(crate) fn finish(&self) {
        self.wait_idle();
        self.stop.store(true, Ordering::SeqCst);
        self.queue.wake();
    }
}

/// How the answering thread reaches the peer: `send` puts acks on the
/// meta socket (at most `ACK_BATCH` in one send), `send_barrier_acks`
/// P_BARRIER_ACKs (at most `BARRIER_ACK_BATCH` in one send), `broken` ends
/// the connection after a failed send.
pub(crate) struct Answering<S, A, B> {
    pub(crate) name: crate::ResourceName,
    pub(crate) send: S,
    pub(crate) send_barrier_acks: A,
    pub(crate) broken: B,
}

/// Starts the thread that answers the peer's writes as they complete;
/// resync writes are progress of `pd`'s resync.
pub(crate) fn start_answering<S, A, B>(
    writes: &Arc<PeerWrites>,
    io: &Arc<DeviceIo>,
    pd: &Arc<PeerDevice>,
    to_peer: Answering<S, A, B>,
) -> Result<KThread>
where
    S: Fn(&[(Packet, proto::BlockAck)]) -> core::result::Result<(), NetError> + Send + 'static,
    A: Fn(&[proto::BarrierAck]) -> core::result::Result<(), NetError> + Send + 'static,
    B: Fn() + Send + 'static,
{
    let (writes, io, pd) = (writes.clone(), io.clone(), pd.clone());
    let name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_ack_{}", to_peer.name.as_str()))?;
    KThread::spawn(&name, move || {
        let mut broken = false;
        loop {
            let queue = &writes.queue;
            // Every write is answered before the thread ends, a stop asked
            // for included: each holds an activity-log reference.
            let all_answered = || writes.pending.load(Ordering::SeqCst) == 0;
            let ending = || writes.stop.load(Ordering::SeqCst) || KThread::should_stop();
            let acks_due = || writes.epochs.lock().has_ready();
            queue.wait_until(|| queue.has_done() || acks_due() || (ending() && all_answered()));
            // The acks of the writes completed together go in one send;
            // each write counts as answered only once its ack is sent (a
            // barrier ack must not overtake them).
            let mut batch = AckBatch::new();
            for done in queue.take_done() {
                let a = done.owner();
                let result = done.result();
                drop(done);
                if !a.resync {
                    io.al_write_done(a.al_tag);
                }
                // What the write means locally counts even when the
                // connection is gone; the peer hears only while it is not.
                let reply = if a.resync { resync_written(&to_peer, &io, &pd, a, result) } else { written(&to_peer, &io, a, result) };
                batch.push(a, reply.filter(|_| !broken));
                if batch.is_full() {
                    broken |= batch.flush(&to_peer, &writes, &io, &pd);
                }
            }
            broken |= batch.flush(&to_peer, &writes, &io, &pd);
            broken |= send_barrier_acks(&to_peer, &writes, &io, broken);
            if ending() && !queue.has_done() && all_answered() {
                return;
            }
        }
    })
}

/// Sends the P_BARRIER_ACKs now due, oldest first, after a flush of the
/// backing disk when an epoch had writes and the write ordering flushes
/// (the flush follows their completion, so it puts them on stable
/// storage; 8.4's receiver flushes at the barrier after draining). With
/// the connection `broken` they are only counted as sent. Returns whether
/// the connection is broken (a send failed: it is then ended).
fn send_barrier_acks<S, A, B>(to_peer: &Answering<S, A, B>, writes: &PeerWrites, io: &DeviceIo, mut broken: bool) -> bool
where
    A: Fn(&[proto::BarrierAck]) -> core::result::Result<(), NetError>,
    B: Fn(),
{
    let mut due = [ClosedEpoch::default(); BARRIER_ACK_BATCH];
    loop {
        let n = writes.epochs.lock().ready(&mut due);
        let Some(due) = due.get(..n).filter(|d| !d.is_empty()) else { break };
        if !broken && io.write_ordering().flushes() && due.iter().any(|e| e.set_size > 0) {
            if let Err(e) = io.flush_backing() {
                pr_err!("{}: flushing the backing disk for barrier #{} failed: error {}\n",
                    to_peer.name.as_str(), due.last().map_or(0, |e| e.barrier), e.to_errno());
            }
        }
        if !broken {
            // One send for the epochs this flush made stable.
            let mut acks = [proto::BarrierAck { barrier: 0, set_size: 0 }; BARRIER_ACK_BATCH];
            for (ack, epoch) in acks.iter_mut().zip(due) {
                *ack = proto::BarrierAck { barrier: epoch.barrier, set_size: epoch.set_size };
            }
            if (to_peer.send_barrier_acks)(acks.get(..due.len()).unwrap_or(&[])).is_err() {
                // The receiver sees the connection end.
                (to_peer.broken)();
                broken = true;
            }
        }
        writes.epochs.lock().acked(n);
        writes.answered.wake_all();
    }
    broken
}

/// Completed writes whose acks go out together.
struct AckBatch {
    writes: [Option<WriteAnswer>; ACK_BATCH],
    acks: [(Packet, proto::BlockAck); ACK_BATCH],
    count: usize,
    nacks: usize,
}

impl AckBatch {
    fn new() -> Self {
        let none = proto::BlockAck { sector: 0, block_id: 0, blksize: 0, seq_num: 0 };
        Self { writes: [None; ACK_BATCH], acks: [(Packet::WriteAck, none); ACK_BATCH], count: 0, nacks: 0 }
    }

    fn is_full(&self) -> bool {
        self.count == ACK_BATCH
    }

    /// Adds a completed write, with the ack it wants (if any).
    fn push(&mut self, a: WriteAnswer, reply: Option<Packet>) {
        if let Some(slot) = self.writes.get_mut(self.count) {
            *slot = Some(a);
            self.count += 1;
        }
        if let (Some(cmd), Some(slot)) = (reply, self.acks.get_mut(self.nacks)) {
            *slot = (cmd, proto::BlockAck { sector: a.sector, block_id: a.block_id, blksize: a.size, seq_num: a.seq_num });
            self.nacks += 1;
        }
    }

    /// Sends the acks, then counts the writes as answered. Returns whether
    /// the send failed (the connection is then ended).
    fn flush<S, A, B>(&mut self, to_peer: &Answering<S, A, B>, writes: &PeerWrites, io: &DeviceIo, pd: &PeerDevice) -> bool
    where
        S: Fn(&[(Packet, proto::BlockAck)]) -> core::result::Result<(), NetError>,
        B: Fn(),
    {
        let acks = self.acks.get(..self.nacks).unwrap_or(&[]);
        let broken = !acks.is_empty() && (to_peer.send)(acks).is_err();
        if broken {
            // The receiver sees the connection end.
            (to_peer.broken)();
        }
        for a in self.writes.iter_mut().take(self.count).filter_map(Option::take) {
            if !a.resync {
                writes.epochs.lock().write_answered(a.epoch);
            }
            if a.resync {
                // After the block's bit is cleared: the SyncTarget's
                // worker may finish when the last request is answered.
                crate::drbd_resync::request_answered(io, pd, a.sector, a.size);
            }
            writes.release_range(a.slot);
            // Answered: local writes it held off may go, and postponed
            // ones it was to go before are written again.
            io.peer_write_answered(a.interval);
            writes.pending_bytes.fetch_sub(u64::from(a.size), Ordering::SeqCst);
            writes.pending.fetch_sub(1, Ordering::SeqCst);
        }
        if self.count > 0 {
            writes.answered.wake_all();
        }
        self.count = 0;
        self.nacks = 0;
        broken
    }
}

/// A replicated write completed (`e_end_block`): counted, or marked out
/// of sync with the local error handled; the ack the peer asked for.
fn written<S, A, B>(to_peer: &Answering<S, A, B>, io: &DeviceIo, a: WriteAnswer, result: Result) -> Option<Packet> {
    match result {
        Ok(()) => {
            io.written_for_peer(a.size, false);
            let conn = io.peer().conn;
            if a.write_ack && a.may_set_in_sync && crate::drbd_include::resync_after::resyncing(conn) {
                // Both disks have it now (the Primary's ack clears its
                // bits); the resync need not copy it.
                io.set_in_sync(a.sector, a.size);
                return Some(Packet::RsWriteAck);
            }
            if a.peer_has_data && resync_source_side(conn) {
                // We are SyncSource, the Primary SyncTarget: it clears its
                // bits when this is acked (or its epoch, protocols A and
                // B), and keeps them where its own write failed, so the
                // resync copies what differs. Our bits would only outlive
                // the resync (8.4's Primary clears no bits on a plain ack
                // and copies these blocks; ours did not get
                // DP_MAY_SET_IN_SYNC before its resync began).
                io.set_in_sync(a.sector, a.size);
            }
            a.write_ack.then_some(Packet::WriteAck)
        }
        Err(e) => {
            pr_err!("{}: writing a replicated block at sector {} failed: error {}\n",
                to_peer.name.as_str(), a.sector, e.to_errno());
            if io.disk_state() != DiskState::Diskless {
                io.set_out_of_sync(a.sector, a.size);
                crate::drbd_io_error::local_io_failed(io, IoFailure::Write, a.sector, a.size, e);
            }
            a.nack.then_some(Packet::NegAck)
        }
    }
}

/// We are, or are about to be, the resync's source.
fn resync_source_side(conn: ConnState) -> bool {
    matches!(conn, ConnState::StartingSyncS | ConnState::WfBitMapS | ConnState::SyncSource | ConnState::PausedSyncS)
}

/// Resync data was written (`e_end_resync_block`): its blocks are in sync,
/// or counted as failed with the local error handled; P_RS_WRITE_ACK or
/// P_NEG_ACK.
fn resync_written<S, A, B>(to_peer: &Answering<S, A, B>, io: &DeviceIo, pd: &PeerDevice, a: WriteAnswer, result: Result) -> Option<Packet> {
    let answer = match result {
        Ok(()) => {
            io.written_for_peer(a.size, true);
            io.set_in_sync(a.sector, a.size);
            Packet::RsWriteAck
        }
        Err(e) => {
            resync_write_failed(to_peer.name.as_str(), io, pd, a.sector, a.size, e);
            Packet::NegAck
        }
    };
    pd.resync.note_left(|| io.out_of_sync_bits());
    Some(answer)
}

/// A resync write at `sector` failed locally (at its completion, or before
/// it was submitted): its blocks count as failed, the error is handled as
/// the disk's error policy says (`drbd_rs_failed_io`, `__drbd_chk_io_error`).
pub(crate) fn resync_write_failed(name: &str, io: &DeviceIo, pd: &PeerDevice, sector: u64, size: u32, e: Error) {
    pr_err!("{}: resync write at sector {} failed: error {}\n", name, sector, e.to_errno());
    pd.resync.add_failed(u64::from(size).div_ceil(4096));
    crate::drbd_io_error::local_io_failed(io, IoFailure::Write, sector, size, e);
}
