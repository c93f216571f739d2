//! The request path: what happens to each bio submitted to `/dev/drbdN`.
//!
//! Reads go straight to the backing disk. A write is marked out of sync in
//! the bitmap first (the mark is cleared when the peer has it on disk: its
//! P_WRITE_ACK under protocol C, its epoch's P_BARRIER_ACK under A and B)
//! and passes the activity log: if its
//! extents are hot it goes straight on; if not, it waits for the device's
//! submitter thread, which commits an AL transaction first. (Metadata I/O
//! cannot be waited for in `submit_bio` itself: bios submitted there are
//! only queued until it returns.) While connected to a peer with a disk,
//! the write goes to the peer too (`drbd_sender.rs`).

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::drbd_actlog::{ActivityLog, AlError, AlRefs, ResyncLock, StagedChanges};
use crate::drbd_bitmap::BitmapMem;
use crate::drbd_conflicts::{Interval, WriteConflicts};
use crate::drbd_include::al_set::SlotUse;
use crate::drbd_peer_device::{PeerDevice, ResizeShared};
use crate::drbd_events::{DeviceIdent, EventCounters, StateEvents};
use crate::drbd_include::genl as api;
use crate::drbd_include::genl::{ConnState, DiskState, Role, StateChangeResult};
use crate::drbd_include::state::{Context, Kind, PeerDeviceStates, States};
use crate::drbd_state::{StateEngine, Transition};
use crate::drbd_sender::{HeldWrites, Replica, SentWrites};
use crate::drbd_md::MetaData;
use crate::drbd_io_error::IoErrors;
use crate::drbd_include::faults::Fault;
use crate::drbd_include::write_ordering::WriteOrdering;
use crate::drbd_include::io_error::{read_source, IoFailure, ReadSource};
use crate::drbd_include::read_balancing::{InFlight, ReadBalancing};
use crate::drbd_include::resync_after::Member;
use crate::drbd_resync_after::{OrderMember, ResyncOrder};
use crate::kernel_glue::faults;
use crate::kernel_glue::block::{BioFifo, BioOp, BlockPages, DiskCapacity, DiskOps, FailedBio, LowerDev, LowerGate, LowerRef, MetaIo, UpperBio};
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// Cold writes the submitter thread admits together, with one
/// activity-log transaction for all their extents.
const COLD_BATCH: usize = 16;

/// The part of a device that the bio path touches: shared with the gendisk
/// and reached without taking the configuration lock.
#[pin_data]
pub(crate) struct DeviceIo {
    /// Writes to cold extents, waiting for the submitter thread.
    #[pin]
    cold_writes: Mutex<BioFifo>,
    #[pin]
    cold_writes_added: CondVar,
    #[pin]
    gate: LowerGate,
    /// Metadata of the attached disk; writers take this to pass the AL.
    #[pin]
    md: Mutex<Option<MetaData>>,
    al_refs: AlRefs,
    /// Woken when an AL slot's last write in flight completes.
    #[pin]
    al_idle: WaitQueue,
    /// The submitter thread writes an AL transaction (holding the
    /// metadata lock): the bio path queues writes for it rather than
    /// wait for the lock, so they can join its next transaction.
    al_committing: AtomicBool,
    /// Woken when a resync read lets application writes through again.
    #[pin]
    resync_unlocked: WaitQueue,
    /// The states of the device and its peer device, and the opens
    /// (`drbd_state.rs`: the one place they change).
    #[pin]
    state: StateEngine,
    /// The range a resync read for the peer holds writes off.
    resync_lock: ResyncLock,
    /// What online resize remembers: the user's size, the peer's last
    /// (8.4 keeps `p_size` across connections), a resync of grown space
    /// waiting for the peer's answer.
    resize: ResizeShared,
    /// The device's peer device while its resource is connected: owned
    /// by the connection (`drbd_conn.rs`), published here for the bio
    /// path (the replica to send writes to) and the commands.
    #[pin]
    peer_device: Mutex<Option<Arc<PeerDevice>>>,
    /// The write-ordering method (`WriteOrdering` as u8) the disk
    /// options choose: what a barrier from the peer does.
    write_ordering: AtomicU8,
    /// The `read-balancing` disk option (`ReadBalancing` as u32), and
    /// whose turn the next round-robin read is (true: the peer's).
    read_balancing: AtomicU32,
    /// `discard-zeroes-if-aligned`: the backing disk reads back zeroes
    /// where whole chunks of it were discarded, so discards pass down as
    /// discards; otherwise the range is zeroed.
    discard_zeroes_if_aligned: AtomicBool,
    /// `resync-after` (-1: none), and the order of all minors it is read by.
    resync_after: AtomicI32,
    order: Arc<ResyncOrder<DeviceIo>>,
    read_turn: AtomicBool,
    /// Usable size in sectors while attached (0 when diskless).
    capacity: AtomicU64,
    /// The size `/dev/drbdN` exposes, and the handle that sets it:
    /// attach, detach and online resize (also the receiver's) change it.
    #[pin]
    exposed: Mutex<ExposedSize>,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    /// Read from the backing disk for the peer (its reads, resync and
    /// verify): counted in "dr" as 8.4 does, not as application I/O.
    peer_read: AtomicU64,
    /// Of those, resync writes (what `c-min-rate` does not count as
    /// application I/O).
    resync_written: AtomicU64,
    /// Data sent to and received from the peer ("ns", "nr").
    net_sent: AtomicU64,
    net_received: AtomicU64,
    /// Broadcasts of state changes (`drbd_events.rs`).
    #[pin]
    events: StateEvents,
    /// Bios held while I/O is suspended (`susp`, `susp_fen`): the bio
    /// path checks and queues under this lock only, so `resume-io` cannot
    /// miss one and a state change never waits for the bio path.
    #[pin]
    suspended: Mutex<Suspended>,
    /// Bios that passed the suspension check and are still being
    /// submitted (counted under its lock), and who waits for none to be
    /// (an attach holding I/O, [`DeviceIo::hold_io_for_attach`]).
    submitting: AtomicU32,
    attach_waiting: AtomicBool,
    #[pin]
    submissions_done: WaitQueue,
    /// Failed bios and a failed disk, for the worker (`drbd_io_error.rs`).
    #[pin]
    io_errors: IoErrors,
    /// Writes in flight by the sectors they cover: overlapping writes
    /// wait, two Primaries' concurrent writes are resolved
    /// (`drbd_conflicts.rs`).
    #[pin]
    conflicts: WriteConflicts,
}

/// The size of `/dev/drbdN` (sectors) and what sets it on the gendisk.
pub(crate) struct ExposedSize {
    sectors: u64,
    disk: Option<DiskCapacity>,
}

/// Suspended I/O, as the bio path sees it.
pub(crate) struct Suspended {
    /// The engine's `io_suspended()`, copied here after every change of
    /// it ([`DeviceIo::sync_suspension`]).
    frozen: bool,
    bios: BioFifo,
    /// Writes that lost their peer while frozen for fencing.
    held: Option<HeldWrites>,
    /// An attach while connected holds new bios (as `frozen`).
    attach_hold: bool,
}

/// A bio between the suspension check and the end of its submission.
struct Submitting<'a>(&'a DeviceIo);

impl Drop for Submitting<'_> {
    fn drop(&mut self) {
        // SeqCst with the waiter's flag store and count load: either it
        // sees the count reach 0, or this sees it waiting.
        if self.0.submitting.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.attach_waiting.load(Ordering::SeqCst) {
            self.0.submissions_done.wake_all();
        }
    }
}

/// New bios held while a diskless Primary attaches
/// ([`DeviceIo::hold_io_for_attach`]); they go on when it is dropped.
pub(crate) struct AttachHold<'a>(&'a DeviceIo);

impl Drop for AttachHold<'_> {
    fn drop(&mut self) {
        self.0.suspended.lock().attach_hold = false;
        self.0.sync_suspension();
    }
}

impl DeviceIo {
    /// Ends a write's hold on its AL slots (from any context, its bio's
    /// completion included) and wakes who waits for a slot to go idle.
    pub(crate) fn al_write_done(&self, tag: u64) {
        if self.al_refs.complete(tag) {
            self.al_idle.wake_all();
        }
    }

