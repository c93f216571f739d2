//! Block layer: the major number, bio-based gendisks, backing devices and
//! the pass-through of upper bios to a backing device.
//!
//! Like C DRBD, rdrbd is bio-based: `submit_bio` receives every bio for
//! `/dev/drbdN`; a bio that goes to the backing disk travels as a clone
//! whose completion ends the upper bio.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::c_void;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

use super::shim;
use super::wait::{wait_var_until, wake_var};
use crate::drbd_include::discard::{self, DiscardLimits, Step};
use crate::drbd_include::disk_timeout::{slot_of, AGE_SLOTS};
use crate::drbd_include::faults::Fault;

/// A registered block major number (`register_blkdev`).
pub(crate) struct BlockMajor {
    major: u32,
    name: &'static CStr,
}

impl BlockMajor {
    /// Claims `major` under `name`, as shown in `/proc/devices`.
    pub(crate) fn register(major: u32, name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string that lives forever;
        // no probe callback is passed.
        let ret = unsafe { bindings::__register_blkdev(major, name.as_char_ptr(), None) };
        to_result(ret)?;
        Ok(Self { major, name })
    }
}

impl Drop for BlockMajor {
    fn drop(&mut self) {
        // SAFETY: the major was registered under this name by `register`.
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
    }
}

/// The bio_set that clones for backing devices are allocated from.
pub(crate) struct CloneBioSet(());

impl CloneBioSet {
    /// Sets up the (single, module-wide) clone bio_set.
    pub(crate) fn init() -> Result<Self> {
        // SAFETY: called once, from module init; undone in `drop`.
        to_result(unsafe { shim::rdrbd_clone_bioset_init() })?;
        Ok(Self(()))
    }
}

impl Drop for CloneBioSet {
    fn drop(&mut self) {
        // SAFETY: initialised by `init`; every disk (and so every clone) is
        // gone before the module drops this.
        unsafe { shim::rdrbd_clone_bioset_exit() };
    }
}

/// What a gendisk's owner does with the bios submitted to it.
pub(crate) trait DiskOps: Send + Sync {
    /// Handles one bio for the device. The bio must be completed exactly
    /// once, which [`UpperBio`]'s consuming methods guarantee. Runs in the
    /// submitter's context, where bios submitted to other devices are only
    /// queued until this returns: never wait for I/O here.
    fn submit_bio(&self, bio: UpperBio);
    /// The gate through which bios reach the backing device.
    fn lower_gate(&self) -> &LowerGate;
    /// A bio forwarded with [`LowerRef::submit_with`] completed (interrupt
    /// context: no sleeping); `tag` and `interval` are what it was
    /// submitted with.
    fn bio_done(&self, tag: u64, interval: u32);
    /// A [`PeerToken`] of tracked write `interval` (not 0) was given (any
    /// context, interrupt context included: no sleeping).
    fn interval_part_done(&self, interval: u32);
    /// The backing device failed a read or a write forwarded with
    /// [`LowerRef::submit_with`] (interrupt context: no sleeping). The upper bio
    /// is not completed and the gate's in-flight count stays raised until
    /// the owner ends `failed` (in process context, see [`FailedBio`]).
    fn lower_failed(&self, failed: FailedBio);
    /// Someone opens the device (process context); an error refuses the
    /// open. Every successful open is paired with one [`DiskOps::release`].
    fn open(&self, write: bool) -> Result;
    /// The last close of one successful open.
    fn release(&self);
}

/// A gendisk's private data: its owner, whatever its type. The shim's
/// callbacks are not generic; they reach the owner through this.
///
/// # Invariants
/// Allocated by [`GenDisk::new`] and freed by the disk's `free_disk`
/// callback ([`rdrbd_rs_free_disk`]), when the block layer drops its last
/// reference on the gendisk: after the last `release` and the last bio, so
/// every callback finds it (and so the owner) alive.
struct DiskPrivate {
    owner: Arc<dyn DiskOps>,
}

impl DiskPrivate {
    /// The private data of the gendisk `upper` was submitted to.
    ///
    /// # Safety
    /// `upper` is a bio of an rdrbd gendisk that has not completed (or whose
    /// clone still holds the gate's in-flight count), so the disk is alive.
    unsafe fn of_bio<'a>(upper: *mut bindings::bio) -> &'a DiskPrivate {
        // SAFETY: per the caller, the bio's disk is an rdrbd gendisk whose
        // private data is a live `DiskPrivate` (type invariant).
        unsafe { &*shim::rdrbd_bio_disk_private(upper).cast_const().cast::<DiskPrivate>() }
    }

    /// The private data a shim callback was given.
    ///
    /// # Safety
    /// `private` is the private data of a live rdrbd gendisk.
    unsafe fn from_private<'a>(private: *mut c_void) -> &'a DiskPrivate {
        // SAFETY: per the caller, a live `DiskPrivate` (type invariant).
        unsafe { &*private.cast_const().cast::<DiskPrivate>() }
    }
}

/// A bio-based `/dev/drbdN`, added to the system while this lives.
///
/// # Invariants
/// `disk` was allocated by `rdrbd_disk_alloc` and added; its private data
/// is a [`DiskPrivate`] holding another reference on `owner`.
pub(crate) struct GenDisk<T: DiskOps> {
    disk: NonNull<bindings::gendisk>,
    owner: Arc<T>,
}

// SAFETY: the gendisk pointer is only used through block-layer calls that are
// safe from any thread; `T` is `Send + Sync`.
unsafe impl<T: DiskOps> Send for GenDisk<T> {}
// SAFETY: as above; `&GenDisk` only allows thread-safe block-layer calls.
unsafe impl<T: DiskOps> Sync for GenDisk<T> {}

impl<T: DiskOps + 'static> GenDisk<T> {
    /// Allocates `/dev/drbd<minor>` with capacity 0 and adds it; its bios go
    /// to `owner`.
    pub(crate) fn new(major: u32, minor: u32, owner: Arc<T>) -> Result<Self> {
        let major = i32::try_from(major).map_err(|_| EINVAL)?;
        let minor = i32::try_from(minor).map_err(|_| EINVAL)?;
        let shared: Arc<dyn DiskOps> = owner.clone();
        let private = KBox::into_raw(KBox::new(DiskPrivate { owner: shared }, GFP_KERNEL)?).cast::<c_void>();
        let free_private = || {
            // SAFETY: `private` came from `KBox::into_raw` above and no disk
            // that could free it was added.
            drop(unsafe { KBox::from_raw(private.cast::<DiskPrivate>()) });
        };
        // SAFETY: `private` is a live `DiskPrivate`; once the disk is added,
        // its `free_disk` callback frees it.
        let disk = match from_err_ptr(unsafe { shim::rdrbd_disk_alloc(major, minor, private) }) {
            Ok(disk) => disk,
            Err(e) => {
                free_private();
                return Err(e);
            }
        };
        let Some(disk) = NonNull::new(disk) else {
            free_private();
            return Err(ENOMEM);
        };
        // SAFETY: `disk` was just allocated and not yet added.
        let ret = unsafe { shim::rdrbd_disk_add(disk.as_ptr()) };
        if ret != 0 {
            // SAFETY: add_disk failed, so the disk only needs put_disk, which
            // does not call `free_disk` for a disk never added.
            unsafe { bindings::put_disk(disk.as_ptr()) };
            free_private();
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: allocated, added, its private data holds `owner` too.
        Ok(Self { disk, owner })
    }
}

impl<T: DiskOps> GenDisk<T> {
    /// A handle that sets this disk's size, usable from threads that
    /// cannot reach the `GenDisk` (the receiver resizes on the peer's
    /// P_SIZES).
    pub(crate) fn capacity_handle(&self) -> DiskCapacity {
        // SAFETY: `self.disk` is a live gendisk; the reference taken here
        // is dropped by `DiskCapacity::drop`.
        unsafe { shim::rdrbd_disk_get(self.disk.as_ptr()) };
        DiskCapacity { disk: self.disk }
    }

