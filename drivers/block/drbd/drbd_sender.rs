//! The Primary's side of replication: every write goes to the peer as
//! P_DATA on the data socket, and its upper bio completes only when the
//! local write is done, the packet is sent, and (protocol B/C) the peer's
//! P_RECV_ACK / P_WRITE_ACK is in. Each of these is one completion of the
//! upper bio (`UpperBio::peer_completion`), so the bio lives exactly as
//! long as someone still needs it. Writes travel in epochs closed by
//! P_BARRIER; the peer's P_BARRIER_ACK releases them from the transfer
//! log (`drbd_include::transfer_log`).
//!
//! The bio path never waits for the network: it queues the write
//! ([`Replica::queue_write`]) and returns, so the local write is under
//! way at once and no submitter waits for another submitter's send. The
//! connection's sender thread (`drbd_s_<resource>`, DRBD 9's sender) takes
//! the writes in order and sends them back to back, then closes the epoch
//! with a P_BARRIER when the queue runs dry. A lone writer (protocol B or
//! C, every earlier write acknowledged, nothing queued, nobody sending)
//! sends its write itself when the socket's buffer takes it without
//! blocking: the hand-off to the sender thread would cost its wake-up in
//! latency, which a QD1 writer pays for every write.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::{new_condvar, new_mutex, new_spinlock};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex, SpinLock};

use crate::drbd_include::genl::WireProtocol;
use crate::drbd_net::{LiveTiming, SMALL_PACKET};
use crate::drbd_packet_seq::PacketSeq;
use crate::kernel_glue::now_ms;
use crate::drbd_include::request_timer::{net_timeout_reached, next_check_ms, KoCounter, NetVerdict, OldestWrite, SendTimeout, SenderView};
use crate::drbd_include::protocol::{
    dp, encode_packet, feature, Barrier, BlockDesc, BlockRequest, DataPacket, Header, HeaderKind, Link, Packet, ProtocolError,
    ProtocolParams, StatePacket, Trim, UuidsPacket, ID_SYNCER,
};
use crate::drbd_include::uuid::{uuid_flags, Uuids};
use crate::drbd_include::ack_slots::AckSlots;
use crate::drbd_include::send_fifo::SendFifo;
use crate::drbd_include::transfer_log::{BarrierAckError, TlWrite, TransferLog};
use crate::drbd_remote_read::RemoteReads;
use crate::kernel_glue::block::{BlockPages, PeerToken, UpperBio};
use crate::kernel_glue::crypto::{Digest, DigestValue, HMAC_MAX_DIGEST};
use crate::kernel_glue::net::TcpSocket;
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// A write sent to the peer and not acknowledged yet.
struct Pending {
    sector: u64,
    size: u32,
    /// The epoch it was sent in: its ack closes that epoch if still open.
    epoch: u32,
    /// Given when the ack is in: that completes the upper bio's peer half.
    ack: PeerToken,
}

/// A write the bio path handed to the sender thread: its send completion
/// and, unless protocol A, its ack completion.
struct QueuedWrite {
    sent: PeerToken,
    ack: Option<PeerToken>,
}

/// A write sent in the open epoch: its send completion is given once the
/// epoch's P_BARRIER is out (`protocol_a`: as the peer's success).
struct SentWrite {
    sent: PeerToken,
    protocol_a: bool,
}

/// What the bio path hands to the sender thread, in order.
enum Queued {
    /// A write to replicate.
    Write(QueuedWrite),
    /// Ahead (`on-congestion pull-ahead`): the peer only marks the range
    /// out of sync (P_OUT_OF_SYNC).
    OutOfSync { sector: u64, size: u32 },
    /// We went Ahead: the peer hears it (P_STATE, it goes Behind) before
    /// the first P_OUT_OF_SYNC.
    WentAhead,
    /// Every write sent before we went Ahead is on the peer's disk: the
    /// resync begins (P_SYNC_UUID) after every P_OUT_OF_SYNC queued before,
    /// so the peer's bitmap is complete when it starts.
    LeaveAhead,
}

/// The writes waiting for the sender, and who sends writes now.
struct SendQueue {
    fifo: SendFifo<KVVec<Option<Queued>>>,
    /// The sender thread (until its epoch is closed and nothing waits) or
    /// a lone submitter sends writes: nobody else may start, so that
    /// writes leave in order and an epoch is closed by whoever filled it.
    sending: bool,
    /// Ahead: writes are queued as [`Queued::OutOfSync`] (decided under
    /// this lock, so each write is on its side of [`Queued::WentAhead`]
    /// and [`Queued::LeaveAhead`]).
    ahead: bool,
}

/// Whether a resync runs (8.4's `drbd_send_dblock`: SyncSource through
/// PausedSyncT): the peer may then set the blocks of a write in sync once
/// it wrote them, and says so with P_RS_WRITE_ACK.
fn may_set_in_sync(io: &impl SentWrites) -> bool {
    crate::drbd_include::resync_after::resyncing(io.state_word().conn)
}

/// What the sender thread reports to the device whose writes it sends.
pub(crate) trait SentWrites: Send + Sync + 'static {
    /// `bytes` of a write's data went to the peer ("ns").
    fn data_sent(&self, bytes: u32);
    /// The write of `size` bytes at `sector` was not sent: out of sync.
    fn not_sent(&self, sector: u64, size: u32);
    /// The state word the peer is told of (P_STATE).
    fn state_word(&self) -> crate::drbd_include::genl::State;
}

/// Slots for one connection's writes queued for its sender thread (past
/// that, submitters wait for it).
const QUEUE_SLOTS: usize = 4096;

/// Writes sent before the sender closes the epoch even though more are
/// queued: bounds how long a protocol A write waits for its completion
/// under a steady stream.
const EPOCH_BATCH: usize = 64;

