//! DRBD 8.4's on-disk activity log (`drbd_actlog.c`, `drbdmeta apply-al`):
//! the striped ring of 4 KiB transaction blocks, their CRC-32C, encoding,
//! decoding, and replay after a crash.
//!
//! Every transaction records up to 64 slot -> extent updates of the active
//! set plus a window of 919 "context" slots, so replaying the ring from the
//! oldest to the newest valid update transaction reconstructs the set of
//! 4 MiB extents that may have had writes in flight.

use core::fmt;
use super::be::{get_be16, get_be32, put_be16, put_be32};

/// Magic of every transaction block ("actlog==" base64-decoded).
pub const DRBD_AL_MAGIC: u32 = 0x69cb_65a2;
/// Size of one transaction block.
pub const AL_TRANSACTION_BYTES: usize = 4096;
/// Slot updates one transaction can carry.
pub const AL_UPDATES_PER_TRANSACTION: usize = 64;
/// Context entries one transaction carries: `(4096 - 36 - 6 * 64) / 4`.
pub const AL_CONTEXT_PER_TRANSACTION: usize = 919;
/// Transaction type of a normal update.
pub const AL_TR_UPDATE: u16 = 0;
/// Transaction type written by create-md / apply-al: an empty ring block.
pub const AL_TR_INITIALIZED: u16 = 0xffff;
/// Extent number of a free slot (`LC_FREE`).
pub const AL_FREE_EXTENT: u32 = u32::MAX;
/// Slot number of an unused update entry.
pub const AL_UNUSED_SLOT: u16 = u16::MAX;
/// Most AL slots ("al-extents") DRBD 8.4 allows (`DRBD_AL_EXTENTS_MAX`).
pub const AL_EXTENTS_MAX: u32 = 65534;
/// Fewest AL slots ("al-extents") DRBD 8.4 allows.
pub const AL_EXTENTS_MIN: u32 = 67;
/// Default number of AL slots.
pub const AL_EXTENTS_DEFAULT: u32 = 1237;
/// Smallest ring: 8 blocks (the pre-8.4 fixed 32 KiB).
pub const AL_MIN_SIZE_4K: u32 = 8;
/// Largest ring the kernel accepts: 16 GiB of 4 KiB blocks.
pub const AL_MAX_SIZE_4K: u32 = 16 * 1024 * 1024 / 4;

/// Byte offsets of the fields of `struct al_transaction_on_disk` (all BE).
pub mod offset {
    /// `__be32 magic`.
    pub const MAGIC: usize = 0;
    /// `__be32 tr_number`.
    pub const TR_NUMBER: usize = 4;
    /// `__be32 crc32c`, computed with this field zero.
    pub const CRC32C: usize = 8;
    /// `__be16 transaction_type`.
    pub const TRANSACTION_TYPE: usize = 12;
    /// `__be16 n_updates`.
    pub const N_UPDATES: usize = 14;
    /// `__be16 context_size` ("al-extents").
    pub const CONTEXT_SIZE: usize = 16;
    /// `__be16 context_start_slot_nr`.
    pub const CONTEXT_START_SLOT_NR: usize = 18;
    /// `__be32 __reserved[4]`.
    pub const RESERVED: usize = 20;
    /// `__be16 update_slot_nr[64]`.
    pub const UPDATE_SLOT_NR: usize = 36;
    /// `__be32 update_extent_nr[64]`.
    pub const UPDATE_EXTENT_NR: usize = 164;
    /// `__be32 context[919]`.
    pub const CONTEXT: usize = 420;
}

/// Why a transaction block or a ring could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlError {
    /// The block does not start with [`DRBD_AL_MAGIC`].
    BadMagic(u32),
    /// Stored and computed CRC-32C differ.
    BadCrc {
        /// Value in the block.
        stored: u32,
        /// Value computed over the block.
        computed: u32,
    },
    /// More updates than a transaction holds.
    TooManyUpdates,
    /// More context entries than a transaction holds.
    TooMuchContext,
    /// The ring buffer is not `size_4k` blocks of 4 KiB.
    BadRingLength,
    /// Not a single valid block in the ring: never initialized (ENODATA).
    NoValidTransaction,
    /// Some blocks valid, some corrupt, and no update among them (EINVAL).
    NoValidUpdate,
}

