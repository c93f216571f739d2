//! The in-memory out-of-sync bitmap of an attached device: one bit per
//! 4 KiB of data, set lock-free from the bio path, read from and written to
//! the on-disk bitmap in 4 KiB blocks of little-endian 64-bit words (the
//! v08 layout, `include/src/bitmap.rs`).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::prelude::*;

use crate::drbd_include::bitmap as layout;
use crate::kernel_glue::block::MD_BLOCK_SIZE;

/// 64-bit words in one on-disk bitmap block.
const WORDS_PER_BLOCK: usize = MD_BLOCK_SIZE / 8;

/// The bitmap of one attached device.
pub(crate) struct BitmapMem {
    words: KVVec<AtomicU64>,
    /// Per on-disk block: changed since last written.
    dirty: KVVec<AtomicBool>,
    bits: u64,
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
            bits,
        };
        for _ in 0..blocks * WORDS_PER_BLOCK {
            this.words.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        for _ in 0..blocks {
            this.dirty.push(AtomicBool::new(false), GFP_KERNEL)?;
        }
        Ok(this)
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
        newly
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
            w.store(0, Ordering::Relaxed);
        }
        for d in self.dirty.iter() {
            d.store(true, Ordering::Relaxed);
        }
    }

    /// Number of set bits (out-of-sync 4 KiB blocks).
    pub(crate) fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.load(Ordering::Relaxed).count_ones())).sum()
    }

    /// Loads on-disk block `index`.
    pub(crate) fn load_block(&self, index: usize, data: &[u8; MD_BLOCK_SIZE]) {
        let words = self.words.iter().skip(index * WORDS_PER_BLOCK).take(WORDS_PER_BLOCK);
        for (w, bytes) in words.zip(data.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(bytes);
            w.store(u64::from_le_bytes(le), Ordering::Relaxed);
        }
    }

    /// Fills `data` with block `index` as stored on disk and marks it clean;
    /// returns whether it was dirty.
    pub(crate) fn store_block(&self, index: usize, data: &mut [u8; MD_BLOCK_SIZE]) -> bool {
        let was_dirty = self.dirty.get(index).is_some_and(|d| d.swap(false, Ordering::Relaxed));
        let words = self.words.iter().skip(index * WORDS_PER_BLOCK).take(WORDS_PER_BLOCK);
        for (w, bytes) in words.zip(data.chunks_exact_mut(8)) {
            bytes.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        was_dirty
    }

    /// The block holding bit `bit`.
    pub(crate) fn block_of_bit(bit: u64) -> usize {
        usize::try_from(bit / (MD_BLOCK_SIZE as u64 * 8)).unwrap_or(usize::MAX)
    }
}
