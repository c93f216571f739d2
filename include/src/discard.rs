//! How a discarded range reaches the backing disk (8.4's
//! `drbd_issue_discard_or_zero_out`): the whole chunks of the disk's
//! discard granularity inside it are discarded, in pieces the disk takes,
//! and the partial chunks at either edge are zeroed. A range smaller than
//! that, or a disk that cannot discard, is zeroed whole.
//!
//! A discard is only passed down where the disk reads back zeroes for
//! aligned discarded ranges (`discard-zeroes-if-aligned`, 8.4's
//! `can_do_reliable_discards`): both replicas must read the same after it.

/// What the backing disk says of its discards, in 512-byte sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscardLimits {
    /// The largest discard it takes (0: it cannot discard).
    pub max_sectors: u32,
    /// Its discard granularity (0 and 1 both mean any sector).
    pub granularity: u32,
    /// Where its chunks start, from sector 0 (`discard_alignment`).
    pub alignment: u32,
}

/// The largest discard request rdrbd issues (8.4 caps at 2 GiB too).
const MAX_PIECE_SECTORS: u32 = 1 << 22;

/// One step of a discard on the backing disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Zero these sectors (`blkdev_issue_zeroout`; the disk may unmap).
    Zero {
        /// The first sector.
        sector: u64,
        /// How many.
        sectors: u64,
    },
    /// Discard these sectors (`blkdev_issue_discard`).
    Discard {
        /// The first sector.
        sector: u64,
        /// How many.
        sectors: u64,
    },
}

/// The steps that discard `sectors` sectors from `start` on a disk with
/// `limits`, in ascending order and covering the range exactly once; with
/// `discard` false (the disk is not trusted to read back zeroes), one
/// zeroing step.
// Granularity is at least 1 (no division by zero), and every sum stays
// within `start + sectors`, a range of the device.
#[allow(clippy::arithmetic_side_effects)]
pub fn plan(start: u64, sectors: u64, limits: DiscardLimits, discard: bool) -> Plan {
    let granularity = u64::from(limits.granularity.max(1));
    let max = limits.max_sectors.min(MAX_PIECE_SECTORS);
    let max = u64::from(max) - u64::from(max) % granularity;
    let zero_all = Plan { head: None, middle: Middle { sector: start, sectors: 0, max_piece: 0 }, tail: zero(start, sectors) };
    if !discard || max == 0 || sectors < granularity {
        return zero_all;
    }
    let alignment = u64::from(limits.alignment) % granularity;
    // Sectors from `start` to the next chunk boundary (0 when on one).
    let offset = (start % granularity + granularity - alignment) % granularity;
    let head = if offset == 0 { 0 } else { granularity - offset };
    if head + granularity > sectors {
        // No whole chunk inside.
        return zero_all;
    }
    let whole = (sectors - head) / granularity * granularity;
    let middle_start = start + head;
    let tail_start = middle_start + whole;
    Plan {
        head: zero(start, head),
        middle: Middle { sector: middle_start, sectors: whole, max_piece: max },
        tail: zero(tail_start, start + sectors - tail_start),
    }
}

fn zero(sector: u64, sectors: u64) -> Option<Step> {
    (sectors > 0).then_some(Step::Zero { sector, sectors })
}

/// The discarded chunks, in pieces of at most `max_piece` sectors.
#[derive(Clone, Copy, Debug)]
struct Middle {
    sector: u64,
    sectors: u64,
    max_piece: u64,
}

/// The steps of one discard (an iterator: a large discard is many pieces).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    head: Option<Step>,
    middle: Middle,
    tail: Option<Step>,
}

impl Iterator for Plan {
    type Item = Step;

    // Pieces are taken from what is left of the middle.
    #[allow(clippy::arithmetic_side_effects)]
    fn next(&mut self) -> Option<Step> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.middle.sectors > 0 {
            let n = self.middle.sectors.min(self.middle.max_piece);
            let step = Step::Discard { sector: self.middle.sector, sectors: n };
            self.middle.sector += n;
            self.middle.sectors -= n;
            return Some(step);
        }
        self.tail.take()
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::test_rng::XorShift;

    fn limits(max_sectors: u32, granularity: u32, alignment: u32) -> DiscardLimits {
        DiscardLimits { max_sectors, granularity, alignment }
    }

    fn steps(start: u64, sectors: u64, l: DiscardLimits) -> Vec<Step> {
        plan(start, sectors, l, true).collect()
    }

