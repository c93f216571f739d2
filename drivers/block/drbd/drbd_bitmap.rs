//! The in-memory out-of-sync bitmap of an attached device: one bit per
//! 4 KiB of data, set lock-free from the bio path, read from and written to
//! the on-disk bitmap in 4 KiB blocks of little-endian 64-bit words (the
//! v08 layout, `include/src/bitmap.rs`).

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;

use crate::drbd_include::bitmap as layout;
use crate::drbd_include::bitmap_rle::{BitmapSink, BitmapSource};
use crate::kernel_glue::block::MD_BLOCK_SIZE;

/// 64-bit words in one on-disk bitmap block.
const WORDS_PER_BLOCK: usize = MD_BLOCK_SIZE / 8;

/// The bitmap of one attached device.
pub(crate) struct BitmapMem {
    words: KVVec<AtomicU64>,
    /// Per on-disk block: changed since last written.
    dirty: KVVec<AtomicBool>,
    /// Per on-disk block: which of its 32 activity log extents have no bit
    /// set in it as last read or written (bit i: the extent's 16 words
    /// from word 16i); 0 when not known. An extent leaving the activity
    /// log with no bit set in memory either needs no bitmap write: the
    /// bits a write sets at submission and its ack clears again leave the
    /// block dirty but equal to the disk for that extent.
    clear_on_disk: KVVec<AtomicU32>,
    bits: u64,
    /// Set bits, kept as every change makes them (each word's atomic
    /// update tells exactly which bits it flipped): /proc/drbd, the
    /// resync's progress and the handshake read it without a walk over
    /// the bitmap (8.4 keeps `bm_set` the same way). Signed: a bit set
    /// and cleared at once by two threads may be subtracted before it is
    /// added; readers see such a moment as zero.
    set: AtomicI64,
}