    /// A device with no backing disk.
    pub(crate) fn new(ident: DeviceIdent, order: Arc<ResyncOrder<DeviceIo>>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            cold_writes <- new_mutex!(BioFifo::new(), "rdrbd::DeviceIo::cold_writes"),
            cold_writes_added <- new_condvar!("rdrbd::DeviceIo::cold_writes_added"),
            gate <- LowerGate::new(),
            md <- new_mutex!(None, "rdrbd::DeviceIo::md"),
            al_refs: AlRefs::new()?,
            al_idle <- new_wait_queue!("rdrbd::DeviceIo::al_idle"),
            resync_unlocked <- new_wait_queue!("rdrbd::DeviceIo::resync_unlocked"),
            state <- StateEngine::new(ident.minor),
            resync_lock: ResyncLock::new(),
            al_committing: AtomicBool::new(false),
            resize: ResizeShared::new(),
            peer_device <- new_mutex!(None, "rdrbd::DeviceIo::peer_device"),
            write_ordering: AtomicU8::new(WriteOrdering::Flush as u8),
            read_balancing: AtomicU32::new(ReadBalancing::PreferLocal as u32),
            discard_zeroes_if_aligned: AtomicBool::new(true),
            resync_after: AtomicI32::new(-1),
            order,
            read_turn: AtomicBool::new(false),
            capacity: AtomicU64::new(0),
            exposed <- new_mutex!(ExposedSize { sectors: 0, disk: None }, "rdrbd::DeviceIo::exposed"),
            bytes_read: AtomicU64::new(0),
            peer_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            resync_written: AtomicU64::new(0),
            net_sent: AtomicU64::new(0),
            net_received: AtomicU64::new(0),
            events <- StateEvents::new(ident, crate::drbd_events::unconfigured_state()),
            suspended <- new_mutex!(Suspended { frozen: false, bios: BioFifo::new(), held: None, attach_hold: false },
                "rdrbd::DeviceIo::suspended"),
            submitting: AtomicU32::new(0),
            attach_waiting: AtomicBool::new(false),
            submissions_done <- new_wait_queue!("rdrbd::DeviceIo::submissions_done"),
            io_errors <- IoErrors::new(),
            conflicts <- WriteConflicts::new(),
        }? Error)
    }

    /// Lets bios through to `lower`, whose metadata is `md`; hands the disk
    /// back if one is attached already.
    pub(crate) fn attach_lower(&self, lower: LowerDev, md: MetaData) -> core::result::Result<(), LowerDev> {
        self.capacity.store(md.capacity(), Ordering::Relaxed);
        *self.md.lock() = Some(md);
        self.gate.attach(lower).inspect_err(|_| {
            self.md.lock().take();
        })
    }

    /// Stops bios going to the backing disk, waits for those in flight and
    /// hands the disk and its metadata back.
    pub(crate) fn detach_lower(&self) -> Option<(LowerDev, Option<MetaData>)> {
        self.detach_lower_while(|| {}, || false)
    }

    /// [`Self::detach_lower`], running `meanwhile` while bios drain (the
    /// worker finishes failed bios there, which the drain waits for).
    pub(crate) fn detach_lower_while(
        &self,
        meanwhile: impl FnMut(),
        pending: impl Fn() -> bool,
    ) -> Option<(LowerDev, Option<MetaData>)> {
        let lower = self.gate.detach_while(meanwhile, pending)?;
        Some((lower, self.md.lock().take()))
    }

    /// Whether a backing disk is attached.
    pub(crate) fn has_disk(&self) -> bool {
        self.gate.enter().is_some()
    }

    /// Whether the device is Primary.
    pub(crate) fn is_primary(&self) -> bool {
        self.role() == Role::Primary
    }

    /// Primary or Secondary.
    pub(crate) fn role(&self) -> Role {
        self.state.states().device.role
    }

    /// The states of the device and its peer device.
    pub(crate) fn states(&self) -> States {
        self.state.states()
    }

    /// The peer as this device's peer device sees it.
    pub(crate) fn peer(&self) -> PeerDeviceStates {
        self.state.states().peer
    }

    /// The wire protocol (A/B/C) while a net config exists.
    pub(crate) fn protocol(&self) -> Option<crate::drbd_include::genl::WireProtocol> {
        self.state.protocol()
    }

    /// Records the protocol settings of the net config (None without one).
    pub(crate) fn set_protocol(&self, net: Option<crate::drbd_include::protocol_settings::ProtocolSettings>) {
        self.state.set_protocol(net);
    }

    /// The peer device's states when the connection left Connected, or
    /// now if it has not (yet): what a teardown decides on.
    pub(crate) fn peer_before_loss(&self) -> crate::drbd_include::state::PeerDeviceStates {
        self.state.take_peer_at_loss().unwrap_or_else(|| self.states().peer)
    }

    /// Waits while the connection state is one of `states`, at most
    /// `timeout_ms`; returns the peer device's states then.
    pub(crate) fn wait_peer_leaves(&self, states: &[ConnState], timeout_ms: u32) -> PeerDeviceStates {
        self.state.wait_while(|s| states.contains(&s.peer.conn), timeout_ms).peer
    }

    /// A change the environment imposes (8.4's `CS_HARD`: the network or
    /// the disk broke, the peer told us, a resync ended), through the state
    /// engine; then its consequences. Refused only if no change may make
    /// it (the engine logs why); the returned transition is then empty.
    pub(crate) fn set_state(&self, change: impl FnOnce(&mut States)) -> Transition {
        match self.state.change(Kind::Hard, change) {
            Ok(t) => {
                self.after_state_change(&t);
                t
            }
            Err(_) => {
                let now = self.state.states();
                Transition { old: now, new: now }
            }
        }
    }

    /// A change the driver may refuse (a user's request), checked against
    /// the state rules; then its consequences.
    pub(crate) fn request_state(&self, change: impl FnOnce(&mut States)) -> core::result::Result<Transition, StateChangeResult> {
        let t = self.state.change(Kind::Soft(Context::default()), change)?;
        self.after_state_change(&t);
        Ok(t)
    }

    /// A user's change that may need the peer's consent (8.4's
    /// `drbd_req_state`): checked against the states now; if it is
    /// cluster-wide (`state::is_cluster_wide`), `ask_peer` sends
    /// P_STATE_CHG_REQ and waits for the answer, and a refusal ends it
    /// there; then `prepare` (metadata the change needs written first),
    /// and the change is made, checked again against the states as they
    /// are by then. With more peers, `ask_peer` becomes the two-phase
    /// commit's prepare round.
    pub(crate) fn request_state_with_consent<E: From<StateChangeResult>>(
        &self,
        change: impl Fn(&mut States),
        ask_peer: impl FnOnce() -> core::result::Result<(), E>,
        prepare: impl FnOnce() -> core::result::Result<(), E>,
    ) -> core::result::Result<Transition, E> {
        let preview = self.state.preview(Kind::Soft(Context::default()), &change)?;
        if crate::drbd_include::state::is_cluster_wide(&preview.old, &preview.new) {
            ask_peer()?;
        }
        prepare()?;
        Ok(self.request_state(change)?)
    }

    /// What follows a committed change (`after_state_ch`'s share that the
    /// device owns): suspended I/O frozen or let go, a state-change request
    /// waiting for a lost peer given up, the peer told what it must know at
    /// once, the broadcast.
    fn after_state_change(&self, t: &Transition) {
        if t.old.io_suspended() != t.new.io_suspended() {
            self.sync_suspension();
        }
        self.sync_md_flags(t);
        if t.old.peer.conn >= ConnState::Connected && t.new.peer.conn < ConnState::Connected {
            if let Some(pd) = self.peer_device() {
                pd.connection_lost();
            }
        }
        if tell_peer_of(t) {
            self.tell_peer();
        }
        self.state_changed();
        if resync_order_input(&t.old) != resync_order_input(&t.new) {
            self.order.settle();
        }
    }

    /// Sets `resync-after` (attach, disk-options; checked by the caller
    /// against the order) and settles the order.
    pub(crate) fn set_resync_after(&self, after: i32) {
        self.resync_after.store(after, Ordering::Relaxed);
        self.order.settle();
    }

    /// The metadata follows the state (`__drbd_set_state`): the state's
    /// flags written when they changed; the crashed-Primary mark ends once
    /// both disks are UpToDate. Only with a disk that can take it
    /// (Inconsistent or better: not while attaching, failing or gone).
    fn sync_md_flags(&self, t: &Transition) {
        let new = &t.new;
        if new.device.disk < DiskState::Inconsistent {
            return;
        }
        let both_up_to_date = |s: &States| s.device.disk == DiskState::UpToDate && s.peer.pdsk == DiskState::UpToDate;
        let end_crash = !both_up_to_date(&t.old) && both_up_to_date(new);
        let primary = new.device.role == Role::Primary;
        let written = self.with_md(|md, dev| {
            if end_crash {
                md.crashed_primary = false;
            }
            md.sync_state_flags(dev, primary, new.device.disk, new.peer.pdsk, new.peer.conn)
        });
        if let Some(Err(e)) = written {
            pr_err!("drbd{}: writing the state flags to the meta data failed: error {}\n", self.events.minor(), e.to_errno());
        }
    }

    /// Usable size in sectors (0 when diskless).
    pub(crate) fn capacity_sectors(&self) -> u64 {
        if self.gate.enter().is_none() {
            return 0;
        }
        self.capacity.load(Ordering::Relaxed)
    }

    /// Hands over what sets the gendisk's size (once, at new-minor).
    pub(crate) fn set_disk_capacity_handle(&self, handle: DiskCapacity) {
        self.exposed.lock().disk = Some(handle);
    }

    /// The size `/dev/drbdN` exposes, in sectors.
    pub(crate) fn exposed_sectors(&self) -> u64 {
        self.exposed.lock().sectors
    }

    /// Sets the size `/dev/drbdN` exposes (and tells userspace).
    pub(crate) fn set_exposed_sectors(&self, sectors: u64) {
        let mut exposed = self.exposed.lock();
        exposed.sectors = sectors;
        if let Some(disk) = exposed.disk.as_ref() {
            disk.set(sectors);
        }
    }

    /// Takes the usable size from the metadata again (after an online
    /// resize), for the checks of the peer's requests and the resync.
    pub(crate) fn refresh_capacity(&self) {
        if let Some(capacity) = self.md.lock().as_ref().map(MetaData::capacity) {
            self.capacity.store(capacity, Ordering::Relaxed);
        }
    }

    /// Whether to simulate `fault` on this device now (fault injection).
    fn inject_fault(&self, fault: Fault) -> bool {
        faults::insert(self.events.minor(), fault)
    }

    /// Errors of the backing disk, for the worker.
    pub(crate) fn io_errors(&self) -> &IoErrors {
        &self.io_errors
    }

    /// The writes in flight by the sectors they cover.
    pub(crate) fn conflicts(&self) -> &WriteConflicts {
        &self.conflicts
    }

    /// Peer write `interval` (two Primaries; 0: not tracked) is answered,
    /// or was not written: it stops holding local writes off, and the
    /// postponed local writes it was to go before are written and sent
    /// again now (8.4's `restart_conflicting_writes`). Sleeps.
    pub(crate) fn peer_write_answered(&self, interval: Interval) {
        if interval == 0 {
            return;
        }
        if let Some(done) = self.conflicts.peer_done(interval) {
            if done.restarts {
                self.restart_postponed(done.range);
            }
        }
    }

    /// The postponed local writes overlapping `range` whose disk write is
    /// done are written to our disk again, and sent to the peer again (8.4's
    /// restarted requests, after the peer's conflicting write): the peer
    /// asked for it with P_RETRY_WRITE. Sleeps (a thread of the connection).
    fn restart_postponed(&self, range: crate::drbd_include::write_conflicts::Range) {
        self.conflicts.take_restartable(range, |interval, token| self.rewrite(interval, token));
    }

    /// Submits postponed write `interval` again (`token`: its first
    /// submission's last part, given at the end).
    fn rewrite(&self, interval: Interval, token: crate::kernel_glue::block::PeerToken) {
        let (sector, size) = (token.sector(), token.size());
        let replica = self.replica().filter(|_| peer_has_disk(&self.peer()));
        let submitted = match self.gate.enter() {
            // No activity-log reference: its bits stay set from its first
            // submission (no P_WRITE_ACK cleared them), and are on disk
            // either in the activity log's extents or in the bitmap
            // written when the extent left it.
            Some(lower) => lower.resubmit(&token, 0, interval, |local| self.peer_part(replica, local, interval)),
            None => Err(()),
        };
        match submitted {
            Ok(Some((replica, sent, ack))) => {
                if !replica.queue_write(self, sent, ack) {
                    self.set_out_of_sync(sector, size);
                }
            }
            Ok(None) => self.set_out_of_sync(sector, size),
            Err(()) => {
                // Not written again: the first write's data stays, the
                // peer's over part of it; out of sync until a resync.
                pr_warn!("drbd{}: cannot write the retried write at sector {} again\n", self.events.minor(), sector);
                self.set_out_of_sync(sector, size);
                self.conflicts.local_done(interval);
                self.conflicts.part_done(interval);
            }
        }
        drop(token);
    }

    /// The device's peer device while a connection is configured.
    pub(crate) fn peer_device(&self) -> Option<Arc<PeerDevice>> {
        self.peer_device.lock().clone()
    }

    /// Publishes (a connection starts) or withdraws (it is dropped) the
    /// device's peer device; the connection owns it.
    pub(crate) fn set_peer_device(&self, pd: Option<Arc<PeerDevice>>) {
        *self.peer_device.lock() = pd;
    }

    /// What online resize remembers.
    pub(crate) fn resize(&self) -> &ResizeShared {
        &self.resize
    }

    /// The `fencing` disk option.
    pub(crate) fn fencing(&self) -> crate::drbd_include::genl::Fencing {
        self.state.fencing()
    }

    /// Sets the `fencing` disk option (attach, disk-options).
    pub(crate) fn set_fencing(&self, policy: crate::drbd_include::genl::Fencing) {
        self.state.set_fencing(policy);
    }

    /// Sets the `read-balancing` disk option (attach, disk-options).
    pub(crate) fn set_read_balancing(&self, policy: ReadBalancing) {
        self.read_balancing.store(policy as u32, Ordering::Relaxed);
    }

    /// Sets the `discard-zeroes-if-aligned` disk option (attach,
    /// disk-options).
    pub(crate) fn set_discard_zeroes_if_aligned(&self, trusted: bool) {
        self.discard_zeroes_if_aligned.store(trusted, Ordering::Relaxed);
    }

    /// Discards (or zeroes, see `discard_zeroes_if_aligned`) a range of
    /// the backing disk, synchronously.
    fn discard_backing(&self, lower: &LowerRef<'_>, sector: u64, size: u32) -> Result {
        let trusted = self.discard_zeroes_if_aligned.load(Ordering::Relaxed);
        lower.bdev_ref().discard_or_zero_out(sector, u64::from(size) >> 9, trusted)
    }

    /// The `read-balancing` disk option.
    fn read_balancing(&self) -> ReadBalancing {
        ReadBalancing::from_raw(self.read_balancing.load(Ordering::Relaxed)).unwrap_or(ReadBalancing::PreferLocal)
    }

    /// Sets the write-ordering method and whether metadata writes flush
    /// (`md-flushes`), at attach and on `disk-options`; logged as 8.4's
    /// `drbd_bump_write_ordering` does (when it changes, or is flush).
    pub(crate) fn set_write_ordering(&self, method: WriteOrdering, md_flushes: bool) {
        let old = self.write_ordering.swap(method as u8, Ordering::Relaxed);
        if old != method as u8 || method == WriteOrdering::Flush {
            pr_info!("drbd{}: Method to ensure write ordering: {}\n", self.events.minor(), method.name());
        }
        self.with_md(|md, _| md.io.set_flushes(md_flushes));
    }

    /// The write-ordering method (`wo:` in /proc/drbd).
    pub(crate) fn write_ordering(&self) -> WriteOrdering {
        WriteOrdering::from_raw(self.write_ordering.load(Ordering::Relaxed)).unwrap_or(WriteOrdering::Flush)
    }

    /// Activity-log transactions written since attach (0 when diskless).
    pub(crate) fn al_transactions(&self) -> u64 {
        self.md.lock().as_ref().map_or(0, |md| md.al.transactions_written())
    }

    /// Out-of-sync 4 KiB blocks per the bitmap (0 when diskless).
    pub(crate) fn out_of_sync_bits(&self) -> u64 {
        self.md.lock().as_ref().map_or(0, |md| md.bitmap.count())
    }

    /// The peer has `size` bytes at `sector` (`drbd_set_in_sync`).
    pub(crate) fn set_in_sync(&self, sector: u64, size: u32) -> u64 {
        let capacity = self.capacity.load(Ordering::Relaxed);
        self.md.lock().as_ref().map_or(0, |md| md.bitmap.clear_sectors(sector, size, capacity))
    }

    /// A write about to be replicated: the blocks it covers completely are
    /// out of sync until the peer's ack clears them.
    fn mark_until_acked(&self, sector: u64, size: u32) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        if let Some(md) = self.md.lock().as_ref() {
            md.bitmap.set_covered_sectors(sector, size, capacity);
        }
    }

    /// The peer may not have `size` bytes at `sector` (`drbd_set_out_of_sync`).
    pub(crate) fn set_out_of_sync(&self, sector: u64, size: u32) {
        if let Some(md) = self.md.lock().as_ref() {
            md.bitmap.set_sectors(sector, size);
        }
    }

    /// The next resync request from bit `cursor` on: sector, bytes, and
    /// the bit after it; up to `max_bits` consecutive out-of-sync blocks
    /// within one `max_bits`-aligned span (`resync_request::request_end`),
    /// clipped to the device. `None` when no bit is set from `cursor` on.
    pub(crate) fn next_resync_request(&self, cursor: u64, max_bits: u64) -> Option<(u64, u32, u64)> {
        use crate::drbd_include::bitmap_rle::BitmapSource;
        let capacity = self.capacity.load(Ordering::Relaxed);
        let guard = self.md.lock();
        let bitmap = &guard.as_ref()?.bitmap;
        let first = bitmap.find_next(cursor, true);
        if first >= bitmap.bits() {
            return None;
        }
        let end = crate::drbd_include::resync_request::request_end(first, bitmap.bits(), max_bits, |bit| bitmap.test(bit));
        let sector = first.saturating_mul(8);
        let end_sector = end.saturating_mul(8).min(capacity);
        let size = u32::try_from(end_sector.checked_sub(sector)?.saturating_mul(512)).ok()?;
        (size > 0).then_some((sector, size, end))
    }

    /// Reads `out.len()` bytes at `sector` for a resyncing peer into `out`
    /// and calls `send` with them, as [`Self::read_for_peer`].
    pub(crate) fn read_for_resync(
        &self,
        pages: &mut BlockPages,
        sector: u64,
        out: &mut [u8],
        fault: Fault,
        send: impl FnOnce(&[u8]) -> Result,
    ) -> Result {
        let size = u32::try_from(out.len()).map_err(|_| EINVAL)?;
        self.read_for_peer(pages, sector, size, fault, |pages| {
            pages.copy_out(out)?;
            send(out)
        })
    }

    /// Reads `size` bytes at `sector` into `pages` for a resyncing peer,
    /// holding new application writes to the range off and waiting for
    /// those in flight, so the data is at least as new as any write
    /// replicated before (`drbd_rs_begin_io`). `send` runs with the range
    /// still held.
    pub(crate) fn read_for_peer(
        &self,
        pages: &mut BlockPages,
        sector: u64,
        size: u32,
        fault: Fault,
        send: impl FnOnce(&mut BlockPages) -> Result,
    ) -> Result {
        self.hold_and_read(0, pages, sector, size, fault)?;
        let result = send(pages);
        self.release_resync_slot(0);
        result
    }

    /// The read of [`Self::read_for_peer`] in resync-lock `slot`, which
    /// stays held when it succeeds, until [`Self::release_resync_slot`]
    /// (after the block is sent: a later write to it must not reach the
    /// peer before it).
    pub(crate) fn hold_and_read(&self, slot: usize, pages: &mut BlockPages, sector: u64, size: u32, fault: Fault) -> Result {
        let lower = self.gate.enter().ok_or(EIO)?;
        if self.inject_fault(fault) {
            return Err(EIO);
        }
        // The whole activity-log extents, not only the requested range:
        // the writes in flight in them must drain, and with only the range
        // locked new writes to the rest of a busy extent would keep it from
        // ever going idle (8.4's drbd_rs_begin_io blocks writes to the
        // resync extent before it waits).
        let (lock_start, lock_bytes) = crate::drbd_include::bitmap::al_extent_span(sector, size);
        let slots = {
            let guard = self.md.lock();
            self.resync_lock.hold(slot, lock_start, lock_bytes);
            guard.as_ref().map_or([None, None], |md| md.al.hot_slots(sector, size))
        };
        for al_slot in slots.into_iter().flatten() {
            self.al_idle.wait_until(|| self.al_refs.in_flight(al_slot) == 0);
        }
        // And the replicated writes admitted outside the log there.
        self.al_idle.wait_until(|| !self.al_refs.outside_in_flight(sector, size));
        let read = pages.read_in(lower.bdev_ref(), sector, size);
        match read {
            Ok(()) => _ = self.peer_read.fetch_add(u64::from(size), Ordering::Relaxed),
            Err(_) => self.release_resync_slot(slot),
        }
        read
    }

    /// Lets application writes through resync-lock `slot` again.
    pub(crate) fn release_resync_slot(&self, slot: usize) {
        self.resync_lock.release(slot);
        // Writes held off meanwhile wait in the submitter's queue, or in
        // the submitter itself (`begin_cold_write`).
        self.resync_unlocked.wake_all();
        self.cold_writes_added.notify_one();
    }

    /// Own disk state.
    pub(crate) fn disk_state(&self) -> DiskState {
        self.state.states().device.disk
    }

    /// Sets the own disk state (a hard change).
    pub(crate) fn set_disk_state(&self, disk: DiskState) -> Transition {
        self.set_state(|s| s.device.disk = disk)
    }

    /// Sends our state to the peer if connected (a change it must see).
    fn tell_peer(&self) {
        if let Some(replica) = self.replica() {
            if self.peer().conn >= ConnState::Connected {
                let _ = replica.send_state(self.state());
            }
        }
    }

    /// The current replica, if connected.
    pub(crate) fn replica(&self) -> Option<Arc<Replica>> {
        self.peer_device()?.replica()
    }

    /// Admits a replicated write of `size` bytes at `sector` that the
    /// receiver submits and does not wait for (`drbd_peer_writes.rs`):
    /// the backing disk held open for it and its activity-log reference
    /// (the tag [`Self::al_write_done`] ends at its completion).
    ///
    /// While the Primary has a disk the write bypasses our activity log
    /// (8.4's `receive_Data` calls `drbd_al_begin_io` only when
    /// `pdsk < D_INCONSISTENT`): if this node crashes with it in flight,
    /// the Primary still has it in its transfer log (no barrier ack yet),
    /// marks it out of sync when the connection goes and resyncs it, and
    /// its own activity log covers it if it crashes too. It is counted
    /// outside the log, so that a resync read of ours waits for it
    /// ([`Self::begin_unlogged_write`]). With a diskless Primary this node
    /// holds the only copy: the write passes the activity log, and a
    /// replay after a crash marks the extents it may have torn.
    /// An activity-log write error is handled here (metadata errors
    /// detach); every error means the write failed locally.
    pub(crate) fn start_replicated(&self, sector: u64, size: u32) -> Result<(LowerRef<'_>, u64)> {
        let lower = self.gate.enter().ok_or(EIO)?;
        if self.inject_fault(Fault::DataWrite) {
            return Err(EIO);
        }
        match self.begin_replicated_write(&lower, sector, size) {
            Ok(tag) => Ok((lower, tag)),
            Err(AlError::Io(e)) => {
                drop(lower);
                crate::drbd_io_error::local_io_failed(self, IoFailure::Meta, sector, size, e);
                Err(e)
            }
            Err(_) => Err(EIO),
        }
    }

    /// A write for the peer (replicated, or resync data) is on the backing
    /// disk: counted ("dw").
    pub(crate) fn written_for_peer(&self, bytes: u32, resync: bool) {
        self.bytes_written.fetch_add(u64::from(bytes), Ordering::Relaxed);
        if resync {
            self.resync_written.fetch_add(u64::from(bytes), Ordering::Relaxed);
        }
    }

    /// What `c-min-rate` looks at: the backing disk's I/O but the resync's
    /// (the SyncSource's resync reads are not counted as reads at all),
    /// and whether application writes wait for the activity log or a
    /// resync read.
    pub(crate) fn app_activity(&self) -> crate::drbd_include::resync_throttle::Activity {
        let io = self.bytes_read.load(Ordering::Relaxed).wrapping_add(self.bytes_written.load(Ordering::Relaxed));
        crate::drbd_include::resync_throttle::Activity {
            app_sectors: io.wrapping_sub(self.resync_written.load(Ordering::Relaxed)) >> 9,
            app_waiting: !self.cold_writes.lock().is_empty(),
        }
    }

    /// Discards `size` bytes at `sector` for the peer (a received P_TRIM),
    /// admitted as a replicated write; the range reads back zeroes.
    pub(crate) fn discard_replicated(&self, sector: u64, size: u32) -> Result {
        let lower = self.gate.enter().ok_or(EIO)?;
        let tag = match self.begin_replicated_write(&lower, sector, size) {
            Ok(tag) => tag,
            Err(AlError::Io(e)) => return Err(e),
            Err(_) => return Err(EIO),
        };
        let discarded = self.discard_backing(&lower, sector, size);
        self.al_write_done(tag);
        discarded
    }

    /// Puts every write done so far on the backing disk's stable storage
    /// (before a P_BARRIER_ACK: 8.4's flush write ordering).
    pub(crate) fn flush_backing(&self) -> Result {
        // Diskless: nothing was written (every write was nacked).
        let Some(lower) = self.gate.enter() else { return Ok(()) };
        lower.bdev_ref().flush()
    }

    /// Admits a resync write (P_RS_DATA_REPLY) that the receiver submits
    /// and does not wait for: the backing disk held open for it. Unlike
    /// replicated writes it does not pass the activity log (8.4's
    /// `recv_resync_read` submits without `drbd_al_begin_io`): the resync
    /// bitmap covers these blocks until they are written, and making every
    /// resynced extent hot would turn a crash of a SyncTarget into a full
    /// resync by AL replay.
    pub(crate) fn start_resync_write(&self) -> Result<LowerRef<'_>> {
        let lower = self.gate.enter().ok_or(EIO)?;
        if self.inject_fault(Fault::ResyncWrite) {
            return Err(EIO);
        }
        Ok(lower)
    }

    /// The 8.4 state word of this device and its peer device.
    pub(crate) fn state(&self) -> api::State {
        self.state.states().word()
    }

    /// Broadcasts the state if it changed. The word is read under the
    /// events' lock, so concurrent changes reach listeners in their order.
    fn state_changed(&self) {
        let counters = EventCounters {
            capacity: 0,
            read_sectors: self.read_sectors(),
            written_sectors: self.written_sectors(),
            size_sectors: self.capacity.load(Ordering::Relaxed),
            sent_sectors: self.net_sent.load(Ordering::Relaxed) >> 9,
            received_sectors: self.net_received.load(Ordering::Relaxed) >> 9,
        };
        self.events.publish(|| self.state().to_u32(), counters);
    }

    /// The state broadcasts of this device (`drbd_events.rs`).
    pub(crate) fn events(&self) -> &StateEvents {
        &self.events
    }

    /// Whether I/O is suspended by the user (`suspend-io`).
    pub(crate) fn is_suspended(&self) -> bool {
        self.states().device.susp_user
    }

    /// Whether I/O is frozen for fencing (`susp_fen`).
    pub(crate) fn is_frozen_for_fencing(&self) -> bool {
        self.states().device.susp_fen
    }

    /// Holds new bios while a diskless Primary attaches while connected
    /// (8.4's `drbd_adm_attach` suspends I/O and waits for the requests in
    /// flight): returns once every bio submitted before went its way, and
    /// `replica` has sent the writes they queued for it. So the peer has
    /// each of them, marked out of sync for us at its arrival (our disk
    /// Diskless), before our attach's packets, and its bitmap, which our
    /// resync asks for, holds them all; the writes after go to our disk
    /// too.
    pub(crate) fn hold_io_for_attach(&self, replica: &crate::drbd_sender::Replica) -> AttachHold<'_> {
        {
            let mut suspended = self.suspended.lock();
            suspended.attach_hold = true;
            suspended.frozen = true;
        }
        let hold = AttachHold(self);
        self.attach_waiting.store(true, Ordering::SeqCst);
        self.submissions_done.wait_until(|| self.submitting.load(Ordering::SeqCst) == 0);
        self.attach_waiting.store(false, Ordering::SeqCst);
        replica.wait_queue_sent();
        hold
    }

    /// Keeps writes that lost their peer from completing while frozen.
    pub(crate) fn hold_writes(&self, held: HeldWrites) {
        let mut suspended = self.suspended.lock();
        if self.is_frozen_for_fencing() {
            suspended.held = Some(held);
        }
    }

    /// Copies the engine's suspension to the bio path; when it ended, the
    /// waiting bios go on in their order, and writes held for fencing
    /// complete. Reads the engine under the bio path's lock, so of two
    /// racing changes the later one's result stays.
    fn sync_suspension(&self) {
        let mut waiting = BioFifo::new();
        let held = {
            let mut suspended = self.suspended.lock();
            let states = self.states();
            suspended.frozen = states.io_suspended() || suspended.attach_hold;
            if !suspended.frozen {
                while let Some(bio) = suspended.bios.pop() {
                    waiting.push(bio);
                }
            }
            if states.device.susp_fen { None } else { suspended.held.take() }
        };
        // Out of sync already; their upper bios may complete now.
        drop(held);
        while let Some(bio) = waiting.pop() {
            self.submit_bio(bio);
        }
    }

    /// Runs `f` on the metadata and the backing device (for metadata
    /// I/O); `None` when no disk is attached.
    pub(crate) fn with_md<R>(&self, f: impl FnOnce(&mut MetaData, crate::kernel_glue::block::BdevRef<'_>) -> R) -> Option<R> {
        let (result, md_failed) = {
            let lower = self.gate.enter()?;
            let mut guard = self.md.lock();
            let md = guard.as_mut()?;
            let result = f(md, lower.bdev_ref());
            (result, md.io.take_failed())
        };
        if md_failed {
            // Metadata I/O errors detach (`drbd_md_endio` → META_IO_ERROR).
            crate::drbd_io_error::local_io_failed(self, IoFailure::Meta, 0, 0, EIO);
        }
        Some(result)
    }

    /// A new `al-extents` (8.4's `drbd_adm_disk_opts`: I/O suspended until
    /// no extent is in use, then the log shrunk and resized): new writes
    /// wait for the metadata lock held here, the ones in flight finish (at
    /// most `timeout_ms`). Returns whether it was resized (`false`: still
    /// busy, or no disk).
    pub(crate) fn resize_activity_log(&self, extents: u32, timeout_ms: u32) -> Result<bool> {
        self.with_md(|md, dev| {
            if md.al_extents() == extents {
                return Ok(true);
            }
            if !self.al_idle.wait_until_timeout(|| self.al_refs.busy() == 0, timeout_ms) {
                return Ok(false);
            }
            md.set_al_extents(dev, extents).map(|()| true)
        })
        .unwrap_or(Ok(false))
    }

    /// Out-of-sync KiB per the bitmap (0 when diskless).
    pub(crate) fn out_of_sync_kib(&self) -> u64 {
        self.md.lock().as_ref().map_or(0, |md| md.bitmap.count() * 4)
    }

    /// Sectors read from the backing disk ("dr" in /proc/drbd, in KiB),
    /// for us and for the peer.
    pub(crate) fn read_sectors(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed).wrapping_add(self.peer_read.load(Ordering::Relaxed)) >> 9
    }

    /// KiB of data sent to the peer ("ns" in /proc/drbd).
    pub(crate) fn net_sent_kib(&self) -> u64 {
        self.net_sent.load(Ordering::Relaxed) >> 10
    }

    /// KiB of data received from the peer ("nr" in /proc/drbd).
    pub(crate) fn net_received_kib(&self) -> u64 {
        self.net_received.load(Ordering::Relaxed) >> 10
    }

    /// Counts data sent to (`sent`) or received from the peer.
    pub(crate) fn count_net(&self, bytes: u32, sent: bool) {
        let counter = if sent { &self.net_sent } else { &self.net_received };
        counter.fetch_add(u64::from(bytes), Ordering::Relaxed);
    }

    /// Sectors written to the backing disk ("dw" in /proc/drbd, in KiB).
    pub(crate) fn written_sectors(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed) >> 9
    }

    /// The submitter thread of a device: admits writes to cold extents
    /// through the activity log, up to [`COLD_BATCH`] queued ones at a
    /// time. Stops when its [`KThread`] is dropped.
    pub(crate) fn run_submitter(self: Arc<Self>) {
        loop {
            let mut batch: [Option<UpperBio>; COLD_BATCH] = [const { None }; COLD_BATCH];
            let mut taken = 0;
            {
                let mut queue = self.cold_writes.lock();
                loop {
                    for slot in batch.iter_mut().skip(taken) {
                        match queue.pop() {
                            Some(bio) => {
                                *slot = Some(bio);
                                taken += 1;
                            }
                            None => break,
                        }
                    }
                    if taken > 0 {
                        break;
                    }
                    if KThread::should_stop() {
                        return;
                    }
                    // kthread_stop shows up as a pending signal; the loop
                    // then sees should_stop.
                    let _stop_or_signal = self.cold_writes_added.wait_interruptible(&mut queue);
                }
            }
            self.submit_cold_writes(&mut batch);
        }
    }

    /// Admits the cold writes of `batch` that need not wait with one
    /// activity-log transaction for all their extents (8.4's `do_submit`
    /// prepares as many requests as one transaction takes), then submits
    /// them; a write that must wait (a write in flight overlaps it, a
    /// resync read holds its range, no idle AL slot, no room left in the
    /// transaction) and a discard go alone afterwards.
    fn submit_cold_writes(&self, batch: &mut [Option<UpperBio>; COLD_BATCH]) {
        let mut admitted: [Option<(Interval, u64)>; COLD_BATCH] = [None; COLD_BATCH];
        if batch.iter().flatten().count() > 1 {
            if let Some(lower) = self.gate.enter() {
                self.admit_cold_batch(&lower, batch, &mut admitted);
            }
        }
        // The admitted ones first: one that waits alone may wait for them.
        for (slot, admission) in batch.iter_mut().zip(admitted) {
            let Some((interval, tag)) = admission else { continue };
            let Some(bio) = slot.take() else { continue };
            match self.gate.enter() {
                Some(lower) => self.forward(lower, bio, tag, interval),
                None => {
                    self.al_write_done(tag);
                    self.conflicts.cancel(interval);
                    bio.fail();
                }
            }
        }
        for bio in batch.iter_mut().filter_map(Option::take) {
            self.submit_cold_write(bio);
        }
    }

    /// The batch part of [`Self::submit_cold_writes`]: admits what can be
    /// now, under one hold of the metadata lock, through the transaction's
    /// commit (so the bio path cannot find an extent hot before a
    /// transaction records it). `admitted` gets each write's interval and
    /// AL tag; on a failed transaction the writes fail here.
    fn admit_cold_batch(&self, lower: &LowerRef<'_>, batch: &mut [Option<UpperBio>; COLD_BATCH], admitted: &mut [Option<(Interval, u64)>; COLD_BATCH]) {
        for (bio, slot) in batch.iter().zip(admitted.iter_mut()) {
            if let Some(bio) = bio.as_ref().filter(|b| b.op() != BioOp::Discard) {
                *slot = self.conflicts.admit_now(bio.sector(), bio.size()).map(|interval| (interval, 0));
            }
        }
        let capacity = self.capacity.load(Ordering::Relaxed);
        let committed = {
            let mut guard = self.md.lock();
            match guard.as_mut() {
                // No metadata: nothing to track.
                None => Ok(()),
                Some(md) => {
                    let MetaData { al, bitmap, io, .. } = md;
                    let mut staged = StagedChanges::new();
                    for (bio, slot) in batch.iter().zip(admitted.iter_mut()) {
                        let (Some(bio), Some((interval, tag))) = (bio, slot.as_mut()) else { continue };
                        let (sector, size) = (bio.sector(), bio.size());
                        let staging = if self.resync_lock.overlaps(sector, size) {
                            Err(AlError::Busy)
                        } else {
                            al.stage_write(&self.al_refs, &mut staged, sector, size)
                        };
                        match staging {
                            Ok(t) => {
                                *tag = t;
                                // Out of sync until the peer has it (as
                                // `submit_cold_write` marks).
                                bitmap.set_covered_sectors(sector, size, capacity);
                            }
                            Err(_) => {
                                // Alone, after the batch.
                                self.conflicts.cancel(*interval);
                                *slot = None;
                            }
                        }
                    }
                    let committed = self.commit_staged(al, bitmap, io, lower, &mut staged);
                    // The caller reports an AL write error itself.
                    io.take_failed();
                    committed
                }
            }
        };
        let Err(e) = committed else { return };
        pr_err!("activity log write failed: error {}; failing the write\n", e.to_errno());
        let mut reported = false;
        for (bio, slot) in batch.iter_mut().zip(admitted.iter_mut()) {
            let Some((interval, tag)) = slot.take() else { continue };
            let Some(bio) = bio.take() else { continue };
            self.al_write_done(tag);
            self.conflicts.cancel(interval);
            if !reported {
                crate::drbd_io_error::local_io_failed(self, IoFailure::Meta, bio.sector(), bio.size(), e);
                reported = true;
            }
            bio.fail();
        }
    }

    fn submit_cold_write(&self, bio: UpperBio) {
        let (sector, size) = (bio.sector(), bio.size());
        // After every overlapping write in flight (8.4's
        // `complete_conflicting_writes`): the disk never has two.
        let interval = self.conflicts.admit_waiting(sector, size);
        let Some(lower) = self.gate.enter() else {
            self.conflicts.cancel(interval);
            return bio.fail();
        };
        match self.begin_cold_write(&lower, sector, size) {
            Ok(tag) => {
                // Out of sync until the peer has it (the hot path marks
                // before it finds an extent cold; a write held off by a
                // resync read and a discard come here unmarked).
                self.mark_until_acked(sector, size);
                if bio.op() == BioOp::Discard {
                    self.discard(lower, bio, tag, interval)
                } else {
                    self.forward(lower, bio, tag, interval)
                }
            }
            Err(AlError::Io(e)) => {
                pr_err!("activity log write failed: error {}; failing the write\n", e.to_errno());
                drop(lower);
                self.conflicts.cancel(interval);
                crate::drbd_io_error::local_io_failed(self, IoFailure::Meta, sector, size, e);
                bio.fail();
            }
            Err(_) => {
                self.conflicts.cancel(interval);
                bio.fail()
            }
        }
    }

    /// Writes the transaction of `staged`, if it holds a change, while the
    /// bio path queues its writes for the submitter's next batch rather
    /// than wait for the metadata lock the caller holds.
    fn commit_staged(&self, al: &mut ActivityLog, bitmap: &BitmapMem, io: &mut MetaIo, lower: &LowerRef<'_>, staged: &mut StagedChanges) -> Result {
        if staged.is_empty() {
            return Ok(());
        }
        self.al_committing.store(true, Ordering::Release);
        let committed = al.commit_staged(bitmap, io, lower.bdev_ref(), staged);
        self.al_committing.store(false, Ordering::Release);
        committed
    }

    /// Whether the peer has a disk (`pdsk` at least Inconsistent): its
    /// bitmap and activity log cover the writes it replicates to us.
    fn peer_has_disk(&self) -> bool {
        self.peer().pdsk >= DiskState::Inconsistent
    }

    /// Admits a write the peer replicates to us: outside the activity log
    /// while the peer has a disk, through it while we hold the only copy.
    fn begin_replicated_write(&self, lower: &LowerRef<'_>, sector: u64, size: u32) -> core::result::Result<u64, AlError> {
        if self.peer_has_disk() {
            Ok(self.begin_unlogged_write(sector, size))
        } else {
            self.begin_cold_write(lower, sector, size)
        }
    }

    /// Admits a replicated write outside the activity log (the Primary's
    /// covers it), once no resync read of ours holds its range; counted
    /// under the metadata lock, as a logged write is, so that a resync
    /// read either waits for it or holds it off. Returns its tag.
    fn begin_unlogged_write(&self, sector: u64, size: u32) -> u64 {
        loop {
            let guard = self.md.lock();
            if guard.is_none() {
                return 0;
            }
            if self.resync_lock.overlaps(sector, size) {
                drop(guard);
                self.resync_unlocked.wait_until(|| !self.resync_lock.overlaps(sector, size));
                continue;
            }
            return self.al_refs.begin_outside(sector, size);
        }
    }

    /// Admits a write through the activity log, committing a transaction
    /// if needed (sleeps: submitter thread only).
    fn begin_cold_write(&self, lower: &LowerRef<'_>, sector: u64, size: u32) -> core::result::Result<u64, AlError> {
        loop {
            let mut guard = self.md.lock();
            let Some(md) = guard.as_mut() else { return Ok(0) };
            if self.resync_lock.overlaps(sector, size) {
                drop(guard);
                self.resync_unlocked.wait_until(|| !self.resync_lock.overlaps(sector, size));
                continue;
            }
            // Read before the attempt: a slot going idle after it changes it.
            let idle_seen = self.al_refs.idle_events();
            let MetaData { al, bitmap, io, .. } = md;
            let mut staged = StagedChanges::new();
            let began = al.stage_write(&self.al_refs, &mut staged, sector, size).and_then(|tag| {
                self.commit_staged(al, bitmap, io, lower, &mut staged).map(|()| tag).map_err(|e| {
                    self.al_write_done(tag);
                    AlError::Io(e)
                })
            });
            match began {
                Err(AlError::Busy) => {
                    drop(guard);
                    self.al_idle.wait_until(|| self.al_refs.idle_events() != idle_seen);
                }
                other => {
                    // The caller reports an AL write error itself.
                    io.take_failed();
                    return other;
                }
            }
        }
    }

    /// Marks a write out of sync; admits it if its extents are hot.
    /// `Ok(None)`: no metadata (nothing to track).
    fn begin_hot_write(&self, sector: u64, size: u32) -> core::result::Result<Option<u64>, ()> {
        if self.al_committing.load(Ordering::Acquire) {
            // For the submitter's next batch (marked there).
            return Err(());
        }
        let mut guard = self.md.lock();
        let Some(md) = guard.as_mut() else { return Ok(None) };
        if self.resync_lock.overlaps(sector, size) {
            // A resync read holds this range: the submitter waits for it.
            return Err(());
        }
        // Out of sync until the peer has it (cleared on its ack); a write
        // that does not reach it marks all it touches (`forward`).
        md.bitmap.set_covered_sectors(sector, size, self.capacity.load(Ordering::Relaxed));
        md.al.begin_hot_write(&self.al_refs, sector, size).map(Some).ok_or(())
    }

    /// A discard, in the submitter thread (after the activity log), as
    /// 8.4's `drbd_process_discard_or_zeroes_req`: the range is discarded
    /// on the backing disk (`discard_backing`: zeroed where a discard
    /// would not read back zeroes) and sent to the peer as P_TRIM if it
    /// takes them, which does the same, so both disks read zeroes there
    /// afterwards. A peer without FF_TRIM does not get it: the range stays
    /// out of sync for a resync.
    fn discard(&self, lower: LowerRef<'_>, bio: UpperBio, tag: u64, interval: Interval) {
        let (sector, size) = (bio.sector(), bio.size());
        let replicate = match self.replica() {
            Some(r) if peer_has_disk(&self.peer()) && r.sends_trim() => {
                self.conflicts.add_part(interval);
                let sent = bio.peer_completion(interval);
                let ack = r.wants_ack().then(|| {
                    self.conflicts.add_part(interval);
                    bio.peer_completion(interval)
                });
                Some((r, sent, ack))
            }
            _ => {
                // Not replicated: every block it touches differs.
                self.set_out_of_sync(sector, size);
                None
            }
        };
        let zeroed = self.discard_backing(&lower, sector, size);
        self.al_write_done(tag);
        drop(lower);
        // The local part is done.
        self.conflicts.local_done(interval);
        self.conflicts.part_done(interval);
        if let Err(e) = zeroed {
            // A failed write: `on-io-error` decides on the disk.
            crate::drbd_io_error::local_io_failed(self, IoFailure::Write, sector, size, e);
        }
        // Its status is set before the peer can ack it: an ack finds a
        // failed local part and leaves the range out of sync (the bio
        // still succeeds if the peer has it, as a write).
        bio.end(zeroed);
        if let Some((replica, sent, ack)) = replicate {
            self.maybe_pull_ahead(&replica);
            if !replica.queue_write(self, sent, ack) {
                self.set_out_of_sync(sector, size);
            }
        }
    }

    /// Sends `bio` to the backing disk, and a write to the peer too;
    /// `interval`: the tracked write it is (0 for reads and flushes).
    fn forward(&self, lower: LowerRef<'_>, bio: UpperBio, tag: u64, interval: Interval) {
        let (op, size) = (bio.op(), u64::from(bio.size()));
        // A write goes to the peer too; its bio completes when both are done.
        let replica = match (op, size) {
            (BioOp::Write, 1..) if peer_has_disk(&self.peer()) => self.replica(),
            _ => None,
        };
        let sector = bio.sector();
        if op == BioOp::Write && replica.is_none() {
            // Not replicated: every block it touches differs (submission
            // marked only those it covers).
            self.set_out_of_sync(sector, bio.size());
        }
        let fault = match op {
            BioOp::Write => Some(Fault::DataWrite),
            BioOp::Read if bio.is_readahead() => Some(Fault::DataReadAhead),
            BioOp::Read => Some(Fault::DataRead),
            BioOp::Discard | BioOp::Other => None,
        };
        let simulate = fault.is_some_and(|f| self.inject_fault(f));
        // The peer's completions are tied to the local part: the bio
        // succeeds if either part does.
        let submitted = lower.submit_with(bio, tag, interval, simulate, |local| self.peer_part(replica, local, interval));
        let replicate = match submitted {
            Ok(replicate) => replicate,
            Err(bio) => {
                self.al_write_done(tag);
                self.conflicts.cancel(interval);
                return bio.fail();
            }
        };
        if let Some((replica, sent, ack)) = replicate {
            let size = sent.size();
            self.maybe_pull_ahead(&replica);
            // The sender thread sends it (`drbd_sender.rs`): this bio's
            // local write is under way before its P_DATA is.
            if !replica.queue_write(self, sent, ack) {
                // Not sent: out of sync, even if an earlier overlapping
                // write's ack cleared the bits meanwhile.
                self.set_out_of_sync(sector, size);
            }
        }
        match op {
            BioOp::Read => self.bytes_read.fetch_add(size, Ordering::Relaxed),
            BioOp::Write => self.bytes_written.fetch_add(size, Ordering::Relaxed),
            BioOp::Discard | BioOp::Other => 0,
        };
    }
}

