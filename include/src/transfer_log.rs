//! The Primary's transfer log: which replicated writes belong to which
//! epoch, when an epoch is closed by a P_BARRIER, and what a
//! P_BARRIER_ACK releases (8.4's `transfer_log`, `start_new_tl_epoch`,
//! `maybe_send_barrier` and `tl_release`).
//!
//! Every write sent to the peer (P_DATA, P_TRIM) is recorded in the epoch
//! that is open when it is sent. Closing an epoch gives the barrier number
//! to send; from then on new writes go into the next epoch. The peer
//! answers each barrier with P_BARRIER_ACK once every write of that epoch
//! is on its stable storage; the ack must name the oldest epoch still in
//! the log and count exactly the writes sent in it, or the peer and we
//! disagree about what is safe, which is a protocol error.
//!
//! An epoch closes when the sender goes idle or the epoch is full, or, as
//! in 8.4, when a write of it is acknowledged (before that write may
//! complete: a write submitted after it, maybe depending on it, goes into
//! a later epoch). The P_BARRIER of an epoch an ack closed is owed until
//! the sender sends it, before any write of the next epoch.
//!
//! The log lives in caller-provided slots (a ring), so it never allocates;
//! when all slots are taken the sender must close the epoch and wait for
//! an ack to free some.

use core::fmt;
use core::ops::DerefMut;

/// One write sent to the peer and not yet covered by a barrier ack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlWrite {
    /// The handle the peer's per-write acks name.
    pub block_id: u64,
    /// First sector.
    pub sector: u64,
    /// Bytes.
    pub size: u32,
    /// Epoch the write was sent in.
    pub epoch: u32,
    /// When it was sent (milliseconds of a monotonic clock), for the
    /// request timer (`pre_send_jif`).
    pub sent_at_ms: u64,
    /// The peer reported it could not write it (P_NEG_ACK): it stays out
    /// of sync even when its epoch is acked.
    pub failed: bool,
}

/// A P_BARRIER_ACK that does not fit what we sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarrierAckError {
    /// No epoch has been closed by a barrier and is waiting for its ack.
    NoEpoch {
        /// The barrier number the peer acked.
        barrier: u32,
    },
    /// The ack names another epoch than the oldest one waiting.
    WrongEpoch {
        /// The barrier number the peer acked.
        barrier: u32,
        /// The oldest epoch waiting for its ack.
        expected: u32,
    },
    /// The ack counts another number of writes than we sent in the epoch.
    WrongSize {
        /// The barrier number the peer acked.
        barrier: u32,
        /// The count of writes the peer reported.
        set_size: u32,
        /// The writes we sent in that epoch.
        expected: u32,
    },
}

impl fmt::Display for BarrierAckError {
    /// The wording of 8.4's `tl_release` ("BAD! BarrierAck ...").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoEpoch { barrier } => write!(f, "BAD! BarrierAck #{} received, but no epoch in tl!?", barrier),
            Self::WrongEpoch { barrier, expected } => {
                write!(f, "BAD! BarrierAck #{} received, expected #{}!", barrier, expected)
            }
            Self::WrongSize { barrier, set_size, expected } => write!(
                f,
                "BAD! BarrierAck #{} received with n_writes={}, expected n_writes={}!",
                barrier, set_size, expected
            ),
        }
    }
}

/// Every slot of the log is taken: close the epoch and wait for its ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogFull;

/// The transfer log over the slots `S` (any mutable slice of [`TlWrite`]).
pub struct TransferLog<S> {
    slots: S,
    /// Index of the oldest write.
    head: usize,
    /// Writes in the log.
    len: usize,
    /// The epoch writes are sent in now (`send.current_epoch_nr`).
    epoch: u32,
    /// Writes sent in that epoch so far.
    epoch_writes: u32,
    /// An epoch an ack closed whose P_BARRIER has not gone out yet. While
    /// it is owed the open epoch holds no write (the barrier goes before
    /// the next write is recorded).
    owed: Option<u32>,
    /// An epoch is closed once it has this many writes (`max-epoch-size`).
    max_epoch_writes: u32,
    /// Sectors of the writes in the log (8.4's `ap_in_flight`, which
    /// `cong-fill` is measured against).
    sectors: u64,
}

