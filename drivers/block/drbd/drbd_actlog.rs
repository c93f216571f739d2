//! The activity log in the write path: before a write reaches a 4 MiB
//! extent that is not hot, an AL transaction recording it is committed
//! (flush + FUA) to the on-disk ring, so that after a crash the extents
//! that may hold unreplicated or torn writes are known (`drbd_actlog.c`).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;

use crate::drbd_bitmap::BitmapMem;
use crate::drbd_include::al::{self, AlGeometry, TransactionHeader, AL_CONTEXT_PER_TRANSACTION};
use crate::drbd_include::al_set::{self, Activation, Slot, SlotUse};
use crate::drbd_include::bitmap as bm_layout;
use crate::kernel_glue::block::{BdevRef, MetaIo, MD_BLOCK_SIZE};

/// Writes in flight per AL slot. Completions drop them in interrupt
/// context, so they live outside the activity log's lock, sized for the
/// largest `al-extents`.
pub(crate) struct AlRefs {
    refs: KVVec<AtomicU32>,
    /// How many times a slot's count fell to zero: a waiter for any idle
    /// slot compares it with what it saw before it looked.
    idle_events: AtomicU64,
    /// Slots with writes in flight (8.4's `act_log->used`, which
    /// `cong-extents` is measured against).
    busy: AtomicU32,
    /// Replicated writes in flight admitted outside the log (the Primary
    /// has a disk, whose bitmap and activity log cover them: 8.4 logs a
    /// peer's write only while the Primary is diskless), counted by their
    /// AL extents hashed into buckets: a resync read waits for those of
    /// its extents as for their slots.
    outside: [AtomicU32; OUTSIDE_BUCKETS],
}

/// Buckets of [`AlRefs::outside`] (a power of two).
const OUTSIDE_BUCKETS: usize = 256;

/// Marks a tag of writes outside the log: its halves are buckets + 1.
const OUTSIDE_TAG: u64 = 1 << 63;

/// The outside-the-log buckets of a write's extents (the second `None`
/// if it has one extent, or both hash to the same bucket).
fn outside_buckets(sector: u64, size: u32) -> [Option<usize>; 2] {
    let Some((first, last)) = extent_range(sector, size) else { return [None, None] };
    let (a, b) = (outside_bucket(first), outside_bucket(last));
    [Some(a), (b != a).then_some(b)]
}

/// The outside-the-log bucket of AL extent `extent`.
fn outside_bucket(extent: u32) -> usize {
    usize::try_from(extent).map_or(0, |e| e % OUTSIDE_BUCKETS)
}