impl DeviceIo {
    /// The peer's part of a write going to `replica` (if any): its send
    /// completion and, unless protocol A, its ack completion, taken from
    /// the `local` part and counted as parts of tracked write `interval`
    /// before they exist (it stays tracked until each is given).
    fn peer_part(
        &self,
        replica: Option<Arc<Replica>>,
        local: &crate::kernel_glue::block::LocalPart,
        interval: Interval,
    ) -> Option<(Arc<Replica>, crate::kernel_glue::block::PeerToken, Option<crate::kernel_glue::block::PeerToken>)> {
        replica.map(|r| {
            self.conflicts.add_part(interval);
            let sent = local.peer_completion();
            let ack = r.wants_ack().then(|| {
                self.conflicts.add_part(interval);
                local.peer_completion()
            });
            (r, sent, ack)
        })
    }
}

impl DeviceIo {
    /// `maybe_pull_ahead`, before a write is handed to `replica`: with
    /// `on-congestion` other than block, too much in flight (`cong-fill`)
    /// or too many busy activity-log extents (`cong-extents`) makes us go
    /// Ahead (this write and those after it only mark their blocks out of
    /// sync at the peer, `drbd_congestion.rs` brings us back) or drop the
    /// connection.
    fn maybe_pull_ahead(&self, replica: &Replica) {
        use crate::drbd_include::congestion::{judge, Load, OnCongestion, Reached, Verdict};
        let policy = replica.congestion();
        if policy.on_congestion == OnCongestion::Block {
            return;
        }
        let states = self.state.states();
        let load = Load { in_flight_sectors: replica.sectors_in_flight(), al_busy: self.al_refs.busy() };
        let log = |r: Reached| {
            if r.fill {
                pr_info!("drbd{}: Congestion-fill threshold reached\n", self.events.minor());
            }
            if r.extents {
                pr_info!("drbd{}: Congestion-extents threshold reached\n", self.events.minor());
            }
        };
        match judge(&policy, replica.link_version(), states.peer.conn, states.device.disk, load) {
            Verdict::Replicate => {}
            Verdict::PullAhead(reached) => {
                let t = self.set_state(|s| {
                    if s.peer.conn == ConnState::Connected {
                        s.peer.conn = ConnState::Ahead;
                    }
                });
                // One submitter makes the change; the replica tells the
                // peer once the state says Ahead.
                if t.old.peer.conn == ConnState::Connected && t.new.peer.conn == ConnState::Ahead {
                    log(reached);
                    replica.pull_ahead();
                }
            }
            Verdict::Disconnect(reached) => {
                log(reached);
                replica.disconnect_congested();
            }
        }
    }