impl fmt::Display for AlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "bad activity log magic 0x{m:08x}"),
            Self::BadCrc { stored, computed } => {
                write!(f, "bad crc32c 0x{stored:08x} (computed 0x{computed:08x})")
            }
            Self::TooManyUpdates => f.write_str("more than 64 updates in one transaction"),
            Self::TooMuchContext => f.write_str("more than 919 context entries in one transaction"),
            Self::BadRingLength => f.write_str("activity log buffer has the wrong size"),
            Self::NoValidTransaction => {
                f.write_str("No usable activity log found. Do you need to create-md?")
            }
            Self::NoValidUpdate => f.write_str("No valid AL update transaction found."),
        }
    }
}

impl core::error::Error for AlError {}

/// Shape of the on-disk ring: `stripes` stripes of `stripe_size_4k` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlGeometry {
    stripes: u32,
    stripe_size_4k: u32,
}

impl AlGeometry {
    /// The default and pre-8.4 layout: one stripe of 8 blocks (32 KiB).
    pub const DEFAULT: Self = Self {
        stripes: 1,
        stripe_size_4k: 8,
    };

    /// A geometry the kernel accepts (`check_activity_log_stripe_size`):
    /// both non-zero, 8 ..= 4194304 blocks in total.
    pub fn new(stripes: u32, stripe_size_4k: u32) -> Option<Self> {
        let size = u64::from(stripes).checked_mul(u64::from(stripe_size_4k))?;
        let plausible = stripes != 0
            && stripe_size_4k != 0
            && (u64::from(AL_MIN_SIZE_4K)..=u64::from(AL_MAX_SIZE_4K)).contains(&size);
        plausible.then_some(Self {
            stripes,
            stripe_size_4k,
        })
    }

    /// As stored in a superblock, where both fields 0 mean [`Self::DEFAULT`].
    pub fn from_superblock(stripes: u32, stripe_size_4k: u32) -> Option<Self> {
        if stripes == 0 && stripe_size_4k == 0 {
            Some(Self::DEFAULT)
        } else {
            Self::new(stripes, stripe_size_4k)
        }
    }

    /// Number of stripes.
    pub fn stripes(&self) -> u32 {
        self.stripes
    }

    /// Blocks per stripe.
    pub fn stripe_size_4k(&self) -> u32 {
        self.stripe_size_4k
    }

    /// Blocks in the ring (at most [`AL_MAX_SIZE_4K`], so no overflow).
    pub fn size_4k(&self) -> u32 {
        self.stripes.saturating_mul(self.stripe_size_4k)
    }

    /// Sectors the ring occupies.
    pub fn size_sect(&self) -> u32 {
        self.size_4k().saturating_mul(8)
    }

    /// Bytes the ring occupies.
    pub fn size_bytes(&self) -> u64 {
        u64::from(self.size_4k()).saturating_mul(AL_TRANSACTION_BYTES as u64)
    }

    /// The 4 KiB block (from the start of the AL area) that holds
    /// transaction `tr_number` (`al_tr_number_to_on_disk_sector` / 8):
    /// consecutive transactions go round-robin over the stripes.
    pub fn ring_block(&self, tr_number: u32) -> u32 {
        let t = tr_number.checked_rem(self.size_4k()).unwrap_or(0);
        let stripe = t.checked_rem(self.stripes).unwrap_or(0);
        let within = t.checked_div(self.stripes).unwrap_or(0);
        stripe
            .saturating_mul(self.stripe_size_4k)
            .saturating_add(within)
    }
}

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        // Const evaluation: any overflow would fail the build, not panic.
        #[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
        {
            while bit < 8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
    }
    table
}

static CRC32C_TABLE: [u32; 256] = crc32c_table();