    /// Takes over the queue limits (discard, sizes) of `lower`.
    pub(crate) fn stack_limits(&self, lower: &LowerDev) -> Result {
        // SAFETY: both the gendisk and the backing block device are live.
        to_result(unsafe { shim::rdrbd_disk_stack_limits(self.disk.as_ptr(), lower.bdev.as_ptr()) })
    }

    /// Marks the disk read-only (or writable) for openers.
    pub(crate) fn set_read_only(&self, read_only: bool) {
        // SAFETY: `self.disk` is a live gendisk.
        unsafe { shim::rdrbd_disk_set_ro(self.disk.as_ptr(), read_only) };
    }

    /// Drops limits inherited from a backing device that is gone.
    pub(crate) fn reset_limits(&self) -> Result {
        // SAFETY: `self.disk` is a live gendisk.
        to_result(unsafe { shim::rdrbd_disk_reset_limits(self.disk.as_ptr()) })
    }

    /// The identity a backing device is claimed with (exclusive open).
    pub(crate) fn holder(&self) -> Holder {
        Holder(core::ptr::from_ref::<T>(&self.owner).cast_mut().cast::<c_void>())
    }
}

impl<T: DiskOps> Drop for GenDisk<T> {
    fn drop(&mut self) {
        // No bio may still be on its way to a backing device once the owner
        // can go away: close the gate first (this waits for them).
        drop(self.owner.lower_gate().detach());
        // SAFETY: the disk was added in `new` and is removed exactly once.
        unsafe { shim::rdrbd_disk_remove(self.disk.as_ptr()) };
    }
}

/// Sets the size of a gendisk; holds a reference on it, so the gendisk
/// stays valid (if possibly removed already) while this lives.
///
/// # Invariants
/// `disk` is a gendisk on which this owns one device reference.
pub(crate) struct DiskCapacity {
    disk: NonNull<bindings::gendisk>,
}

// SAFETY: set_capacity_and_notify may be called from any thread in process
// context; the pointer stays valid for the lifetime of the reference held.
unsafe impl Send for DiskCapacity {}
// SAFETY: as above; `&DiskCapacity` only allows that call.
unsafe impl Sync for DiskCapacity {}

impl DiskCapacity {
    /// Sets the size in 512-byte sectors and tells userspace (uevent;
    /// the block layer logs "detected capacity change").
    pub(crate) fn set(&self, sectors: u64) {
        // SAFETY: we hold a reference on the gendisk (taken in
        // `GenDisk::capacity_handle`); after del_gendisk the call only
        // updates the size of a disk nobody can open any more.
        unsafe { bindings::set_capacity_and_notify(self.disk.as_ptr(), sectors) };
    }
}

impl Drop for DiskCapacity {
    fn drop(&mut self) {
        // SAFETY: drops the reference taken in `GenDisk::capacity_handle`.
        unsafe { bindings::put_disk(self.disk.as_ptr()) };
    }
}

/// The opaque identity with which a backing device is claimed exclusively.
#[derive(Clone, Copy)]
pub(crate) struct Holder(*mut c_void);

/// The claim every minor shares on a meta device that holds indexed
/// external metadata (`drbd_m_holder`): several minors may keep their
/// metadata in slots of one meta device, while nobody else may claim it.
/// Only its address matters; the text is what C DRBD uses.
static SHARED_META_DEVICE_HOLDER: [u8; 44] = *b"Hands off! this is DRBD's meta data device.\0";

impl Holder {
    /// The claim for a meta device with indexed external metadata, shared
    /// by all minors (see [`SHARED_META_DEVICE_HOLDER`]).
    pub(crate) fn shared_meta_device() -> Self {
        Holder(ptr::from_ref(&SHARED_META_DEVICE_HOLDER).cast_mut().cast::<c_void>())
    }
}

/// A block device that is open for at least lifetime `'a`.
///
/// # Invariants
/// `bdev` stays open (and so valid) for `'a`; `ages`, if set, is the
/// gate's counter of requests in flight to it.
#[derive(Clone, Copy)]
pub(crate) struct BdevRef<'a> {
    bdev: NonNull<bindings::block_device>,
    /// Where synchronous I/O through it is counted for `disk-timeout`
    /// (the backing device of an attached disk).
    ages: Option<&'a DiskAges>,
}

/// `GFP_NOIO` (a macro in C: `__GFP_RECLAIM`): may sleep, but reclaim
/// must not issue I/O, which could wait for this very device.
const GFP_NOIO: bindings::gfp_t =
    (1 << bindings::___GFP_DIRECT_RECLAIM_BIT) | (1 << bindings::___GFP_KSWAPD_RECLAIM_BIT);

impl BdevRef<'_> {
    /// The device's current size in sectors (it may have grown since it
    /// was opened: an online resize reads it again).
    pub(crate) fn nr_sectors(&self) -> u64 {
        // SAFETY: the device is open for `'a`.
        unsafe { shim::rdrbd_bdev_nr_sectors(self.bdev.as_ptr()) }
    }

    /// Flushes the device's volatile write cache (an empty PREFLUSH
    /// bio), synchronously: what was written before is on stable storage.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: the device is open for `'a`; the call waits for the flush.
        self.counted(|| to_result(unsafe { bindings::blkdev_issue_flush(self.bdev.as_ptr()) }))
    }

    /// Runs `io`, synchronous I/O on this device, counted in flight for
    /// `disk-timeout` while it waits.
    fn counted<R>(&self, io: impl FnOnce() -> R) -> R {
        let slot = self.ages.map(DiskAges::enter);
        let result = io();
        if let (Some(ages), Some(slot)) = (self.ages, slot) {
            ages.leave(slot);
        }
        result
    }

    /// What the device says of its discards.
    pub(crate) fn discard_limits(&self) -> DiscardLimits {
        let bdev = self.bdev.as_ptr();
        DiscardLimits {
            // SAFETY: the device is open for `'a`.
            max_sectors: unsafe { shim::rdrbd_bdev_max_discard_sectors(bdev) },
            // SAFETY: as above.
            granularity: unsafe { shim::rdrbd_bdev_discard_granularity(bdev) },
            // SAFETY: as above.
            alignment: unsafe { shim::rdrbd_bdev_discard_alignment(bdev) },
        }
    }

    /// Discards `sectors` sectors from `sector`, synchronously: the whole
    /// chunks of the device's discard granularity are discarded if
    /// `zeroes_if_aligned` (the device reads back zeroes there:
    /// `discard-zeroes-if-aligned`), the rest is zeroed (8.4's
    /// `drbd_issue_discard_or_zero_out`). Process context, as `zero_out`.
    pub(crate) fn discard_or_zero_out(&self, sector: u64, sectors: u64, zeroes_if_aligned: bool) -> Result {
        let mut result = Ok(());
        for step in discard::plan(sector, sectors, self.discard_limits(), zeroes_if_aligned) {
            let done = match step {
                Step::Zero { sector, sectors } => self.zero_out(sector, sectors),
                // SAFETY: the device is open for `'a`; the call waits for
                // its bios.
                Step::Discard { sector, sectors } => self.counted(|| to_result(unsafe {
                    bindings::blkdev_issue_discard(self.bdev.as_ptr(), sector, sectors, GFP_NOIO)
                })),
            };
            // Every step is tried: the first error is the answer.
            result = result.and(done);
        }
        result
    }

    /// Zeroes `sectors` sectors from `sector`, synchronously; the device
    /// may deallocate them (REQ_OP_WRITE_ZEROES with unmap) as long as
    /// they read back as zeroes. Process context, never from within
    /// `submit_bio` (the bios it waits for would only be queued).
    fn zero_out(&self, sector: u64, sectors: u64) -> Result {
        // SAFETY: the device is open for `'a`; the call waits for its bios.
        self.counted(|| to_result(unsafe {
            bindings::blkdev_issue_zeroout(self.bdev.as_ptr(), sector, sectors, GFP_NOIO, 0)
        }))
    }
}