/// The connected peer, as the request path sees it.
#[pin_data]
pub(crate) struct Replica {
    data: Arc<TcpSocket>,
    link: Link,
    volume: u16,
    /// The wire protocol (`WireProtocol` as u32); P_PROTOCOL_UPDATE changes it.
    protocol: AtomicU32,
    /// One packet at a time on the data socket; holds our
    /// `data-integrity-alg`, which the data-carrying packets sent under it
    /// carry a digest of (it changes only between two packets, with the
    /// P_PROTOCOL_UPDATE that tells the peer).
    #[pin]
    send_lock: Mutex<Option<Digest>>,
    /// Writes waiting for an ack, by block id, in as many slots as the
    /// transfer log has (allocated once: tracking a write never allocates).
    #[pin]
    pending: Mutex<AckSlots<KVVec<Option<(u64, Pending)>>>>,
    /// Writes sent and not yet covered by a barrier ack, in epochs.
    #[pin]
    tl: Mutex<TransferLog<KVVec<TlWrite>>>,
    /// Signalled when a barrier ack frees room in the transfer log, and
    /// when the connection breaks.
    #[pin]
    tl_room: CondVar,
    /// Writes the bio path handed over, for the sender thread (a spinlock:
    /// taken in `submit_bio`, held for a few stores).
    #[pin]
    queue: SpinLock<SendQueue>,
    /// Woken when a write is queued, and when the connection breaks.
    #[pin]
    queued: WaitQueue,
    /// Woken when the sender takes a write off the queue, and when the
    /// connection breaks.
    #[pin]
    queue_room: WaitQueue,
    /// The sender thread, from [`Replica::start_sender`] until [`Replica::abort`].
    #[pin]
    sender: Mutex<Option<KThread>>,
    next_id: AtomicU64,
    /// The numbers of our P_DATA and write acks, and of the peer's.
    #[pin]
    seq: PacketSeq,
    broken: AtomicBool,
    /// When the connection was established (the request timer gives the
    /// peer a full `ko-count * timeout` from then).
    connected_at_ms: u64,
    /// When the last P_BARRIER went out.
    last_barrier_ms: AtomicU64,
    /// An ack closed the open epoch ([`TransferLog::close_epoch_of_acked`]):
    /// the sender thread sends its barrier unless a write took it first.
    barrier_owed: AtomicBool,
    /// `timeout` and `ko-count` as `net-options` set them last.
    timing: Arc<LiveTiming>,
    /// Reads waiting for the peer's P_DATA_REPLY.
    #[pin]
    reads: RemoteReads,
    /// `on-congestion disconnect` dropped the connection: it ends
    /// StandAlone, as 8.4's C_DISCONNECTING.
    congestion_disconnect: AtomicBool,
}

/// Replicated writes whose peer half is held back while I/O is frozen for
/// fencing (`susp_fen`): the peer is gone, but their upper bios may only
/// complete once it is known outdated (or the user resumes I/O).
/// Dropping this completes them.
pub(crate) struct HeldWrites {
    _writes: KVVec<Option<(u64, Pending)>>,
    _unsent: KVVec<Option<Queued>>,
}

/// Writes the transfer log can hold (about twice the default
/// max-epoch-size): past that, the sender waits for a barrier ack.
const TL_SLOTS: usize = 4096;

impl Replica {
    /// The peer reached over `data`, replicating `volume` with `protocol`;
    /// epochs close after at most `max_epoch_size` writes; sends that
    /// block count the ko-count of `timing`; data is sent with a digest
    /// of `integrity` (the `data-integrity-alg`), if any.
    pub(crate) fn new(
        data: Arc<TcpSocket>,
        link: Link,
        volume: u16,
        protocol: WireProtocol,
        max_epoch_size: u32,
        timing: Arc<LiveTiming>,
        integrity: Option<Digest>,
    ) -> Result<Arc<Self>> {
        let slots = KVVec::from_elem(TlWrite::default(), TL_SLOTS, GFP_KERNEL)?;
        let mut ack_slots = KVVec::with_capacity(TL_SLOTS, GFP_KERNEL)?;
        for _ in 0..TL_SLOTS {
            ack_slots.push(None, GFP_KERNEL)?;
        }
        let mut queue_slots = KVVec::with_capacity(QUEUE_SLOTS, GFP_KERNEL)?;
        for _ in 0..QUEUE_SLOTS {
            queue_slots.push(None, GFP_KERNEL)?;
        }
        Arc::pin_init(pin_init!(Self {
            data,
            link,
            volume,
            protocol: AtomicU32::new(protocol as u32),
            send_lock <- new_mutex!(integrity, "rdrbd::Replica::send_lock"),
            pending <- new_mutex!(AckSlots::new(ack_slots), "rdrbd::Replica::pending"),
            tl <- new_mutex!(TransferLog::new(slots, max_epoch_size), "rdrbd::Replica::tl"),
            tl_room <- new_condvar!("rdrbd::Replica::tl_room"),
            queue <- new_spinlock!(SendQueue { fifo: SendFifo::new(queue_slots), sending: false, ahead: false },
                "rdrbd::Replica::queue"),
            queued <- new_wait_queue!("rdrbd::Replica::queued"),
            queue_room <- new_wait_queue!("rdrbd::Replica::queue_room"),
            sender <- new_mutex!(None, "rdrbd::Replica::sender"),
            next_id: AtomicU64::new(0),
            seq <- PacketSeq::new(),
            broken: AtomicBool::new(false),
            connected_at_ms: now_ms(),
            last_barrier_ms: AtomicU64::new(now_ms()),
            barrier_owed: AtomicBool::new(false),
            timing,
            reads <- RemoteReads::new(),
            congestion_disconnect: AtomicBool::new(false),
        }), GFP_KERNEL)
    }

    /// The agreed protocol version.
    pub(crate) fn link_version(&self) -> u32 {
        self.link.version
    }

    /// The agreed protocol version and features.
    pub(crate) fn link(&self) -> Link {
        self.link
    }

    /// Sends one packet whose payload `payload` encodes (at most
    /// [`SMALL_PACKET`] bytes), between other senders' packets.
    pub(crate) fn send_small(
        &self,
        cmd: Packet,
        payload: impl FnOnce(&mut [u8]) -> core::result::Result<usize, ProtocolError>,
    ) -> Result {
        let mut buf = [0u8; SMALL_PACKET];
        let len = encode_packet(self.link, cmd, self.volume, &mut buf, payload).map_err(|_| EINVAL)?;
        let _guard = self.send_lock.lock();
        self.send_or_break(buf.get(..len).ok_or(EINVAL)?)
    }