/// CRC-32C (Castagnoli) update exactly like the kernel's `crc32c(crc, ..)`:
/// reflected, no initial or final inversion. DRBD checksums a transaction
/// with `crc32c(0, block)`; the usual "CRC-32C" of data is
/// `!crc32c(!0, data)`.
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    data.iter().fold(crc, |crc, &byte| {
        let index = usize::from((crc as u8) ^ byte);
        CRC32C_TABLE.get(index).copied().unwrap_or(0) ^ (crc >> 8)
    })
}

/// The checksum of a block as DRBD defines it: over all 4096 bytes with the
/// crc32c field taken as zero.
pub fn transaction_crc(block: &[u8; AL_TRANSACTION_BYTES]) -> u32 {
    let (head, rest) = block.split_at(offset::CRC32C);
    let tail = rest.get(4..).unwrap_or(&[]);
    crc32c(crc32c(crc32c(0, head), &[0; 4]), tail)
}





/// The fixed header fields of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransactionHeader {
    /// Sequence number; the ring position is derived from it.
    pub tr_number: u32,
    /// [`AL_TR_UPDATE`] or [`AL_TR_INITIALIZED`].
    pub transaction_type: u16,
    /// Number of meaningful update entries.
    pub n_updates: u16,
    /// Number of AL slots ("al-extents") when written.
    pub context_size: u16,
    /// Slot number of `context[0]`.
    pub context_start_slot_nr: u16,
}

/// A transaction block whose magic and checksum are valid.
#[derive(Debug, Clone, Copy)]
pub struct Transaction<'a> {
    block: &'a [u8; AL_TRANSACTION_BYTES],
}

impl<'a> Transaction<'a> {
    /// Checks magic and CRC-32C.
    pub fn decode(block: &'a [u8; AL_TRANSACTION_BYTES]) -> Result<Self, AlError> {
        let magic = get_be32(block, offset::MAGIC);
        if magic != DRBD_AL_MAGIC {
            return Err(AlError::BadMagic(magic));
        }
        let stored = get_be32(block, offset::CRC32C);
        let computed = transaction_crc(block);
        if stored != computed {
            return Err(AlError::BadCrc { stored, computed });
        }
        Ok(Self { block })
    }

    /// The header fields.
    pub fn header(&self) -> TransactionHeader {
        TransactionHeader {
            tr_number: get_be32(self.block, offset::TR_NUMBER),
            transaction_type: get_be16(self.block, offset::TRANSACTION_TYPE),
            n_updates: get_be16(self.block, offset::N_UPDATES),
            context_size: get_be16(self.block, offset::CONTEXT_SIZE),
            context_start_slot_nr: get_be16(self.block, offset::CONTEXT_START_SLOT_NR),
        }
    }

    /// The stored checksum.
    pub fn crc32c(&self) -> u32 {
        get_be32(self.block, offset::CRC32C)
    }

    /// Update entry `i` (< 64) as (slot, extent), whether used or not.
    pub fn update(&self, i: usize) -> Option<(u16, u32)> {
        (i < AL_UPDATES_PER_TRANSACTION).then(|| {
            let slot = get_be16(
                self.block,
                offset::UPDATE_SLOT_NR.saturating_add(i.saturating_mul(2)),
            );
            let extent = get_be32(
                self.block,
                offset::UPDATE_EXTENT_NR.saturating_add(i.saturating_mul(4)),
            );
            (slot, extent)
        })
    }

    /// Context entry `i` (< 919): the extent in slot `context_start_slot_nr + i`.
    pub fn context(&self, i: usize) -> Option<u32> {
        (i < AL_CONTEXT_PER_TRANSACTION).then(|| {
            get_be32(
                self.block,
                offset::CONTEXT.saturating_add(i.saturating_mul(4)),
            )
        })
    }

