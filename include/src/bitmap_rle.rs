//! Bitmap transfer: plain P_BITMAP chunks and the P_COMPRESSED_BITMAP
//! "RLE + VLI" code (`RLE_VLI_Bits`, `drbd_vli.h`).
//!
//! A compressed chunk is one encoding byte (`protocol::BitmapEncoding`)
//! and a bit stream, least significant bit of each byte first, holding run
//! lengths of alternately clear and set bits. Each run length is a
//! variable-length code word: a prefix naming one of ten levels, then
//! `value - level base` in the level's data bits.
//!
//! `BitmapXfer` mirrors the C `bm_xfer_ctx`: it produces the exact chunk
//! sequence of the C sender (`send_bitmap_rle_or_plain`) and accepts what
//! the C receiver (`receive_bitmap`) accepts. Decoding validates a whole
//! compressed chunk before applying any of it: a hostile peer can send
//! anything.

use super::protocol::{BitmapEncoding, Link, Packet, ProtocolError, RLE_VLI_BITS};

/// One VLI level (`LEVEL(t, b, v)` of `VLI_L_1_1`), with the derived
/// range of run lengths it covers.
#[derive(Debug, Clone, Copy)]
struct Level {
    /// Bits of the whole code word.
    total_bits: u32,
    /// Bits of the prefix.
    prefix_bits: u32,
    /// The prefix, as it appears in the low bits.
    prefix: u64,
    /// Smallest run length of this level.
    base: u64,
    /// Largest run length of this level.
    max: u64,
}

/// Only evaluated at compile time; the test checks the table against the
/// C construction.
const fn level(total_bits: u32, prefix_bits: u32, prefix: u64, base: u64) -> Level {
    let data_bits = total_bits.wrapping_sub(prefix_bits);
    Level {
        total_bits,
        prefix_bits,
        prefix,
        base,
        max: base.wrapping_add((1u64 << data_bits).wrapping_sub(1)),
    }
}

/// The code table, levels by increasing length. Bases are cumulative:
/// each level starts where the previous one ended.
const LEVELS: [Level; 10] = [
    level(2, 1, 0x00, 1),
    level(3, 2, 0x01, 3),
    level(5, 3, 0x03, 5),
    level(7, 4, 0x07, 9),
    level(10, 5, 0x0f, 17),
    level(14, 6, 0x1f, 49),
    level(21, 8, 0x3f, 305),
    level(29, 8, 0x7f, 8497),
    level(42, 8, 0xbf, 2_105_649),
    level(64, 8, 0xff, 17_181_974_833),
];

/// Largest run length the code can express (2^56 + 0x400202130).
pub const VLI_MAX: u64 = LEVELS[9].max;

/// Low `bits` bits set (`bits` <= 64).
fn low_mask(bits: u32) -> u64 {
    u64::MAX
        .checked_shr(64u32.saturating_sub(bits))
        .unwrap_or(0)
}

/// Encodes a run length (`__vli_encode_bits`): the code word and its
/// length in bits. Zero and values above `VLI_MAX` have no code.
pub fn vli_encode(value: u64) -> Result<(u64, u32), ProtocolError> {
    for l in LEVELS {
        if (l.base..=l.max).contains(&value) {
            // value - base < 2^(total - prefix), so the shift loses nothing.
            let data = value.wrapping_sub(l.base);
            let code = data.checked_shl(l.prefix_bits).unwrap_or(0) | l.prefix;
            return Ok((code, l.total_bits));
        }
    }
    Err(ProtocolError::VliOutOfRange)
}

/// Decodes the code word in the low bits of `input` (`vli_decode_bits`):
/// the run length and the code word's length in bits. Bits above the code
/// word are ignored. Every input has a level (the prefixes cover all
/// 8-bit patterns), so this is `None` only if the table were broken.
pub fn vli_decode(input: u64) -> Option<(u64, u32)> {
    for l in LEVELS {
        if input & low_mask(l.prefix_bits) == l.prefix {
            let data = (input & low_mask(l.total_bits)).checked_shr(l.prefix_bits)?;
            return Some((data.checked_add(l.base)?, l.total_bits));
        }
    }
    None
}

/// Appends bits to a byte buffer, least significant bit first.
struct BitWriter<'a> {
    bytes: &'a mut [u8],
    /// Bits written so far.
    pos: u64,
}

impl<'a> BitWriter<'a> {
    /// Starts at bit 0 of a zeroed buffer.
    fn new(bytes: &'a mut [u8]) -> Self {
        bytes.fill(0);
        Self { bytes, pos: 0 }
    }