/// An opened and exclusively claimed backing block device.
///
/// # Invariants
/// `file` is a block device file opened by `rdrbd_bdev_open`, released
/// only in `drop`; `bdev` is its block device.
pub(crate) struct LowerDev {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
}

// SAFETY: the file and block device are reference-counted kernel objects
// usable from any thread.
unsafe impl Send for LowerDev {}
// SAFETY: `&LowerDev` only reads the size, which is thread-safe.
unsafe impl Sync for LowerDev {}

impl LowerDev {
    /// Opens `path` read-write, claimed exclusively by `holder`.
    pub(crate) fn open(path: &CStr, holder: Holder) -> Result<Self> {
        // SAFETY: `path` is NUL-terminated; `holder` is only compared by the
        // block layer, never dereferenced.
        let file = from_err_ptr(unsafe { shim::rdrbd_bdev_open(path.as_char_ptr(), holder.0) })?;
        let file = NonNull::new(file).ok_or(ENODEV)?;
        // SAFETY: `file` is a block device file that was just opened.
        let bdev = unsafe { bindings::file_bdev(file.as_ptr()) };
        match NonNull::new(bdev) {
            Some(bdev) => Ok(Self { file, bdev }),
            None => {
                // SAFETY: opened above, released once.
                unsafe { bindings::bdev_fput(file.as_ptr()) };
                Err(ENODEV)
            }
        }
    }

    /// For metadata I/O while the device is open (not timed: before
    /// the attach and after the detach).
    pub(crate) fn bdev_ref(&self) -> BdevRef<'_> {
        BdevRef { bdev: self.bdev, ages: None }
    }

    /// Size of the backing device in 512-byte sectors.
    pub(crate) fn nr_sectors(&self) -> u64 {
        // SAFETY: the block device is open.
        unsafe { shim::rdrbd_bdev_nr_sectors(self.bdev.as_ptr()) }
    }

    /// Whether `other` is the same block device (opened by another path,
    /// or twice), as DRBD compares `backing_bdev` with `md_bdev`.
    pub(crate) fn is_same_device(&self, other: &LowerDev) -> bool {
        self.bdev == other.bdev
    }

    /// The device number (`dev_t`), to tell devices apart in messages and
    /// bookkeeping.
    pub(crate) fn device_number(&self) -> u32 {
        // SAFETY: the block device is open, so its `bd_dev` (set when it
        // was created, never changed) is readable.
        unsafe { (*self.bdev.as_ptr()).bd_dev }
    }
}

/// Size of one metadata I/O: a superblock, an AL transaction or a bitmap
/// block.
pub(crate) const MD_BLOCK_SIZE: usize = 4096;

/// Synchronous metadata I/O: a page allocated up front, so that the write
/// path never allocates for it, and the device the metadata lives on.
///
/// Every call names the backing device. Internal metadata is on it; with
/// external metadata (flexible or indexed) this owns the opened meta device
/// and every read and write goes there instead, so callers never pick the
/// device themselves. Writes are confined to the metadata area once it is
/// known ([`MetaIo::confine_writes`]): a wrong offset can never reach user
/// data.
pub(crate) struct MetaIo {
    page: kernel::page::Page,
    /// The external meta device; `None` for internal metadata.
    external: Option<LowerDev>,
    /// The sectors writes may touch: `[first, end)`; empty until confined.
    writable: (u64, u64),
    /// The minor, for fault injection.
    minor: u32,
    /// A read or write failed since [`MetaIo::take_failed`] last looked.
    failed: bool,
    /// Durable writes are flush + FUA (`md-flushes`; off: plain writes,
    /// for a meta device with a cache that survives power loss).
    flushes: bool,
}

impl MetaIo {
    /// Allocates the I/O page; `external` is the meta device of external
    /// metadata (released when this is dropped).
    pub(crate) fn new(external: Option<LowerDev>, minor: u32) -> Result<Self> {
        Ok(Self { page: kernel::page::Page::alloc_page(GFP_KERNEL)?, external, writable: (0, 0), minor, failed: false, flushes: true })
    }

    /// `md-flushes`: whether durable writes are flush + FUA.
    pub(crate) fn set_flushes(&mut self, flushes: bool) {
        self.flushes = flushes;
    }

    /// Whether a read or write failed since the last call (metadata I/O
    /// errors detach the disk).
    pub(crate) fn take_failed(&mut self) -> bool {
        core::mem::take(&mut self.failed)
    }