    /// The (slot, extent) assignments this transaction makes, in replay
    /// order: first the context window, then the updates. Like drbdmeta,
    /// free context entries past `context_size` and unused update entries
    /// past `n_updates` are skipped.
    pub fn assignments(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        let this = *self;
        let header = self.header();
        let context = (0..AL_CONTEXT_PER_TRANSACTION).filter_map(move |i| {
            let slot = u32::from(header.context_start_slot_nr).saturating_add(i as u32);
            let extent = this.context(i)?;
            let past_end = extent == AL_FREE_EXTENT && slot >= u32::from(header.context_size);
            (!past_end).then_some((slot, extent))
        });
        let updates = (0..AL_UPDATES_PER_TRANSACTION).filter_map(move |i| {
            let (slot, extent) = this.update(i)?;
            let unused = i >= usize::from(header.n_updates) && slot == AL_UNUSED_SLOT;
            (!unused).then_some((u32::from(slot), extent))
        });
        context.chain(updates)
    }
}

/// Writes a transaction block like `__al_write_transaction`: the header,
/// `updates` as (slot, extent) pairs (the rest unused), `context` starting
/// at `header.context_start_slot_nr` (the rest free), and the checksum.
/// `header.n_updates` is taken from `updates.len()`.
pub fn encode_transaction(
    block: &mut [u8; AL_TRANSACTION_BYTES],
    header: &TransactionHeader,
    updates: &[(u16, u32)],
    context: &[u32],
) -> Result<(), AlError> {
    if updates.len() > AL_UPDATES_PER_TRANSACTION {
        return Err(AlError::TooManyUpdates);
    }
    if context.len() > AL_CONTEXT_PER_TRANSACTION {
        return Err(AlError::TooMuchContext);
    }
    block.fill(0);
    put_be32(block, offset::MAGIC, DRBD_AL_MAGIC);
    put_be32(block, offset::TR_NUMBER, header.tr_number);
    put_be16(block, offset::TRANSACTION_TYPE, header.transaction_type);
    put_be16(block, offset::N_UPDATES, updates.len() as u16);
    put_be16(block, offset::CONTEXT_SIZE, header.context_size);
    put_be16(
        block,
        offset::CONTEXT_START_SLOT_NR,
        header.context_start_slot_nr,
    );
    for i in 0..AL_UPDATES_PER_TRANSACTION {
        let (slot, extent) = updates
            .get(i)
            .copied()
            .unwrap_or((AL_UNUSED_SLOT, AL_FREE_EXTENT));
        put_be16(
            block,
            offset::UPDATE_SLOT_NR.saturating_add(i.saturating_mul(2)),
            slot,
        );
        put_be32(
            block,
            offset::UPDATE_EXTENT_NR.saturating_add(i.saturating_mul(4)),
            extent,
        );
    }
    for i in 0..AL_CONTEXT_PER_TRANSACTION {
        let extent = context.get(i).copied().unwrap_or(AL_FREE_EXTENT);
        put_be32(
            block,
            offset::CONTEXT.saturating_add(i.saturating_mul(4)),
            extent,
        );
    }
    let crc = transaction_crc(block);
    put_be32(block, offset::CRC32C, crc);
    Ok(())
}

/// Writes the block create-md and apply-al put in every ring slot: magic,
/// type [`AL_TR_INITIALIZED`], every other field zero, and its checksum.
pub fn encode_initialized(block: &mut [u8; AL_TRANSACTION_BYTES]) {
    block.fill(0);
    put_be32(block, offset::MAGIC, DRBD_AL_MAGIC);
    put_be16(block, offset::TRANSACTION_TYPE, AL_TR_INITIALIZED);
    let crc = transaction_crc(block);
    put_be32(block, offset::CRC32C, crc);
}

/// What [`replay`] found in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplaySummary {
    /// Blocks with valid magic and checksum.
    pub valid: u32,
    /// Blocks that failed the magic or checksum test.
    pub corrupt: u32,
    /// Valid update transactions (0: nothing to apply).
    pub updates: u32,
    /// The newest update transaction's number, if any.
    pub newest_tr_number: Option<u32>,
}

/// The transaction stored for ring position `position` (= tr_number mod
/// ring size), if the ring has it.
fn ring_entry<'a>(
    ring: &'a [u8],
    geometry: &AlGeometry,
    position: u32,
) -> Option<&'a [u8; AL_TRANSACTION_BYTES]> {
    let block = usize::try_from(geometry.ring_block(position)).ok()?;
    let start = block.checked_mul(AL_TRANSACTION_BYTES)?;
    ring.get(start..)?.first_chunk()
}