    #[test]
    fn an_aligned_range_is_discarded_whole() {
        assert_eq!(steps(8, 16, limits(8192, 8, 0)), [Step::Discard { sector: 8, sectors: 16 }]);
    }

    #[test]
    fn partial_chunks_at_the_edges_are_zeroed() {
        // Chunks of 8 sectors: 3..8 and 24..27 are partial.
        assert_eq!(steps(3, 24, limits(8192, 8, 0)), [
            Step::Zero { sector: 3, sectors: 5 },
            Step::Discard { sector: 8, sectors: 16 },
            Step::Zero { sector: 24, sectors: 3 },
        ]);
    }

    #[test]
    fn chunks_start_at_the_alignment() {
        // Chunks of 8 starting at sector 2: 2, 10, 18, ...
        assert_eq!(steps(2, 20, limits(8192, 8, 2)), [
            Step::Discard { sector: 2, sectors: 16 },
            Step::Zero { sector: 18, sectors: 4 },
        ]);
    }

    #[test]
    fn without_a_whole_chunk_or_discard_support_the_range_is_zeroed() {
        let zeroed = [Step::Zero { sector: 3, sectors: 12 }];
        // 3..15 holds no whole chunk of 8 (8..16 ends past it).
        assert_eq!(steps(3, 12, limits(8192, 8, 0)), zeroed);
        assert_eq!(steps(3, 12, limits(0, 1, 0)), zeroed);
        assert_eq!(plan(3, 12, limits(8192, 1, 0), false).collect::<Vec<_>>(), zeroed);
        // Smaller than one chunk.
        assert_eq!(steps(0, 4, limits(8192, 8, 0)), [Step::Zero { sector: 0, sectors: 4 }]);
        // A disk whose largest discard is below its granularity.
        assert_eq!(steps(0, 64, limits(7, 8, 0)), [Step::Zero { sector: 0, sectors: 64 }]);
    }

    #[test]
    fn large_discards_go_in_pieces_of_whole_chunks() {
        // At most 20 sectors, chunks of 8: pieces of 16.
        assert_eq!(steps(0, 40, limits(20, 8, 0)), [
            Step::Discard { sector: 0, sectors: 16 },
            Step::Discard { sector: 16, sectors: 16 },
            Step::Discard { sector: 32, sectors: 8 },
        ]);
    }

    #[test]
    fn granularity_zero_or_one_means_any_sector() {
        for g in [0, 1] {
            assert_eq!(steps(3, 5, limits(8192, g, 0)), [Step::Discard { sector: 3, sectors: 5 }]);
        }
        assert_eq!(steps(0, 0, limits(8192, 1, 0)), []);
    }

    /// Any range on any disk: the steps cover it exactly once, in order;
    /// every discard is whole chunks within the disk's limit; zeroing is
    /// only the partial chunks at the edges (or all of it).
    #[test]
    fn random_ranges_are_covered_exactly() {
        let mut rng = XorShift(0x5eed_d15c);
        let mut below = |n: u64| rng.below(n as usize) as u64;
        for _ in 0..20_000 {
            let granularity = [0, 1, 2, 8, 64, 2048][below(6) as usize];
            let g = u64::from(granularity).max(1);
            let alignment = below(g.max(2) * 2) as u32;
            let max_sectors = [0, 1, 7, 8, 24, 8192, u32::MAX][below(7) as usize];
            let l = limits(max_sectors, granularity, alignment);
            let start = below(1 << 20);
            let sectors = if below(2) == 0 { below(64) } else { below(1 << 16) };
            let mut at = start;
            let mut discarded = 0;
            for step in plan(start, sectors, l, true) {
                match step {
                    Step::Zero { sector, sectors: n } | Step::Discard { sector, sectors: n } => {
                        assert_eq!(sector, at, "{l:?} {start}+{sectors}: {step:?}");
                        assert!(n > 0);
                        at += n;
                    }
                }
                if let Step::Discard { sector, sectors: n } = step {
                    let a = u64::from(alignment) % g;
                    assert_eq!((sector + g - a) % g, 0, "{l:?}: {step:?} not on a chunk");
                    assert_eq!(n % g, 0);
                    assert!(n <= u64::from(max_sectors.min(MAX_PIECE_SECTORS)));
                    discarded += n;
                }
            }
            assert_eq!(at, start + sectors, "{l:?} {start}+{sectors}");
            // What is zeroed is less than a chunk at each edge, unless the
            // whole range is.
            if discarded > 0 {
                assert!(sectors - discarded < 2 * g);
            }
        }
    }
}