    /// Appends the low `bits` bits of `val`; `false` (and nothing written)
    /// if they do not fit (`bitstream_put_bits` returning -ENOBUFS).
    fn put(&mut self, val: u64, bits: u32) -> bool {
        let capacity = (self.bytes.len() as u64).saturating_mul(8);
        let Some(end) = self.pos.checked_add(u64::from(bits)) else {
            return false;
        };
        if end > capacity {
            return false;
        }
        let val = val & low_mask(bits);
        let mut done = 0u32;
        while done < bits {
            // pos < end <= capacity, so the byte exists.
            let byte_index = usize::try_from(self.pos / 8).unwrap_or(usize::MAX);
            let offset = (self.pos % 8) as u32;
            let take = 8u32.saturating_sub(offset).min(bits.saturating_sub(done));
            let chunk = (val >> done) & low_mask(take);
            if let Some(byte) = self.bytes.get_mut(byte_index) {
                *byte |= (chunk << offset) as u8;
            }
            done = done.saturating_add(take);
            self.pos = self.pos.saturating_add(u64::from(take));
        }
        true
    }

    /// Bytes touched so far.
    fn bytes_used(&self) -> usize {
        usize::try_from(self.pos.div_ceil(8)).unwrap_or(usize::MAX)
    }

    /// Unused bits in the last touched byte.
    fn pad_bits(&self) -> u8 {
        // (8 - pos % 8) % 8
        (self.pos.wrapping_neg() % 8) as u8
    }
}

/// Reads bits from a byte buffer, least significant bit first.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits consumed so far.
    pos: u64,
    /// Valid bits: the buffer minus the pad bits of the last byte.
    end: u64,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8], pad_bits: u8) -> Self {
        let total = (bytes.len() as u64).saturating_mul(8);
        Self {
            bytes,
            pos: 0,
            end: total.saturating_sub(u64::from(pad_bits)),
        }
    }

    /// Valid bits left.
    fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.pos)
    }

    /// Up to 64 of the next bits (fewer at the end; the rest are zero),
    /// without consuming them.
    fn peek64(&self) -> u64 {
        let want = self.remaining().min(64) as u32;
        let mut out = 0u64;
        let mut got = 0u32;
        let mut pos = self.pos;
        while got < want {
            let byte_index = usize::try_from(pos / 8).unwrap_or(usize::MAX);
            let Some(&byte) = self.bytes.get(byte_index) else {
                break;
            };
            let offset = (pos % 8) as u32;
            let take = 8u32.saturating_sub(offset).min(want.saturating_sub(got));
            let chunk = (u64::from(byte) >> offset) & low_mask(take);
            out |= chunk << got;
            got = got.saturating_add(take);
            pos = pos.saturating_add(u64::from(take));
        }
        out
    }

    fn consume(&mut self, bits: u32) {
        self.pos = self.pos.saturating_add(u64::from(bits)).min(self.end);
    }
}

/// Read access to a bitmap for the sender.
pub trait BitmapSource {
    /// Number of bits.
    fn bit_count(&self) -> u64;
    /// First bit at or after `from` whose value is `set`; `bit_count()`
    /// if there is none.
    fn find_next(&self, from: u64, set: bool) -> u64;
    /// 64-bit word `index` (bit `i` of the bitmap is bit `i % 64` of word
    /// `i / 64`), with bits beyond `bit_count()` clear.
    fn word(&self, index: u64) -> u64;
}

/// Write access to a bitmap for the receiver. Received bits are ORed in.
pub trait BitmapSink {
    /// Sets bits `first..=last` (always within the bitmap).
    fn set_bits(&mut self, first: u64, last: u64);
    /// ORs a plain word into word `index` (bits beyond the end are clear).
    fn or_word(&mut self, index: u64, word: u64);
}

/// A bitmap over a slice of words, as in memory and on disk.
#[derive(Debug)]
pub struct WordBitmap<'a> {
    words: &'a mut [u64],
    bits: u64,
}

impl<'a> WordBitmap<'a> {
    /// Wraps `words` as a bitmap of `bits` bits; `None` if they are too few.
    pub fn new(words: &'a mut [u64], bits: u64) -> Option<Self> {
        if (words.len() as u64).checked_mul(64)? < bits {
            return None;
        }
        Some(Self { words, bits })
    }

    /// Whether bit `bit` is set.
    pub fn test(&self, bit: u64) -> bool {
        bit < self.bits && self.word(bit / 64) >> (bit % 64) & 1 == 1
    }
}