/// Rebuilds the active set from the ring as `drbdmeta apply-al` does
/// (`replay_al_84`).
///
/// `ring` is the whole AL area in on-disk order (`geometry.size_bytes()`
/// bytes). On success `slots[s]` holds the extent last recorded for slot
/// `s`, or [`AL_FREE_EXTENT`]; slots at or beyond `slots.len()` (at most
/// [`AL_EXTENTS_MAX`] are meaningful) are ignored. The oldest and newest
/// update transaction are found by signed 32-bit sequence comparison, so a
/// wrapped counter is handled; corrupt or initialized blocks in between are
/// skipped.
pub fn replay(
    ring: &[u8],
    geometry: &AlGeometry,
    slots: &mut [u32],
) -> Result<ReplaySummary, AlError> {
    if u64::try_from(ring.len()).ok() != Some(geometry.size_bytes()) {
        return Err(AlError::BadRingLength);
    }
    slots.fill(AL_FREE_EXTENT);
    let size = geometry.size_4k();
    let mut summary = ReplaySummary::default();
    // (ring position, tr_number) of the oldest and newest update.
    let mut oldest = (0u32, 0u32);
    let mut newest = (0u32, 0u32);
    let mut first_valid = false;
    for position in 0..size {
        let tr = ring_entry(ring, geometry, position).and_then(|b| Transaction::decode(b).ok());
        let Some(tr) = tr else {
            summary.corrupt = summary.corrupt.saturating_add(1);
            continue;
        };
        summary.valid = summary.valid.saturating_add(1);
        if position == 0 {
            first_valid = true;
        }
        let header = tr.header();
        if header.transaction_type == AL_TR_INITIALIZED {
            continue;
        }
        summary.updates = summary.updates.saturating_add(1);
        if summary.updates == 1 {
            oldest = (position, header.tr_number);
            newest = oldest;
            continue;
        }
        // Sequence numbers wrap: compare their signed distance.
        if (header.tr_number.wrapping_sub(oldest.1) as i32) < 0 {
            oldest = (position, header.tr_number);
        }
        if (header.tr_number.wrapping_sub(newest.1) as i32) > 0 {
            newest = (position, header.tr_number);
        }
    }
    if summary.valid == 0 {
        return Err(AlError::NoValidTransaction);
    }
    if summary.updates == 0 {
        // A torn first write of a fresh ring is the only expected damage.
        let clean =
            summary.valid == size || (!first_valid && summary.valid == size.saturating_sub(1));
        return if clean {
            Ok(summary)
        } else {
            Err(AlError::NoValidUpdate)
        };
    }
    summary.newest_tr_number = Some(newest.1);
    let span = if newest.0 < oldest.0 {
        newest.0.saturating_add(size)
    } else {
        newest.0
    };
    for step in oldest.0..=span {
        let position = step.checked_rem(size).unwrap_or(0);
        let tr = ring_entry(ring, geometry, position).and_then(|b| Transaction::decode(b).ok());
        let Some(tr) = tr.filter(|t| t.header().transaction_type != AL_TR_INITIALIZED) else {
            continue;
        };
        for (slot, extent) in tr.assignments() {
            if slot >= AL_EXTENTS_MAX {
                continue;
            }
            if let Some(s) = usize::try_from(slot).ok().and_then(|s| slots.get_mut(s)) {
                *s = extent;
            }
        }
    }
    Ok(summary)
}

