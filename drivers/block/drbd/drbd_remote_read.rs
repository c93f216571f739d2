// SPDX-License-Identifier: GPL-2.0
//! Reads the peer serves (P_DATA_REQUEST, answered by P_DATA_REPLY or
//! P_NEG_DREPLY): every read of a Diskless node, reads of blocks our
//! Inconsistent disk lacks, and reads our backing disk failed. Each read
//! waits here, by block id, until the answer fills and completes it; when
//! the connection goes, the reads still waiting fail.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::kernel_glue::block::UpperBio;

/// A read sent to the peer, not answered yet.
struct PendingRead {
    block_id: u64,
    sector: u64,
    size: u32,
    bio: UpperBio,
}

/// The reads waiting for the peer on one connection.
#[pin_data]
pub(crate) struct RemoteReads {
    /// Slots of reads waiting; `None` slots are reused.
    #[pin]
    pending: Mutex<KVec<Option<PendingRead>>>,
    next_id: AtomicU64,
    /// The connection is gone: no read waits any more.
    closed: AtomicBool,
}

/// What an answer of the peer matched.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The read it answers, completed.
    Done,
    /// No read waits with this block id: the peer's protocol error.
    Unknown,
    /// The sector or size differ from the request's: protocol error too.
    Mismatch,
}

impl RemoteReads {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pending <- new_mutex!(KVec::new(), "rdrbd::RemoteReads::pending"),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        })
    }

    /// Records `bio` as waiting; returns its request (block id, sector,
    /// size), or the bio back if the connection is gone or no memory is
    /// left to track it.
    pub(crate) fn register(&self, bio: UpperBio) -> core::result::Result<(u64, u64, u32), UpperBio> {
        let (sector, size) = (bio.sector(), bio.size());
        let block_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.pending.lock();
        if self.closed.load(Ordering::SeqCst) {
            return Err(bio);
        }
        if let Some(slot) = pending.iter_mut().find(|p| p.is_none()) {
            *slot = Some(PendingRead { block_id, sector, size, bio });
        } else {
            if pending.reserve(1, GFP_NOWAIT).is_err() {
                return Err(bio);
            }
            // Cannot fail: the room is reserved.
            let _ = pending.push(Some(PendingRead { block_id, sector, size, bio }), GFP_NOWAIT);
        }
        Ok((block_id, sector, size))
    }

    /// Takes a read back whose request could not be sent.
    pub(crate) fn take(&self, block_id: u64) -> Option<UpperBio> {
        let mut pending = self.pending.lock();
        let slot = pending.iter_mut().find(|p| p.as_ref().is_some_and(|p| p.block_id == block_id))?;
        slot.take().map(|p| p.bio)
    }

    fn take_matching(&self, block_id: u64, sector: u64, size: Option<u32>) -> core::result::Result<UpperBio, Answer> {
        let mut pending = self.pending.lock();
        let slot = pending.iter_mut().find(|p| p.as_ref().is_some_and(|p| p.block_id == block_id)).ok_or(Answer::Unknown)?;
        if slot.as_ref().is_some_and(|p| p.sector != sector || size.is_some_and(|size| size != p.size)) {
            return Err(Answer::Mismatch);
        }
        slot.take().map(|p| p.bio).ok_or(Answer::Unknown)
    }

    /// P_DATA_REPLY: `data` is the block at `sector` for read `block_id`.
    pub(crate) fn reply(&self, block_id: u64, sector: u64, data: &[u8]) -> Answer {
        let size = u32::try_from(data.len()).ok();
        match self.take_matching(block_id, sector, size) {
            Ok(mut bio) => {
                let filled = bio.copy_in(data);
                bio.end(filled);
                Answer::Done
            }
            Err(answer) => answer,
        }
    }

    /// P_NEG_DREPLY: the peer could not read it either; the read fails.
    pub(crate) fn refused(&self, block_id: u64, sector: u64) -> Answer {
        match self.take_matching(block_id, sector, None) {
            Ok(bio) => {
                bio.fail();
                Answer::Done
            }
            Err(answer) => answer,
        }
    }

    /// The connection is gone: every read still waiting fails (no other
    /// peer has the data), and none is taken any more.
    pub(crate) fn abort(&self) {
        let drained = {
            let mut pending = self.pending.lock();
            self.closed.store(true, Ordering::SeqCst);
            core::mem::take(&mut *pending)
        };
        drop(drained);
    }
}