impl BitmapSource for WordBitmap<'_> {
    fn bit_count(&self) -> u64 {
        self.bits
    }

    fn find_next(&self, from: u64, set: bool) -> u64 {
        if from >= self.bits {
            return self.bits;
        }
        let mut index = from / 64;
        let mut mask = u64::MAX << (from % 64);
        loop {
            let Some(&w) = usize::try_from(index).ok().and_then(|i| self.words.get(i)) else {
                return self.bits;
            };
            let w = if set { w } else { !w } & mask;
            if w != 0 {
                let bit = index
                    .saturating_mul(64)
                    .saturating_add(u64::from(w.trailing_zeros()));
                return bit.min(self.bits);
            }
            index = index.saturating_add(1);
            mask = u64::MAX;
        }
    }

    fn word(&self, index: u64) -> u64 {
        let w = usize::try_from(index)
            .ok()
            .and_then(|i| self.words.get(i))
            .copied()
            .unwrap_or(0);
        w & word_mask(index, self.bits)
    }
}

impl BitmapSink for WordBitmap<'_> {
    fn set_bits(&mut self, first: u64, last: u64) {
        let last = last.min(self.bits.saturating_sub(1));
        let mut bit = first;
        while bit <= last {
            let index = bit / 64;
            let lo = bit % 64;
            let hi = if last / 64 == index { last % 64 } else { 63 };
            // lo <= hi < 64
            let mask = low_mask(hi.saturating_sub(lo).saturating_add(1) as u32) << lo;
            if let Some(w) = usize::try_from(index)
                .ok()
                .and_then(|i| self.words.get_mut(i))
            {
                *w |= mask;
            }
            bit = index.saturating_add(1).saturating_mul(64);
        }
    }

    fn or_word(&mut self, index: u64, word: u64) {
        let mask = word_mask(index, self.bits);
        if let Some(w) = usize::try_from(index)
            .ok()
            .and_then(|i| self.words.get_mut(i))
        {
            *w |= word & mask;
        }
    }
}

/// The bits of word `index` that lie below `bits`.
fn word_mask(index: u64, bits: u64) -> u64 {
    let start = index.saturating_mul(64);
    if start >= bits {
        0
    } else {
        low_mask(bits.saturating_sub(start).min(64) as u32)
    }
}

/// A compressed chunk produced by `encode_rle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RleChunk {
    /// Payload bytes (encoding byte plus code).
    pub len: usize,
    /// The bit after the last one covered.
    pub end_bit: u64,
}

/// Encodes runs from `start_bit` up to `end_bit` (at most the source's
/// bit count: the size the peers agreed on may be smaller than our bitmap)
/// into a P_COMPRESSED_BITMAP payload in `out` (whose length limits the
/// chunk), like `fill_bitmap_rle_bits`. `Ok(None)`: nothing to encode, or
/// the code would be longer than the bits it covers; send a plain chunk
/// instead.
pub fn encode_rle(
    src: &impl BitmapSource,
    start_bit: u64,
    end_bit: u64,
    out: &mut [u8],
) -> Result<Option<RleChunk>, ProtocolError> {
    let bits = src.bit_count().min(end_bit);
    let Some((first, code)) = out.split_first_mut() else {
        return Ok(None);
    };
    if start_bit >= bits {
        return Ok(None);
    }
    let mut w = BitWriter::new(code);
    let first_run_set = src.find_next(start_bit, true) == start_bit;
    let mut set = first_run_set;
    let mut pos = start_bit;
    let mut plain_bits = 0u64;
    while pos < bits {
        let next = src.find_next(pos, !set).min(bits);
        let run = next.saturating_sub(pos);
        if run == 0 {
            // The source changed under us; the C gives up the transfer.
            return Err(ProtocolError::ZeroRunLength);
        }
        let Ok((word, len)) = vli_encode(run) else {
            // Not encodable: the C falls back to a plain chunk.
            return Ok(None);
        };
        if !w.put(word, len) {
            break; // chunk full
        }
        set = !set;
        plain_bits = plain_bits.saturating_add(run);
        pos = next;
    }
    let used = w.bytes_used();
    if used == 0 || plain_bits < (used as u64).saturating_mul(8) {
        return Ok(None);
    }
    *first = BitmapEncoding {
        code: RLE_VLI_BITS,
        pad_bits: w.pad_bits(),
        first_run_set,
    }
    .to_byte();
    Ok(Some(RleChunk {
        len: used.saturating_add(1),
        end_bit: pos,
    }))
}