    /// Sends a header for `cmd` with `head` (an encoded fixed part) and
    /// `data` after it as one packet.
    pub(crate) fn send_with_data(&self, cmd: Packet, head: &[u8], data: &[u8]) -> Result {
        let length = u32::try_from(head.len().saturating_add(data.len())).map_err(|_| EINVAL)?;
        let header = Header { cmd, volume: self.volume, length };
        let mut buf = [0u8; 16];
        let hs = header.encode_as(HeaderKind::for_payload(self.link, length), &mut buf).map_err(|_| EINVAL)?;
        let _guard = self.send_lock.lock();
        // One segment where they fit (MSG_MORE until the last part).
        self.send_or_break_more(buf.get(..hs).ok_or(EINVAL)?, true)?;
        self.send_or_break_more(head, true)?;
        self.send_or_break(data)
    }

    /// P_RS_DATA_REPLY: the block a SyncTarget asked for.
    pub(crate) fn send_rs_reply(&self, sector: u64, block_id: u64, data: &[u8]) -> Result {
        let head = DataPacket { sector, block_id, seq_num: 0, dp_flags: 0 };
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        let guard = self.send_lock.lock();
        let digest = guard.as_ref().map(|d| d.digest(data)).transpose()?;
        self.send_data_head_locked(Packet::RsDataReply, &head, digest.as_ref(), len)?;
        self.send_or_break(data)
    }

    /// P_RS_DATA_REPLY or P_DATA_REPLY: the block a peer asked for, `len`
    /// bytes sent from the pages it was read into (no copy through a
    /// buffer).
    pub(crate) fn send_block_reply(&self, cmd: Packet, sector: u64, block_id: u64, pages: &mut BlockPages, len: u32) -> Result {
        let head = DataPacket { sector, block_id, seq_num: 0, dp_flags: 0 };
        let guard = self.send_lock.lock();
        let digest = match guard.as_ref() {
            Some(d) => Some(pages.digest(d, len)?),
            None => None,
        };
        self.send_data_head_locked(cmd, &head, digest.as_ref(), len)?;
        if self.broken.load(Ordering::SeqCst) {
            return Err(EPIPE);
        }
        let mut ko = self.ko_counter();
        let result = self.data.send_pages_retrying(pages, len, false, || self.keep_trying(&mut ko));
        self.break_on_error(result)
    }

    /// Sends the start of a packet carrying `data_len` bytes of block data
    /// (P_DATA, P_DATA_REPLY, P_RS_DATA_REPLY): its header, `head` and the
    /// data's `digest` if the data-integrity-alg asks for one (8.4 puts it
    /// between the two), with MSG_MORE: the data follows at once. The
    /// caller holds the send lock.
    fn send_data_head_locked(&self, cmd: Packet, head: &DataPacket, digest: Option<&DigestValue>, data_len: u32) -> Result {
        let digest = digest.map_or(&[][..], |d| d.as_bytes());
        let fixed = DataPacket::SIZE.saturating_add(digest.len());
        let length = u32::try_from(fixed).map_err(|_| EINVAL)?.checked_add(data_len).ok_or(EINVAL)?;
        let header = Header { cmd, volume: self.volume, length };
        let mut buf = [0u8; 16 + DataPacket::SIZE + HMAC_MAX_DIGEST];
        let hs = header.encode_as(HeaderKind::for_payload(self.link, length), &mut buf).map_err(|_| EINVAL)?;
        let body = buf.get_mut(hs..).ok_or(EINVAL)?;
        let n = head.encode(body).map_err(|_| EINVAL)?;
        body.get_mut(n..n.saturating_add(digest.len())).ok_or(EINVAL)?.copy_from_slice(digest);
        self.send_or_break_more(buf.get(..hs.saturating_add(fixed)).ok_or(EINVAL)?, true)
    }

    /// P_RS_DATA_REQUEST for `size` bytes at `sector` (block id ID_SYNCER).
    pub(crate) fn send_rs_request(&self, sector: u64, size: u32) -> Result {
        let req = BlockRequest { sector, block_id: ID_SYNCER, blksize: size };
        self.send_small(Packet::RsDataRequest, |out| req.encode(out))
    }

    /// Sends `bytes` (whole packets) unless the connection broke; a send
    /// error breaks it, and so do ko-count sends in a row that each block
    /// for `timeout`.
    fn send_or_break(&self, bytes: &[u8]) -> Result {
        self.send_or_break_more(bytes, false)
    }

    /// [`Self::send_or_break`]; `more`: the payload follows at once.
    fn send_or_break_more(&self, bytes: &[u8], more: bool) -> Result {
        if self.broken.load(Ordering::SeqCst) {
            return Err(EPIPE);
        }
        let mut ko = self.ko_counter();
        let result = self.data.send_all_retrying(bytes, more, || self.keep_trying(&mut ko));
        self.break_on_error(result)
    }

    /// A fresh ko-count for one send (8.4's `drbd_send` reloads it).
    fn ko_counter(&self) -> KoCounter {
        KoCounter::new(self.timing.net_timeouts().ko_count)
    }

    /// A send on the data socket blocked for `timeout`
    /// (`we_should_drop_the_connection`): go on while ko-count allows.
    fn keep_trying(&self, ko: &mut KoCounter) -> bool {
        if self.broken.load(Ordering::SeqCst) {
            return false;
        }
        match ko.send_timed_out() {
            SendTimeout::Retry { ko_left } => {
                pr_err!("drbd: sock_sendmsg time expired, ko = {}\n", ko_left);
                true
            }
            SendTimeout::Drop => {
                pr_warn!("drbd: sending to the peer blocked ko-count ({}) times timeout ({} * 0.1s); conn( Connected -> Timeout )\n",
                    self.timing.net_timeouts().ko_count, self.timing.net_timeouts().timeout_ds);
                false
            }
        }
    }

    /// A failed send breaks the connection: the receiver sees the
    /// shutdown and tears it down.
    fn break_on_error(&self, result: Result) -> Result {
        result.inspect_err(|_| {
            self.broken.store(true, Ordering::SeqCst);
            self.data.shutdown();
            // Through the log's lock: a sender about to wait for room
            // has either seen the break or is queued for this.
            drop(self.tl.lock());
            self.tl_room.notify_all();
        })
    }