impl<S: DerefMut<Target = [TlWrite]>> TransferLog<S> {
    /// An empty log over `slots`; epochs are closed after at most
    /// `max_epoch_writes` writes (at least 1). The first epoch is 1 (any
    /// number works: the peer only echoes it).
    pub fn new(slots: S, max_epoch_writes: u32) -> Self {
        Self {
            slots,
            head: 0,
            len: 0,
            epoch: 1,
            epoch_writes: 0,
            owed: None,
            max_epoch_writes: max_epoch_writes.max(1),
            sectors: 0,
        }
    }

    /// The slot of the `i`-th oldest write (`None` without slots).
    fn slot(&self, i: usize) -> Option<usize> {
        self.head.wrapping_add(i).checked_rem(self.slots.len())
    }

    /// Writes in the log (sent, not yet released by a barrier ack).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Sectors sent and not yet released by a barrier ack.
    pub fn sectors_in_flight(&self) -> u64 {
        self.sectors
    }

    /// Whether the log holds no write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether another write can be recorded.
    pub fn is_full(&self) -> bool {
        self.len >= self.slots.len()
    }

    /// The oldest epoch whose P_BARRIER has not gone out (8.4's
    /// `send.current_epoch_nr`): the open one, or one an ack closed whose
    /// barrier is still owed.
    pub fn current_epoch(&self) -> u32 {
        self.owed.unwrap_or(self.epoch)
    }

    /// Writes recorded in the open epoch.
    pub fn current_epoch_writes(&self) -> u32 {
        self.epoch_writes
    }

    /// The barrier owed for an epoch an ack closed, if any, else closes
    /// the open epoch if it holds a write; returns the number the
    /// P_BARRIER that must be sent now carries (before any later write).
    /// An empty epoch is not closed (`start_new_tl_epoch`: "no point
    /// closing an epoch, if it is empty").
    pub fn close_epoch(&mut self) -> Option<u32> {
        if let Some(owed) = self.owed.take() {
            return Some(owed);
        }
        self.close_open_epoch()
    }

    fn close_open_epoch(&mut self) -> Option<u32> {
        if self.epoch_writes == 0 {
            return None;
        }
        let closed = self.epoch;
        self.epoch = self.epoch.wrapping_add(1);
        self.epoch_writes = 0;
        Some(closed)
    }

    /// A write sent in `epoch` was acknowledged and may complete: if
    /// `epoch` is still open it closes now (8.4's `drbd_req_complete`
    /// closing the current epoch), so that writes sent from now on go into
    /// the next one; its P_BARRIER is owed ([`Self::owed_barrier`]).
    /// Returns whether it closed.
    pub fn close_epoch_of_acked(&mut self, epoch: u32) -> bool {
        if epoch != self.epoch || self.owed.is_some() {
            return false;
        }
        self.owed = self.close_open_epoch();
        self.owed.is_some()
    }

    /// The P_BARRIER an ack left owed, to be sent now (taken: the caller
    /// sends it before any later write).
    pub fn owed_barrier(&mut self) -> Option<u32> {
        self.owed.take()
    }

    /// Before a write is recorded: the barrier owed for an epoch an ack
    /// closed, or closes the open epoch if it is full (max-epoch-size);
    /// `Some(n)`: send P_BARRIER n first.
    fn barrier_before_write(&mut self) -> Option<u32> {
        if let Some(owed) = self.owed.take() {
            return Some(owed);
        }
        if self.epoch_writes >= self.max_epoch_writes {
            self.close_open_epoch()
        } else {
            None
        }
    }