    /// A read: from the backing disk if it has the blocks in sync, else
    /// from an UpToDate peer (`drbd_may_do_local_read`, then the remote
    /// read of `drbd_send_dblock`'s sibling P_DATA_REQUEST); with a
    /// `read-balancing` other than prefer-local, the peer may get it even
    /// though our disk could serve it (8.4's `do_remote_read`).
    fn submit_read(&self, bio: UpperBio) {
        let lower = self.gate.enter();
        let disk = if lower.is_some() { self.disk_state() } else { DiskState::Diskless };
        let policy = self.read_balancing();
        let lower = match (disk, lower) {
            // The common case: no bitmap or peer to look at.
            (DiskState::UpToDate, Some(lower)) if policy == ReadBalancing::PreferLocal => {
                return self.forward(lower, bio, 0, 0)
            }
            (_, lower) => lower,
        };
        let in_sync = lower.is_some() && (disk == DiskState::UpToDate || self.range_in_sync(bio.sector(), bio.size()));
        let peer = self.peer();
        let in_flight = || InFlight {
            local: self.gate.in_flight(),
            peer: self.replica().map_or(0, |r| r.in_flight()),
        };
        let to_peer = || policy.to_peer(bio.sector(), in_flight, || self.read_turn.fetch_xor(true, Ordering::Relaxed));
        match (read_source(disk, in_sync, peer.conn, peer.pdsk, to_peer), lower) {
            (ReadSource::Local, Some(lower)) => self.forward(lower, bio, 0, 0),
            (ReadSource::Peer, lower) => {
                drop(lower);
                let Some(replica) = self.replica() else { return bio.fail() };
                if let Err(bio) = replica.send_read(bio) {
                    bio.fail();
                }
            }
            _ => bio.fail(),
        }
    }