/// Walks the runs of a compressed payload, calling `run(start, len, set)`
/// for each; validates code words and bounds (`recv_bm_rle_bits`, which
/// also refuses a set run past the end; here any run past the end is
/// refused, which the C sender never produces). Returns the end bit.
fn walk_rle(
    payload: &[u8],
    start_bit: u64,
    bm_bits: u64,
    mut run: impl FnMut(u64, u64, bool),
) -> Result<u64, ProtocolError> {
    let (&first, code) = payload.split_first().ok_or(ProtocolError::TooShort)?;
    let encoding = BitmapEncoding::from_byte(first);
    if encoding.code != RLE_VLI_BITS {
        return Err(ProtocolError::BadBitmapEncoding);
    }
    let mut r = BitReader::new(code, encoding.pad_bits);
    let mut set = encoding.first_run_set;
    let mut pos = start_bit;
    while r.remaining() > 0 {
        let (len, bits) = vli_decode(r.peek64()).ok_or(ProtocolError::BadRleCode)?;
        if bits == 0 || u64::from(bits) > r.remaining() {
            return Err(ProtocolError::BadRleCode);
        }
        r.consume(bits);
        let end = pos.checked_add(len).ok_or(ProtocolError::RleBeyondBitmap)?;
        if end > bm_bits {
            return Err(ProtocolError::RleBeyondBitmap);
        }
        run(pos, len, set);
        pos = end;
        set = !set;
    }
    Ok(pos)
}

/// Decodes a P_COMPRESSED_BITMAP payload starting at `start_bit` of a
/// bitmap of `bm_bits` bits into `sink`. Nothing is applied unless the
/// whole payload is valid. Returns the bit after the last one covered.
pub fn decode_rle(
    payload: &[u8],
    start_bit: u64,
    bm_bits: u64,
    sink: &mut impl BitmapSink,
) -> Result<u64, ProtocolError> {
    walk_rle(payload, start_bit, bm_bits, |_, _, _| {})?;
    walk_rle(payload, start_bit, bm_bits, |start, len, set| {
        if set {
            sink.set_bits(start, start.saturating_add(len).saturating_sub(1));
        }
    })
}

/// One chunk produced by `BitmapXfer::send_next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentChunk {
    /// P_BITMAP or P_COMPRESSED_BITMAP.
    pub cmd: Packet,
    /// Payload bytes written.
    pub len: usize,
    /// This chunk ends the transfer.
    pub last: bool,
}

/// Position of a bitmap transfer in one direction (`struct bm_xfer_ctx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapXfer {
    bm_bits: u64,
    bm_words: u64,
    bit_offset: u64,
    /// 64-bit words; plain chunks start here.
    word_offset: u64,
}

impl BitmapXfer {
    /// A transfer of a bitmap of `bm_bits` bits from the start.
    pub fn new(bm_bits: u64) -> Self {
        Self {
            bm_bits,
            bm_words: bm_bits.div_ceil(64),
            bit_offset: 0,
            word_offset: 0,
        }
    }

    /// Current bit position.
    pub fn bit_offset(&self) -> u64 {
        self.bit_offset
    }

    /// Words the next plain chunk carries: a full socket buffer or the rest.
    pub fn plain_chunk_words(&self, link: Link) -> u64 {
        let per_chunk = (link.bitmap_payload_max() / 8) as u64;
        per_chunk.min(self.bm_words.saturating_sub(self.word_offset))
    }

    /// Writes the next chunk's payload into `out` (at least
    /// `link.bitmap_payload_max()` bytes), as `send_bitmap_rle_or_plain`:
    /// a compressed chunk when allowed (`use_rle`, apv >= 90) and it pays
    /// off, else the next plain chunk, rewound to the 64-bit word holding
    /// the current bit. After the last plain chunk comes an empty one.
    /// `src` must have the transfer's bit count.
    pub fn send_next(
        &mut self,
        link: Link,
        use_rle: bool,
        src: &impl BitmapSource,
        out: &mut [u8],
    ) -> Result<SentChunk, ProtocolError> {
        let out = out
            .get_mut(..link.bitmap_payload_max())
            .ok_or(ProtocolError::BufferTooSmall)?;
        if use_rle && link.version >= 90 && self.bit_offset < self.bm_bits {
            if let Some(chunk) = encode_rle(src, self.bit_offset, self.bm_bits, out)? {
                self.bit_offset = chunk.end_bit;
                self.word_offset = chunk.end_bit / 64;
                return Ok(SentChunk {
                    cmd: Packet::CompressedBitmap,
                    len: chunk.len,
                    last: self.bit_offset >= self.bm_bits,
                });
            }
            // Incompressible: plain text from the word holding bit_offset.
            self.word_offset = self.bit_offset / 64;
            self.bit_offset = self.word_offset.saturating_mul(64);
        }
        let words = self.plain_chunk_words(link);
        let mut len = 0usize;
        for (i, slot) in out.chunks_exact_mut(8).take(words as usize).enumerate() {
            let index = self.word_offset.saturating_add(i as u64);
            let mut word = src.word(index);
            // Nothing past the transfer's last bit (the source may be larger).
            let past = index.saturating_add(1).saturating_mul(64).saturating_sub(self.bm_bits);
            if past > 0 {
                word &= u64::MAX.checked_shr(past.min(64) as u32).unwrap_or(0);
            }
            slot.copy_from_slice(&word.to_le_bytes());
            len = len.saturating_add(8);
        }
        self.advance_plain(words);
        Ok(SentChunk {
            cmd: Packet::Bitmap,
            len,
            last: words == 0,
        })
    }

