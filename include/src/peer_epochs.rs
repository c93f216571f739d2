//! The Secondary's epochs whose P_BARRIER_ACK is still owed (8.4's list of
//! `drbd_epoch`s on the receiving side).
//!
//! Each replicated write is counted in the epoch that was open when it was
//! submitted; a P_BARRIER closes that epoch. An epoch's barrier ack may go
//! once every write of it and of the epochs before it has been answered,
//! oldest epoch first: barrier acks leave in the order of their barriers.
//! The receiver closes epochs and starts writes, the thread answering the
//! writes ends them and sends the barrier acks; the caller holds a lock
//! around both.

/// Epochs tracked at once: the open one and up to `EPOCHS - 1` closed ones
/// whose ack is owed (the receiver waits for room before closing another).
pub const EPOCHS: usize = 64;

/// A closed epoch: what its P_BARRIER_ACK says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClosedEpoch {
    /// The number its P_BARRIER carried.
    pub barrier: u32,
    /// The writes it had (P_DATA and P_TRIM, failed ones included).
    pub set_size: u32,
}

/// The epochs from the oldest one whose ack is owed to the open one.
///
/// # Invariants
/// `open.wrapping_sub(oldest) < EPOCHS`; the in-flight count of every epoch
/// outside `oldest..=open` (modulo `EPOCHS`) is 0.
#[derive(Debug)]
pub struct PeerEpochs {
    /// Writes submitted and not answered yet, by epoch number modulo
    /// `EPOCHS`.
    in_flight: [u32; EPOCHS],
    /// The closed epochs, by epoch number modulo `EPOCHS`.
    closed: [ClosedEpoch; EPOCHS],
    /// The oldest epoch whose ack is owed (`open` when none is).
    oldest: u32,
    /// The epoch new writes are counted in.
    open: u32,
}

impl Default for PeerEpochs {
    fn default() -> Self {
        Self::new()
    }
}

/// `close` found no room: `EPOCHS - 1` closed epochs still owe their ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

fn index(epoch: u32) -> usize {
    epoch as usize % EPOCHS
}

impl PeerEpochs {
    /// No epoch closed, nothing in flight.
    pub const fn new() -> Self {
        Self { in_flight: [0; EPOCHS], closed: [ClosedEpoch { barrier: 0, set_size: 0 }; EPOCHS], oldest: 0, open: 0 }
    }

    /// A write of the open epoch is submitted; the returned tag goes to
    /// [`Self::write_answered`] once it has been answered.
    pub fn write_started(&mut self) -> u32 {
        if let Some(n) = self.in_flight.get_mut(index(self.open)) {
            *n = n.saturating_add(1);
        }
        self.open
    }

    /// The write tagged `epoch` has been answered (its ack sent, or the
    /// connection is gone).
    pub fn write_answered(&mut self, epoch: u32) {
        if let Some(n) = self.in_flight.get_mut(index(epoch)) {
            *n = n.saturating_sub(1);
        }
    }

    /// Whether another epoch may be closed now.
    pub fn has_room(&self) -> bool {
        (self.open.wrapping_sub(self.oldest) as usize) < EPOCHS - 1
    }

    /// P_BARRIER: the open epoch is closed with `set_size` writes; new
    /// writes count in the next one.
    pub fn close(&mut self, barrier: u32, set_size: u32) -> Result<(), NoRoom> {
        if !self.has_room() {
            return Err(NoRoom);
        }
        if let Some(slot) = self.closed.get_mut(index(self.open)) {
            *slot = ClosedEpoch { barrier, set_size };
        }
        self.open = self.open.wrapping_add(1);
        Ok(())
    }

    /// Copies into `out` the closed epochs, oldest first, whose ack may go
    /// now (their writes and those of every epoch before are answered);
    /// returns how many. They stay owed until [`Self::acked`].
    pub fn ready(&self, out: &mut [ClosedEpoch]) -> usize {
        let mut n = 0;
        let mut epoch = self.oldest;
        while epoch != self.open && n < out.len() {
            if self.in_flight.get(index(epoch)).is_none_or(|&w| w != 0) {
                break;
            }
            if let (Some(slot), Some(closed)) = (out.get_mut(n), self.closed.get(index(epoch))) {
                *slot = *closed;
            }
            n = n.saturating_add(1);
            epoch = epoch.wrapping_add(1);
        }
        n
    }

    /// Whether some closed epoch's ack may go now.
    pub fn has_ready(&self) -> bool {
        self.ready(&mut [ClosedEpoch::default()]) > 0
    }