    /// Whether no block of the range is marked out of sync.
    fn range_in_sync(&self, sector: u64, size: u32) -> bool {
        use crate::drbd_include::bitmap_rle::BitmapSource;
        let guard = self.md.lock();
        let Some(md) = guard.as_ref() else { return false };
        let first = sector >> 3;
        let last = sector.saturating_add(u64::from(size >> 9)).saturating_sub(1) >> 3;
        md.bitmap.find_next(first, true) > last
    }

    /// A write, discard or flush without a backing disk: it goes to a peer
    /// with a disk, or fails as in DRBD (no data reachable). The bio's own
    /// completion is given as failed: only the peer's success (its ack)
    /// makes it succeed.
    fn submit_diskless(&self, bio: UpperBio) {
        let op = bio.op();
        if bio.size() == 0 {
            // A flush: nothing of ours to flush; the peer flushes on the
            // barriers its epochs end with.
            return bio.end(Ok(()));
        }
        let Some(replica) = self.replica().filter(|r| peer_has_disk(&self.peer()) && (op != BioOp::Discard || r.sends_trim())) else {
            return bio.fail();
        };
        let sent = bio.peer_completion(0);
        let ack = replica.wants_ack().then(|| bio.peer_completion(0));
        bio.end(Err(EIO));
        // Not queued: the connection is gone, and the write fails.
        let _queued = replica.queue_write(self, sent, ack);
    }
}

