//! Replicated writes waiting for the peer's per-write ack (P_WRITE_ACK,
//! P_RECV_ACK, P_NEG_ACK), found by the block id the ack names (8.4 finds
//! the request through the pointer it sent as block id; we send sequence
//! numbers, which a hostile peer cannot turn into pointers).
//!
//! The slots are caller-provided and sized like the transfer log, so
//! tracking a write never allocates: the write path runs under memory
//! reclaim (swap on DRBD), where an allocation can fail, and a write that
//! is sent but not tracked would end in sync on one side only. Block ids
//! are consecutive and a write waits for its ack only while the transfer
//! log holds it, so id modulo the slot count is free for every new write
//! while the peer acks each write before the barrier ack of its epoch (as
//! 8.4 does: both go in order on the meta socket). A peer that releases an
//! epoch first leaves the slot taken: `insert` refuses, and the caller
//! treats that as the connection's failure.

use core::ops::DerefMut;

/// The slot of a new write is still held by an older one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotTaken {
    /// The block id of the write holding it.
    pub holder: u64,
}

/// Writes by block id, in the slots `S` (one `Option<(block_id, T)>` each).
pub struct AckSlots<S> {
    slots: S,
    len: usize,
}

impl<T, S: DerefMut<Target = [Option<(u64, T)>]>> AckSlots<S> {
    /// Empty, over `slots` (all `None`; with none, nothing can be inserted).
    pub fn new(slots: S) -> Self {
        let len = slots.iter().filter(|s| s.is_some()).count();
        Self { slots, len }
    }

    fn index(&self, block_id: u64) -> Option<usize> {
        let n = u64::try_from(self.slots.len()).ok()?;
        usize::try_from(block_id.checked_rem(n)?).ok()
    }

    /// Writes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No write waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tracks write `block_id` until its ack.
    pub fn insert(&mut self, block_id: u64, value: T) -> Result<(), SlotTaken> {
        let Some(slot) = self.index(block_id).and_then(|i| self.slots.get_mut(i)) else {
            return Err(SlotTaken { holder: block_id });
        };
        if let Some((holder, _)) = slot {
            return Err(SlotTaken { holder: *holder });
        }
        *slot = Some((block_id, value));
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// The ack for `block_id` is in: its write, if it was waiting.
    pub fn take(&mut self, block_id: u64) -> Option<T> {
        let slot = self.index(block_id).and_then(|i| self.slots.get_mut(i))?;
        if !matches!(slot, Some((id, _)) if *id == block_id) {
            return None;
        }
        let (_, value) = slot.take()?;
        self.len = self.len.saturating_sub(1);
        Some(value)
    }

    /// Whether write `block_id` waits for its ack.
    pub fn contains(&self, block_id: u64) -> bool {
        self.index(block_id)
            .and_then(|i| self.slots.get(i))
            .is_some_and(|s| matches!(s, Some((id, _)) if *id == block_id))
    }

    /// The writes waiting, in slot order.
    pub fn iter<'a>(&'a self) -> impl Iterator<Item = (u64, &'a T)>
    where
        T: 'a,
    {
        self.slots.iter().flatten().map(|(id, v)| (*id, v))
    }

    /// The slots, with whatever still waits in them.
    pub fn into_slots(self) -> S {
        self.slots
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn slots(n: usize) -> AckSlots<Vec<Option<(u64, u32)>>> {
        AckSlots::new(vec![None; n])
    }

    #[test]
    fn insert_take_by_block_id() {
        let mut s = slots(4);
        for id in 1..=4 {
            s.insert(id, id as u32 * 10).unwrap();
        }
        assert_eq!(s.len(), 4);
        assert!(s.contains(3));
        assert_eq!(s.take(3), Some(30));
        assert_eq!(s.take(3), None, "an ack twice finds nothing");
        assert!(!s.contains(3));
        assert_eq!(s.len(), 3);
        // Id 7 maps to 3's slot, free again.
        s.insert(7, 70).unwrap();
        assert_eq!(s.take(3), None, "a stale id does not take the new write");
        assert_eq!(s.take(7), Some(70));
    }

    #[test]
    fn a_slot_still_held_refuses() {
        let mut s = slots(4);
        s.insert(1, 1).unwrap();
        assert_eq!(s.insert(5, 5), Err(SlotTaken { holder: 1 }));
        assert_eq!(s.len(), 1);
        assert_eq!(s.take(1), Some(1));
        s.insert(5, 5).unwrap();
    }

    #[test]
    fn no_slots_no_tracking() {
        let mut s = slots(0);
        assert!(s.insert(1, 1).is_err());
        assert_eq!(s.take(1), None);
        assert!(!s.contains(1));
        assert!(s.is_empty());
    }

    #[test]
    fn consecutive_ids_within_the_window_never_collide() {
        // The transfer log admits at most n writes; acked in any order
        // within that window, every new id finds its slot free.
        let n = 64;
        let mut s = slots(n);
        let mut rng = crate::test_rng::XorShift(7);
        let mut waiting: Vec<u64> = Vec::new();
        let mut next = 1u64;
        for _ in 0..10_000 {
            let oldest = waiting.iter().copied().min().unwrap_or(next);
            if next - oldest < n as u64 && rng.below(3) != 0 {
                s.insert(next, next as u32).unwrap();
                waiting.push(next);
                next += 1;
            } else if !waiting.is_empty() {
                let i = rng.below(waiting.len());
                let id = waiting.swap_remove(i);
                assert_eq!(s.take(id), Some(id as u32));
            }
            assert_eq!(s.len(), waiting.len());
        }
        let mut left: Vec<u64> = s.iter().map(|(id, _)| id).collect();
        left.sort_unstable();
        waiting.sort_unstable();
        assert_eq!(left, waiting);
        assert_eq!(s.into_slots().len(), n);
    }
}
