//! The activity log's in-memory active set: which 4 MiB extents are "hot"
//! (may be written without a new AL transaction), with least-recently-used
//! replacement of idle extents, and the updates the next transaction must
//! record (C DRBD's `lru_cache` as used by `drbd_al_begin_io`).
//!
//! Storage is the caller's (`&mut [Slot]`, one per `al-extents`), so the
//! kernel can allocate it once at attach. Reference counts are plain
//! numbers here; the kernel keeps them in atomics beside the slots and
//! passes them in through [`SlotUse`].

use super::al::AL_FREE_EXTENT;

/// One slot of the active set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The extent in this slot, or [`AL_FREE_EXTENT`].
    pub extent: u32,
    /// When the slot was last used (a counter the caller advances).
    pub last_used: u64,
}

impl Slot {
    /// An empty slot.
    pub const FREE: Self = Self { extent: AL_FREE_EXTENT, last_used: 0 };
}

/// Whether a slot may be given to another extent: only when no write to
/// its extent is in flight.
pub trait SlotUse {
    /// Writes in flight to the extent in slot `slot`.
    fn in_flight(&self, slot: usize) -> u32;
}

/// What activating a range of extents needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Every extent was hot: slots `first_slot` and `second_slot` (the
    /// latter for a range spanning two extents) are now in use.
    Hot {
        /// Slot of the first extent.
        first_slot: usize,
        /// Slot of the second extent, if the range spans two.
        second_slot: Option<usize>,
    },
    /// Slots were (re)assigned; `updates` entries of the update buffer
    /// describe them and must be committed in an AL transaction (and the
    /// bitmap of `evicted` extents written) before the data write. The
    /// slots are already assigned as in `Hot`.
    Commit {
        /// Slot of the first extent.
        first_slot: usize,
        /// Slot of the second extent, if the range spans two.
        second_slot: Option<usize>,
        /// Number of valid entries in the update buffer.
        updates: usize,
    },
    /// No idle slot to evict: retry after some writes complete.
    Busy,
    /// The range covers more than two extents (writes never do: the
    /// device's limits keep a bio within 2 extents).
    TooLarge,
}

/// Finds the slot holding `extent`.
pub fn find(slots: &[Slot], extent: u32) -> Option<usize> {
    slots.iter().position(|s| s.extent == extent)
}

/// The idle slot to reuse: a free one, else the least recently used one
/// without writes in flight. `skip` is a slot just assigned in this call.
fn victim(slots: &[Slot], usage: &impl SlotUse, skip: Option<usize>) -> Option<usize> {
    let idle = |&(i, _): &(usize, &Slot)| Some(i) != skip && usage.in_flight(i) == 0;
    if let Some((i, _)) = slots.iter().enumerate().filter(idle).find(|(_, s)| s.extent == AL_FREE_EXTENT) {
        return Some(i);
    }
    slots.iter().enumerate().filter(idle).min_by_key(|(_, s)| s.last_used).map(|(i, _)| i)
}

/// Makes extents `first..=last` hot at time `now`, recording needed slot
/// changes as (slot, extent) in `updates` and the extents pushed out in
/// `evicted` (both at least 2 long). The caller then raises the in-flight
/// count of the returned slots.
pub fn activate(
    slots: &mut [Slot],
    usage: &impl SlotUse,
    now: u64,
    first: u32,
    last: u32,
    updates: &mut [(u16, u32)],
    evicted: &mut [u32],
) -> Activation {
    let span = last.checked_sub(first);
    let second = match span {
        Some(0) => None,
        Some(1) => Some(last),
        _ => return Activation::TooLarge,
    };
    // Enough idle slots for every cold extent before any slot changes: a
    // change made and then given up (Busy for the second extent) would
    // leave an extent hot in memory that no transaction records.
    let hot_first = find(slots, first);
    let hot_second = second.and_then(|e| find(slots, e));
    let needed = usize::from(hot_first.is_none()).saturating_add(usize::from(second.is_some() && hot_second.is_none()));
    if needed > 0 {
        let idle = slots
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != hot_first && Some(i) != hot_second && usage.in_flight(i) == 0)
            .take(needed)
            .count();
        if idle < needed {
            return Activation::Busy;
        }
    }
    let mut changes = 0usize;
    let mut assign = |extent: u32, skip: Option<usize>, slots: &mut [Slot]| -> Option<usize> {
        if let Some(i) = find(slots, extent) {
            if let Some(s) = slots.get_mut(i) {
                s.last_used = now;
            }
            return Some(i);
        }
        let i = victim(slots, usage, skip)?;
        let slot = slots.get_mut(i)?;
        let old = core::mem::replace(slot, Slot { extent, last_used: now });
        let slot_nr = u16::try_from(i).ok()?;
        *updates.get_mut(changes)? = (slot_nr, extent);
        *evicted.get_mut(changes)? = old.extent;
        changes = changes.checked_add(1)?;
        Some(i)
    };
    // The first extent's victim is not the second extent's hot slot.
    let Some(first_slot) = assign(first, hot_second, slots) else {
        return Activation::Busy;
    };
    let second_slot = match second {
        None => None,
        Some(extent) => match assign(extent, Some(first_slot), slots) {
            Some(i) => Some(i),
            None => return Activation::Busy,
        },
    };
    if changes == 0 {
        Activation::Hot { first_slot, second_slot }
    } else {
        Activation::Commit { first_slot, second_slot, updates: changes }
    }
}