/// Whether writes go to the peer (`drbd_should_do_remote`): connected,
/// and the peer has a disk (being resynced or not).
fn peer_has_disk(view: &PeerDeviceStates) -> bool {
    view.conn >= ConnState::Connected
        && crate::drbd_include::io_error::has_data(view.pdsk)
}

/// What of a device's states the resync-after order looks at: whether it
/// resyncs (or verifies), is Diskless, is paused otherwise, is StandAlone.
/// Its own `aftr_isp` is not: the order sets that.
fn resync_order_input(s: &States) -> (bool, bool, bool, bool) {
    let syncing = crate::drbd_include::resync_after::resyncing(s.peer.conn);
    (syncing, s.device.disk == DiskState::Diskless, s.device.user_isp || s.peer.peer_isp, s.peer.conn == ConnState::StandAlone)
}

impl OrderMember for DeviceIo {
    fn order_view(&self) -> Member {
        let s = self.state.states();
        Member {
            minor: self.events.minor(),
            attached: s.device.disk != DiskState::Diskless,
            idle: s.peer.conn == ConnState::StandAlone && s.device.disk == DiskState::Diskless,
            resync_after: u32::try_from(self.resync_after.load(Ordering::Relaxed)).ok(),
            conn: s.peer.conn,
            paused_otherwise: s.device.user_isp || s.peer.peer_isp,
            aftr_isp: s.device.aftr_isp,
        }
    }