    /// P_UUIDS with SKIP_INITIAL_SYNC (`drbd_send_uuids_skip_initial_sync`).
    pub(crate) fn send_uuids_skip_initial_sync(&self, uuids: Uuids) -> Result {
        let packet = UuidsPacket { uuids, bitmap_bits: 0, flags: uuid_flags::SKIP_INITIAL_SYNC };
        self.send_small(Packet::Uuids, |out| packet.encode(out))
    }

    /// P_UUIDS (`drbd_send_uuids`), e.g. after a forced promotion.
    pub(crate) fn send_uuids(&self, uuids: Uuids, bitmap_bits: u64, flags: u64) -> Result {
        let packet = UuidsPacket { uuids, bitmap_bits, flags };
        self.send_small(Packet::Uuids, |out| packet.encode(out))
    }

    /// P_STATE with our state word.
    pub(crate) fn send_state(&self, state: crate::drbd_include::genl::State) -> Result {
        self.send_small(Packet::State, |out| StatePacket { state }.encode(out))
    }

    /// Whether discards can go to the peer as P_TRIM (it announced
    /// FF_TRIM); if not, a discarded range stays out of sync.
    pub(crate) fn sends_trim(&self) -> bool {
        self.link.has(feature::TRIM)
    }

    /// Whether writes wait for an ack (protocols B and C).
    pub(crate) fn wants_ack(&self) -> bool {
        self.protocol() != WireProtocol::A
    }

    /// Writes sent from now on use `protocol`.
    pub(crate) fn set_protocol(&self, protocol: WireProtocol) {
        self.protocol.store(protocol as u32, Ordering::SeqCst);
    }

    /// P_PROTOCOL_UPDATE with `params`; `apply` switches our side over
    /// while no write is being sent, so every write before the packet
    /// uses the old settings and every one after it the new ones,
    /// `integrity` (the digest of `params`' data-integrity-alg) included.
    pub(crate) fn send_protocol_update(&self, params: ProtocolParams<'_>, integrity: Option<Digest>, apply: impl FnOnce()) -> Result {
        let mut buf = [0u8; SMALL_PACKET];
        let len = encode_packet(self.link, Packet::ProtocolUpdate, 0, &mut buf, |out| params.encode(self.link, out))
            .map_err(|_| EINVAL)?;
        let mut guard = self.send_lock.lock();
        self.send_or_break(buf.get(..len).ok_or(EINVAL)?)?;
        *guard = integrity;
        apply();
        Ok(())
    }

    /// Hands one write (P_DATA, or P_TRIM for a discard) to the sender
    /// thread, or sends it at once if nothing is queued, nobody sends and
    /// the socket takes it without blocking: `sent` is given once the
    /// packet is out and its epoch closed, `ack` (protocols B/C) when the
    /// peer acknowledges it or the connection goes; `io` hears whether it
    /// was sent. Returns whether it was taken: not once the connection
    /// broke (the caller marks the write out of sync). Waits only while
    /// the queue is full.
    pub(crate) fn queue_write(&self, io: &impl SentWrites, sent: PeerToken, ack: Option<PeerToken>) -> bool {
        // Alone: every earlier write acknowledged (B, C), none queued or
        // being sent. Under protocol A a write completes once sent, so a
        // submitter of many never finds the earlier ones answered: A
        // always goes through the sender.
        let alone = ack.is_some() && self.pending.lock().is_empty();
        let write = QueuedWrite { sent, ack };
        let lone = {
            let mut queue = self.queue.lock();
            if self.broken.load(Ordering::SeqCst) {
                return false;
            }
            if queue.ahead {
                let oos = Queued::OutOfSync { sector: write.sent.sector(), size: write.sent.size() };
                if queue.fifo.push(oos).is_ok() {
                    drop(queue);
                    self.queued.wake_all();
                    // The tokens complete here: the peer gets no data.
                    drop(write);
                    return true;
                }
                // No room: the peer is not told, which a resync after a
                // reconnect covers (our bit stays set); dropped below.
                return false;
            }
            let lone = alone && queue.fifo.is_empty() && !queue.sending;
            queue.sending |= lone;
            lone
        };
        let write = if lone {
            let left = self.send_alone(io, write);
            let waiting = {
                let mut queue = self.queue.lock();
                queue.sending = false;
                !queue.fifo.is_empty()
            };
            // For `wait_queue_sent`.
            self.queue_room.wake_all();
            // The sender may have slept through an owed barrier while we sent.
            if waiting || self.barrier_owed.load(Ordering::SeqCst) {
                self.queued.wake_all();
            }
            match left {
                None => return true,
                // No room: the sender sends it. Writes queued meanwhile
                // were submitted while this one was in flight, so their
                // order against it does not matter.
                Some(write) => write,
            }
        } else {
            write
        };
        self.push(Queued::Write(write))
    }

    /// `on-congestion pull-ahead` (`maybe_pull_ahead`): from now on writes
    /// only mark their range out of sync at the peer; the peer is told
    /// first. Returns whether we were not Ahead already.
    pub(crate) fn pull_ahead(&self) -> bool {
        self.switch_ahead(true, Queued::WentAhead)
    }

    /// A barrier ack released a write sent before we went Ahead: its
    /// blocks may have been written again since and only marked at the
    /// peer, so ours stay set; the peer marks them too (P_OUT_OF_SYNC), so
    /// that both bitmaps name the same blocks for the resync after Ahead.
    /// Returns whether we are Ahead (else the caller clears the bits).
    pub(crate) fn keep_marked_if_ahead(&self, sector: u64, size: u32) -> bool {
        let mut queue = self.queue.lock();
        if !queue.ahead {
            return false;
        }
        // Full: the peer misses these few blocks until a reconnect's
        // bitmap exchange; ours stay set all the same.
        let _ = queue.fifo.push(Queued::OutOfSync { sector, size });
        drop(queue);
        self.queued.wake_all();
        true
    }

    /// The link drained while Ahead: writes are replicated again from
    /// now on, and the sender starts the resync before it sends them.
    /// Returns whether we were Ahead.
    pub(crate) fn leave_ahead(&self) -> bool {
        self.switch_ahead(false, Queued::LeaveAhead)
    }