    fn failing(&mut self, result: Result) -> Result {
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Allows writes to the `sectors` sectors from `first` on (the metadata
    /// area of the layout), and nowhere else.
    pub(crate) fn confine_writes(&mut self, first: u64, sectors: u64) {
        self.writable = (first, first.saturating_add(sectors));
    }

    /// The current size of the external meta device, if there is one.
    pub(crate) fn external_sectors(&self) -> Option<u64> {
        self.external.as_ref().map(LowerDev::nr_sectors)
    }

    /// The device number of the external meta device, if there is one.
    pub(crate) fn external_device_number(&self) -> Option<u32> {
        self.external.as_ref().map(LowerDev::device_number)
    }

    /// The device metadata I/O goes to: the external meta device if there
    /// is one, else the backing device.
    fn target(&self, backing: BdevRef<'_>) -> NonNull<bindings::block_device> {
        self.external.as_ref().map_or(backing.bdev, |meta| meta.bdev)
    }

    /// Reads the 4 KiB block at `sector` of the metadata (on `backing` or
    /// the external meta device) into `out`.
    pub(crate) fn read(&mut self, backing: BdevRef<'_>, sector: u64, out: &mut [u8; MD_BLOCK_SIZE]) -> Result {
        let bdev = self.target(backing);
        if super::faults::insert(self.minor, Fault::MetaRead) {
            return self.failing(Err(EIO));
        }
        // SAFETY: the page is ours and exclusively borrowed; `bdev` is
        // `backing`, open for its lifetime, or our own open meta device.
        let read = backing.counted(|| to_result(unsafe {
            shim::rdrbd_md_io(bdev.as_ptr(), self.page.as_ptr(), sector, false, false)
        }));
        self.failing(read)?;
        // SAFETY: `out` is valid for MD_BLOCK_SIZE bytes, the page's size.
        unsafe { self.page.read_raw(out.as_mut_ptr(), 0, MD_BLOCK_SIZE) }
    }

    /// Writes `data` to the 4 KiB block at `sector` of the metadata (on
    /// `backing` or the external meta device); `durable` makes it a flush +
    /// FUA write unless `md-flushes` is off. A block outside the metadata
    /// area is refused (`EIO`).
    pub(crate) fn write(&mut self, backing: BdevRef<'_>, sector: u64, data: &[u8; MD_BLOCK_SIZE], durable: bool) -> Result {
        let (first, end) = self.writable;
        if sector < first || sector.saturating_add(MD_BLOCK_SIZE as u64 / 512) > end {
            pr_err!("refusing a meta data write at sector {} outside the meta data area [{}, {})\n", sector, first, end);
            return Err(EIO);
        }
        let bdev = self.target(backing);
        // SAFETY: `data` is valid for MD_BLOCK_SIZE bytes, the page's size.
        unsafe { self.page.write_raw(data.as_ptr(), 0, MD_BLOCK_SIZE) }?;
        if super::faults::insert(self.minor, Fault::MetaWrite) {
            return self.failing(Err(EIO));
        }
        // SAFETY: the page is ours and exclusively borrowed; `bdev` is
        // `backing`, open for its lifetime, or our own open meta device.
        let written = backing.counted(|| to_result(unsafe {
            shim::rdrbd_md_io(bdev.as_ptr(), self.page.as_ptr(), sector, true, durable && self.flushes)
        }));
        self.failing(written)
    }
}

// SAFETY: the page is only used through `&mut self`; the meta device is a
// `LowerDev`, which is `Send`.
unsafe impl Send for MetaIo {}

impl Drop for LowerDev {
    fn drop(&mut self) {
        // SAFETY: opened in `open`; releases the exclusive claim synchronously.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}

/// The path from a gendisk to its backing device.
///
/// The bio path must not take a sleeping lock, so the backing device is
/// published through an atomic pointer, and every bio in flight to it is
/// counted; closing the gate unpublishes it and waits for the count to drop
/// to zero before the backing device may be released.
#[pin_data]
pub(crate) struct LowerGate {
    #[pin]
    owner: Mutex<Option<LowerDev>>,
    published: AtomicPtr<bindings::block_device>,
    in_flight: AtomicU32,
    ages: DiskAges,
}

impl LowerGate {
    /// Requests in flight to the backing device (8.4's `local_cnt`).
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Requests in flight to the backing device counted by the generation
/// they were submitted in, for `disk-timeout` (the scheme and its bounds
/// are `drbd_include::disk_timeout`'s): one atomic add at submission and
/// one at completion, any context.
pub(crate) struct DiskAges {
    generation: AtomicU32,
    slots: [AtomicU32; AGE_SLOTS],
}

impl DiskAges {
    fn new() -> Self {
        Self { generation: AtomicU32::new(0), slots: [const { AtomicU32::new(0) }; AGE_SLOTS] }
    }

    /// Counts a request submitted now; `leave` takes the slot back.
    fn enter(&self) -> u32 {
        let slot = slot_of(self.generation.load(Ordering::Relaxed));
        if let Some(count) = self.slots.get(slot) {
            count.fetch_add(1, Ordering::SeqCst);
        }
        // `slot_of` is below AGE_SLOTS.
        slot as u32
    }

    /// The request counted in `slot` has finished.
    fn leave(&self, slot: u32) {
        if let Some(count) = self.slots.get(slot as usize) {
            count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Starts the next generation (one ticker only); returns how many
    /// requests were still counted in the slot it reuses, all submitted
    /// `AGE_SLOTS - 1` generations ago or earlier.
    pub(crate) fn next_generation(&self) -> u32 {
        let next = self.generation.load(Ordering::Relaxed).wrapping_add(1);
        // Read before switching: a request counted after the switch is new.
        let left = self.slots.get(slot_of(next)).map_or(0, |c| c.load(Ordering::SeqCst));
        self.generation.store(next, Ordering::Relaxed);
        left
    }
}

impl LowerGate {
    /// A closed gate.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            owner <- new_mutex!(None, "rdrbd::LowerGate::owner"),
            published: AtomicPtr::new(ptr::null_mut()),
            in_flight: AtomicU32::new(0),
            ages: DiskAges::new(),
        })
    }

    /// The ages of the requests in flight through this gate.
    pub(crate) fn ages(&self) -> &DiskAges {
        &self.ages
    }

    /// Opens the gate to `lower`; fails (handing it back) if already open.
    pub(crate) fn attach(&self, lower: LowerDev) -> core::result::Result<(), LowerDev> {
        let mut owner = self.owner.lock();
        if owner.is_some() {
            return Err(lower);
        }
        self.published.store(lower.bdev.as_ptr(), Ordering::SeqCst);
        *owner = Some(lower);
        Ok(())
    }

    /// Closes the gate, waits until no bio is in flight to the backing
    /// device, and hands it back (to be released by dropping it).
    pub(crate) fn detach(&self) -> Option<LowerDev> {
        self.detach_while(|| {}, || false)
    }

    /// [`Self::detach`], running `meanwhile` whenever `pending()` says it
    /// has work: the owner's worker finishes failed bios there, which hold
    /// the in-flight count until it does ([`DiskOps::lower_failed`]).
    /// `pending` is checked while queued to sleep: no sleeping locks.
    pub(crate) fn detach_while(&self, mut meanwhile: impl FnMut(), pending: impl Fn() -> bool) -> Option<LowerDev> {
        let mut owner = self.owner.lock();
        let lower = owner.take()?;
        self.published.store(ptr::null_mut(), Ordering::SeqCst);
        loop {
            meanwhile();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                break;
            }
            // Woken by the exit that drops the count to zero, and by a
            // failed bio being queued (`lower_endio`).
            wait_var_until(&self.in_flight, || self.in_flight.load(Ordering::SeqCst) == 0 || pending());
        }
        Some(lower)
    }

    /// Drops one in-flight count. The last one wakes a waiting detach by
    /// the counter's address only: once it is zero, the detach may have
    /// finished and the owner, with this gate, be gone.
    fn exit(&self) {
        let counter = ptr::from_ref(&self.in_flight);
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            wake_var(counter);
        }
    }

    /// Holds the gate open for one bio (or metadata I/O): `None` if no
    /// backing device is attached. Only the gendisk owner whose gate this
    /// is may submit through it, since completions find the gate through
    /// that owner.
    pub(crate) fn enter(&self) -> Option<LowerRef<'_>> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        match NonNull::new(self.published.load(Ordering::SeqCst)) {
            Some(bdev) => Some(LowerRef { gate: self, bdev }),
            None => {
                self.exit();
                None
            }
        }
    }
}

/// The backing device, held open (the gate's in-flight count raised) while
/// this lives.
pub(crate) struct LowerRef<'a> {
    gate: &'a LowerGate,
    bdev: NonNull<bindings::block_device>,
}