    fn set_aftr_isp(&self, on: bool) {
        if self.state.states().device.aftr_isp != on {
            self.set_state(|s| s.device.aftr_isp = on);
        }
    }
}

/// Whether the peer must hear of change `t` at once (8.4's
/// `after_state_ch` sends P_STATE for these): a pause of the resync by
/// the user, our disk failing or going (the peer marks what it writes from
/// then on, and moves its data on with a new current UUID), our UpToDate
/// disk turning Inconsistent without a resync (`on-io-error pass_on`).
/// Role changes and the ends of a resync send their state themselves.
fn tell_peer_of(t: &Transition) -> bool {
    let (old, new) = (&t.old, &t.new);
    let connected = old.peer.conn >= ConnState::Connected && new.peer.conn >= ConnState::Connected;
    let paused = old.device.user_isp != new.device.user_isp || old.device.aftr_isp != new.device.aftr_isp;
    let disk_gone = old.device.disk != new.device.disk && matches!(new.device.disk, DiskState::Failed | DiskState::Diskless);
    let inconsistent = old.device.disk == DiskState::UpToDate
        && new.device.disk == DiskState::Inconsistent
        && old.peer.conn == new.peer.conn;
    connected && (paused || disk_gone || inconsistent)
}

impl SentWrites for DeviceIo {
    fn data_sent(&self, bytes: u32) {
        self.count_net(bytes, true);
    }