    /// Sets the Ahead flag to `ahead` and queues `marker`, under the
    /// queue's lock, so that every write is on one side of the marker.
    /// Returns whether it changed. No room for the marker: the link is
    /// hopeless, the connection goes.
    fn switch_ahead(&self, ahead: bool, marker: Queued) -> bool {
        let queued = {
            let mut queue = self.queue.lock();
            if queue.ahead == ahead || self.broken.load(Ordering::SeqCst) {
                return false;
            }
            queue.ahead = ahead;
            queue.fifo.push(marker).is_ok()
        };
        if !queued {
            pr_warn!("drbd: send queue full while switching Ahead mode; dropping the connection\n");
            let _ = self.break_on_error(Err(ENOMEM));
        }
        self.queued.wake_all();
        queued
    }

    /// `on-congestion disconnect`: the connection goes, StandAlone.
    pub(crate) fn disconnect_congested(&self) {
        self.congestion_disconnect.store(true, Ordering::SeqCst);
        self.data.shutdown();
    }

    /// Whether `on-congestion disconnect` ended the connection.
    pub(crate) fn disconnected_congested(&self) -> bool {
        self.congestion_disconnect.load(Ordering::SeqCst)
    }

    /// The `on-congestion` policy in force.
    pub(crate) fn congestion(&self) -> crate::drbd_include::congestion::CongestionPolicy {
        self.timing.congestion()
    }

    /// Sectors sent and not yet on the peer's disk (`ap_in_flight`).
    pub(crate) fn sectors_in_flight(&self) -> u64 {
        self.tl.lock().sectors_in_flight()
    }

    /// Queues `write` for the sender thread, waiting while the queue is
    /// full; `false` once the connection broke.
    fn push(&self, mut write: Queued) -> bool {
        loop {
            let refused = {
                let mut queue = self.queue.lock();
                if self.broken.load(Ordering::SeqCst) {
                    Some(None)
                } else {
                    match queue.fifo.push(write) {
                        Ok(()) => None,
                        Err(full) => Some(Some(full)),
                    }
                }
            };
            match refused {
                None => {
                    self.queued.wake_all();
                    return true;
                }
                // Broken: the tokens complete here, outside the spinlock.
                Some(None) => return false,
                Some(Some(full)) => write = full,
            }
            self.queue_room.wait_until(|| !self.queue.lock().fifo.is_full() || self.broken.load(Ordering::SeqCst));
        }
    }

    /// A lone writer's write, sent by its submitter (who holds
    /// `sending`) in an epoch of its own, unless the socket or the
    /// transfer log has no room for it now: then it comes back.
    fn send_alone(&self, io: &impl SentWrites, write: QueuedWrite) -> Option<QueuedWrite> {
        let guard = self.send_lock.lock();
        // The packet and its barrier, with room to spare for the socket's
        // accounting overhead.
        let bytes = write.sent.size().saturating_add(256).saturating_mul(2);
        if self.broken.load(Ordering::SeqCst) || self.tl.lock().is_full() || !self.data.has_send_room(bytes) {
            return Some(write);
        }
        let QueuedWrite { sent, ack } = write;
        let protocol_a = ack.is_none();
        let (sector, size) = (sent.sector(), sent.size());
        if self.send_data_locked(&sent, ack, guard.as_ref(), may_set_in_sync(io)).is_err() {
            drop(guard);
            io.not_sent(sector, size);
            return None;
        }
        // A failed barrier breaks the connection; the write's fate is then
        // decided by the transfer log's drain.
        let _ = self.close_epoch_locked();
        drop(guard);
        if !sent.is_discard() {
            io.data_sent(size);
        }
        give_send_completion(SentWrite { sent, protocol_a });
        None
    }

    /// Starts the sender thread of `io`'s writes to this peer
    /// (`drbd_s_<name>`); [`Self::abort`] stops it.
    pub(crate) fn start_sender<D: SentWrites>(
        self: &Arc<Self>,
        name: &str,
        io: Arc<D>,
        leave_ahead: impl Fn(&Replica) + Send + 'static,
    ) -> Result {
        let mut slots = KVVec::with_capacity(EPOCH_BATCH, GFP_KERNEL)?;
        for _ in 0..EPOCH_BATCH {
            slots.push(None, GFP_KERNEL)?;
        }
        let epoch = SendFifo::new(slots);
        let thread_name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_s_{}", name))?;
        let replica = self.clone();
        let thread = KThread::spawn(&thread_name, move || replica.run_sender(&*io, epoch, &leave_ahead))?;
        *self.sender.lock() = Some(thread);
        Ok(())
    }