/// The context window of a transaction: the extents of the slots from
/// `start` on, as many as fit `out` (the caller advances `start` from
/// transaction to transaction, wrapping to 0 past the end, so consecutive
/// transactions record the whole set). Returns how many were written.
pub fn context_window(slots: &[Slot], start: usize, out: &mut [u32]) -> usize {
    out.iter_mut().zip(slots.iter().skip(start)).map(|(o, s)| *o = s.extent).count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    struct Refs([u32; 4]);
    impl SlotUse for Refs {
        fn in_flight(&self, slot: usize) -> u32 {
            self.0[slot]
        }
    }

    fn run(slots: &mut [Slot], refs: &Refs, now: u64, first: u32, last: u32) -> (Activation, [(u16, u32); 2], [u32; 2]) {
        let mut updates = [(0, 0); 2];
        let mut evicted = [0; 2];
        let a = activate(slots, refs, now, first, last, &mut updates, &mut evicted);
        (a, updates, evicted)
    }

    #[test]
    fn cold_extent_needs_commit_then_is_hot() {
        let mut slots = [Slot::FREE; 4];
        let refs = Refs([0; 4]);
        let (a, up, ev) = run(&mut slots, &refs, 1, 7, 7);
        assert_eq!(a, Activation::Commit { first_slot: 0, second_slot: None, updates: 1 });
        assert_eq!(up[0], (0, 7));
        assert_eq!(ev[0], AL_FREE_EXTENT);
        let (a, _, _) = run(&mut slots, &refs, 2, 7, 7);
        assert_eq!(a, Activation::Hot { first_slot: 0, second_slot: None });
    }

    #[test]
    fn evicts_least_recently_used_idle_slot() {
        let mut slots = [Slot::FREE; 4];
        let mut refs = Refs([0; 4]);
        for (t, e) in [10u32, 11, 12, 13].iter().enumerate() {
            run(&mut slots, &refs, t as u64, *e, *e);
        }
        refs.0[0] = 1; // extent 10 (oldest) has a write in flight
        let (a, up, ev) = run(&mut slots, &refs, 9, 20, 20);
        assert_eq!(a, Activation::Commit { first_slot: 1, second_slot: None, updates: 1 });
        assert_eq!((up[0], ev[0]), ((1, 20), 11));
    }

    #[test]
    fn busy_changes_nothing() {
        // Slots 0-2 in use, slot 3 idle: a write over two cold extents
        // finds one idle slot, not two, and must leave the set as it was.
        let mut slots = [Slot::FREE; 4];
        let mut refs = Refs([0; 4]);
        for (i, e) in [1, 2, 3, 4].into_iter().enumerate() {
            assert!(matches!(run(&mut slots, &refs, i as u64 + 1, e, e).0, Activation::Commit { .. }));
        }
        refs.0 = [1, 1, 1, 0];
        let before = slots;
        assert_eq!(run(&mut slots, &refs, 9, 7, 8).0, Activation::Busy);
        assert_eq!(slots, before);
        // A cold extent beside a hot one: the only idle slot is the hot
        // one's, which must not be taken for the cold one.
        refs.0 = [0, 1, 1, 1];
        assert_eq!(run(&mut slots, &refs, 10, 0, 1).0, Activation::Busy);
        assert_eq!(slots, before);
        refs.0 = [0, 1, 1, 0];
        let (a, up, ev) = run(&mut slots, &refs, 11, 0, 1);
        assert_eq!(a, Activation::Commit { first_slot: 3, second_slot: Some(0), updates: 1 });
        assert_eq!((up[0], ev[0]), ((3, 0), 4));
    }

    #[test]
    fn two_extents_and_busy_and_too_large() {
        let mut slots = [Slot::FREE; 2];
        let mut refs = Refs([0; 4]);
        let (a, _, _) = run(&mut slots, &refs, 1, 3, 4);
        assert_eq!(a, Activation::Commit { first_slot: 0, second_slot: Some(1), updates: 2 });
        refs.0[0] = 1;
        refs.0[1] = 1;
        assert_eq!(run(&mut slots, &refs, 2, 9, 9).0, Activation::Busy);
        assert_eq!(run(&mut slots, &refs, 2, 9, 11).0, Activation::TooLarge);
        assert_eq!(run(&mut slots, &refs, 2, 9, 8).0, Activation::TooLarge);
    }

    #[test]
    fn context_window_stops_at_end() {
        let slots = [Slot { extent: 5, last_used: 0 }, Slot::FREE, Slot { extent: 9, last_used: 0 }];
        let mut out = [0u32; 8];
        assert_eq!(context_window(&slots, 1, &mut out), 2);
        assert_eq!(&out[..2], &[AL_FREE_EXTENT, 9]);
    }
}