impl LowerRef<'_> {
    /// For metadata I/O on the backing device (timed for disk-timeout).
    pub(crate) fn bdev_ref(&self) -> BdevRef<'_> {
        BdevRef { bdev: self.bdev, ages: Some(&self.gate.ages) }
    }

    /// Sends `bio` to the backing device as a clone tagged with `tag` and
    /// `interval` (a tracked write's number, 0 for none; the peer tokens
    /// taken from it carry it too); the owner's [`DiskOps::bio_done`] gets
    /// both back on completion.
    /// `simulate_error` (fault injection): the clone fails at once, as if
    /// the backing device had failed it. Hands the bio back if no clone
    /// could be allocated. `before` runs once the clone exists and before
    /// it is submitted: the peer's completions taken there
    /// ([`LocalPart::peer_completion`]) share the local part's outcome, so
    /// the bio succeeds when either part did (8.4's "ok if either").
    pub(crate) fn submit_with<R>(
        self,
        bio: UpperBio,
        tag: u64,
        interval: u32,
        simulate_error: bool,
        before: impl FnOnce(&LocalPart) -> R,
    ) -> core::result::Result<R, UpperBio> {
        let upper = bio.into_raw();
        // SAFETY: `upper` is a live bio whose own completion we own: the
        // clone takes it over.
        match unsafe { self.submit_clone(upper, tag, interval, simulate_error, before) } {
            Ok(result) => Ok(result),
            // SAFETY: ownership of `upper` comes back to us (no clone).
            Err(()) => Err(unsafe { UpperBio::from_raw(upper) }),
        }
    }

    /// Writes the data of `token`'s bio to the backing device once more,
    /// as a new clone of it with `tag` and `interval` (a write the peer
    /// asked us to retry, 8.4's restarted request); `before` as in
    /// [`Self::submit_with`]. The clone holds a completion of its own on
    /// the bio. `Err` if no clone could be allocated.
    pub(crate) fn resubmit<R>(
        self,
        token: &PeerToken,
        tag: u64,
        interval: u32,
        before: impl FnOnce(&LocalPart) -> R,
    ) -> core::result::Result<R, ()> {
        let upper = token.as_ptr();
        // SAFETY: the token keeps the bio live (it cannot complete while the
        // token lives); the extra count is the new clone's completion.
        unsafe { shim::rdrbd_bio_inc_remaining(upper) };
        // SAFETY: `upper` is live and the completion just added is ours to
        // hand to the clone; its iterator was never advanced (bio-based:
        // only clones are).
        let submitted = unsafe { self.submit_clone(upper, tag, interval, false, before) };
        if submitted.is_err() {
            // SAFETY: no clone took the completion added above: give it.
            unsafe { bindings::bio_endio(upper) };
        }
        submitted
    }

    /// Clones `upper` to the backing device and submits the clone, which
    /// takes over one completion of `upper` and our in-flight count.
    ///
    /// # Safety
    /// `upper` is a live bio of an rdrbd gendisk and the caller owns one of
    /// its completions, handed to the clone on success (kept on `Err`).
    unsafe fn submit_clone<R>(
        self,
        upper: *mut bindings::bio,
        tag: u64,
        interval: u32,
        simulate_error: bool,
        before: impl FnOnce(&LocalPart) -> R,
    ) -> core::result::Result<R, ()> {
        // SAFETY: the backing device is open while this LowerRef raises the
        // in-flight count; `upper` is live (caller).
        let clone = unsafe { shim::rdrbd_bio_clone(upper, self.bdev.as_ptr()) };
        let (Some(upper_bio), Some(clone_bio)) = (NonNull::new(upper), NonNull::new(clone)) else {
            return Err(());
        };
        // The clone takes over our in-flight count; `lower_endio` drops it.
        let age_slot = self.gate.ages.enter();
        core::mem::forget(self);
        // SAFETY: `clone` is a fresh bio from our bio_set, not yet submitted.
        unsafe {
            *shim::rdrbd_clone_tag(clone) = tag;
            *shim::rdrbd_clone_age_slot(clone) = age_slot;
            *shim::rdrbd_clone_outcome(clone) = 0;
            *shim::rdrbd_clone_interval(clone) = interval;
            (*clone).bi_private = upper.cast::<c_void>();
            (*clone).bi_end_io = Some(lower_endio);
        }
        // INVARIANT: both are live and the upper bio cannot complete: the
        // clone's completion is still to come, it is not submitted yet.
        let part = LocalPart { upper: upper_bio, clone: clone_bio };
        let result = before(&part);
        // SAFETY: the clone is ours until submitted; submit takes it.
        unsafe {
            if simulate_error {
                (*clone).bi_status = bindings::errno_to_blk_status(-(bindings::EIO as i32));
                bindings::bio_endio(clone);
            } else {
                bindings::submit_bio_noacct(clone);
            }
        }
        Ok(result)
    }
}

/// The local part of an upper bio, between its clone's allocation and its
/// submission ([`LowerRef::submit_with`]).
///
/// # Invariants
/// `upper` and `clone` are live; `clone` is the upper bio's clone from our
/// bio_set, not yet submitted, so the upper bio cannot complete.
pub(crate) struct LocalPart {
    upper: NonNull<bindings::bio>,
    clone: NonNull<bindings::bio>,
}

/// Bits of a clone's `outcome` word (its front pad): the local write
/// failed; the peer's success was given.
const LOCAL_FAILED: u32 = 1;
const PEER_OK: u32 = 2;

/// The `outcome` word of a clone of ours.
///
/// # Safety
/// `clone` is a live clone from `LowerRef::submit_with` (or a reference to
/// it is held), so its front pad is valid and 4-byte aligned.
unsafe fn outcome<'a>(clone: NonNull<bindings::bio>) -> &'a AtomicU32 {
    // SAFETY: by the caller's guarantee the word is valid and aligned; it
    // is only accessed atomically after `submit_with` initialised it.
    unsafe { AtomicU32::from_ptr(shim::rdrbd_clone_outcome(clone.as_ptr())) }
}

impl LocalPart {
    /// [`UpperBio::peer_completion`], tied to this local part: the token
    /// keeps the clone (and its outcome word) alive, and its
    /// [`PeerToken::peer_succeeded`] makes the bio succeed even if the
    /// local part fails afterwards.
    pub(crate) fn peer_completion(&self) -> PeerToken {
        // SAFETY: both are live (invariant); the extra counts keep the upper
        // bio from completing and the clone from being freed until the
        // token's drop.
        let interval = unsafe {
            shim::rdrbd_bio_inc_remaining(self.upper.as_ptr());
            shim::rdrbd_bio_get(self.clone.as_ptr());
            *shim::rdrbd_clone_interval(self.clone.as_ptr())
        };
        PeerToken { bio: self.upper, clone: Some(self.clone), interval }
    }
}

impl Drop for LowerRef<'_> {
    fn drop(&mut self) {
        self.gate.exit();
    }
}

impl LowerRef<'_> {
    /// The backing device, for a bio of our own to it.
    pub(super) fn bdev_ptr(&self) -> *mut bindings::block_device {
        self.bdev.as_ptr()
    }

    /// Hands the in-flight count over to a request submitted now: the
    /// gate and the request's disk-timeout age slot, to be given back by
    /// [`request_done`] when it completes.
    pub(super) fn into_request(self) -> (*const LowerGate, u32) {
        let gate = ptr::from_ref(self.gate);
        let slot = self.gate.ages.enter();
        core::mem::forget(self);
        (gate, slot)
    }
}

/// A request that [`LowerRef::into_request`] counted has completed: its
/// age slot and in-flight count are given back; the latter as the very
/// last access to the gate (a waiting detach may then finish).
///
/// # Safety
/// `gate` and `slot` come from one `into_request`, and this is called once
/// for it.
pub(super) unsafe fn request_done(gate: *const LowerGate, slot: u32) {
    // SAFETY: the in-flight count the request holds keeps the gate alive.
    let gate = unsafe { &*gate };
    gate.ages.leave(slot);
    gate.exit();
}

/// Completion of a clone: ends the upper bio with the clone's status; a
/// failed read or write goes to the owner instead ([`DiskOps::lower_failed`]).
unsafe extern "C" fn lower_endio(clone: *mut bindings::bio) {
    // SAFETY: the block layer calls this once for a clone made in
    // `LowerRef::submit_with`, whose `bi_private` is the upper bio.
    unsafe {
        let upper = (*clone).bi_private.cast::<bindings::bio>();
        // The owner (and so the gate) outlives this because `in_flight`
        // is still raised.
        let owner = &DiskPrivate::of_bio(upper).owner;
        // The disk has answered (a failed request is not late).
        owner.lower_gate().ages.leave(*shim::rdrbd_clone_age_slot(clone));
        let op = shim::rdrbd_bio_op(upper);
        let moves_data = op == bindings::req_op_REQ_OP_READ || op == bindings::req_op_REQ_OP_WRITE;
        if (*clone).bi_status != bindings::BLK_STS_OK as bindings::blk_status_t && moves_data {
            // The upper bio shows the error at once, unless the peer's
            // success is in: the error is written first, then the outcome
            // word says so; a peer success before that word's update is
            // seen there and restores OK, one after it writes OK itself.
            core::ptr::write_volatile(&raw mut (*upper).bi_status, (*clone).bi_status);
            let seen = outcome(NonNull::new_unchecked(clone)).fetch_or(LOCAL_FAILED, Ordering::SeqCst);
            if seen & PEER_OK != 0 {
                core::ptr::write_volatile(&raw mut (*upper).bi_status, bindings::BLK_STS_OK as bindings::blk_status_t);
            }
            // A detach waiting for the count must run the owner's worker
            // on it (by address: once handed over, it may be finished).
            let counter = ptr::from_ref(&owner.lower_gate().in_flight);
            // INVARIANT: a failed clone of ours with the in-flight count
            // still raised, handed over once.
            owner.lower_failed(FailedBio(NonNull::new_unchecked(clone)));
            return wake_var(counter);
        }
        let tag = *shim::rdrbd_clone_tag(clone);
        let interval = *shim::rdrbd_clone_interval(clone);
        (*upper).bi_status = (*clone).bi_status;
        bindings::bio_put(clone);
        owner.bio_done(tag, interval);
        let gate = owner.lower_gate();
        bindings::bio_endio(upper);
        // Last access to the owner's memory: after this, detach may finish.
        gate.exit();
    }
}

