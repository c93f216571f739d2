//! The xorshift generator the property tests share (tests only: no crates).
#![allow(clippy::arithmetic_side_effects)]

/// Marsaglia's xorshift64; seed with any non-zero value.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    /// The next pseudo-random value.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (`n` > 0).
    #[allow(dead_code)]
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