    /// The sender thread: sends the queued writes in order, each recorded
    /// in the open epoch of the transfer log. A write of protocol B or C
    /// can complete only with the peer's ack, and the ack closes its epoch
    /// first if it is still open (8.4 closes the epoch when one of its
    /// writes completes): a write submitted after it completed (and so
    /// maybe depending on it) goes into a later epoch, which the peer
    /// writes only after that one. The barrier an ack leaves owed goes out
    /// before the next write, or from here when the queue is empty. A
    /// write of protocol A completes once sent: the sender closes its
    /// epoch with a P_BARRIER when the queue runs dry (or [`EPOCH_BATCH`]
    /// such writes went out) and only then gives their send completions.
    /// The barrier ack then clears the bits of protocol A and B writes.
    /// Ends when the connection breaks.
    fn run_sender(&self, io: &impl SentWrites, mut epoch: SendFifo<KVVec<Option<SentWrite>>>, leave_ahead: &dyn Fn(&Replica)) {
        // Whether this thread holds `sending`: from the first write it
        // takes (or an owed barrier) until the queue is empty again.
        let mut owning = false;
        loop {
            let mut next = None;
            self.queued.wait_until(|| {
                if self.broken.load(Ordering::SeqCst) || KThread::should_stop() {
                    return true;
                }
                let owed = self.barrier_owed.load(Ordering::SeqCst);
                let mut queue = self.queue.lock();
                if !owning {
                    // A lone submitter sending wakes us when it is done.
                    if queue.sending || (queue.fifo.is_empty() && !owed) {
                        return false;
                    }
                    queue.sending = true;
                    owning = true;
                }
                next = queue.fifo.pop();
                next.is_some() || owed
            });
            if self.broken.load(Ordering::SeqCst) || KThread::should_stop() {
                break;
            }
            let Some(item) = next else {
                // Nothing queued: an ack closed the open epoch.
                self.send_owed_barrier();
                self.release_if_idle(&mut owning);
                continue;
            };
            self.queue_room.wake_all();
            let write = match item {
                Queued::Write(write) => Some(write),
                Queued::OutOfSync { sector, size } => {
                    // Ours stays set too, whatever an earlier write's
                    // barrier ack cleared before we went Ahead.
                    io.not_sent(sector, size);
                    let desc = BlockDesc { sector, blksize: size };
                    let _ = self.send_small(Packet::OutOfSync, |out| desc.encode(out));
                    None
                }
                Queued::WentAhead => {
                    // Writes sent before belong to the epoch before.
                    self.close_epoch(&mut epoch);
                    let _ = self.send_state(io.state_word());
                    None
                }
                Queued::LeaveAhead => {
                    leave_ahead(self);
                    None
                }
            };
            if let Some(sent) = write.and_then(|write| self.send_queued(io, write)) {
                if !sent.protocol_a {
                    // Its ack closes the epoch before it completes.
                    give_send_completion(sent);
                } else if let Err(sent) = epoch.push(sent) {
                    // Cannot happen: the epoch closes when full.
                    self.close_epoch(&mut epoch);
                    give_send_completion(sent);
                }
            }
            let idle = self.queue.lock().fifo.is_empty();
            if epoch.is_full() || (idle && !epoch.is_empty()) {
                self.close_epoch(&mut epoch);
            } else if idle {
                // Every write sent is B or C: the epoch stays open until
                // one of them is acked (or the queue fills it), which
                // spares a barrier, its ack and the peer's flush for every
                // few writes. A barrier owed meanwhile goes now.
                self.send_owed_barrier();
            }
            if idle {
                self.release_if_idle(&mut owning);
            }
        }
        self.close_epoch(&mut epoch);
    }

    /// Gives up `sending` (if held) when nothing is queued.
    fn release_if_idle(&self, owning: &mut bool) {
        let released = {
            let mut queue = self.queue.lock();
            let released = *owning && queue.fifo.is_empty();
            if released {
                queue.sending = false;
                *owning = false;
            }
            released
        };
        if released {
            // For `wait_queue_sent`.
            self.queue_room.wake_all();
        }
    }

    /// Waits until every write queued so far is sent: the queue empty and
    /// nobody sending (with new writes held off, as an attach does), or
    /// the connection broken.
    pub(crate) fn wait_queue_sent(&self) {
        self.queue_room.wait_until(|| {
            if self.broken.load(Ordering::SeqCst) {
                return true;
            }
            let queue = self.queue.lock();
            queue.fifo.is_empty() && !queue.sending
        });
    }

    /// Sends the P_BARRIER an ack left owed, unless a write sent it first.
    fn send_owed_barrier(&self) {
        if !self.barrier_owed.swap(false, Ordering::SeqCst) {
            return;
        }
        let _guard = self.send_lock.lock();
        let owed = self.tl.lock().owed_barrier();
        if let Some(barrier) = owed {
            // A failed barrier breaks the connection.
            let _ = self.send_barrier_locked(barrier, false);
        }
    }

    /// Sends one queued write (a P_BARRIER first if its epoch is full):
    /// its send completion once sent, else `None`, the write marked out of
    /// sync (even if an earlier overlapping write's ack cleared its bits
    /// meanwhile) and the connection broken.
    fn send_queued(&self, io: &impl SentWrites, write: QueuedWrite) -> Option<SentWrite> {
        let QueuedWrite { sent, ack } = write;
        let protocol_a = ack.is_none();
        let (sector, size) = (sent.sector(), sent.size());
        let sent_ok = match self.lock_with_log_room() {
            Some(guard) => self.send_data_locked(&sent, ack, guard.as_ref(), may_set_in_sync(io)).is_ok(),
            None => false,
        };
        if sent_ok {
            if !sent.is_discard() {
                io.data_sent(size);
            }
            return Some(SentWrite { sent, protocol_a });
        }
        io.not_sent(sector, size);
        None
    }

    /// Closes the open epoch (P_BARRIER; first the one an ack left owed,
    /// if any) and gives the send completions of its protocol A writes.
    fn close_epoch(&self, epoch: &mut SendFifo<KVVec<Option<SentWrite>>>) {
        {
            let _guard = self.send_lock.lock();
            // A failed barrier breaks the connection; the writes' fate is
            // then decided by the transfer log's drain.
            let _ = self.close_epoch_locked();
        }
        while let Some(sent) = epoch.pop() {
            give_send_completion(sent);
        }
    }