    /// The oldest write not yet released by a barrier ack (8.4's
    /// `req_not_net_done`), which the request timer watches.
    pub fn oldest(&self) -> Option<&TlWrite> {
        if self.len == 0 {
            return None;
        }
        self.slots.get(self.head)
    }

    /// Records a write sent at `sent_at_ms` in the open epoch (call before
    /// the write goes out, so that its acks always find it). Returns the
    /// P_BARRIER to send before it ([`Self::barrier_before_write`]): taken
    /// in the same step, so that an ack closing the epoch meanwhile cannot
    /// put the write into an epoch whose predecessor's barrier is unsent.
    pub fn record(&mut self, block_id: u64, sector: u64, size: u32, sent_at_ms: u64) -> Result<Option<u32>, LogFull> {
        if self.is_full() {
            return Err(LogFull);
        }
        let index = self.slot(self.len).ok_or(LogFull)?;
        let barrier = self.barrier_before_write();
        let slot = self.slots.get_mut(index).ok_or(LogFull)?;
        *slot = TlWrite { block_id, sector, size, epoch: self.epoch, sent_at_ms, failed: false };
        self.len = self.len.saturating_add(1);
        self.epoch_writes = self.epoch_writes.saturating_add(1);
        self.sectors = self.sectors.saturating_add(u64::from(size >> 9));
        Ok(barrier)
    }

    /// The peer failed write `block_id` (P_NEG_ACK); returns whether the
    /// log has it.
    pub fn mark_failed(&mut self, block_id: u64) -> bool {
        for i in 0..self.len {
            let Some(index) = self.slot(i) else { break };
            if let Some(w) = self.slots.get_mut(index) {
                if w.block_id == block_id {
                    w.failed = true;
                    return true;
                }
            }
        }
        false
    }

    /// Our own disk failed a write of `size` bytes at `sector`: every
    /// logged write that overlaps it must stay out of sync when its
    /// epoch's barrier ack comes. Returns how many were marked.
    pub fn mark_range_failed(&mut self, sector: u64, size: u32) -> usize {
        let end = sector.saturating_add(u64::from(size >> 9));
        let mut marked = 0;
        for i in 0..self.len {
            let Some(index) = self.slot(i) else { break };
            if let Some(w) = self.slots.get_mut(index) {
                let w_end = w.sector.saturating_add(u64::from(w.size >> 9));
                if w.sector < end && sector < w_end {
                    w.failed = true;
                    marked += 1;
                }
            }
        }
        marked
    }

    /// P_BARRIER_ACK `barrier` with `set_size` writes (`tl_release`): it
    /// must name the oldest closed epoch and count its writes. On success
    /// each write of the epoch is handed to `release` (now on the peer's
    /// stable storage unless `failed`) and leaves the log; returns the
    /// number released. On error nothing changes.
    pub fn barrier_acked(
        &mut self,
        barrier: u32,
        set_size: u32,
        mut release: impl FnMut(&TlWrite),
    ) -> Result<u32, BarrierAckError> {
        let oldest = match self.slots.get(self.head) {
            Some(w) if self.len > 0 => w.epoch,
            _ => return Err(BarrierAckError::NoEpoch { barrier }),
        };
        if oldest == self.epoch || self.owed == Some(oldest) {
            // No barrier was sent for the oldest epoch: it is still open,
            // or its barrier is owed.
            return Err(BarrierAckError::NoEpoch { barrier });
        }
        if barrier != oldest {
            return Err(BarrierAckError::WrongEpoch { barrier, expected: oldest });
        }
        let in_epoch = (0..self.len)
            .take_while(|&i| self.slot(i).and_then(|x| self.slots.get(x)).is_some_and(|w| w.epoch == oldest))
            .count();
        let expected = u32::try_from(in_epoch).unwrap_or(u32::MAX);
        if set_size != expected {
            return Err(BarrierAckError::WrongSize { barrier, set_size, expected });
        }
        for _ in 0..in_epoch {
            if let Some(w) = self.slots.get(self.head) {
                self.sectors = self.sectors.saturating_sub(u64::from(w.size >> 9));
                release(w);
            }
            self.head = self.slot(1).unwrap_or(0);
            self.len = self.len.saturating_sub(1);
        }
        Ok(expected)
    }