/// A read or write the backing device failed: the clone, and through it
/// the upper bio, which is not completed yet.
///
/// # Invariants
/// The clone was made by [`LowerRef::submit_with`], has completed with an error,
/// and still holds its gate's in-flight count; its `bi_private` is the
/// upper bio, whose completion this owns.
pub(crate) struct FailedBio(NonNull<bindings::bio>);

// SAFETY: the clone and its upper bio may be finished from any thread.
unsafe impl Send for FailedBio {}

impl FailedBio {
    fn upper(&self) -> *mut bindings::bio {
        // SAFETY: by the type invariant the clone is live and `bi_private`
        // is its upper bio.
        unsafe { (*self.0.as_ptr()).bi_private.cast::<bindings::bio>() }
    }

    /// Whether the failed I/O was a write (else a read).
    pub(crate) fn is_write(&self) -> bool {
        // SAFETY: the upper bio is live until `into_upper` (invariant).
        unsafe { shim::rdrbd_bio_op(self.upper()) == bindings::req_op_REQ_OP_WRITE }
    }

    /// Whether it was a read-ahead (which may fail without consequence).
    pub(crate) fn is_readahead(&self) -> bool {
        // SAFETY: as above.
        unsafe { shim::rdrbd_bio_flags(self.upper()) & 8 != 0 }
    }

    /// First sector of the upper bio.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: as above; the upper bio's iterator was not advanced.
        unsafe { (*self.upper()).bi_iter.bi_sector }
    }

    /// Size of the upper bio in bytes.
    pub(crate) fn size(&self) -> u32 {
        // SAFETY: as above.
        unsafe { shim::rdrbd_bio_size(self.upper()) }
    }

    /// The tag the clone was submitted with.
    pub(crate) fn tag(&self) -> u64 {
        // SAFETY: the clone is live (invariant).
        unsafe { *shim::rdrbd_clone_tag(self.0.as_ptr()) }
    }

    /// The error the backing device returned, as an errno.
    pub(crate) fn error(&self) -> Error {
        // SAFETY: the clone is live (invariant).
        let errno = unsafe { bindings::blk_status_to_errno((*self.0.as_ptr()).bi_status) };
        // An unknown status is EIO (from_errno makes anything invalid EINVAL).
        if errno < 0 { Error::from_errno(errno) } else { EIO }
    }

    /// Frees the clone and drops its in-flight count (so a detach may
    /// proceed); the upper bio comes back, its own completion still to give.
    pub(crate) fn into_upper(self) -> UpperBio {
        let clone = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: by the invariant the clone is ours to put, the upper bio's
        // completion is ours, and the in-flight count is still raised, which
        // keeps the owner alive until the decrement, our last access.
        unsafe {
            let upper = (*clone).bi_private.cast::<bindings::bio>();
            let interval = *shim::rdrbd_clone_interval(clone);
            bindings::bio_put(clone);
            let owner = &DiskPrivate::of_bio(upper).owner;
            if interval != 0 {
                // The local part of a tracked write is over (failed); its
                // activity-log tag the caller ends itself.
                owner.bio_done(0, interval);
            }
            owner.lower_gate().exit();
            UpperBio::from_raw(upper)
        }
    }
}

impl Drop for FailedBio {
    fn drop(&mut self) {
        // Not handled: the upper bio fails.
        let clone = FailedBio(self.0);
        clone.into_upper().fail();
    }
}

/// Failed clones waiting for process context, queued from their completion.
///
/// # Invariants
/// `head` is an initialised `llist_head`; every node on it is the `failed`
/// node of a clone that a [`FailedBio`] owned.
pub(crate) struct FailedBios {
    head: kernel::types::Opaque<bindings::llist_head>,
}

// SAFETY: llist_add / llist_del_all are safe from any context, concurrently.
unsafe impl Send for FailedBios {}
// SAFETY: as above.
unsafe impl Sync for FailedBios {}

impl FailedBios {
    /// An empty list.
    pub(crate) fn new() -> Self {
        // INVARIANT: a zeroed llist_head is the empty list (LLIST_HEAD_INIT).
        Self { head: kernel::types::Opaque::new(bindings::llist_head { first: ptr::null_mut() }) }
    }

    /// Queues `failed` (any context).
    pub(crate) fn push(&self, failed: FailedBio) {
        let clone = failed.0.as_ptr();
        core::mem::forget(failed);
        // SAFETY: the head is initialised; the clone's node is unused (it is
        // queued once, when it failed), and the list now owns the clone.
        unsafe { shim::rdrbd_failed_push(self.head.get(), clone) };
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        // SAFETY: the head is initialised.
        unsafe { shim::rdrbd_llist_empty(self.head.get()) }
    }

    /// Takes every queued clone, in the order they failed.
    pub(crate) fn take_all(&self) -> FailedBatch {
        // INVARIANT: the detached chain is ours, each node a failed clone.
        // SAFETY: the head is initialised.
        FailedBatch { cursor: unsafe { shim::rdrbd_llist_take_all(self.head.get()) } }
    }
}

/// Failed clones taken off a [`FailedBios`]; those not taken fail on drop.
///
/// # Invariants
/// `cursor` starts a chain of failed clones' nodes that this batch owns.
pub(crate) struct FailedBatch {
    cursor: *mut bindings::llist_node,
}

impl Iterator for FailedBatch {
    type Item = FailedBio;

    fn next(&mut self) -> Option<FailedBio> {
        // SAFETY: `cursor` walks the chain this batch owns (invariant).
        let clone = unsafe { shim::rdrbd_failed_next(&mut self.cursor) };
        // INVARIANT: each clone of the chain is handed out once.
        NonNull::new(clone).map(FailedBio)
    }
}

impl Drop for FailedBatch {
    fn drop(&mut self) {
        for failed in self.by_ref() {
            drop(failed);
        }
    }
}

impl Drop for FailedBios {
    fn drop(&mut self) {
        // Whatever is left fails.
        drop(self.take_all());
    }
}

/// A bio submitted to `/dev/drbdN` that must be completed exactly once.
///
/// # Invariants
/// The bio is live and this owns its own completion (not the ones handed
/// to [`PeerToken`]s): it is given exactly once, by `end`, `end_as_set`,
/// `fail`, `drop`, or by whoever `into_raw` handed it to.
pub(crate) struct UpperBio(NonNull<bindings::bio>);

// SAFETY: a bio may be completed from any thread.
unsafe impl Send for UpperBio {}

/// The operations the driver distinguishes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BioOp {
    /// REQ_OP_READ.
    Read,
    /// REQ_OP_WRITE (maybe with PREFLUSH/FUA).
    Write,
    /// REQ_OP_FLUSH and anything else that moves no data.
    Other,
    /// REQ_OP_DISCARD.
    Discard,
}

impl UpperBio {
    /// # Safety
    /// `bio` must be a live bio whose completion the caller owns.
    unsafe fn from_raw(bio: *mut bindings::bio) -> Self {
        // SAFETY: the caller guarantees a non-null, live bio.
        Self(unsafe { NonNull::new_unchecked(bio) })
    }

    fn into_raw(self) -> *mut bindings::bio {
        let ptr = self.0.as_ptr();
        core::mem::forget(self);
        ptr
    }

