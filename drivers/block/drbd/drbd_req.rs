//! The request path: what happens to each bio submitted to `/dev/drbdN`.
//!
//! For now a device passes every bio (read, write, flush, FUA, discard)
//! through to its backing disk; replication hooks in here later.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::prelude::*;

use crate::kernel_glue::block::{BioOp, DiskOps, LowerDev, LowerGate, UpperBio};

/// The part of a device that the bio path touches: shared with the gendisk
/// and reached without taking the configuration lock.
#[pin_data]
pub(crate) struct DeviceIo {
    #[pin]
    gate: LowerGate,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

impl DeviceIo {
    /// A device with no backing disk.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            gate <- LowerGate::new(),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        })
    }

    /// Lets bios through to `lower`; hands it back if a disk is attached.
    pub(crate) fn attach_lower(&self, lower: LowerDev) -> core::result::Result<(), LowerDev> {
        self.gate.attach(lower)
    }

    /// Stops bios going to the backing disk, waits for those in flight and
    /// hands the disk back (dropping it releases it).
    pub(crate) fn detach_lower(&self) -> Option<LowerDev> {
        self.gate.detach()
    }

    /// Sectors read from the backing disk ("dr" in /proc/drbd, in KiB).
    pub(crate) fn read_sectors(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed) >> 9
    }

    /// Sectors written to the backing disk ("dw" in /proc/drbd, in KiB).
    pub(crate) fn written_sectors(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed) >> 9
    }
}

impl DiskOps for DeviceIo {
    fn submit_bio(&self, bio: UpperBio) {
        let (op, size) = (bio.op(), u64::from(bio.size()));
        match self.gate.forward(bio) {
            Ok(()) => match op {
                BioOp::Read => {
                    self.bytes_read.fetch_add(size, Ordering::Relaxed);
                }
                BioOp::Write => {
                    self.bytes_written.fetch_add(size, Ordering::Relaxed);
                }
                BioOp::Discard | BioOp::Other => {}
            },
            // Diskless and no peer to serve it: fail, as DRBD does.
            Err(bio) => bio.fail(),
        }
    }

    fn lower_gate(&self) -> &LowerGate {
        &self.gate
    }
}
