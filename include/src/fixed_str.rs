//! Bounded, NUL-terminated byte strings without allocation: resource names
//! and device paths as DRBD limits them, usable as ordered map keys.

/// At most `N - 1` bytes, no interior NUL, always followed by a NUL byte.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct FixedStr<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> FixedStr<N> {
    /// The empty string.
    pub const EMPTY: Self = Self { len: 0, bytes: [0; N] };

    /// Copies `s`; `None` if it is too long or contains a NUL byte.
    pub fn new(s: &[u8]) -> Option<Self> {
        if s.len() >= N || s.contains(&0) {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes.get_mut(..s.len())?.copy_from_slice(s);
        Some(Self { len: s.len(), bytes })
    }

    /// The bytes, without the terminating NUL.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// The bytes including the terminating NUL (for C APIs).
    pub fn as_bytes_with_nul(&self) -> &[u8] {
        self.bytes.get(..=self.len).unwrap_or(&[])
    }

    /// The text, with invalid UTF-8 shown as `?`.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::FixedStr;

    #[test]
    fn keeps_bytes_and_nul() {
        let s = FixedStr::<8>::new(b"r0").unwrap();
        assert_eq!(s.as_bytes(), b"r0");
        assert_eq!(s.as_bytes_with_nul(), b"r0\0");
        assert_eq!(s.as_str(), "r0");
    }

    #[test]
    fn refuses_too_long_and_nul() {
        assert!(FixedStr::<4>::new(b"abcd").is_none());
        assert!(FixedStr::<4>::new(b"abc").is_some());
        assert!(FixedStr::<8>::new(b"a\0b").is_none());
    }

    #[test]
    fn orders_like_bytes_of_equal_length() {
        let a = FixedStr::<8>::new(b"r0").unwrap();
        let b = FixedStr::<8>::new(b"r1").unwrap();
        assert!(a < b);
    }
}