    /// The `n` oldest epochs' acks were sent (or the connection is gone);
    /// `n` is at most what [`Self::ready`] returned.
    pub fn acked(&mut self, n: usize) {
        for _ in 0..n {
            if self.oldest == self.open {
                break;
            }
            self.oldest = self.oldest.wrapping_add(1);
        }
    }

    /// Every closed epoch's ack was sent.
    pub fn all_acked(&self) -> bool {
        self.oldest == self.open
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects, clippy::cast_possible_truncation, clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use crate::test_rng::XorShift;
    use std::vec::Vec;

    #[test]
    fn an_epoch_is_ready_when_its_writes_are_answered() {
        let mut e = PeerEpochs::new();
        let a = e.write_started();
        let b = e.write_started();
        e.close(7, 2).unwrap();
        let c = e.write_started();
        e.close(8, 1).unwrap();
        let mut out = [ClosedEpoch::default(); 4];
        assert_eq!(e.ready(&mut out), 0);
        // The later epoch's write first: its ack must still wait.
        e.write_answered(c);
        assert_eq!(e.ready(&mut out), 0);
        e.write_answered(a);
        assert!(!e.has_ready());
        e.write_answered(b);
        assert_eq!(e.ready(&mut out), 2);
        assert_eq!(out[..2], [ClosedEpoch { barrier: 7, set_size: 2 }, ClosedEpoch { barrier: 8, set_size: 1 }]);
        e.acked(2);
        assert!(e.all_acked());
        assert_eq!(e.ready(&mut out), 0);
    }

    #[test]
    fn an_empty_epoch_is_ready_at_once_but_after_older_ones() {
        let mut e = PeerEpochs::new();
        let mut out = [ClosedEpoch::default(); 4];
        e.close(1, 0).unwrap();
        assert_eq!(e.ready(&mut out), 1);
        e.acked(1);
        let w = e.write_started();
        e.close(2, 1).unwrap();
        e.close(3, 0).unwrap();
        assert_eq!(e.ready(&mut out), 0);
        e.write_answered(w);
        assert_eq!(e.ready(&mut out), 2);
    }

    #[test]
    fn closing_waits_for_room() {
        let mut e = PeerEpochs::new();
        let w = e.write_started();
        for barrier in 0..(EPOCHS as u32 - 1) {
            e.close(barrier, 1).unwrap();
        }
        assert!(!e.has_room());
        assert_eq!(e.close(99, 0), Err(NoRoom));
        e.write_answered(w);
        let mut out = [ClosedEpoch::default(); EPOCHS];
        assert_eq!(e.ready(&mut out), EPOCHS - 1);
        e.acked(1);
        assert!(e.has_room());
        e.close(99, 0).unwrap();
    }

    /// Random writes, answers and barriers across the epoch numbers'
    /// wrap: acks leave in barrier order, never before the writes of
    /// their epoch and of every earlier epoch are answered, and all leave
    /// in the end.
    #[test]
    fn acks_follow_their_writes_in_order() {
        let mut rng = XorShift(0x5eed_e90c);
        for _ in 0..200 {
            let mut e = PeerEpochs::new();
            e.open = u32::MAX - 40;
            e.oldest = e.open;
            // (tag, barrier the write belongs to)
            let mut in_flight: Vec<(u32, u32)> = Vec::new();
            let mut next_barrier = 0u32;
            let mut epoch_writes = 0u32;
            let mut acked_barriers = Vec::new();
            for _ in 0..2000 {
                match rng.below(4) {
                    0 => {
                        in_flight.push((e.write_started(), next_barrier));
                        epoch_writes += 1;
                    }
                    1 if e.has_room() => {
                        e.close(next_barrier, epoch_writes).unwrap();
                        next_barrier += 1;
                        epoch_writes = 0;
                    }
                    2 if !in_flight.is_empty() => {
                        let i = rng.below(in_flight.len());
                        let (tag, _) = in_flight.swap_remove(i);
                        e.write_answered(tag);
                    }
                    _ => {
                        let mut out = [ClosedEpoch::default(); 8];
                        let n = e.ready(&mut out);
                        for c in &out[..n] {
                            assert!(in_flight.iter().all(|&(_, b)| b > c.barrier), "ack before its writes");
                            assert_eq!(c.barrier, acked_barriers.len() as u32, "acks out of order");
                            acked_barriers.push(c.barrier);
                        }
                        e.acked(n);
                    }
                }
            }
            for (tag, _) in in_flight.drain(..) {
                e.write_answered(tag);
            }
            let mut out = [ClosedEpoch::default(); EPOCHS];
            let n = e.ready(&mut out);
            e.acked(n);
            assert!(e.all_acked());
            assert_eq!(acked_barriers.len() + n, next_barrier as usize);
        }
    }
}