    /// What the bio does.
    pub(crate) fn op(&self) -> BioOp {
        // SAFETY: the bio is live while we own it.
        match unsafe { shim::rdrbd_bio_op(self.0.as_ptr()) } {
            bindings::req_op_REQ_OP_READ => BioOp::Read,
            bindings::req_op_REQ_OP_WRITE => BioOp::Write,
            bindings::req_op_REQ_OP_DISCARD => BioOp::Discard,
            _ => BioOp::Other,
        }
    }

    /// First sector.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: the bio is live while we own it.
        unsafe { (*self.0.as_ptr()).bi_iter.bi_sector }
    }

    /// Payload size in bytes.
    pub(crate) fn size(&self) -> u32 {
        // SAFETY: the bio is live while we own it.
        unsafe { shim::rdrbd_bio_size(self.0.as_ptr()) }
    }

    /// Whether it is a read-ahead.
    pub(crate) fn is_readahead(&self) -> bool {
        // SAFETY: the bio is live while we own it.
        unsafe { shim::rdrbd_bio_flags(self.0.as_ptr()) & 8 != 0 }
    }

    /// Fills a read bio's pages with `data` (as many bytes as the bio reads).
    pub(crate) fn copy_in(&mut self, data: &[u8]) -> Result {
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        // SAFETY: the bio is live while we own it; `data` has `len` bytes.
        to_result(unsafe { shim::rdrbd_bio_copy_in(self.0.as_ptr(), data.as_ptr().cast::<c_void>(), len) })
    }

    /// Makes the bio wait for one more completion, represented by the
    /// returned token (dropping the token gives it): a replicated write
    /// completes when its local write and the peer's ack are both in.
    /// `interval`: the tracked write it belongs to (0: none), told when
    /// the token is given ([`DiskOps::interval_part_done`]).
    pub(crate) fn peer_completion(&self, interval: u32) -> PeerToken {
        // SAFETY: the bio is live while we own it; the extra count keeps it
        // from completing (and so alive) until the token's bio_endio.
        unsafe { shim::rdrbd_bio_inc_remaining(self.0.as_ptr()) };
        PeerToken { bio: self.0, clone: None, interval }
    }

    /// Completes the bio (its own completion; tokens taken with
    /// [`Self::peer_completion`] still hold it) with `result`'s status.
    pub(crate) fn end(self, result: Result) {
        let bio = self.into_raw();
        let errno = match result {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        // SAFETY: we owned the bio's completion (`into_raw` handed it to
        // us) and end it exactly once here.
        unsafe {
            (*bio).bi_status = bindings::errno_to_blk_status(errno);
            bindings::bio_endio(bio);
        }
    }

    /// Gives the bio's own completion with the status it has: a failed
    /// local write's error, unless the peer's success replaced it.
    pub(crate) fn end_as_set(self) {
        let bio = self.into_raw();
        // SAFETY: we owned the bio's completion and end it exactly once.
        unsafe { bindings::bio_endio(bio) };
    }

    /// Completes the bio with an I/O error.
    pub(crate) fn fail(self) {
        // Dropping an undecided bio fails it.
        drop(self);
    }
}

impl Drop for UpperBio {
    fn drop(&mut self) {
        // A bio dropped without a decision must still complete: fail it.
        let bio = self.0.as_ptr();
        // SAFETY: we own the bio's completion; `into_raw` forgets self, so
        // this runs only for bios not handed on, and ends each exactly once.
        unsafe {
            (*bio).bi_status = bindings::errno_to_blk_status(-(bindings::EIO as i32));
            bindings::bio_endio(bio);
        }
    }
}

/// Request flags of a bio that the peer must honour too.
#[derive(Clone, Copy)]
pub(crate) struct BioFlags {
    pub(crate) fua: bool,
    pub(crate) preflush: bool,
    pub(crate) sync: bool,
}

fn bio_flags(bio: NonNull<bindings::bio>) -> BioFlags {
    // SAFETY: callers only pass bios they keep alive.
    let f = unsafe { shim::rdrbd_bio_flags(bio.as_ptr()) };
    BioFlags { fua: f & 1 != 0, preflush: f & 2 != 0, sync: f & 4 != 0 }
}

/// One outstanding completion of an upper bio (see
/// [`UpperBio::peer_completion`] and [`LocalPart::peer_completion`]): the
/// bio and its data stay valid while this lives; dropping it gives the
/// completion (the bio's status is what the local part set).
///
/// # Invariants
/// `bio` has one completion owned by this token; `clone`, if any, is the
/// bio's clone from `LowerRef::submit_with`, with a reference this token
/// owns.
pub(crate) struct PeerToken {
    bio: NonNull<bindings::bio>,
    clone: Option<NonNull<bindings::bio>>,
    /// The tracked write this completion is part of (0: none).
    interval: u32,
}

// SAFETY: a bio may be completed from any thread, and its data read from
// any thread while it cannot complete.
unsafe impl Send for PeerToken {}
// SAFETY: `&PeerToken` only reads the bio and the outcome word (atomically).
unsafe impl Sync for PeerToken {}

impl PeerToken {
    /// First sector.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: the bio cannot complete while this token lives.
        unsafe { (*self.bio.as_ptr()).bi_iter.bi_sector }
    }

    /// Payload size in bytes.
    pub(crate) fn size(&self) -> u32 {
        // SAFETY: as above.
        unsafe { shim::rdrbd_bio_size(self.bio.as_ptr()) }
    }

    /// REQ_FUA, REQ_PREFLUSH, REQ_SYNC.
    pub(crate) fn flags(&self) -> BioFlags {
        bio_flags(self.bio)
    }

    /// Whether the bio is a discard (sent as P_TRIM, without data).
    pub(crate) fn is_discard(&self) -> bool {
        // SAFETY: the bio cannot complete while this token lives.
        unsafe { shim::rdrbd_bio_op(self.bio.as_ptr()) == bindings::req_op_REQ_OP_DISCARD }
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::bio {
        self.bio.as_ptr()
    }

    /// The `data-integrity-alg` digest of the bio's data.
    pub(crate) fn digest(&self, digest: &super::crypto::Digest) -> Result<super::crypto::DigestValue> {
        // SAFETY: the bio and its pages cannot complete while this token
        // lives; the shim gets a live transform and a buffer for its digest.
        digest.of_pages(|tfm, out| unsafe { shim::rdrbd_digest_bio(tfm, self.bio.as_ptr(), out) })
    }

    /// Whether the bio's local part failed (so far: it may still be in
    /// flight). Without a local part (a diskless write), whether the bio
    /// has an error so far.
    pub(crate) fn local_failed(&self) -> bool {
        if let Some(clone) = self.clone {
            // SAFETY: the token holds a reference to the clone (invariant).
            return unsafe { outcome(clone) }.load(Ordering::SeqCst) & LOCAL_FAILED != 0;
        }
        // SAFETY: the bio cannot complete while this token lives; the status
        // byte may be written concurrently.
        let status = unsafe { core::ptr::read_volatile(&raw const (*self.bio.as_ptr()).bi_status) };
        status != bindings::BLK_STS_OK as bindings::blk_status_t
    }

    /// Gives the completion as the peer's success: the bio succeeds even if
    /// its local part failed, before or after this (8.4 completes a write
    /// that reached either disk successfully).
    pub(crate) fn peer_succeeded(self) {
        if let Some(clone) = self.clone {
            // Ordered with the local failure's error write through this
            // word: whichever comes second leaves the status OK
            // (`lower_endio`).
            // SAFETY: the token holds a reference to the clone (invariant).
            unsafe { outcome(clone) }.fetch_or(PEER_OK, Ordering::SeqCst);
        }
        // SAFETY: the bio cannot complete while this token lives; its
        // status byte is only written by its completions.
        unsafe { core::ptr::write_volatile(&raw mut (*self.bio.as_ptr()).bi_status, bindings::BLK_STS_OK as bindings::blk_status_t) };
        drop(self);
    }
}

