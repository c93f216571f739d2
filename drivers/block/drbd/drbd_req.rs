//! The request path: what happens to each bio submitted to `/dev/drbdN`.
//!
//! Reads go straight to the backing disk. A write is marked out of sync in
//! the bitmap (there is no peer to send it to yet) and passes the activity
//! log: if its extents are hot it goes straight on; if not, it waits for
//! the device's submitter thread, which commits an AL transaction first.
//! (Metadata I/O cannot be waited for in `submit_bio` itself: bios
//! submitted there are only queued until it returns.) Replication hooks
//! in here later.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::drbd_actlog::{AlError, AlRefs};
use crate::drbd_md::MetaData;
use crate::kernel_glue::block::{BioFifo, BioOp, DiskOps, LowerDev, LowerGate, LowerRef, UpperBio};
use crate::kernel_glue::thread::{sleep_ms, KThread};

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
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

impl DeviceIo {
    /// A device with no backing disk.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            cold_writes <- new_mutex!(BioFifo::new(), "rdrbd::DeviceIo::cold_writes"),
            cold_writes_added <- new_condvar!("rdrbd::DeviceIo::cold_writes_added"),
            gate <- LowerGate::new(),
            md <- new_mutex!(None, "rdrbd::DeviceIo::md"),
            al_refs: AlRefs::new()?,
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        }? Error)
    }

    /// Lets bios through to `lower`, whose metadata is `md`; hands the disk
    /// back if one is attached already.
    pub(crate) fn attach_lower(&self, lower: LowerDev, md: MetaData) -> core::result::Result<(), LowerDev> {
        *self.md.lock() = Some(md);
        self.gate.attach(lower).inspect_err(|_| {
            self.md.lock().take();
        })
    }

    /// Stops bios going to the backing disk, waits for those in flight and
    /// hands the disk and its metadata back.
    pub(crate) fn detach_lower(&self) -> Option<(LowerDev, Option<MetaData>)> {
        let lower = self.gate.detach()?;
        Some((lower, self.md.lock().take()))
    }

    /// Out-of-sync KiB per the bitmap (0 when diskless).
    pub(crate) fn out_of_sync_kib(&self) -> u64 {
        self.md.lock().as_ref().map_or(0, |md| md.bitmap.count() * 4)
    }

    /// Sectors read from the backing disk ("dr" in /proc/drbd, in KiB).
    pub(crate) fn read_sectors(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed) >> 9
    }

    /// Sectors written to the backing disk ("dw" in /proc/drbd, in KiB).
    pub(crate) fn written_sectors(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed) >> 9
    }

    /// The submitter thread of a device: admits writes to cold extents
    /// through the activity log. Stops when its [`KThread`] is dropped.
    pub(crate) fn run_submitter(self: Arc<Self>) {
        loop {
            let next = {
                let mut queue = self.cold_writes.lock();
                loop {
                    if let Some(bio) = queue.pop() {
                        break Some(bio);
                    }
                    if KThread::should_stop() {
                        break None;
                    }
                    // kthread_stop shows up as a pending signal; the loop
                    // then sees should_stop.
                    let _stop_or_signal = self.cold_writes_added.wait_interruptible(&mut queue);
                }
            };
            match next {
                Some(bio) => self.submit_cold_write(bio),
                None => return,
            }
        }
    }

    fn submit_cold_write(&self, bio: UpperBio) {
        let Some(lower) = self.gate.enter() else {
            return bio.fail();
        };
        let (sector, size) = (bio.sector(), bio.size());
        match self.begin_cold_write(&lower, sector, size) {
            Ok(tag) => self.forward(lower, bio, tag),
            Err(AlError::Io(e)) => {
                pr_err!("activity log write failed: error {}; failing the write\n", e.to_errno());
                bio.fail();
            }
            Err(_) => bio.fail(),
        }
    }

    /// Admits a write through the activity log, committing a transaction
    /// if needed (sleeps: submitter thread only).
    fn begin_cold_write(&self, lower: &LowerRef<'_>, sector: u64, size: u32) -> core::result::Result<u64, AlError> {
        loop {
            let mut guard = self.md.lock();
            let Some(md) = guard.as_mut() else { return Ok(0) };
            let MetaData { al, bitmap, io, .. } = md;
            match al.begin_write(&self.al_refs, bitmap, io, lower.bdev_ref(), sector, size) {
                Err(AlError::Busy) => {
                    drop(guard);
                    sleep_ms(1);
                }
                other => return other,
            }
        }
    }

    /// Marks a write out of sync; admits it if its extents are hot.
    /// `Ok(None)`: no metadata (nothing to track).
    fn begin_hot_write(&self, sector: u64, size: u32) -> core::result::Result<Option<u64>, ()> {
        let mut guard = self.md.lock();
        let Some(md) = guard.as_mut() else { return Ok(None) };
        // No peer: every write is out of sync with it.
        md.bitmap.set_sectors(sector, size);
        md.al.begin_hot_write(&self.al_refs, sector, size).map(Some).ok_or(())
    }

    fn forward(&self, lower: LowerRef<'_>, bio: UpperBio, tag: u64) {
        let (op, size) = (bio.op(), u64::from(bio.size()));
        if let Err(bio) = lower.submit(bio, tag) {
            self.al_refs.complete(tag);
            return bio.fail();
        }
        match op {
            BioOp::Read => self.bytes_read.fetch_add(size, Ordering::Relaxed),
            BioOp::Write => self.bytes_written.fetch_add(size, Ordering::Relaxed),
            BioOp::Discard | BioOp::Other => 0,
        };
    }
}

impl DiskOps for DeviceIo {
    fn submit_bio(&self, bio: UpperBio) {
        let Some(lower) = self.gate.enter() else {
            // Diskless and no peer to serve it: fail, as DRBD does.
            return bio.fail();
        };
        let (op, sector, size) = (bio.op(), bio.sector(), bio.size());
        if op == BioOp::Read || size == 0 {
            return self.forward(lower, bio, 0);
        }
        match self.begin_hot_write(sector, size) {
            Ok(tag) => self.forward(lower, bio, tag.unwrap_or(0)),
            Err(()) => {
                drop(lower);
                self.cold_writes.lock().push(bio);
                self.cold_writes_added.notify_one();
            }
        }
    }

    fn lower_gate(&self) -> &LowerGate {
        &self.gate
    }

    fn bio_done(&self, tag: u64) {
        self.al_refs.complete(tag);
    }
}