    fn not_sent(&self, sector: u64, size: u32) {
        self.set_out_of_sync(sector, size);
    }

    fn state_word(&self) -> crate::drbd_include::genl::State {
        self.state()
    }
}

impl DiskOps for DeviceIo {
    fn submit_bio(&self, bio: UpperBio) {
        // suspend-io holds every bio, reads too, as DRBD's frozen I/O does.
        let bio = {
            let mut suspended = self.suspended.lock();
            if suspended.frozen {
                return suspended.bios.push(bio);
            }
            self.submitting.fetch_add(1, Ordering::SeqCst);
            bio
        };
        let _submitting = Submitting(self);
        let (op, sector, size) = (bio.op(), bio.sector(), bio.size());
        if op == BioOp::Read && size > 0 {
            return self.submit_read(bio);
        }
        let Some(lower) = self.gate.enter() else {
            return self.submit_diskless(bio);
        };
        if size == 0 {
            return self.forward(lower, bio, 0, 0);
        }
        if op == BioOp::Discard {
            // Zeroing waits for its bios: not here, in the submitter.
            drop(lower);
            self.cold_writes.lock().push(bio);
            self.cold_writes_added.notify_one();
            return;
        }
        // Overlapping a write in flight: the submitter waits for it, as
        // this context may not (no slot free: we wait for one).
        let hot = self.conflicts.admit_or_defer(sector, size).map(|interval| match self.begin_hot_write(sector, size) {
            Ok(tag) => Ok((tag.unwrap_or(0), interval)),
            Err(()) => {
                self.conflicts.cancel(interval);
                Err(())
            }
        });
        match hot {
            Some(Ok((tag, interval))) => self.forward(lower, bio, tag, interval),
            _ => {
                drop(lower);
                self.cold_writes.lock().push(bio);
                self.cold_writes_added.notify_one();
            }
        }
    }

    fn lower_gate(&self) -> &LowerGate {
        &self.gate
    }

    fn lower_failed(&self, failed: FailedBio) {
        self.io_errors.queue(failed);
    }

    fn bio_done(&self, tag: u64, interval: u32) {
        self.al_write_done(tag);
        if interval != 0 {
            self.conflicts.local_done(interval);
            self.conflicts.part_done(interval);
        }
    }

    fn interval_part_done(&self, interval: u32) {
        self.conflicts.part_done(interval);
    }

    fn open(&self, write: bool) -> Result {
        self.state.open(write)
    }

    fn release(&self) {
        self.state.release()
    }
}