impl BitmapMem {
    /// A clear bitmap for `capacity_sectors` of data, in whole blocks.
    pub(crate) fn new(capacity_sectors: u64) -> Result<Self> {
        let bits = layout::bits_for_sectors(capacity_sectors);
        let words = usize::try_from(layout::words_for_bits(bits)).map_err(|_| ENOMEM)?;
        let blocks = words.div_ceil(WORDS_PER_BLOCK);
        let mut this = Self {
            words: KVVec::with_capacity(blocks * WORDS_PER_BLOCK, GFP_KERNEL)?,
            dirty: KVVec::with_capacity(blocks, GFP_KERNEL)?,
            clear_on_disk: KVVec::with_capacity(blocks, GFP_KERNEL)?,
            bits,
            set: AtomicI64::new(0),
        };
        for _ in 0..blocks * WORDS_PER_BLOCK {
            this.words.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        for _ in 0..blocks {
            this.dirty.push(AtomicBool::new(false), GFP_KERNEL)?;
            this.clear_on_disk.push(AtomicU32::new(0), GFP_KERNEL)?;
        }
        Ok(this)
    }

    /// A copy of this bitmap for `capacity_sectors` of data (an online
    /// resize, `drbd_bm_resize`): the bits both cover are kept, bits
    /// `first..=last` of `mark` are set (the new area, unless the user
    /// declared it clean), every block is dirty (it is written in full at
    /// its new place).
    pub(crate) fn resized(&self, capacity_sectors: u64, mark: Option<(u64, u64)>) -> Result<Self> {
        let new = Self::new(capacity_sectors)?;
        for (to, from) in new.words.iter().zip(self.words.iter()) {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        // A shrunk bitmap keeps no bits beyond its end.
        if let Some(last_word) = usize::try_from(layout::words_for_bits(new.bits)).ok().and_then(|n| n.checked_sub(1)) {
            let tail = new.bits % 64;
            if let (Some(w), true) = (new.words.get(last_word), tail != 0) {
                w.fetch_and((1u64 << tail) - 1, Ordering::Relaxed);
            }
            for w in new.words.iter().skip(last_word + 1) {
                w.store(0, Ordering::Relaxed);
            }
        }
        // Counted once here (a resize is rare); from now on kept.
        let kept: i64 = new.words.iter().map(|w| i64::from(w.load(Ordering::Relaxed).count_ones())).sum();
        new.set.store(kept, Ordering::Relaxed);
        if let Some((first, last)) = mark {
            new.set_bits(first, last);
        }
        for d in new.dirty.iter() {
            d.store(true, Ordering::Relaxed);
        }
        Ok(new)
    }

    /// On-disk blocks the bitmap occupies.
    pub(crate) fn blocks(&self) -> usize {
        self.dirty.len()
    }

    /// Sets bits `first..=last` (clipped to the device); returns how many
    /// were newly set.
    pub(crate) fn set_bits(&self, first: u64, last: u64) -> u64 {
        let Some(end) = self.bits.checked_sub(1) else { return 0 };
        let last = last.min(end);
        let mut newly = 0;
        let mut bit = first;
        while bit <= last {
            let (word, lo) = (bit / 64, bit % 64);
            let hi = if word == last / 64 { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            if let Some(w) = usize::try_from(word).ok().and_then(|i| self.words.get(i)) {
                let old = w.fetch_or(mask, Ordering::Relaxed);
                let added = (mask & !old).count_ones();
                if added != 0 {
                    newly += u64::from(added);
                    if let Some(d) = usize::try_from(word).ok().and_then(|i| self.dirty.get(i / WORDS_PER_BLOCK)) {
                        d.store(true, Ordering::Relaxed);
                    }
                }
            }
            bit = (word + 1) * 64;
        }
        self.set.fetch_add(newly as i64, Ordering::Relaxed);
        newly
    }

    /// Clears bits `first..=last` (clipped to the device); returns how
    /// many were set before.
    pub(crate) fn clear_bits(&self, first: u64, last: u64) -> u64 {
        let Some(end) = self.bits.checked_sub(1) else { return 0 };
        let last = last.min(end);
        let mut cleared = 0;
        let mut bit = first;
        while bit <= last {
            let (word, lo) = (bit / 64, bit % 64);
            let hi = if word == last / 64 { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            if let Some(w) = usize::try_from(word).ok().and_then(|i| self.words.get(i)) {
                let old = w.fetch_and(!mask, Ordering::Relaxed);
                let gone = (mask & old).count_ones();
                if gone != 0 {
                    cleared += u64::from(gone);
                    if let Some(d) = usize::try_from(word).ok().and_then(|i| self.dirty.get(i / WORDS_PER_BLOCK)) {
                        d.store(true, Ordering::Relaxed);
                    }
                }
            }
            bit = (word + 1) * 64;
        }
        self.set.fetch_sub(cleared as i64, Ordering::Relaxed);
        cleared
    }

    /// Clears the bits of the 4 KiB blocks that `size` bytes at `sector`
    /// cover completely (`drbd_set_in_sync`): a partly written block stays
    /// out of sync, except the last one of a device whose size is not a
    /// multiple of 4 KiB. `capacity` is the device size in sectors.
    pub(crate) fn clear_sectors(&self, sector: u64, size: u32, capacity: u64) -> u64 {
        self.covered_bits(sector, size, capacity).map_or(0, |(first, last)| self.clear_bits(first, last))
    }

    /// Marks the 4 KiB blocks that `size` bytes at `sector` cover
    /// completely (as [`Self::clear_sectors`] counts them): a replicated
    /// write's until its ack. A partly written block is left as it was,
    /// as 8.4 leaves it (only a write that fails to reach the peer marks
    /// every block it touches, [`Self::set_sectors`]).
    pub(crate) fn set_covered_sectors(&self, sector: u64, size: u32, capacity: u64) -> u64 {
        self.covered_bits(sector, size, capacity).map_or(0, |(first, last)| self.set_bits(first, last))
    }

    /// The first and last bit of the blocks `size` bytes at `sector` cover
    /// completely (the last block of a device whose size is not a multiple
    /// of 4 KiB counts as covered when the range reaches its end).
    fn covered_bits(&self, sector: u64, size: u32, capacity: u64) -> Option<(u64, u64)> {
        let end_sector = sector.saturating_add(u64::from(size) / 512);
        if size == 0 || end_sector <= sector {
            return None;
        }
        let first = layout::sector_to_bit(sector.saturating_add(7));
        let end = if end_sector >= capacity {
            self.bits
        } else {
            layout::sector_to_bit(end_sector)
        };
        end.checked_sub(1).filter(|&last| last >= first).map(|last| (first, last))
    }

    /// Number of bits.
    pub(crate) fn bits(&self) -> u64 {
        self.bits
    }

    /// Whether bit `bit` is set.
    pub(crate) fn test(&self, bit: u64) -> bool {
        usize::try_from(bit / 64)
            .ok()
            .and_then(|i| self.words.get(i))
            .is_some_and(|w| w.load(Ordering::Relaxed) >> (bit % 64) & 1 == 1)
    }

    /// Marks the 4 KiB blocks touched by `size` bytes at `sector`.
    pub(crate) fn set_sectors(&self, sector: u64, size: u32) -> u64 {
        if size == 0 {
            return 0;
        }
        let last_sector = sector.saturating_add(u64::from(size).div_ceil(512)).saturating_sub(1);
        self.set_bits(layout::sector_to_bit(sector), layout::sector_to_bit(last_sector))
    }

    /// Clears every bit (`drbd_bmio_clear_n_write`; the caller writes it).
    pub(crate) fn clear_all(&self) {
        for w in self.words.iter() {
            let old = w.swap(0, Ordering::Relaxed);
            self.set.fetch_sub(i64::from(old.count_ones()), Ordering::Relaxed);
        }
        for d in self.dirty.iter() {
            d.store(true, Ordering::Relaxed);
        }
    }

    /// Number of set bits (out-of-sync 4 KiB blocks), O(1).
    pub(crate) fn count(&self) -> u64 {
        u64::try_from(self.set.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Loads on-disk block `index`.
    pub(crate) fn load_block(&self, index: usize, data: &[u8; MD_BLOCK_SIZE]) {
        let words = self.words.iter().skip(index * WORDS_PER_BLOCK).take(WORDS_PER_BLOCK);
        for (w, bytes) in words.zip(data.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(bytes);
            let new = u64::from_le_bytes(le);
            let old = w.swap(new, Ordering::Relaxed);
            self.set.fetch_add(i64::from(new.count_ones()), Ordering::Relaxed);
            self.set.fetch_sub(i64::from(old.count_ones()), Ordering::Relaxed);
        }
        self.note_on_disk(index, data);
    }

    /// Records which extents of block `index` are clear in `data`, what is
    /// (or is about to be) on disk.
    fn note_on_disk(&self, index: usize, data: &[u8; MD_BLOCK_SIZE]) {
        let words = data.chunks_exact(8).map(|b| b.iter().fold(0u64, |w, &byte| w | u64::from(byte)));
        if let Some(c) = self.clear_on_disk.get(index) {
            c.store(layout::clear_extents(words), Ordering::Relaxed);
        }
    }

    /// Whether activity log extent `extent` has no bit set, neither in
    /// memory nor on disk as last read or written (its bitmap block need
    /// not be written when it leaves the activity log).
    pub(crate) fn extent_clear_on_disk(&self, extent: u32) -> bool {
        let first = layout::al_extent_bits(extent).0;
        let block = Self::block_of_bit(first);
        let slot = (first / layout::BM_BITS_PER_AL_EXTENT) % 32;
        let known_clear = self.clear_on_disk.get(block).is_some_and(|c| c.load(Ordering::Relaxed) >> slot & 1 == 1);
        let Ok(first_word) = usize::try_from(first / 64) else { return false };
        known_clear && self.words.iter().skip(first_word).take(layout::WORDS_PER_AL_EXTENT).all(|w| w.load(Ordering::Relaxed) == 0)
    }

    /// Fills `data` with block `index` as stored on disk and marks it clean;
    /// returns whether it was dirty.
    pub(crate) fn store_block(&self, index: usize, data: &mut [u8; MD_BLOCK_SIZE]) -> bool {
        let was_dirty = self.dirty.get(index).is_some_and(|d| d.swap(false, Ordering::Relaxed));
        let words = self.words.iter().skip(index * WORDS_PER_BLOCK).take(WORDS_PER_BLOCK);
        for (w, bytes) in words.zip(data.chunks_exact_mut(8)) {
            bytes.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        // Every caller writes `data` to the block (a failed write fails
        // the metadata and detaches the disk).
        self.note_on_disk(index, data);
        was_dirty
    }

    /// The block holding bit `bit`.
    pub(crate) fn block_of_bit(bit: u64) -> usize {
        usize::try_from(bit / (MD_BLOCK_SIZE as u64 * 8)).unwrap_or(usize::MAX)
    }
}

/// Sending our bitmap to the peer (P_BITMAP / P_COMPRESSED_BITMAP).
impl BitmapSource for BitmapMem {
    fn bit_count(&self) -> u64 {
        self.bits
    }

    fn find_next(&self, from: u64, set: bool) -> u64 {
        let mut bit = from;
        while bit < self.bits {
            let Some(word) = usize::try_from(bit / 64).ok().and_then(|i| self.words.get(i)) else {
                return self.bits;
            };
            let w = word.load(Ordering::Relaxed);
            let w = if set { w } else { !w };
            let rest = w & (u64::MAX << (bit % 64));
            if rest != 0 {
                return ((bit & !63) + u64::from(rest.trailing_zeros())).min(self.bits);
            }
            bit = (bit & !63) + 64;
        }
        self.bits
    }

    fn word(&self, index: u64) -> u64 {
        let Some(w) = usize::try_from(index).ok().and_then(|i| self.words.get(i)) else { return 0 };
        let w = w.load(Ordering::Relaxed);
        // Bits beyond the end are clear in memory already; mask anyway.
        let first = index.saturating_mul(64);
        match self.bits.saturating_sub(first) {
            0 => 0,
            n if n >= 64 => w,
            n => w & ((1u64 << n) - 1),
        }
    }
}

/// Merging the peer's bitmap into ours (received bits are ORed in).
impl BitmapSink for BitmapMem {
    fn set_bits(&mut self, first: u64, last: u64) {
        BitmapMem::set_bits(self, first, last);
    }

    fn or_word(&mut self, index: u64, word: u64) {
        let first = index.saturating_mul(64);
        let valid = match self.bits.saturating_sub(first) {
            0 => return,
            n if n >= 64 => word,
            n => word & ((1u64 << n) - 1),
        };
        if let Some(w) = usize::try_from(index).ok().and_then(|i| self.words.get(i)) {
            let old = w.fetch_or(valid, Ordering::Relaxed);
            self.set.fetch_add(i64::from((valid & !old).count_ones()), Ordering::Relaxed);
            if valid & !old != 0 {
                if let Some(d) = usize::try_from(index).ok().and_then(|i| self.dirty.get(i / WORDS_PER_BLOCK)) {
                    d.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}