    /// The connection is gone (`tl_clear`): hands every write still in the
    /// log to `f` (the peer may not have it) and empties the log.
    pub fn drain(&mut self, mut f: impl FnMut(&TlWrite)) {
        for i in 0..self.len {
            if let Some(w) = self.slot(i).and_then(|x| self.slots.get(x)) {
                f(w);
            }
        }
        self.head = 0;
        self.len = 0;
        self.epoch_writes = 0;
        self.owed = None;
        self.sectors = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    extern crate std;
    use std::vec::Vec;

    fn log(slots: usize, max: u32) -> TransferLog<Vec<TlWrite>> {
        TransferLog::new(std::vec![TlWrite::default(); slots], max)
    }

    fn released(tl: &mut TransferLog<Vec<TlWrite>>, barrier: u32, size: u32) -> Result<Vec<u64>, BarrierAckError> {
        let mut ids = Vec::new();
        tl.barrier_acked(barrier, size, |w| ids.push(w.block_id)).map(|_| ids)
    }

    #[test]
    fn empty_epoch_is_not_closed() {
        let mut tl = log(8, 100);
        assert_eq!(tl.close_epoch(), None);
        assert_eq!(tl.current_epoch(), 1);
    }

    #[test]
    fn ack_releases_exactly_its_epoch() {
        let mut tl = log(8, 100);
        tl.record(1, 0, 4096, 0).unwrap();
        tl.record(2, 8, 4096, 0).unwrap();
        assert_eq!(tl.close_epoch(), Some(1));
        tl.record(3, 16, 4096, 0).unwrap();
        assert_eq!(tl.close_epoch(), Some(2));
        assert_eq!(released(&mut tl, 1, 2).unwrap(), [1, 2]);
        assert_eq!(tl.len(), 1);
        assert_eq!(released(&mut tl, 2, 1).unwrap(), [3]);
        assert!(tl.is_empty());
    }

    #[test]
    fn ack_for_open_epoch_is_refused() {
        let mut tl = log(8, 100);
        assert_eq!(released(&mut tl, 1, 0), Err(BarrierAckError::NoEpoch { barrier: 1 }));
        tl.record(1, 0, 4096, 0).unwrap();
        // No barrier sent yet for epoch 1.
        assert_eq!(released(&mut tl, 1, 1), Err(BarrierAckError::NoEpoch { barrier: 1 }));
        assert_eq!(tl.len(), 1);
    }

    #[test]
    fn wrong_number_or_size_changes_nothing() {
        let mut tl = log(8, 100);
        tl.record(1, 0, 4096, 0).unwrap();
        tl.record(2, 8, 4096, 0).unwrap();
        tl.close_epoch();
        tl.record(3, 16, 4096, 0).unwrap();
        tl.close_epoch();
        assert_eq!(released(&mut tl, 2, 1), Err(BarrierAckError::WrongEpoch { barrier: 2, expected: 1 }));
        assert_eq!(released(&mut tl, 1, 3), Err(BarrierAckError::WrongSize { barrier: 1, set_size: 3, expected: 2 }));
        assert_eq!(released(&mut tl, 1, 1), Err(BarrierAckError::WrongSize { barrier: 1, set_size: 1, expected: 2 }));
        assert_eq!(tl.len(), 3);
        assert_eq!(released(&mut tl, 1, 2).unwrap(), [1, 2]);
    }

    #[test]
    fn max_epoch_size_closes_before_the_next_write() {
        let mut tl = log(8, 2);
        assert_eq!(tl.record(1, 0, 512, 0), Ok(None));
        assert_eq!(tl.record(2, 0, 512, 0), Ok(None));
        assert_eq!(tl.record(3, 0, 512, 0), Ok(Some(1)));
        assert_eq!(tl.current_epoch(), 2);
        assert_eq!(tl.current_epoch_writes(), 1);
    }

    #[test]
    fn an_ack_closes_only_the_open_epoch_and_owes_its_barrier() {
        let mut tl = log(8, 100);
        assert_eq!(tl.record(1, 0, 4096, 0), Ok(None));
        assert_eq!(tl.record(2, 8, 4096, 0), Ok(None));
        // An ack of a write of an epoch already closed changes nothing.
        assert!(!tl.close_epoch_of_acked(0));
        assert!(tl.close_epoch_of_acked(1));
        // Closed, barrier not sent: still the request timer's epoch, and
        // no barrier ack may name it yet.
        assert_eq!(tl.current_epoch(), 1);
        assert_eq!(released(&mut tl, 1, 2), Err(BarrierAckError::NoEpoch { barrier: 1 }));
        // A second ack of it closes nothing more.
        assert!(!tl.close_epoch_of_acked(1));
        // The next write goes into epoch 2, after the owed barrier.
        assert_eq!(tl.record(3, 16, 4096, 0), Ok(Some(1)));
        assert_eq!(tl.current_epoch(), 2);
        assert_eq!(tl.owed_barrier(), None);
        assert_eq!(released(&mut tl, 1, 2).unwrap(), [1, 2]);
        // Idle: the owed barrier is sent on its own.
        assert!(tl.close_epoch_of_acked(2));
        assert_eq!(tl.owed_barrier(), Some(2));
        assert_eq!(tl.owed_barrier(), None);
        assert_eq!(released(&mut tl, 2, 1).unwrap(), [3]);
        assert!(tl.is_empty());
    }

    #[test]
    fn closing_the_epoch_sends_an_owed_barrier_first() {
        let mut tl = log(8, 100);
        tl.record(1, 0, 4096, 0).unwrap();
        assert!(tl.close_epoch_of_acked(1));
        // The open epoch 2 is empty: closing gives the owed barrier only.
        assert_eq!(tl.close_epoch(), Some(1));
        assert_eq!(tl.close_epoch(), None);
        // An ack of an empty open epoch closes nothing.
        assert!(!tl.close_epoch_of_acked(2));
        // The connection's end forgets what was owed.
        tl.record(2, 8, 4096, 0).unwrap();
        assert!(tl.close_epoch_of_acked(2));
        tl.drain(|_| {});
        assert_eq!(tl.owed_barrier(), None);
    }

    #[test]
    fn full_log_refuses_until_an_ack_frees_slots() {
        let mut tl = log(3, 100);
        for id in 0..3 {
            tl.record(id, id * 8, 4096, 0).unwrap();
        }
        assert!(tl.is_full());
        assert_eq!(tl.record(9, 0, 4096, 0), Err(LogFull));
        assert_eq!(tl.close_epoch(), Some(1));
        assert_eq!(released(&mut tl, 1, 3).unwrap(), [0, 1, 2]);
        // The ring wraps around.
        for id in 10..13 {
            tl.record(id, 0, 4096, 0).unwrap();
        }
        tl.close_epoch();
        assert_eq!(released(&mut tl, 2, 3).unwrap(), [10, 11, 12]);
    }

    #[test]
    fn failed_writes_are_flagged_for_release() {
        let mut tl = log(4, 100);
        tl.record(7, 0, 4096, 0).unwrap();
        tl.record(8, 8, 4096, 0).unwrap();
        assert!(tl.mark_failed(8));
        assert!(!tl.mark_failed(99));
        tl.close_epoch();
        let mut failed = Vec::new();
        tl.barrier_acked(1, 2, |w| failed.push(w.failed)).unwrap();
        assert_eq!(failed, [false, true]);
    }

    #[test]
    fn a_local_failure_flags_every_overlapping_write() {
        let mut tl = log(8, 100);
        tl.record(1, 0, 4096, 0).unwrap(); // sectors 0..8
        tl.record(2, 8, 8192, 0).unwrap(); // 8..24
        tl.record(3, 24, 4096, 0).unwrap(); // 24..32
        assert_eq!(tl.mark_range_failed(16, 4096), 1); // 16..24
        assert_eq!(tl.mark_range_failed(4, 16 * 512), 2); // 4..20
        assert_eq!(tl.mark_range_failed(32, 4096), 0);
        tl.close_epoch();
        let mut failed = Vec::new();
        tl.barrier_acked(1, 3, |w| failed.push(w.failed)).unwrap();
        assert_eq!(failed, [true, true, false]);
    }

    #[test]
    fn drain_hands_back_everything_unacked() {
        let mut tl = log(4, 100);
        tl.record(1, 0, 4096, 0).unwrap();
        tl.close_epoch();
        tl.record(2, 8, 4096, 0).unwrap();
        let mut ids = Vec::new();
        tl.drain(|w| ids.push((w.block_id, w.epoch)));
        assert_eq!(ids, [(1, 1), (2, 2)]);
        assert!(tl.is_empty());
        assert_eq!(tl.close_epoch(), None);
    }

    #[test]
    fn oldest_is_the_head_until_its_epoch_is_acked() {
        let mut tl = log(4, 100);
        assert_eq!(tl.oldest(), None);
        tl.record(1, 0, 4096, 500).unwrap();
        tl.record(2, 8, 4096, 700).unwrap();
        assert_eq!(tl.oldest().map(|w| (w.block_id, w.sent_at_ms, w.epoch)), Some((1, 500, 1)));
        tl.close_epoch();
        tl.record(3, 16, 4096, 900).unwrap();
        released(&mut tl, 1, 2).unwrap();
        assert_eq!(tl.oldest().map(|w| (w.block_id, w.epoch)), Some((3, 2)));
    }

    #[test]
    fn no_slots_means_always_full() {
        let mut tl = TransferLog::new(Vec::new(), 100);
        assert!(tl.is_full());
        assert_eq!(tl.record(1, 0, 4096, 0), Err(LogFull));
        assert_eq!(tl.close_epoch(), None);
        assert_eq!(tl.barrier_acked(1, 0, |_| {}), Err(BarrierAckError::NoEpoch { barrier: 1 }));
    }

    #[test]
    fn epoch_numbers_wrap() {
        let mut tl = log(4, 100);
        tl.epoch = u32::MAX;
        tl.record(1, 0, 4096, 0).unwrap();
        assert_eq!(tl.close_epoch(), Some(u32::MAX));
        tl.record(2, 0, 4096, 0).unwrap();
        assert_eq!(tl.close_epoch(), Some(0));
        assert_eq!(released(&mut tl, u32::MAX, 1).unwrap(), [1]);
        assert_eq!(released(&mut tl, 0, 1).unwrap(), [2]);
    }

    #[test]
    fn sectors_in_flight_follow_the_log() {
        let mut tl = log(8, 100);
        tl.record(1, 0, 4096, 0).unwrap();
        tl.record(2, 8, 1 << 20, 0).unwrap();
        assert_eq!(tl.sectors_in_flight(), 8 + 2048);
        let b = tl.close_epoch().unwrap();
        tl.record(3, 0, 512, 0).unwrap();
        assert_eq!(released(&mut tl, b, 2).unwrap(), std::vec![1, 2]);
        assert_eq!(tl.sectors_in_flight(), 1);
        // A rejected ack changes nothing.
        assert!(released(&mut tl, b, 2).is_err());
        assert_eq!(tl.sectors_in_flight(), 1);
        tl.drain(|_| {});
        assert_eq!(tl.sectors_in_flight(), 0);
    }
}
