//! DRBD's out-of-sync bitmap (`drbd_bitmap.c`): one bit per 4 KiB block of
//! the device, bit i covering sectors `[8i, 8i + 8)`, kept in 64-bit words.
//! On disk and on the wire the words are little-endian, so bit i is bit
//! `i % 8` of byte `i / 8` on every architecture. Bits past the device end
//! stay zero.
//!
//! [`Bitmap`] works on a caller-provided `&mut [u64]` (no allocation); the
//! free functions map sectors, bits and activity log extents.

use super::md::{AL_EXTENT_SECT, BM_SECT_PER_BIT};

/// Bits one activity log extent (4 MiB) covers.
pub const BM_BITS_PER_AL_EXTENT: u64 = AL_EXTENT_SECT / BM_SECT_PER_BIT;
/// Bytes of bitmap one activity log extent covers.
pub const BM_BYTES_PER_AL_EXTENT: u64 = BM_BITS_PER_AL_EXTENT / 8;
/// Bits one resync extent (16 MiB, `BM_EXT_SIZE`) covers.
pub const BM_BITS_PER_EXT: u64 = 4096;

/// Bits of a device of `capacity` sectors: one per started 4 KiB.
pub fn bits_for_sectors(capacity: u64) -> u64 {
    capacity.div_ceil(BM_SECT_PER_BIT)
}

/// 64-bit words holding `bits` bits.
pub fn words_for_bits(bits: u64) -> u64 {
    bits.div_ceil(64)
}

/// The bit covering `sector` (`BM_SECT_TO_BIT`).
pub fn sector_to_bit(sector: u64) -> u64 {
    sector / BM_SECT_PER_BIT
}

/// The first sector bit `bit` covers (`BM_BIT_TO_SECT`), saturating.
pub fn bit_to_sector(bit: u64) -> u64 {
    bit.saturating_mul(BM_SECT_PER_BIT)
}

/// The activity log extent containing `sector`.
pub fn sector_to_al_extent(sector: u64) -> u64 {
    sector / AL_EXTENT_SECT
}

/// The whole activity log extents a request of `size` bytes at `sector`
/// touches, as (first sector, bytes): what a resync read locks against
/// application writes, so that the writes already in flight in those
/// extents can drain while no new ones enter (8.4's `drbd_rs_begin_io`
/// blocks writes to the resync extent before it waits). `size` 0 counts
/// as one sector.
pub fn al_extent_span(sector: u64, size: u32) -> (u64, u64) {
    let last = sector.saturating_add(u64::from(size).div_ceil(512).saturating_sub(1));
    let first_sector = sector_to_al_extent(sector).saturating_mul(AL_EXTENT_SECT);
    let end_sector = sector_to_al_extent(last).saturating_add(1).saturating_mul(AL_EXTENT_SECT);
    (first_sector, end_sector.saturating_sub(first_sector).saturating_mul(512))
}

/// First and last bit (inclusive) of activity log extent `extent`.
pub fn al_extent_bits(extent: u32) -> (u64, u64) {
    let first = u64::from(extent).saturating_mul(BM_BITS_PER_AL_EXTENT);
    (first, first.saturating_add(BM_BITS_PER_AL_EXTENT - 1))
}

/// 64-bit words of bitmap one activity log extent covers.
pub const WORDS_PER_AL_EXTENT: usize = (BM_BITS_PER_AL_EXTENT / 64) as usize;

/// Which activity log extents of a run of bitmap words are all clear: bit
/// i of the answer for words `16i..16i + 16` (32 extents for one 4 KiB
/// on-disk block). An extent whose bits are clear in memory and were clear
/// in the block last written needs no bitmap write when it leaves the
/// activity log.
pub fn clear_extents(words: impl IntoIterator<Item = u64>) -> u32 {
    let mut any_set = 0u32;
    for (i, w) in words.into_iter().enumerate().take(32 * WORDS_PER_AL_EXTENT) {
        if w != 0 {
            any_set |= 1 << (i / WORDS_PER_AL_EXTENT);
        }
    }
    !any_set
}