    fn advance_plain(&mut self, words: u64) {
        self.word_offset = self.word_offset.saturating_add(words);
        self.bit_offset = self.word_offset.saturating_mul(64).min(self.bm_bits);
    }

    /// Applies a received bitmap packet to `sink` (`receive_bitmap`).
    /// Returns `true` when the transfer is complete: after an empty plain
    /// chunk, or a compressed chunk that reaches the last bit exactly.
    pub fn receive(
        &mut self,
        link: Link,
        cmd: Packet,
        payload: &[u8],
        sink: &mut impl BitmapSink,
    ) -> Result<bool, ProtocolError> {
        match cmd {
            Packet::Bitmap => {
                let words = self.plain_chunk_words(link);
                if payload.len() as u64 != words.saturating_mul(8) {
                    return Err(ProtocolError::BadBitmapChunk);
                }
                if words == 0 {
                    return Ok(true);
                }
                for (i, bytes) in payload.chunks_exact(8).enumerate() {
                    let mut le = [0u8; 8];
                    le.copy_from_slice(bytes);
                    sink.or_word(
                        self.word_offset.saturating_add(i as u64),
                        u64::from_le_bytes(le),
                    );
                }
                self.advance_plain(words);
                Ok(false)
            }
            Packet::CompressedBitmap => {
                if payload.len() > link.bitmap_payload_max() {
                    return Err(ProtocolError::TooLong);
                }
                if payload.len() <= 1 {
                    return Err(ProtocolError::TooShort);
                }
                let end = decode_rle(payload, self.bit_offset, self.bm_bits, sink)?;
                self.bit_offset = end;
                self.word_offset = end / 64;
                Ok(end == self.bm_bits)
            }
            other => Err(ProtocolError::UnexpectedCommand(other as u16)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const L101: Link = Link {
        version: 101,
        features: 0,
    };
    const L95: Link = Link {
        version: 95,
        features: 0,
    };
    const L89: Link = Link {
        version: 89,
        features: 0,
    };

    use crate::test_rng::XorShift;

    #[test]
    fn table_matches_the_c_construction() {
        // Rebuild the table as the LEVEL macros do.
        let c_levels = [
            (2, 1, 0x00),
            (3, 2, 0x01),
            (5, 3, 0x03),
            (7, 4, 0x07),
            (10, 5, 0x0f),
            (14, 6, 0x1f),
            (21, 8, 0x3f),
            (29, 8, 0x7f),
            (42, 8, 0xbf),
            (64, 8, 0xff),
        ];
        let mut max = 0u64;
        for (l, (t, b, v)) in LEVELS.iter().zip(c_levels) {
            let adj = max + 1;
            max += 1u64 << (t - b);
            assert_eq!((l.total_bits, l.prefix_bits, l.prefix), (t, b, v));
            assert_eq!((l.base, l.max), (adj, max));
        }
        assert_eq!(VLI_MAX, 0x0100_0004_0020_2130);
    }

    #[test]
    fn vli_edges() {
        assert_eq!(vli_encode(0), Err(ProtocolError::VliOutOfRange));
        assert_eq!(vli_encode(VLI_MAX + 1), Err(ProtocolError::VliOutOfRange));
        assert_eq!(vli_encode(u64::MAX), Err(ProtocolError::VliOutOfRange));
        assert_eq!(vli_encode(1), Ok((0b00, 2)));
        assert_eq!(vli_encode(2), Ok((0b10, 2)));
        assert_eq!(vli_encode(3), Ok((0b001, 3)));
        assert_eq!(vli_encode(4), Ok((0b101, 3)));
        assert_eq!(vli_encode(5), Ok((0b00011, 5)));
        assert_eq!(vli_encode(VLI_MAX), Ok((u64::MAX, 64)));
        for l in LEVELS {
            for v in [l.base, l.base + 1, l.max - 1, l.max] {
                let (code, bits) = vli_encode(v).unwrap();
                assert_eq!(bits, l.total_bits, "{v}");
                // Decoding ignores whatever follows the code word.
                let junk = if bits < 64 { u64::MAX << bits } else { 0 };
                assert_eq!(vli_decode(code | junk), Some((v, bits)), "{v}");
            }
        }
        // Every 8-bit prefix pattern decodes.
        for low in 0..=255u64 {
            assert!(vli_decode(low).is_some());
        }
        let mut rng = XorShift(7);
        for _ in 0..100_000 {
            let v = rng.next() % VLI_MAX + 1;
            let (code, bits) = vli_encode(v).unwrap();
            assert_eq!(vli_decode(code), Some((v, bits)));
        }
    }

    fn bitmap(bits: u64, set: impl Fn(u64) -> bool) -> Vec<u64> {
        let mut words = vec![0u64; bits.div_ceil(64) as usize];
        for b in 0..bits {
            if set(b) {
                words[(b / 64) as usize] |= 1 << (b % 64);
            }
        }
        words
    }

    #[test]
    fn worked_examples_from_the_reference() {
        let mut all = bitmap(262_144, |_| true);
        let src = WordBitmap::new(&mut all, 262_144).unwrap();
        let mut out = [0u8; 4080];
        let c = encode_rle(&src, 0, u64::MAX, &mut out).unwrap().unwrap();
        assert_eq!(&out[..c.len], [0xb2, 0x7f, 0xcf, 0xde, 0x03]);
        assert_eq!(c.end_bit, 262_144);

        let mut some = bitmap(262_144, |b| (100..200).contains(&b));
        let src = WordBitmap::new(&mut some, 262_144).unwrap();
        let c = encode_rle(&src, 0, u64::MAX, &mut out).unwrap().unwrap();
        assert_eq!(
            &out[..c.len],
            [0x72, 0xdf, 0xcc, 0x37, 0xf3, 0x77, 0xe0, 0x3d, 0x00]
        );

        let payload = out[..c.len].to_vec();
        let mut words = vec![0u64; 4096];
        let mut sink = WordBitmap::new(&mut words, 262_144).unwrap();
        assert_eq!(decode_rle(&payload, 0, 262_144, &mut sink), Ok(262_144));
        assert_eq!(words, some);
    }

    #[test]
    fn incompressible_falls_back() {
        // Alternating bits: every run is 1 bit, 2 code bits each.
        let mut words = bitmap(4096, |b| b.is_multiple_of(2));
        let src = WordBitmap::new(&mut words, 4096).unwrap();
        let mut out = [0u8; 4080];
        assert_eq!(encode_rle(&src, 0, u64::MAX, &mut out), Ok(None));
        assert_eq!(encode_rle(&src, 4096, u64::MAX, &mut out), Ok(None));
        assert_eq!(encode_rle(&src, 0, u64::MAX, &mut []), Ok(None));
    }

    #[test]
    fn a_transfer_smaller_than_the_bitmap_stops_at_its_last_bit() {
        // Our bitmap covers 8192 bits, the size agreed with the peer 6000:
        // neither a compressed nor a plain chunk says anything past it.
        let mut words = bitmap(8192, |_| true);
        let src = WordBitmap::new(&mut words, 8192).unwrap();
        let link = Link { version: 101, features: 0 };
        let mut out = [0u8; 4096];
        let mut xfer = BitmapXfer::new(6000);
        let chunk = xfer.send_next(link, true, &src, &mut out).unwrap();
        assert_eq!(chunk.cmd, Packet::CompressedBitmap);
        assert!(chunk.last);
        let mut theirs = vec![0u64; 94];
        let mut sink = WordBitmap::new(&mut theirs, 6000).unwrap();
        let mut rx = BitmapXfer::new(6000);
        assert_eq!(rx.receive(link, chunk.cmd, &out[..chunk.len], &mut sink), Ok(true));
        let mut plain = BitmapXfer::new(6000);
        let chunk = plain.send_next(link, false, &src, &mut out).unwrap();
        assert_eq!(chunk.cmd, Packet::Bitmap);
        assert_eq!(chunk.len, 94 * 8);
        // The last word carries bits 5952..6000 only.
        assert_eq!(u64::from_le_bytes(out[93 * 8..94 * 8].try_into().unwrap()), (1u64 << 48) - 1);
    }

    #[test]
    fn decode_rejects_hostile_streams() {
        let mut words = vec![0u64; 2];
        let mut sink = WordBitmap::new(&mut words, 100).unwrap();
        // Wrong code.
        assert_eq!(
            decode_rle(&[0x03, 0], 0, 100, &mut sink),
            Err(ProtocolError::BadBitmapEncoding)
        );
        // A set run of 200 bits on a 100-bit bitmap.
        let (code, bits) = vli_encode(200).unwrap();
        let mut p = vec![0x80 | 2 | (((8 - bits % 8) % 8) << 4) as u8];
        p.extend_from_slice(&code.to_le_bytes()[..bits.div_ceil(8) as usize]);
        assert_eq!(
            decode_rle(&p, 0, 100, &mut sink),
            Err(ProtocolError::RleBeyondBitmap)
        );
        // A clear run past the end is refused too.
        p[0] &= 0x7f;
        assert_eq!(
            decode_rle(&p, 0, 100, &mut sink),
            Err(ProtocolError::RleBeyondBitmap)
        );
        // A code word cut by the pad bits: "1110" needs 7 bits, only 4 valid.
        assert_eq!(
            decode_rle(&[0x42, 0b0000_0111], 0, 100, &mut sink),
            Err(ProtocolError::BadRleCode)
        );
        // Offsets near u64::MAX do not overflow.
        assert_eq!(
            decode_rle(&[0x02, 0xff], u64::MAX - 1, u64::MAX, &mut sink),
            Err(ProtocolError::BadRleCode)
        );
        // Nothing was applied by any rejected packet.
        assert_eq!(words, [0, 0]);
        // A valid prefix followed by garbage applies nothing either.
        let mut words = vec![0u64; 2];
        let mut sink = WordBitmap::new(&mut words, 100).unwrap();
        // set run 1 ("00"), clear run 1 ("00"), then "1110" cut short.
        assert_eq!(
            decode_rle(&[0x80 | 0x02, 0b0111_0000], 0, 100, &mut sink),
            Err(ProtocolError::BadRleCode)
        );
        assert_eq!(words, [0, 0]);
    }

    /// Sends `words` through a full transfer and returns the receiver's
    /// bitmap and the chunk commands.
    fn transfer(
        link: Link,
        use_rle: bool,
        bits: u64,
        words: &mut [u64],
    ) -> (Vec<u64>, Vec<Packet>) {
        let src = WordBitmap::new(words, bits).unwrap();
        let mut tx = BitmapXfer::new(bits);
        let mut rx = BitmapXfer::new(bits);
        let mut got = vec![0u64; bits.div_ceil(64) as usize];
        let mut cmds = Vec::new();
        let mut buf = vec![0u8; 4096];
        for _ in 0..1_000_000 {
            let chunk = tx.send_next(link, use_rle, &src, &mut buf).unwrap();
            assert!(chunk.len <= link.bitmap_payload_max());
            cmds.push(chunk.cmd);
            let mut sink = WordBitmap::new(&mut got, bits).unwrap();
            let done = rx
                .receive(link, chunk.cmd, &buf[..chunk.len], &mut sink)
                .unwrap();
            assert_eq!(done, chunk.last, "sender and receiver disagree on the end");
            if done {
                return (got, cmds);
            }
        }
        panic!("transfer did not end");
    }

    #[test]
    fn random_bitmaps_round_trip() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for round in 0..300 {
            let bits = match round % 5 {
                0 => rng.next() % 200,
                1 => rng.next() % 70_000,
                _ => rng.next() % 600_000,
            };
            // Mixtures of long runs and noise, at varying densities.
            let density = rng.next() % 100;
            let run_scale = 1 + rng.next() % 5000;
            let mut words = vec![0u64; bits.div_ceil(64) as usize];
            let mut b = 0;
            let mut set = rng.next().is_multiple_of(2);
            while b < bits {
                let noisy = rng.next() % 100 < density;
                let len = if noisy {
                    1 + rng.next() % 3
                } else {
                    1 + rng.next() % run_scale
                };
                if set {
                    for i in b..(b + len).min(bits) {
                        words[(i / 64) as usize] |= 1 << (i % 64);
                    }
                }
                b += len;
                set = !set;
            }
            for (link, rle) in [(L101, true), (L95, true), (L89, true), (L101, false)] {
                let (got, cmds) = transfer(link, rle, bits, &mut words);
                assert_eq!(got, words, "round {round} bits {bits}");
                if !rle || link.version < 90 {
                    assert!(cmds.iter().all(|&c| c == Packet::Bitmap));
                }
            }
        }
    }

    #[test]
    fn plain_transfer_shape() {
        // 1 GiB with h100: 4096 words = 8 full chunks of 510 + 16, + empty.
        let bits = 262_144;
        let mut words = bitmap(bits, |b| b.is_multiple_of(3));
        let (got, cmds) = transfer(L101, false, bits, &mut words);
        assert_eq!(got, words);
        assert_eq!(cmds.len(), 10);
        let mut x = BitmapXfer::new(bits);
        assert_eq!(x.plain_chunk_words(L101), 510);
        assert_eq!(x.plain_chunk_words(L95), 511);
        // A wrong-sized chunk is refused.
        let mut sink_words = vec![0u64; 4096];
        let mut sink = WordBitmap::new(&mut sink_words, bits).unwrap();
        assert_eq!(
            x.receive(L101, Packet::Bitmap, &[0; 8], &mut sink),
            Err(ProtocolError::BadBitmapChunk)
        );
        assert_eq!(
            x.receive(L101, Packet::Bitmap, &[], &mut sink),
            Err(ProtocolError::BadBitmapChunk)
        );
        assert_eq!(
            x.receive(L101, Packet::Data, &[], &mut sink),
            Err(ProtocolError::UnexpectedCommand(0))
        );
        assert_eq!(
            x.receive(L101, Packet::CompressedBitmap, &[0x02], &mut sink),
            Err(ProtocolError::TooShort)
        );
        assert_eq!(
            x.receive(L101, Packet::CompressedBitmap, &[0x02; 4081], &mut sink),
            Err(ProtocolError::TooLong)
        );
        // An empty bitmap is one empty P_BITMAP.
        let (got, cmds) = transfer(L101, true, 0, &mut []);
        assert!(got.is_empty());
        assert_eq!(cmds, [Packet::Bitmap]);
    }

    #[test]
    fn mixed_transfer_rewinds_to_word() {
        // A long clear run, then alternating bits (2 code bits per bit),
        // then a long set run: RLE, plain chunks (rewound to the word where
        // the first RLE chunk ended), RLE again.
        let bits = 600_000;
        let mut words = bitmap(bits, |b| {
            (100_000..300_000).contains(&b) && b.is_multiple_of(2) || b >= 400_000
        });
        let (got, cmds) = transfer(L101, true, bits, &mut words);
        assert_eq!(got, words);
        assert_eq!(cmds.first(), Some(&Packet::CompressedBitmap));
        assert!(cmds.contains(&Packet::Bitmap));
        assert_eq!(cmds.last(), Some(&Packet::CompressedBitmap));
    }

    #[test]
    fn plain_words_beyond_the_end_are_masked() {
        let bits = 70;
        let mut words = vec![0u64; 2];
        let mut x = BitmapXfer::new(bits);
        let mut sink = WordBitmap::new(&mut words, bits).unwrap();
        let payload = [0xffu8; 16];
        assert_eq!(
            x.receive(L101, Packet::Bitmap, &payload, &mut sink),
            Ok(false)
        );
        assert_eq!(x.receive(L101, Packet::Bitmap, &[], &mut sink), Ok(true));
        assert_eq!(words, [u64::MAX, 0x3f]);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0xdead_beef);
        let mut words = vec![0u64; 64];
        let mut payload = vec![0u8; 4096];
        for round in 0..50_000 {
            let len = (rng.next() % 64) as usize + if round % 10 == 0 { 4000 } else { 0 };
            for b in payload.iter_mut().take(len) {
                *b = rng.next() as u8;
            }
            // Make the code valid often enough to get past the first check.
            if round % 2 == 0 && len > 0 {
                payload[0] = (payload[0] & 0xf0) | 2;
            }
            let bits = rng.next() % 4097;
            let start = rng.next() % (bits + 2);
            let mut sink = WordBitmap::new(&mut words, bits).unwrap();
            let _ = decode_rle(&payload[..len], start, bits, &mut sink);
            let mut x = BitmapXfer::new(bits);
            let _ = x.receive(L101, Packet::CompressedBitmap, &payload[..len], &mut sink);
            let _ = x.receive(L95, Packet::Bitmap, &payload[..len], &mut sink);
            let _ = vli_decode(rng.next());
            let _ = vli_encode(rng.next());
        }
    }
}