    /// Asks the peer for the data of read `bio` (P_DATA_REQUEST); its
    /// answer completes the bio (`drbd_remote_read`). Hands the bio back
    /// if the request could not be sent.
    pub(crate) fn send_read(&self, bio: UpperBio) -> core::result::Result<(), UpperBio> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(bio);
        }
        let (block_id, sector, blksize) = self.reads.register(bio)?;
        let req = BlockRequest { sector, block_id, blksize };
        if self.send_small(Packet::DataRequest, |out| req.encode(out)).is_err() {
            // Unless the connection's end failed it meanwhile.
            return self.reads.take(block_id).map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// Writes waiting for the peer's ack (8.4's `ap_pending_cnt`), for
    /// read-balancing least-pending.
    pub(crate) fn in_flight(&self) -> u32 {
        u32::try_from(self.pending.lock().len()).unwrap_or(u32::MAX)
    }

    /// The reads waiting for the peer.
    pub(crate) fn reads(&self) -> &RemoteReads {
        &self.reads
    }

    /// Takes the send lock once the transfer log has room for a write.
    /// While it is full, the open epoch is closed so that the peer's
    /// barrier ack frees slots. `None`: the connection broke meanwhile.
    fn lock_with_log_room(&self) -> Option<kernel::sync::lock::Guard<'_, Option<Digest>, kernel::sync::lock::mutex::MutexBackend>> {
        loop {
            if self.broken.load(Ordering::SeqCst) {
                return None;
            }
            let guard = self.send_lock.lock();
            if !self.tl.lock().is_full() {
                return Some(guard);
            }
            if self.close_epoch_locked().is_err() {
                return None;
            }
            drop(guard);
            // Until a barrier ack frees slots, or the connection breaks.
            let mut tl = self.tl.lock();
            while tl.is_full() && !self.broken.load(Ordering::SeqCst) {
                self.tl_room.wait(&mut tl);
            }
        }
    }

    /// Closes the open epoch if it holds writes, sending its P_BARRIER
    /// (`drbd_send_barrier`). The caller holds the send lock.
    fn close_epoch_locked(&self) -> Result {
        let closed = self.tl.lock().close_epoch();
        match closed {
            Some(barrier) => self.send_barrier_locked(barrier, false),
            None => Ok(()),
        }
    }

    /// P_BARRIER `barrier` (volume 0, as `conn_send_command` sends it);
    /// `more`: a P_DATA follows at once. The caller holds the send lock.
    fn send_barrier_locked(&self, barrier: u32, more: bool) -> Result {
        let mut buf = [0u8; 16 + Barrier::SIZE];
        let len = encode_packet(self.link, Packet::Barrier, 0, &mut buf, |out| Barrier { barrier }.encode(out))
            .map_err(|_| EINVAL)?;
        self.send_or_break_more(buf.get(..len).ok_or(EINVAL)?, more)?;
        self.last_barrier_ms.store(now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// Sends the P_DATA of `sent` in the open epoch (a P_BARRIER first if
    /// that epoch is full), with a digest of its data by `integrity` if
    /// given. The caller holds the send lock (`integrity` is what it
    /// holds) and made sure the transfer log has room.
    ///
    /// The packet goes with MSG_MORE: its caller always sends another at
    /// once (the next queued write, or the P_BARRIER that closes the epoch,
    /// which goes without), so a write's last partial segment leaves with
    /// what follows and the socket pushes once per run of writes (as 8.4's
    /// sender corks the data socket while it has work, `tcp-cork`).
    /// `may_set_in_sync`: a resync runs (DP_MAY_SET_IN_SYNC).
    fn send_data_locked(&self, sent: &PeerToken, ack: Option<PeerToken>, integrity: Option<&Digest>, may_set_in_sync: bool) -> Result {
        // Before the write is tracked: if it cannot be digested, it was
        // not sent (and the connection goes).
        let digest = match integrity {
            Some(d) if !sent.is_discard() => match sent.digest(d) {
                Ok(value) => Some(value),
                Err(e) => return self.break_on_error(Err(e)),
            },
            _ => None,
        };
        let block_id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let seq_num = self.seq.next();
        let (sector, size, flags) = (sent.sector(), sent.size(), sent.flags());
        let mut dp_flags = 0;
        if flags.fua {
            dp_flags |= dp::FUA;
        }
        if flags.preflush {
            dp_flags |= dp::FLUSH;
        }
        if flags.sync {
            dp_flags |= dp::RW_SYNC;
        }
        if may_set_in_sync {
            dp_flags |= dp::MAY_SET_IN_SYNC;
        }
        if self.link.version >= 100 && ack.is_some() {
            // A write holding an ack token asks for an ack even if the
            // protocol changed to A since the token was taken.
            match self.protocol() {
                WireProtocol::B => dp_flags |= dp::SEND_RECEIVE_ACK,
                WireProtocol::A | WireProtocol::C => dp_flags |= dp::SEND_WRITE_ACK,
            }
        }
        // A write that cannot be tracked must not leave the peer behind
        // while we stay connected: the connection fails instead, and its
        // end marks the write out of sync for the resync.
        // The barrier owed (or of a full epoch) is taken as the write is
        // recorded, in one step: an ack closing the epoch in between would
        // put the write in an epoch sent before its predecessor's barrier.
        let recorded = {
            let mut tl = self.tl.lock();
            tl.record(block_id, sector, size, now_ms()).map(|barrier| (barrier, tl.current_epoch()))
        };
        let Ok((barrier, epoch)) = recorded else {
            // Cannot happen: the caller made room.
            pr_err!("drbd: transfer log full; write at sector {} not replicated\n", sector);
            return self.break_on_error(Err(ENOMEM));
        };
        if let Some(barrier) = barrier {
            self.send_barrier_locked(barrier, true)?;
        }
        if let Some(ack) = ack {
            let inserted = self.pending.lock().insert(block_id, Pending { sector, size, epoch, ack });
            if let Err(taken) = inserted {
                // The peer released the epoch of write `holder` before
                // acking it (8.4: "BARRIER_ACKED but pending").
                pr_err!("drbd: write #{} still waits for its ack past its barrier ack; dropping the connection\n",
                    taken.holder);
                return self.break_on_error(Err(EIO));
            }
        }
        let head = DataPacket { sector, block_id, seq_num, dp_flags };
        if sent.is_discard() {
            // P_TRIM: the range and its size, no data.
            let trim = Trim { data: head, size };
            let mut buf = [0u8; 16 + Trim::SIZE];
            let len = encode_packet(self.link, Packet::Trim, self.volume, &mut buf, |out| trim.encode(out))
                .map_err(|_| EINVAL)?;
            return self.send_or_break_more(buf.get(..len).ok_or(EINVAL)?, true);
        }
        // Header and payload leave together (MSG_MORE on the header).
        self.send_data_head_locked(Packet::Data, &head, digest.as_ref(), size)?;
        if self.broken.load(Ordering::SeqCst) {
            return Err(EPIPE);
        }
        let mut ko = self.ko_counter();
        // Protocols B and C: the bio completes only once the peer has the
        // data, so its pages can go to the socket without a copy (8.4's
        // `_drbd_send_zc_bio`); protocol A completes at once and copies.
        // With a digest the data is copied too, as 8.4 does: what is on
        // the wire then cannot change after it was digested, so a
        // mismatch at the peer means corruption on the way.
        let zero_copy = self.wants_ack() && digest.is_none();
        let result = self.data.send_bio_retrying(sent, zero_copy, true, || self.keep_trying(&mut ko));
        if let (Ok(()), Some(d), Some(sent_digest)) = (&result, integrity, digest) {
            // 8.4's double check: the bio's pages changed while we sent
            // them (the digest is of what they held before).
            if sent.digest(d).is_ok_and(|now| now.as_bytes() != sent_digest.as_bytes()) {
                pr_warn!("drbd: Digest mismatch, buffer modified by upper layers during write: {}s +{}\n", sector, size);
            }
        }
        self.break_on_error(result)
    }

    /// The request timer (`request_timer_fn` for the network part): is the
    /// oldest write the peer has not finished overdue at `now`, given
    /// `ent_ms` (`ko-count * timeout`)? Also returns when to look again.
    pub(crate) fn check_overdue(&self, now: u64, ent_ms: u64) -> (NetVerdict, u64) {
        let (oldest, current_epoch) = {
            let tl = self.tl.lock();
            (tl.oldest().copied(), tl.current_epoch())
        };
        let oldest = oldest.map(|w| OldestWrite {
            sent_at_ms: w.sent_at_ms,
            ack_pending: self.pending.lock().contains(w.block_id),
            epoch: w.epoch,
        });
        let sender = SenderView {
            current_epoch,
            last_barrier_sent_ms: self.last_barrier_ms.load(Ordering::Relaxed),
            connected_at_ms: self.connected_at_ms,
        };
        (net_timeout_reached(oldest, &sender, now, ent_ms), next_check_ms(oldest.as_ref(), now, ent_ms))
    }

    /// P_BARRIER_ACK `barrier` for `set_size` writes (`tl_release`): each
    /// write of that epoch is handed to `release` (on the peer's stable
    /// storage unless the peer failed it). A mismatch is the peer's
    /// protocol error; nothing is released then.
    pub(crate) fn got_barrier_ack(
        &self,
        barrier: u32,
        set_size: u32,
        release: impl FnMut(&TlWrite),
    ) -> core::result::Result<u32, BarrierAckError> {
        let released = self.tl.lock().barrier_acked(barrier, set_size, release);
        self.tl_room.notify_all();
        released
    }

    /// Our disk failed a write of `size` bytes at `sector`: no barrier ack
    /// may mark the replicated writes over it in sync.
    pub(crate) fn local_write_failed(&self, sector: u64, size: u32) {
        self.tl.lock().mark_range_failed(sector, size);
    }

    /// The peer failed write `block_id` (P_NEG_ACK): its epoch's barrier
    /// ack must not mark it in sync. Returns whether the log has it.
    pub(crate) fn write_failed(&self, block_id: u64) -> bool {
        self.tl.lock().mark_failed(block_id)
    }

    /// The agreed wire protocol.
    pub(crate) fn protocol(&self) -> WireProtocol {
        WireProtocol::from_raw(self.protocol.load(Ordering::SeqCst)).unwrap_or(WireProtocol::C)
    }

    /// The peer acknowledged `block_id` (P_WRITE_ACK, P_RECV_ACK, or
    /// P_NEG_ACK); returns whether it was waiting. The caller's `mark`
    /// gets the write's sector, size and whether our local write failed,
    /// and marks the bitmap before the upper bio may complete (the ack
    /// token is given here, when `mark` has run).
    pub(crate) fn got_ack(&self, block_id: u64, positive: bool, mark: impl FnOnce(u64, u32, bool)) -> bool {
        let done = self.pending.lock().take(block_id);
        let Some(done) = done else { return false };
        // Before it may complete: a write sent after this point goes into
        // a later epoch than this one (the sender sends the barrier).
        if self.tl.lock().close_epoch_of_acked(done.epoch) {
            self.barrier_owed.store(true, Ordering::SeqCst);
            self.queued.wake_all();
        }
        // Whether our own disk failed it (so far): then it stays out of sync.
        mark(done.sector, done.size, done.ack.local_failed());
        // Giving the ack token may complete the upper bio; the peer's
        // success makes it succeed even if the local write failed.
        if positive {
            done.ack.peer_succeeded();
        }
        true
    }

    /// The sequence numbers of this connection's writes and acks.
    pub(crate) fn packet_seq(&self) -> &PacketSeq {
        &self.seq
    }

    /// The peer asked us to retry write `block_id` (P_RETRY_WRITE): it
    /// no longer waits for an ack; its sector and ack token come back
    /// (the token keeps the bio for the write's restart).
    pub(crate) fn take_for_retry(&self, block_id: u64) -> Option<(u64, PeerToken)> {
        let done = self.pending.lock().take(block_id)?;
        Some((done.sector, done.ack))
    }

    /// The connection is gone: every write the peer may not have on its
    /// disk (still waiting for its ack, or for its epoch's barrier ack) is
    /// marked out of sync by `mark`, then completes, unless `hold`: then
    /// those still waiting for their ack come back held.
    pub(crate) fn abort(&self, mark: impl Fn(u64, u32), hold: bool) -> Option<HeldWrites> {
        self.broken.store(true, Ordering::SeqCst);
        self.reads.abort();
        // The sender and waiting submitters see the break; through the
        // log's lock, a sender about to wait for room has either seen it
        // or is queued for the notification.
        self.queued.wake_all();
        self.queue_room.wake_all();
        drop(self.tl.lock());
        self.tl_room.notify_all();
        // Wait for the sender (a send in progress ends at the latest when
        // its timeout expires: it does not retry once broken).
        let sender = self.sender.lock().take();
        drop(sender);
        let _guard = self.send_lock.lock();
        self.tl.lock().drain(|w| mark(w.sector, w.size));
        self.tl_room.notify_all();
        // Writes queued and never sent (none are queued from now on).
        let unsent = core::mem::replace(&mut self.queue.lock().fifo, SendFifo::new(KVVec::new())).into_slots();
        for item in unsent.iter().flatten() {
            match item {
                Queued::Write(w) => mark(w.sent.sector(), w.sent.size()),
                Queued::OutOfSync { sector, size } => mark(*sector, *size),
                Queued::WentAhead | Queued::LeaveAhead => {}
            }
        }
        let drained = core::mem::replace(&mut *self.pending.lock(), AckSlots::new(KVVec::new())).into_slots();
        for (_, p) in drained.iter().flatten() {
            mark(p.sector, p.size);
        }
        hold.then_some(HeldWrites { _writes: drained, _unsent: unsent })
    }
}

/// Gives a sent write's send completion: as the peer's success under
/// protocol A (handed to the network is all A waits for).
fn give_send_completion(write: SentWrite) {
    if write.protocol_a {
        write.sent.peer_succeeded();
    }
}