/// The bits (first, last, inclusive) a device growing from `old_sectors`
/// to `new_sectors` marks out of sync (`drbd_bm_resize` with
/// `set_new_bits`): every block of the new area, including the block the
/// old end falls in when that end is not 4 KiB aligned (its tail is new).
/// `None` when the device does not grow.
pub fn grown_bits(old_sectors: u64, new_sectors: u64) -> Option<(u64, u64)> {
    if new_sectors <= old_sectors {
        return None;
    }
    let first = sector_to_bit(old_sectors);
    let last = bits_for_sectors(new_sectors).checked_sub(1)?;
    (first <= last).then_some((first, last))
}

/// Mask of bits `lo..=hi` (both < 64) of a word.
fn word_mask(lo: u64, hi: u64) -> u64 {
    let upper = u64::MAX
        .checked_shr(63u32.saturating_sub(hi as u32))
        .unwrap_or(0);
    let lower = u64::MAX.checked_shl(lo as u32).unwrap_or(0);
    upper & lower
}

/// The (word index, mask) pairs covering bits `first..=last` of a bitmap
/// of `bits` bits, clipped to its end.
fn word_ranges(bits: u64, first: u64, last: u64) -> impl Iterator<Item = (usize, u64)> {
    let last = bits.checked_sub(1).map(|end| last.min(end));
    // (1, 0): nothing to cover.
    let (start, end) = last
        .filter(|&l| first <= l)
        .map_or((1, 0), |l| (first / 64, l / 64));
    (start..=end).filter_map(move |index| {
        let last = last?;
        let lo = if index == first / 64 { first % 64 } else { 0 };
        let hi = if index == last / 64 { last % 64 } else { 63 };
        Some((usize::try_from(index).ok()?, word_mask(lo, hi)))
    })
}

/// The bitmap of one device over borrowed words.
#[derive(Debug)]
pub struct Bitmap<'a> {
    words: &'a mut [u64],
    capacity: u64,
    bits: u64,
}

impl<'a> Bitmap<'a> {
    /// A bitmap for a device of `capacity_sectors`, if `words` holds
    /// enough bits. The words are used as they are; see
    /// [`Self::clear_surplus`].
    pub fn new(words: &'a mut [u64], capacity_sectors: u64) -> Option<Self> {
        let bits = bits_for_sectors(capacity_sectors);
        let have = u64::try_from(words.len()).ok()?;
        (have >= words_for_bits(bits)).then_some(Self {
            words,
            capacity: capacity_sectors,
            bits,
        })
    }