impl AlRefs {
    pub(crate) fn new() -> Result<Self> {
        let n = al::AL_EXTENTS_MAX as usize;
        let mut refs = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            refs.push(AtomicU32::new(0), GFP_KERNEL)?;
        }
        const NONE: AtomicU32 = AtomicU32::new(0);
        Ok(Self { refs, idle_events: AtomicU64::new(0), busy: AtomicU32::new(0), outside: [NONE; OUTSIDE_BUCKETS] })
    }

    /// Counts a replicated write admitted outside the log; its tag for
    /// [`Self::complete`]. The caller holds the metadata lock and saw no
    /// resync read holding the range (`DeviceIo::begin_unlogged_write`).
    pub(crate) fn begin_outside(&self, sector: u64, size: u32) -> u64 {
        let mut tag = OUTSIDE_TAG;
        for (i, bucket) in outside_buckets(sector, size).into_iter().enumerate() {
            let Some(b) = bucket else { continue };
            if let Some(count) = self.outside.get(b) {
                count.fetch_add(1, Ordering::Acquire);
                let half = u64::try_from(b).map_or(0, |b| b.saturating_add(1));
                tag |= if i == 0 { half } else { half << 32 };
            }
        }
        tag
    }

    /// Whether a write admitted outside the log may be in flight in the
    /// AL extents of `[sector, sector + size)`.
    pub(crate) fn outside_in_flight(&self, sector: u64, size: u32) -> bool {
        let Some((first, last)) = extent_range(sector, size) else { return false };
        (first..=last).any(|extent| self.outside.get(outside_bucket(extent)).is_some_and(|count| count.load(Ordering::Acquire) != 0))
    }

    fn get(&self, slot: usize) -> Option<&AtomicU32> {
        self.refs.get(slot)
    }

    /// Counts one more write in flight in `slot`.
    fn take(&self, slot: usize) {
        if let Some(r) = self.get(slot) {
            if r.fetch_add(1, Ordering::Acquire) == 0 {
                self.busy.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Slots with writes in flight.
    pub(crate) fn busy(&self) -> u32 {
        self.busy.load(Ordering::Relaxed)
    }

    /// Ends the writes `tag` (from [`ActivityLog::stage_write`]) stood for;
    /// true if a slot has no write in flight any more (waiters for an idle
    /// slot must be woken).
    pub(crate) fn complete(&self, tag: u64) -> bool {
        let mut idle = false;
        if tag & OUTSIDE_TAG != 0 {
            for bucket in tag_slots(tag & !OUTSIDE_TAG).into_iter().flatten() {
                if let Some(count) = self.outside.get(bucket) {
                    idle |= count.fetch_sub(1, Ordering::AcqRel) == 1;
                }
            }
            return idle;
        }
        for slot in tag_slots(tag).into_iter().flatten() {
            if let Some(r) = self.get(slot) {
                if r.fetch_sub(1, Ordering::AcqRel) == 1 {
                    idle = true;
                    self.busy.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        if idle {
            self.idle_events.fetch_add(1, Ordering::AcqRel);
        }
        idle
    }

    /// How many times a slot went idle so far (see [`Self::complete`]).
    pub(crate) fn idle_events(&self) -> u64 {
        self.idle_events.load(Ordering::Acquire)
    }
}

impl SlotUse for AlRefs {
    fn in_flight(&self, slot: usize) -> u32 {
        self.get(slot).map_or(u32::MAX, |r| r.load(Ordering::Acquire))
    }
}

/// A bio's slots packed into its clone tag: slot + 1 in each half, 0 none.
fn tag_of(first: usize, second: Option<usize>) -> u64 {
    let half = |s: usize| u64::try_from(s).map_or(0, |s| s.saturating_add(1) & 0xffff_ffff);
    half(first) | second.map_or(0, half) << 32
}

fn tag_slots(tag: u64) -> [Option<usize>; 2] {
    let slot = |half: u64| half.checked_sub(1).and_then(|s| usize::try_from(s).ok());
    [slot(tag & 0xffff_ffff), slot(tag >> 32)]
}

/// First and last AL extent of a write.
fn extent_range(sector: u64, size: u32) -> Option<(u32, u32)> {
    let last_sector = sector.saturating_add(u64::from(size).div_ceil(512)).saturating_sub(1);
    let first = u32::try_from(bm_layout::sector_to_al_extent(sector)).ok()?;
    let last = u32::try_from(bm_layout::sector_to_al_extent(last_sector)).ok()?;
    Some((first, last))
}

/// Why a write could not be admitted.
pub(crate) enum AlError {
    /// Every slot has writes in flight: retry shortly.
    Busy,
    /// The transaction or a bitmap block could not be written.
    Io(Error),
    /// A write spanning more than two extents (the queue limits prevent it).
    TooLarge,
}

/// Slot changes of a batch of admitted writes, not committed yet: the
/// (slot, extent) updates one transaction records and the extents they
/// push out.
pub(crate) struct StagedChanges {
    updates: [(u16, u32); al::AL_UPDATES_PER_TRANSACTION],
    evicted: [u32; al::AL_UPDATES_PER_TRANSACTION],
    len: usize,
}

impl StagedChanges {
    pub(crate) const fn new() -> Self {
        Self { updates: [(0, 0); al::AL_UPDATES_PER_TRANSACTION], evicted: [al::AL_FREE_EXTENT; al::AL_UPDATES_PER_TRANSACTION], len: 0 }
    }

    /// Nothing staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for another write's changes (at most two).
    fn has_room(&self) -> bool {
        self.len.saturating_add(2) <= al::AL_UPDATES_PER_TRANSACTION
    }

    fn add(&mut self, updates: &[(u16, u32)], evicted: &[u32]) {
        for (&u, &e) in updates.iter().zip(evicted) {
            if let (Some(us), Some(es)) = (self.updates.get_mut(self.len), self.evicted.get_mut(self.len)) {
                *us = u;
                *es = e;
                self.len = self.len.saturating_add(1);
            }
        }
    }
}

/// The active set and the ring position of one attached device.
pub(crate) struct ActivityLog {
    slots: KVVec<Slot>,
    geometry: AlGeometry,
    /// First sector of the ring on the meta device.
    ring_sector: u64,
    /// First sector of the bitmap on the meta device.
    bm_sector: u64,
    tr_number: u32,
    /// Transactions written since attach (/proc/drbd's `al:`, 8.4's
    /// `al_writ_cnt`).
    written: u64,
    context_start: usize,
    clock: u64,
    block: KBox<[u8; MD_BLOCK_SIZE]>,
    context: KVVec<u32>,
    /// `al-updates`: transactions are written (else only kept in memory).
    updates: bool,
}

impl ActivityLog {
    /// An empty active set of `extents` slots over a freshly initialized ring.
    pub(crate) fn new(extents: u32, geometry: AlGeometry, ring_sector: u64, bm_sector: u64) -> Result<Self> {
        let n = usize::try_from(extents.clamp(al::AL_EXTENTS_MIN, al::AL_EXTENTS_MAX)).map_err(|_| EINVAL)?;
        Ok(Self {
            slots: KVVec::from_elem(Slot::FREE, n, GFP_KERNEL)?,
            geometry,
            ring_sector,
            bm_sector,
            tr_number: 0,
            written: 0,
            context_start: 0,
            clock: 0,
            block: KBox::new([0u8; MD_BLOCK_SIZE], GFP_KERNEL)?,
            context: KVVec::from_elem(al::AL_FREE_EXTENT, AL_CONTEXT_PER_TRANSACTION, GFP_KERNEL)?,
            updates: true,
        })
    }

    /// `al-updates`: whether transactions are written.
    pub(crate) fn set_updates(&mut self, on: bool) {
        self.updates = on;
    }

    /// Transactions written since attach.
    pub(crate) fn transactions_written(&self) -> u64 {
        self.written
    }

    /// Number of slots (`al-extents`).
    pub(crate) fn extents(&self) -> usize {
        self.slots.len()
    }

    /// The slots of the hot extents `size` bytes at `sector` touch: the
    /// only ones writes to that range can be in flight in.
    pub(crate) fn hot_slots(&self, sector: u64, size: u32) -> [Option<usize>; 2] {
        let Some((first, last)) = extent_range(sector, size) else { return [None, None] };
        let second = if last != first { al_set::find(&self.slots, last) } else { None };
        [al_set::find(&self.slots, first), second]
    }

    /// Admits a write whose extents are all hot, without any I/O; `None`
    /// if one is cold (then [`Self::stage_write`] must run, off the
    /// submission path).
    pub(crate) fn begin_hot_write(&mut self, refs: &AlRefs, sector: u64, size: u32) -> Option<u64> {
        let (first, last) = extent_range(sector, size)?;
        let first_slot = al_set::find(&self.slots, first)?;
        let second_slot = if last != first { Some(al_set::find(&self.slots, last)?) } else { None };
        self.clock = self.clock.wrapping_add(1);
        for slot in [Some(first_slot), second_slot].into_iter().flatten() {
            if let Some(s) = self.slots.get_mut(slot) {
                s.last_used = self.clock;
            }
            refs.take(slot);
        }
        Some(tag_of(first_slot, second_slot))
    }

    /// Admits a write of `size` bytes at `sector`: makes its extents hot
    /// and counts it in flight; returns the tag to complete it with
    /// ([`AlRefs::complete`]). Its slot changes join `staged`, for one
    /// transaction (of a batch of writes, or its own)
    /// ([`Self::commit_staged`], which the caller runs before it drops the
    /// metadata lock and before any write of the batch is submitted: the
    /// hot path must not find an extent hot that no transaction records
    /// yet). `Busy` also when `staged` has no room for this write.
    pub(crate) fn stage_write(
        &mut self,
        refs: &AlRefs,
        staged: &mut StagedChanges,
        sector: u64,
        size: u32,
    ) -> core::result::Result<u64, AlError> {
        let (first, last) = extent_range(sector, size).ok_or(AlError::TooLarge)?;
        if !staged.has_room() {
            return Err(AlError::Busy);
        }
        self.clock = self.clock.wrapping_add(1);
        let mut updates = [(0u16, 0u32); 2];
        let mut evicted = [al::AL_FREE_EXTENT; 2];
        let (first_slot, second_slot) =
            match al_set::activate(&mut self.slots, refs, self.clock, first, last, &mut updates, &mut evicted) {
                Activation::Hot { first_slot, second_slot } => (first_slot, second_slot),
                Activation::Commit { first_slot, second_slot, updates: n } => {
                    staged.add(updates.get(..n).unwrap_or(&[]), evicted.get(..n).unwrap_or(&[]));
                    (first_slot, second_slot)
                }
                Activation::Busy => return Err(AlError::Busy),
                Activation::TooLarge => return Err(AlError::TooLarge),
            };
        // Counted in flight at once, so that the slots it needs cannot be
        // taken by another writer (of the batch too) meanwhile.
        for slot in [Some(first_slot), second_slot].into_iter().flatten() {
            refs.take(slot);
        }
        Ok(tag_of(first_slot, second_slot))
    }

    /// Commits the changes `staged` holds in one transaction, after the
    /// bitmap blocks of the extents they push out; `staged` is empty
    /// afterwards. On failure the caller completes the batch's tags.
    pub(crate) fn commit_staged(&mut self, bitmap: &BitmapMem, io: &mut MetaIo, dev: BdevRef<'_>, staged: &mut StagedChanges) -> Result {
        if staged.len == 0 {
            return Ok(());
        }
        let n = staged.len;
        staged.len = 0;
        let evicted = staged.evicted;
        self.write_evicted_bitmap(bitmap, io, dev, evicted.get(..n).unwrap_or(&[]))?;
        let updates = staged.updates;
        self.commit(io, dev, updates.get(..n).unwrap_or(&[]))
    }

    /// Moves the ring and the bitmap this writes to, in the ring's new
    /// shape (an online resize moved the metadata or changed the activity
    /// log layout, `drbd_al_initialize`): the new ring is filled
    /// with "initialized" blocks, then the whole active set is committed
    /// there in as many transactions as its context needs, so a crash
    /// afterwards replays the extents hot now. The caller holds the
    /// metadata lock, so no write is admitted meanwhile.
    pub(crate) fn relocate(&mut self, io: &mut MetaIo, dev: BdevRef<'_>, geometry: AlGeometry, ring_sector: u64, bm_sector: u64) -> Result {
        self.geometry = geometry;
        self.ring_sector = ring_sector;
        self.bm_sector = bm_sector;
        al::encode_initialized(&mut self.block);
        for i in 0..u64::from(self.geometry.size_4k()) {
            io.write(dev, self.ring_sector.saturating_add(i * 8), &self.block, false)?;
        }
        self.context_start = 0;
        for _ in 0..self.slots.len().div_ceil(AL_CONTEXT_PER_TRANSACTION) {
            self.commit(io, dev, &[])?;
        }
        Ok(())
    }

    /// A new `al-extents` (disk-options, 8.4's `drbd_al_shrink` and
    /// `drbd_check_al_size`): every extent leaves the active set (their
    /// bitmap blocks written first), the slots are made anew, and the
    /// ring gets transactions of the new, empty set. The caller holds the
    /// metadata lock and saw no write in flight.
    pub(crate) fn resize(&mut self, bitmap: &BitmapMem, io: &mut MetaIo, dev: BdevRef<'_>, extents: u32) -> Result {
        let n = usize::try_from(extents.clamp(al::AL_EXTENTS_MIN, al::AL_EXTENTS_MAX)).map_err(|_| EINVAL)?;
        let mut active = KVVec::with_capacity(self.slots.len(), GFP_KERNEL)?;
        for slot in self.slots.iter().filter(|s| s.extent != al::AL_FREE_EXTENT) {
            active.push(slot.extent, GFP_KERNEL)?;
        }
        let slots = KVVec::from_elem(Slot::FREE, n, GFP_KERNEL)?;
        self.write_evicted_bitmap(bitmap, io, dev, &active)?;
        self.slots = slots;
        self.context_start = 0;
        for _ in 0..self.slots.len().div_ceil(AL_CONTEXT_PER_TRANSACTION) {
            self.commit(io, dev, &[])?;
        }
        Ok(())
    }

    /// Writes the bitmap blocks of extents leaving the active set: their
    /// out-of-sync bits must be on disk before the AL forgets them. An
    /// extent with no bit set, in memory and in its block as last written,
    /// has nothing to write (8.4's blocks stay clean there; rdrbd's are
    /// dirty from the bits its writes set until their acks).
    fn write_evicted_bitmap(&mut self, bitmap: &BitmapMem, io: &mut MetaIo, dev: BdevRef<'_>, evicted: &[u32]) -> Result {
        for &extent in evicted.iter().filter(|&&e| e != al::AL_FREE_EXTENT) {
            let block = BitmapMem::block_of_bit(bm_layout::al_extent_bits(extent).0);
            if block < bitmap.blocks() && !bitmap.extent_clear_on_disk(extent) && bitmap.store_block(block, &mut self.block) {
                let sector = self.bm_sector.saturating_add(block as u64 * 8);
                io.write(dev, sector, &self.block, false)?;
            }
        }
        Ok(())
    }

    /// Commits one transaction with `updates` and the next context window.
    fn commit(&mut self, io: &mut MetaIo, dev: BdevRef<'_>, updates: &[(u16, u32)]) -> Result {
        if !self.updates {
            // `al-updates no` (8.4's al_write_transaction skips the write).
            return Ok(());
        }
        let n = al_set::context_window(&self.slots, self.context_start, &mut self.context);
        let header = TransactionHeader {
            tr_number: self.tr_number,
            transaction_type: al::AL_TR_UPDATE,
            n_updates: 0,
            context_size: u16::try_from(self.slots.len()).unwrap_or(u16::MAX),
            context_start_slot_nr: u16::try_from(self.context_start).unwrap_or(0),
        };
        al::encode_transaction(&mut self.block, &header, updates, self.context.get(..n).unwrap_or(&[]))
            .map_err(|_| EINVAL)?;
        let block = u64::from(self.geometry.ring_block(self.tr_number));
        // Flush + FUA: the record, and everything before it (bitmap blocks,
        // earlier data), is stable before the data write it admits.
        io.write(dev, self.ring_sector.saturating_add(block * 8), &self.block, true)?;
        self.tr_number = self.tr_number.wrapping_add(1);
        self.written = self.written.wrapping_add(1);
        self.context_start = self.context_start.saturating_add(n);
        if self.context_start >= self.slots.len() {
            self.context_start = 0;
        }
        Ok(())
    }
}

/// The ranges resync reads for the peer hold application writes off
/// (8.4's resync extents in `drbd_rs_begin_io`): a device's, since they
/// guard the local disk the reads come from. Slot 0 is the receiver's own
/// synchronous reads; the others are the SyncSource's pipelined replies
/// (`drbd_resync_reply.rs`), each held from its read until it is sent.
pub(crate) struct ResyncLock {
    /// Sectors `[start, end)` by slot; end 0: none. Set under the
    /// metadata lock.
    ranges: [(AtomicU64, AtomicU64); RESYNC_LOCK_SLOTS],
}

/// Ranges a device's resync reads may hold at once.
pub(crate) const RESYNC_LOCK_SLOTS: usize = 3;

impl ResyncLock {
    pub(crate) const fn new() -> Self {
        const FREE: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));
        Self { ranges: [FREE; RESYNC_LOCK_SLOTS] }
    }

    /// Whether `[sector, sector + size)` overlaps a held range (checked
    /// under the metadata lock).
    pub(crate) fn overlaps(&self, sector: u64, size: u32) -> bool {
        let last = sector.saturating_add(u64::from(size).div_ceil(512));
        self.ranges.iter().any(|(start, end)| {
            let end = end.load(Ordering::Acquire);
            end != 0 && sector < end && last > start.load(Ordering::Acquire)
        })
    }

    /// Holds application writes off `[sector, sector + bytes / 512)` in
    /// `slot`: set under the metadata lock, so every write admitted before
    /// is counted in flight and every later one sees the lock.
    pub(crate) fn hold(&self, slot: usize, sector: u64, bytes: u64) {
        if let Some((start, end)) = self.ranges.get(slot) {
            start.store(sector, Ordering::Release);
            end.store(sector.saturating_add(bytes.div_ceil(512)).max(1), Ordering::Release);
        }
    }

    /// Lets application writes through `slot` again.
    pub(crate) fn release(&self, slot: usize) {
        if let Some((_, end)) = self.ranges.get(slot) {
            end.store(0, Ordering::Release);
        }
    }
}
