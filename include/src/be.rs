//! Big-endian fields at byte offsets of on-disk blocks. An offset past the
//! end reads as 0 and writes nothing: the callers' offsets are constants
//! inside fixed-size blocks, and nothing here may panic.

/// The u16 at `at`.
pub(crate) fn get_be16(block: &[u8], at: usize) -> u16 {
    block.get(at..).and_then(|s| s.first_chunk()).map_or(0, |b| u16::from_be_bytes(*b))
}

/// The u32 at `at`.
pub(crate) fn get_be32(block: &[u8], at: usize) -> u32 {
    block.get(at..).and_then(|s| s.first_chunk()).map_or(0, |b| u32::from_be_bytes(*b))
}

/// The u64 at `at`.
pub(crate) fn get_be64(block: &[u8], at: usize) -> u64 {
    block.get(at..).and_then(|s| s.first_chunk()).map_or(0, |b| u64::from_be_bytes(*b))
}

/// Stores `value` at `at`.
pub(crate) fn put_be16(block: &mut [u8], at: usize, value: u16) {
    if let Some(b) = block.get_mut(at..).and_then(|s| s.first_chunk_mut()) {
        *b = value.to_be_bytes();
    }
}

/// Stores `value` at `at`.
pub(crate) fn put_be32(block: &mut [u8], at: usize, value: u32) {
    if let Some(b) = block.get_mut(at..).and_then(|s| s.first_chunk_mut()) {
        *b = value.to_be_bytes();
    }
}

/// Stores `value` at `at`.
pub(crate) fn put_be64(block: &mut [u8], at: usize, value: u64) {
    if let Some(b) = block.get_mut(at..).and_then(|s| s.first_chunk_mut()) {
        *b = value.to_be_bytes();
    }
}
