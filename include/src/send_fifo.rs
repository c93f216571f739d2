//! Writes handed from the bio path to the connection's sender thread, in
//! submission order, in caller-provided slots.
//!
//! The slots are allocated once per connection, so queueing a write never
//! allocates: the bio path runs under memory reclaim (swap on DRBD), where
//! an allocation may fail, and a write neither queued nor marked would end
//! in sync on one side only. When the slots are full the submitter waits
//! for the sender (the same back pressure the transfer log applies).

use core::ops::DerefMut;

/// A first-in first-out ring of `T` over the slots `S` (all `None` while
/// free).
pub struct SendFifo<S> {
    slots: S,
    /// Index of the oldest entry.
    head: usize,
    len: usize,
}

impl<T, S: DerefMut<Target = [Option<T>]>> SendFifo<S> {
    /// Empty, over `slots` (with none, nothing can be queued). Entries the
    /// slots hold already are dropped.
    pub fn new(mut slots: S) -> Self {
        for slot in slots.iter_mut() {
            *slot = None;
        }
        Self { slots, head: 0, len: 0 }
    }

    /// Entries queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No room for another entry.
    pub fn is_full(&self) -> bool {
        self.len >= self.slots.len()
    }

    /// Appends `value`; hands it back when the slots are full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.slots.len();
        if self.len >= capacity {
            return Err(value);
        }
        // head < capacity and len < capacity: no overflow, no zero divisor.
        let tail = self.head.wrapping_add(self.len).checked_rem(capacity);
        match tail.and_then(|t| self.slots.get_mut(t)) {
            Some(slot) => {
                *slot = Some(value);
                self.len = self.len.saturating_add(1);
                Ok(())
            }
            None => Err(value),
        }
    }

    /// Takes the oldest entry.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots.get_mut(self.head)?.take();
        self.head = self.head.wrapping_add(1).checked_rem(self.slots.len()).unwrap_or(0);
        self.len = self.len.saturating_sub(1);
        value
    }

    /// The slots, with whatever is still queued in them (a connection's
    /// end hands them on, so that writes held for fencing stay held).
    pub fn into_slots(self) -> S {
        self.slots
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn fifo() -> SendFifo<Vec<Option<u32>>> {
        SendFifo::new(vec![None; 8])
    }

    #[test]
    fn keeps_order_across_the_wrap() {
        let mut q = fifo();
        for round in 0..5u32 {
            for i in 0..6 {
                assert_eq!(q.push(round * 10 + i), Ok(()));
            }
            for i in 0..6 {
                assert_eq!(q.pop(), Some(round * 10 + i));
            }
            assert!(q.is_empty());
        }
    }

    #[test]
    fn refuses_when_full_and_takes_again_after_a_pop() {
        let mut q = fifo();
        for i in 0..8 {
            assert_eq!(q.push(i), Ok(()));
        }
        assert!(q.is_full());
        assert_eq!(q.push(99), Err(99));
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.push(8), Ok(()));
        assert_eq!(q.len(), 8);
        let rest: [u32; 8] = core::array::from_fn(|_| q.pop().unwrap_or(u32::MAX));
        assert_eq!(rest, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn without_slots_nothing_is_queued() {
        let mut q: SendFifo<Vec<Option<u32>>> = SendFifo::new(Vec::new());
        assert_eq!(q.push(1), Err(1));
        assert!(q.is_full());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn hands_back_what_is_left() {
        let mut q = fifo();
        assert_eq!(q.push(1), Ok(()));
        assert_eq!(q.push(2), Ok(()));
        assert_eq!(q.pop(), Some(1));
        let slots = q.into_slots();
        assert_eq!(slots.iter().flatten().count(), 1);
        assert!(slots.contains(&Some(2)));
    }
}