    /// The device size in sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.capacity
    }

    /// Number of bits that describe the device.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// The words, in host order.
    pub fn words(&self) -> &[u64] {
        self.words
    }

    /// Whether bit `bit` is set (false past the end).
    pub fn test(&self, bit: u64) -> bool {
        bit < self.bits && self.word(bit / 64) & (1 << (bit % 64)) != 0
    }

    fn word(&self, index: u64) -> u64 {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.words.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Applies `op(word, mask)` to the words covering bits `first..=last`
    /// (clipped to the device) and sums what it returns.
    fn for_range(
        &mut self,
        first: u64,
        last: u64,
        mut op: impl FnMut(&mut u64, u64) -> u64,
    ) -> u64 {
        let mut total = 0u64;
        for (index, mask) in word_ranges(self.bits, first, last) {
            if let Some(w) = self.words.get_mut(index) {
                total = total.saturating_add(op(w, mask));
            }
        }
        total
    }

    /// Sets bits `first..=last`; returns how many were clear before.
    pub fn set_bits(&mut self, first: u64, last: u64) -> u64 {
        self.for_range(first, last, |w, m| {
            let newly = u64::from((!*w & m).count_ones());
            *w |= m;
            newly
        })
    }

    /// Clears bits `first..=last`; returns how many were set before.
    pub fn clear_bits(&mut self, first: u64, last: u64) -> u64 {
        self.for_range(first, last, |w, m| {
            let was = u64::from((*w & m).count_ones());
            *w &= !m;
            was
        })
    }

    /// Number of set bits in `first..=last`.
    pub fn count_bits(&self, first: u64, last: u64) -> u64 {
        word_ranges(self.bits, first, last)
            .map(|(i, m)| u64::from((self.words.get(i).copied().unwrap_or(0) & m).count_ones()))
            .sum()
    }

    /// Number of set bits of the device.
    pub fn count(&self) -> u64 {
        let end = usize::try_from(words_for_bits(self.bits)).unwrap_or(usize::MAX);
        let words = self.words.get(..end).unwrap_or(self.words);
        words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The first set bit at or after `from`.
    pub fn find_next_set(&self, from: u64) -> Option<u64> {
        let mut index = from / 64;
        let mut word = self.word(index) & u64::MAX.checked_shl((from % 64) as u32).unwrap_or(0);
        while index < words_for_bits(self.bits) {
            if word != 0 {
                let bit = index
                    .saturating_mul(64)
                    .saturating_add(u64::from(word.trailing_zeros()));
                return (bit < self.bits).then_some(bit);
            }
            index = index.saturating_add(1);
            word = self.word(index);
        }
        None
    }

    /// Marks `nr_sectors` from `sector` out of sync: every 4 KiB block the
    /// range touches (`drbd_set_out_of_sync`). Returns bits newly set.
    pub fn set_out_of_sync(&mut self, sector: u64, nr_sectors: u64) -> u64 {
        if nr_sectors == 0 || sector >= self.capacity {
            return 0;
        }
        let end = sector
            .saturating_add(nr_sectors.saturating_sub(1))
            .min(self.capacity.saturating_sub(1));
        self.set_bits(sector_to_bit(sector), sector_to_bit(end))
    }

    /// Marks `nr_sectors` from `sector` in sync: only 4 KiB blocks the range
    /// covers completely, where a range reaching the device end covers its
    /// partial last block (`drbd_set_in_sync`). Returns bits cleared.
    pub fn set_in_sync(&mut self, sector: u64, nr_sectors: u64) -> u64 {
        if nr_sectors == 0 || sector >= self.capacity {
            return 0;
        }
        let device_end = self.capacity.saturating_sub(1);
        let end = sector
            .saturating_add(nr_sectors.saturating_sub(1))
            .min(device_end);
        let Some(end_block_start) = end.checked_sub(BM_SECT_PER_BIT - 1) else {
            return 0;
        };
        let last = if end == device_end {
            sector_to_bit(end)
        } else {
            sector_to_bit(end_block_start)
        };
        let first = sector_to_bit(sector.saturating_add(BM_SECT_PER_BIT - 1));
        self.clear_bits(first, last)
    }

    /// Sets all bits of activity log extent `extent` (what apply-al does to
    /// a hot extent); returns bits newly set.
    pub fn set_al_extent(&mut self, extent: u32) -> u64 {
        let (first, last) = al_extent_bits(extent);
        self.set_bits(first, last)
    }

    /// Clears the bits past the device end in the last word and any words
    /// after it (`bm_clear_surplus`).
    pub fn clear_surplus(&mut self) {
        let used = usize::try_from(words_for_bits(self.bits)).unwrap_or(usize::MAX);
        if let Some(rest) = self.words.get_mut(used..) {
            rest.fill(0);
        }
        let tail = self.bits % 64;
        if tail != 0 {
            if let Some(w) = used.checked_sub(1).and_then(|i| self.words.get_mut(i)) {
                *w &= word_mask(0, tail.saturating_sub(1));
            }
        }
    }

    /// Loads little-endian on-disk words into the bitmap starting at word
    /// `first_word`; returns the number of words loaded (stops at the end
    /// of either side, ignores a trailing partial word).
    pub fn load_le(&mut self, first_word: usize, bytes: &[u8]) -> usize {
        let words = self.words.get_mut(first_word..).unwrap_or(&mut []);
        words
            .iter_mut()
            .zip(bytes.chunks_exact(8))
            .map(|(w, b)| *w = b.first_chunk().map_or(0, |b| u64::from_le_bytes(*b)))
            .count()
    }

    /// Stores words from `first_word` on as little-endian bytes into `out`;
    /// returns the number of words stored.
    pub fn store_le(&self, first_word: usize, out: &mut [u8]) -> usize {
        let words = self.words.get(first_word..).unwrap_or(&[]);
        words
            .iter()
            .zip(out.chunks_exact_mut(8))
            .map(|(w, b)| b.copy_from_slice(&w.to_le_bytes()))
            .count()
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    #[test]
    fn clear_extents_tells_which_extents_have_no_bit_set() {
        let mut block = [0u64; 512];
        assert_eq!(clear_extents(block), u32::MAX);
        // A bit in word 17: extent 1; in word 511: extent 31.
        block[17] = 1 << 63;
        block[511] = 1;
        assert_eq!(clear_extents(block), !(1 << 1 | 1 << 31));
        // A shorter run (the device's last block): the missing words count
        // as clear.
        assert_eq!(clear_extents([0u64, 0, 4]), u32::MAX - 1);
    }

    #[test]
    fn al_extent_span_covers_whole_extents() {
        const EXT: u64 = AL_EXTENT_SECT;
        // Inside one extent: that extent.
        assert_eq!(al_extent_span(8, 4096), (0, EXT * 512));
        assert_eq!(al_extent_span(EXT + 16, 128 << 10), (EXT, EXT * 512));
        // Ending exactly at an extent's end: still one.
        assert_eq!(al_extent_span(EXT - 8, 4096), (0, EXT * 512));
        // Across a border: both.
        assert_eq!(al_extent_span(EXT - 8, 8192), (0, 2 * EXT * 512));
        // Size 0: the extent of the sector.
        assert_eq!(al_extent_span(3 * EXT, 0), (3 * EXT, EXT * 512));
    }

    #[test]
    fn grown_bits_cover_the_new_area() {
        assert_eq!(grown_bits(1000, 1000), None);
        assert_eq!(grown_bits(1000, 800), None);
        // 4 KiB aligned: exactly the new blocks.
        assert_eq!(grown_bits(8 * 100, 8 * 150), Some((100, 149)));
        // The old end inside block 124: that block's tail is new.
        assert_eq!(grown_bits(1000, 1600), Some((125, 199)));
        assert_eq!(grown_bits(1001, 1600), Some((125, 199)));
        assert_eq!(grown_bits(0, 9), Some((0, 1)));
    }

    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use crate::test_rng::XorShift;

    #[test]
    fn geometry() {
        assert_eq!(bits_for_sectors(0), 0);
        assert_eq!(bits_for_sectors(9), 2);
        assert_eq!(words_for_bits(65), 2);
        assert_eq!(al_extent_bits(2), (2048, 3071));
        assert_eq!(sector_to_al_extent(8192 * 3 + 5), 3);
        assert_eq!(BM_BYTES_PER_AL_EXTENT, 128);
        assert_eq!(bit_to_sector(3), 24);
        assert_eq!(word_mask(0, 63), u64::MAX);
        assert_eq!(word_mask(4, 7), 0xf0);
        assert!(Bitmap::new(&mut [0; 1], 8 * 65).is_none());
    }

    #[test]
    fn on_disk_order_is_little_endian() {
        let mut words = [0u64; 2];
        let mut bm = Bitmap::new(&mut words, 1024).unwrap();
        bm.set_bits(0, 0);
        bm.set_bits(9, 9);
        bm.set_bits(127, 127);
        let mut out = [0u8; 16];
        assert_eq!(bm.store_le(0, &mut out), 2);
        assert_eq!(out, [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
        let mut other = [0u64; 2];
        let mut again = Bitmap::new(&mut other, 1024).unwrap();
        assert_eq!(again.load_le(0, &out), 2);
        assert_eq!(again.words(), &[(1 << 9) | 1, 1 << 63]);
        assert_eq!(again.load_le(1, &out[..15]), 1);
    }

    #[test]
    fn sync_rounding_follows_the_kernel() {
        let mut words = [0u64; 1];
        // 20 sectors: bits 0, 1 and a partial bit 2.
        let mut bm = Bitmap::new(&mut words, 20).unwrap();
        assert_eq!(bm.bits(), 3);
        assert_eq!(bm.set_out_of_sync(7, 2), 2); // touches blocks 0 and 1
        assert_eq!(bm.set_out_of_sync(100, 8), 0); // past the end
        assert_eq!(bm.set_out_of_sync(19, 100), 1); // clipped, block 2
        assert_eq!(bm.set_in_sync(1, 14), 0); // covers no block completely
        assert_eq!(bm.set_in_sync(8, 8), 1); // block 1
        assert_eq!(bm.set_in_sync(16, 4), 1); // partial last block counts
        assert_eq!(bm.set_in_sync(0, 7), 0);
        assert_eq!(bm.count(), 1);
        assert!(bm.test(0) && !bm.test(1) && !bm.test(2) && !bm.test(3));
    }

    #[test]
    fn surplus_and_find() {
        let mut words = [u64::MAX; 3];
        let mut bm = Bitmap::new(&mut words, 8 * 70).unwrap();
        bm.clear_surplus();
        assert_eq!(bm.words(), &[u64::MAX, 0x3f, 0]);
        assert_eq!(bm.count(), 70);
        assert_eq!(bm.find_next_set(64), Some(64));
        bm.clear_bits(0, 68);
        assert_eq!(bm.find_next_set(0), Some(69));
        assert_eq!(bm.find_next_set(70), None);
        assert_eq!(bm.set_al_extent(0), 69);
        assert_eq!(bm.count(), 70);
    }

    /// Property: range operations agree with a bit-by-bit model.
    #[test]
    fn ranges_match_a_bool_model() {
        let mut rng = XorShift(0x5151_5151_abcd_0001);
        for _ in 0..300 {
            let capacity = rng.next() % 5000 + 1;
            let bits = bits_for_sectors(capacity) as usize;
            let mut words = vec![0u64; words_for_bits(bits as u64) as usize];
            let mut model = vec![false; bits];
            let mut bm = Bitmap::new(&mut words, capacity).unwrap();
            for _ in 0..30 {
                let a = rng.next() % (bits as u64 + 70);
                let b = a + rng.next() % 200;
                let in_range = |i: usize| (i as u64) >= a && (i as u64) <= b;
                let before: Vec<bool> = model.clone();
                match rng.next() % 5 {
                    0 => {
                        let n = bm.set_bits(a, b);
                        let want = (0..bits).filter(|&i| in_range(i) && !before[i]).count();
                        assert_eq!(n as usize, want);
                        (0..bits)
                            .filter(|&i| in_range(i))
                            .for_each(|i| model[i] = true);
                    }
                    1 => {
                        let n = bm.clear_bits(a, b);
                        let want = (0..bits).filter(|&i| in_range(i) && before[i]).count();
                        assert_eq!(n as usize, want);
                        (0..bits)
                            .filter(|&i| in_range(i))
                            .for_each(|i| model[i] = false);
                    }
                    2 => {
                        let n = bm.count_bits(a, b);
                        assert_eq!(
                            n as usize,
                            (0..bits).filter(|&i| in_range(i) && before[i]).count()
                        );
                    }
                    3 => {
                        // Out of sync by sectors: model each touched block.
                        let (s, len) = (a * 3, rng.next() % 40);
                        bm.set_out_of_sync(s, len);
                        if len > 0 && s < capacity {
                            let e = (s + len - 1).min(capacity - 1);
                            (s / 8..=e / 8).for_each(|i| model[i as usize] = true);
                        }
                    }
                    _ => {
                        let (s, len) = (a * 3, rng.next() % 40);
                        bm.set_in_sync(s, len);
                        if len > 0 && s < capacity {
                            let e = (s + len - 1).min(capacity - 1);
                            for i in 0..bits as u64 {
                                let (bs, be) = (i * 8, (i * 8 + 7).min(capacity - 1));
                                if bs >= s && be <= e {
                                    model[i as usize] = false;
                                }
                            }
                        }
                    }
                }
                for (i, &m) in model.iter().enumerate() {
                    assert_eq!(bm.test(i as u64), m, "bit {i}");
                }
                assert_eq!(bm.count() as usize, model.iter().filter(|&&m| m).count());
                let next = bm.find_next_set(a);
                let want = (a as usize..bits).find(|&i| model[i]).map(|i| i as u64);
                assert_eq!(next, want);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(99);
        for _ in 0..500 {
            let n = (rng.next() % 9) as usize;
            let mut words = vec![0u64; n];
            let capacity = rng.next() % (n as u64 * 512 + 1);
            let Some(mut bm) = Bitmap::new(&mut words, capacity) else {
                continue;
            };
            let bytes: Vec<u8> = (0..rng.next() % 100).map(|_| rng.next() as u8).collect();
            bm.load_le((rng.next() % 10) as usize, &bytes);
            let (a, b) = (rng.next(), rng.next());
            bm.set_bits(a.min(b), a.max(b));
            bm.set_in_sync(rng.next(), rng.next());
            bm.set_out_of_sync(rng.next(), rng.next());
            bm.set_al_extent(rng.next() as u32);
            let _ = bm.find_next_set(rng.next());
            bm.clear_surplus();
            assert!(bm.count() <= bm.bits());
        }
    }
}