impl Drop for PeerToken {
    fn drop(&mut self) {
        // SAFETY: this token owns exactly one of the bio's completions and,
        // if set, one reference to the clone (invariant); each is given
        // exactly once, here. Before the completion, the bio (and so its
        // disk and the disk's owner) is live.
        unsafe {
            if self.interval != 0 {
                DiskPrivate::of_bio(self.bio.as_ptr()).owner.interval_part_done(self.interval);
            }
            bindings::bio_endio(self.bio.as_ptr());
            if let Some(clone) = self.clone {
                bindings::bio_put(clone.as_ptr());
            }
        }
    }
}

/// Pages for the synchronous block reads done on the peer's behalf: a
/// block a resyncing (or verifying, or diskless) peer asked for, a block
/// read for its checksum.
///
/// # Invariants
/// `ptrs[i]` is the page of `pages[i]`, owned by it, for every `i`.
pub(crate) struct BlockPages {
    pages: KVec<kernel::page::Page>,
    ptrs: KVec<*mut bindings::page>,
}

// SAFETY: the pages are only used through `&mut self`.
unsafe impl Send for BlockPages {}

impl BlockPages {
    /// Room for `bytes` (rounded up to pages).
    pub(crate) fn new(bytes: usize) -> Result<Self> {
        let n = bytes.div_ceil(kernel::page::PAGE_SIZE);
        let mut pages = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut ptrs = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            let page = kernel::page::Page::alloc_page(GFP_KERNEL)?;
            ptrs.push(page.as_ptr(), GFP_KERNEL)?;
            pages.push(page, GFP_KERNEL)?;
        }
        Ok(Self { pages, ptrs })
    }

    /// Pages needed for `len` bytes, if there are that many.
    fn pages_for(&self, len: usize) -> Result<(u32, u32)> {
        let nr = len.div_ceil(kernel::page::PAGE_SIZE);
        if nr > self.pages.len() {
            return Err(EINVAL);
        }
        Ok((u32::try_from(nr).map_err(|_| EINVAL)?, u32::try_from(len).map_err(|_| EINVAL)?))
    }

    /// Copies the first `out.len()` bytes of the pages into `out`.
    pub(crate) fn copy_out(&self, out: &mut [u8]) -> Result {
        self.pages_for(out.len())?;
        for (page, chunk) in self.pages.iter().zip(out.chunks_mut(kernel::page::PAGE_SIZE)) {
            // SAFETY: `chunk` is valid for writes of its length, at most a page.
            unsafe { page.read_raw(chunk.as_mut_ptr(), 0, chunk.len()) }?;
        }
        Ok(())
    }

    /// Reads `len` bytes at `sector` of `dev` into the pages, synchronously
    /// (for [`super::net::TcpSocket::send_pages_retrying`]).
    pub(crate) fn read_in(&mut self, dev: BdevRef<'_>, sector: u64, len: u32) -> Result {
        let (nr, len) = self.pages_for(len as usize)?;
        // SAFETY: the pages are ours; `dev` is open for its lifetime; the
        // read completes before this returns.
        dev.counted(|| to_result(unsafe {
            shim::rdrbd_pages_io(dev.bdev.as_ptr(), self.ptrs.as_mut_ptr(), nr, sector, len, false, false, false)
        }))
    }

    /// The `data-integrity-alg` digest of the first `len` bytes.
    pub(crate) fn digest(&mut self, digest: &super::crypto::Digest, len: u32) -> Result<super::crypto::DigestValue> {
        let array = self.page_array(len)?;
        // SAFETY: `array` holds pages for `len` bytes (checked above),
        // owned by `self`, which the borrow keeps unchanged; the shim gets
        // a live transform and a buffer for its digest.
        digest.of_pages(|tfm, out| unsafe { shim::rdrbd_digest_pages(tfm, array, len, out) })
    }

    /// The page array, if it holds `len` bytes.
    pub(super) fn page_array(&mut self, len: u32) -> Result<*mut *mut bindings::page> {
        self.pages_for(len as usize)?;
        Ok(self.ptrs.as_mut_ptr())
    }
}

/// A FIFO of upper bios, linked through `bi_next` like the kernel's
/// `bio_list`, so queueing never allocates. Bios still queued when it is
/// dropped are failed: a bio is never lost.
///
/// # Invariants
/// `head` starts a `bi_next` chain of live upper bios whose completions
/// this owns, ending at `tail` (both null when empty).
pub(crate) struct BioFifo {
    head: *mut bindings::bio,
    tail: *mut bindings::bio,
}

// SAFETY: the queued bios are owned by the FIFO and may be completed from
// any thread.
unsafe impl Send for BioFifo {}

impl BioFifo {
    /// An empty FIFO.
    pub(crate) const fn new() -> Self {
        Self { head: ptr::null_mut(), tail: ptr::null_mut() }
    }

    /// Whether no bio is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Appends `bio`.
    pub(crate) fn push(&mut self, bio: UpperBio) {
        let bio = bio.into_raw();
        // SAFETY: we own `bio` and every queued bio; `tail` is the last one.
        unsafe {
            (*bio).bi_next = ptr::null_mut();
            if self.tail.is_null() {
                self.head = bio;
            } else {
                (*self.tail).bi_next = bio;
            }
        }
        self.tail = bio;
    }

    /// Takes the oldest bio.
    pub(crate) fn pop(&mut self) -> Option<UpperBio> {
        let bio = NonNull::new(self.head)?;
        // SAFETY: `bio` is the queued head, owned by us.
        unsafe {
            self.head = (*bio.as_ptr()).bi_next;
            (*bio.as_ptr()).bi_next = ptr::null_mut();
        }
        if self.head.is_null() {
            self.tail = ptr::null_mut();
        }
        Some(UpperBio(bio))
    }
}

impl Drop for BioFifo {
    fn drop(&mut self) {
        while let Some(bio) = self.pop() {
            bio.fail();
        }
    }
}

/// Called by the shim's `submit_bio` for every bio of an rdrbd gendisk.
///
/// # Safety
/// `private` is the private data of a live rdrbd gendisk; `bio` is a live
/// bio whose completion the caller hands over.
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_submit_bio(private: *mut c_void, bio: *mut bindings::bio) {
    // SAFETY: per the contract above.
    let (private, bio) = unsafe { (DiskPrivate::from_private(private), UpperBio::from_raw(bio)) };
    private.owner.submit_bio(bio);
}

/// Called by the shim's `open` for an rdrbd gendisk.
///
/// # Safety
/// `private` is the private data of a live rdrbd gendisk.
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_open(private: *mut c_void, write: bool) -> core::ffi::c_int {
    // SAFETY: per the contract above.
    let private = unsafe { DiskPrivate::from_private(private) };
    match private.owner.open(write) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Called by the shim's `release`: the last close of a successful open.
///
/// # Safety
/// `private` is the private data of a live rdrbd gendisk.
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_release(private: *mut c_void) {
    // SAFETY: per the contract above.
    let private = unsafe { DiskPrivate::from_private(private) };
    private.owner.release();
}

/// Called by the shim's `free_disk`: the block layer dropped its last
/// reference on an rdrbd gendisk (after its last release and bio), so its
/// private data, and with it a reference on the owner, goes.
///
/// # Safety
/// `private` is the private data of the gendisk being freed, a
/// `DiskPrivate` from `KBox::into_raw` in `GenDisk::new`; called once.
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_free_disk(private: *mut c_void) {
    // SAFETY: per the contract above, nothing uses it any more.
    drop(unsafe { KBox::from_raw(private.cast::<DiskPrivate>()) });
}