/// The extents a replay left in the active set (slots not free).
pub fn active_extents(slots: &[u32]) -> impl Iterator<Item = u32> + '_ {
    slots.iter().copied().filter(|&e| e != AL_FREE_EXTENT)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use crate::test_rng::XorShift;

    #[test]
    fn crc32c_known_vectors() {
        // The standard CRC-32C check value, via the raw kernel primitive.
        assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(0, b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros and of 0xff.
        assert_eq!(!crc32c(!0, &[0u8; 32]), 0x8a91_36aa);
        assert_eq!(!crc32c(!0, &[0xffu8; 32]), 0x62a8_ab43);
        // Incremental updates compose.
        assert_eq!(
            crc32c(crc32c(7, b"1234"), b"56789"),
            crc32c(7, b"123456789")
        );
    }

    #[test]
    fn initialized_block_matches_drbdmeta() {
        // Read back from a ring written by drbd-utils 9.22 create-md.
        let mut block = [0u8; 4096];
        encode_initialized(&mut block);
        assert_eq!(
            &block[..16],
            &[0x69, 0xcb, 0x65, 0xa2, 0, 0, 0, 0, 0x70, 0x9c, 0xc6, 0x51, 0xff, 0xff, 0, 0]
        );
        assert!(block[16..].iter().all(|&b| b == 0));
        let tr = Transaction::decode(&block).unwrap();
        assert_eq!(tr.header().transaction_type, AL_TR_INITIALIZED);
        assert_eq!(tr.crc32c(), 0x709c_c651);
    }

    #[test]
    fn geometry_limits_and_ring_positions() {
        assert_eq!(AlGeometry::from_superblock(0, 0), Some(AlGeometry::DEFAULT));
        assert!(AlGeometry::new(0, 8).is_none());
        assert!(AlGeometry::new(1, 7).is_none());
        assert!(AlGeometry::new(1, AL_MAX_SIZE_4K + 1).is_none());
        assert!(AlGeometry::new(u32::MAX, u32::MAX).is_none());
        assert_eq!(AlGeometry::DEFAULT.size_sect(), 64);
        let g = AlGeometry::new(3, 4).unwrap();
        // t = 0..12 -> stripe t%3 at block (t%3)*4 + t/3
        let blocks: Vec<u32> = (0..13).map(|t| g.ring_block(t)).collect();
        assert_eq!(blocks, vec![0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, 0]);
        assert_eq!(AlGeometry::DEFAULT.ring_block(13), 5);
    }

    #[test]
    fn geometry_ring_is_a_permutation() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200 {
            let stripes = (rng.next() % 16 + 1) as u32;
            let size = (rng.next() % 16 + 8) as u32;
            let g = AlGeometry::new(stripes, size).unwrap();
            let mut seen = vec![false; g.size_4k() as usize];
            let base = rng.next() as u32;
            for t in 0..g.size_4k() {
                let b = g.ring_block(base.wrapping_add(t)) as usize;
                assert!(!seen[b]);
                seen[b] = true;
            }
        }
    }

    #[test]
    fn transaction_roundtrip_and_corruption() {
        let mut block = [0u8; 4096];
        let header = TransactionHeader {
            tr_number: 42,
            context_size: 1237,
            context_start_slot_nr: 919,
            ..Default::default()
        };
        encode_transaction(&mut block, &header, &[(3, 77), (1236, 5)], &[10, 11, 12]).unwrap();
        let tr = Transaction::decode(&block).unwrap();
        let h = tr.header();
        assert_eq!(
            (
                h.tr_number,
                h.n_updates,
                h.context_size,
                h.context_start_slot_nr
            ),
            (42, 2, 1237, 919)
        );
        assert_eq!(tr.update(1), Some((1236, 5)));
        assert_eq!(tr.update(2), Some((AL_UNUSED_SLOT, AL_FREE_EXTENT)));
        assert_eq!(tr.update(64), None);
        assert_eq!(tr.context(2), Some(12));
        assert_eq!(tr.context(3), Some(AL_FREE_EXTENT));
        let got: Vec<(u32, u32)> = tr.assignments().collect();
        // 919..1236 are inside context_size: 318 context entries, then 2 updates.
        assert_eq!(got.len(), 318 + 2);
        assert_eq!(
            &got[..4],
            &[(919, 10), (920, 11), (921, 12), (922, AL_FREE_EXTENT)]
        );
        assert_eq!(&got[318..], &[(3, 77), (1236, 5)]);
        block[1000] ^= 1;
        assert!(matches!(
            Transaction::decode(&block),
            Err(AlError::BadCrc { .. })
        ));
        block[0] = 0;
        assert!(matches!(
            Transaction::decode(&block),
            Err(AlError::BadMagic(_))
        ));
        assert_eq!(
            encode_transaction(&mut block, &header, &[(0, 0); 65], &[]),
            Err(AlError::TooManyUpdates)
        );
        assert_eq!(
            encode_transaction(&mut block, &header, &[], &[0; 920]),
            Err(AlError::TooMuchContext)
        );
    }

    fn fresh_ring(g: &AlGeometry) -> Vec<u8> {
        let mut ring = vec![0u8; g.size_bytes() as usize];
        for chunk in ring.chunks_exact_mut(4096) {
            encode_initialized(chunk.try_into().unwrap());
        }
        ring
    }

    /// Writes transaction `tr` where the kernel would put it.
    fn put(
        ring: &mut [u8],
        g: &AlGeometry,
        tr: u32,
        updates: &[(u16, u32)],
        start: u16,
        ctx: &[u32],
    ) {
        let b = g.ring_block(tr) as usize * 4096;
        let header = TransactionHeader {
            tr_number: tr,
            context_size: 1237,
            context_start_slot_nr: start,
            ..Default::default()
        };
        encode_transaction(
            (&mut ring[b..b + 4096]).try_into().unwrap(),
            &header,
            updates,
            ctx,
        )
        .unwrap();
    }

    #[test]
    fn replay_fresh_ring_is_clean() {
        let g = AlGeometry::DEFAULT;
        let mut ring = fresh_ring(&g);
        let mut slots = vec![0u32; AL_EXTENTS_MAX as usize];
        let s = replay(&ring, &g, &mut slots).unwrap();
        assert_eq!((s.valid, s.updates, s.newest_tr_number), (8, 0, None));
        assert_eq!(active_extents(&slots).count(), 0);
        // A torn first block is tolerated, a torn other block is not.
        ring[100] ^= 1;
        assert!(replay(&ring, &g, &mut slots).is_ok());
        ring[4096 + 100] ^= 1;
        assert_eq!(replay(&ring, &g, &mut slots), Err(AlError::NoValidUpdate));
        let zeros = vec![0u8; ring.len()];
        assert_eq!(
            replay(&zeros, &g, &mut slots),
            Err(AlError::NoValidTransaction)
        );
        assert_eq!(
            replay(&zeros[..4096], &g, &mut slots),
            Err(AlError::BadRingLength)
        );
    }

    #[test]
    fn replay_takes_newest_value_across_wrap() {
        let g = AlGeometry::new(2, 4).unwrap();
        let mut ring = fresh_ring(&g);
        // Transactions u32::MAX-2 ..= 2 wrap the counter; slot 5 is updated
        // several times, the last value must win. (The free context window
        // at 1000.. keeps clear of the slots under test.)
        let first = u32::MAX - 2;
        for k in 0..6u32 {
            let tr = first.wrapping_add(k);
            put(
                &mut ring,
                &g,
                tr,
                &[(5, 100 + k), (10 + k as u16, 1000 + k)],
                1000,
                &[],
            );
        }
        let mut slots = vec![0u32; 64];
        let s = replay(&ring, &g, &mut slots).unwrap();
        assert_eq!(s.updates, 6);
        assert_eq!(s.newest_tr_number, Some(2));
        assert_eq!(slots[5], 105);
        assert_eq!(slots[10], 1000);
        assert_eq!(slots[15], 1005);
        let mut hot: Vec<u32> = active_extents(&slots).collect();
        hot.sort_unstable();
        assert_eq!(hot, vec![105, 1000, 1001, 1002, 1003, 1004, 1005]);
    }

    #[test]
    fn replay_context_then_updates_override() {
        let g = AlGeometry::DEFAULT;
        let mut ring = fresh_ring(&g);
        put(&mut ring, &g, 7, &[(1, 9)], 0, &[50, 51, 52]);
        let mut slots = vec![0u32; 2000];
        replay(&ring, &g, &mut slots).unwrap();
        assert_eq!(&slots[..4], &[50, 9, 52, AL_FREE_EXTENT]);
    }

    /// Model check: a simulated kernel writes random transactions of a
    /// random active set; replay must reproduce the final map.
    #[test]
    fn replay_matches_simulated_kernel() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for _ in 0..40 {
            let g =
                AlGeometry::new((rng.next() % 4 + 1) as u32, (rng.next() % 8 + 8) as u32).unwrap();
            let nr_slots = (rng.next() % 2000 + 67) as u16;
            let mut ring = fresh_ring(&g);
            let mut map = vec![AL_FREE_EXTENT; nr_slots as usize];
            let mut cycle = 0u16;
            let mut tr = rng.next() as u32;
            let n = rng.next() % 40 + 1;
            for _ in 0..n {
                let k = (rng.next() % 65) as usize;
                let mut updates = Vec::new();
                for _ in 0..k {
                    let slot = (rng.next() % u64::from(nr_slots)) as u16;
                    let extent = (rng.next() % 100_000) as u32;
                    map[slot as usize] = extent;
                    updates.push((slot, extent));
                }
                let end = (usize::from(cycle) + AL_CONTEXT_PER_TRANSACTION).min(nr_slots as usize);
                let ctx: Vec<u32> = map[usize::from(cycle)..end].to_vec();
                let b = g.ring_block(tr) as usize * 4096;
                let header = TransactionHeader {
                    tr_number: tr,
                    context_size: nr_slots,
                    context_start_slot_nr: cycle,
                    ..Default::default()
                };
                encode_transaction(
                    (&mut ring[b..b + 4096]).try_into().unwrap(),
                    &header,
                    &updates,
                    &ctx,
                )
                .unwrap();
                cycle = cycle.saturating_add(AL_CONTEXT_PER_TRANSACTION as u16);
                if cycle >= nr_slots {
                    cycle = 0;
                }
                tr = tr.wrapping_add(1);
            }
            let mut slots = vec![0u32; AL_EXTENTS_MAX as usize];
            let s = replay(&ring, &g, &mut slots).unwrap();
            assert_eq!(s.newest_tr_number, Some(tr.wrapping_sub(1)));
            // Every slot the kernel has touched, and that is still inside the
            // ring's history, must hold the kernel's value.
            let mut want: Vec<u32> = map
                .iter()
                .copied()
                .filter(|&e| e != AL_FREE_EXTENT)
                .collect();
            let mut got: Vec<u32> = active_extents(&slots[..nr_slots as usize]).collect();
            want.sort_unstable();
            got.sort_unstable();
            if n <= u64::from(g.size_4k()) {
                assert_eq!(got, want);
            } else {
                // Older updates fell off the ring; the context windows
                // still cover the whole map when enough transactions exist.
                assert!(got.iter().all(|e| want.contains(e)));
            }
        }
    }

    #[test]
    fn random_blocks_never_panic() {
        let mut rng = XorShift(77);
        let mut block = [0u8; 4096];
        for round in 0..300 {
            for b in block.iter_mut() {
                *b = rng.next() as u8;
            }
            if round % 2 == 0 {
                // Make it pass the checks, so the accessors see garbage.
                block[..4].copy_from_slice(&DRBD_AL_MAGIC.to_be_bytes());
                let crc = transaction_crc(&block);
                block[8..12].copy_from_slice(&crc.to_be_bytes());
            }
            if let Ok(tr) = Transaction::decode(&block) {
                let _ = tr.header();
                assert!(
                    tr.assignments().count()
                        <= AL_CONTEXT_PER_TRANSACTION + AL_UPDATES_PER_TRANSACTION
                );
            }
        }
        let g = AlGeometry::new(2, 4).unwrap();
        let mut ring = vec![0u8; g.size_bytes() as usize];
        let mut slots = vec![0u32; 100];
        for _ in 0..50 {
            for b in ring.iter_mut() {
                *b = rng.next() as u8;
            }
            let _ = replay(&ring, &g, &mut slots);
        }
    }
}
