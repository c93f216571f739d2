//! Netlink attributes (`struct nlattr`) over plain byte slices.
//!
//! An attribute is a 4-byte header (`nla_len` u16, `nla_type` u16, both in
//! host byte order) followed by `nla_len - 4` payload bytes, then zero
//! padding up to the next multiple of 4. Everything here works on borrowed
//! slices and caller-provided buffers: no allocation, and no input, however
//! malformed, can make it panic.

/// Size of an attribute header.
pub const NLA_HDRLEN: usize = 4;
/// Attributes start on multiples of this many bytes.
pub const NLA_ALIGNTO: usize = 4;
/// Type bit marking a payload made of attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
/// Type bit DRBD uses for "mandatory" (`DRBD_GENLA_F_MANDATORY`, numerically
/// `NLA_F_NET_BYTEORDER`): a receiver that does not know the attribute must
/// reject the request instead of ignoring it.
pub const NLA_F_MANDATORY: u16 = 0x4000;
/// Mask that leaves the attribute number of a type.
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// Why attribute bytes could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NlaError {
    /// 1 to 3 bytes left where an attribute header should start.
    TruncatedHeader,
    /// `nla_len` is below the header size or beyond the end of the input.
    BadLength,
    /// The padding after an attribute is cut short, so the next one would
    /// not start on a 4-byte boundary.
    BadAlignment,
    /// An integer payload does not have exactly the integer's size.
    WrongSize,
    /// A string payload has no NUL terminator.
    MissingNul,
    /// A string or binary payload is longer than its field allows, or an
    /// attribute would not fit the 16-bit length.
    TooLong,
    /// The output buffer is too small.
    Overflow,
}

impl NlaError {
    /// A short English description, for logs and error replies.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TruncatedHeader => "truncated attribute header",
            Self::BadLength => "bad attribute length",
            Self::BadAlignment => "attribute padding cut short",
            Self::WrongSize => "integer attribute of wrong size",
            Self::MissingNul => "string attribute not NUL-terminated",
            Self::TooLong => "attribute too long",
            Self::Overflow => "message buffer too small",
        }
    }
}

/// Rounds `len` up to the attribute alignment; `None` on overflow.
fn aligned(len: usize) -> Option<usize> {
    Some(len.checked_add(NLA_ALIGNTO - 1)? & !(NLA_ALIGNTO - 1))
}

/// One attribute, borrowed from the parsed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Attribute number: the type without the two flag bits.
    pub number: u16,
    /// Whether `NLA_F_NESTED` was set.
    pub nested: bool,
    /// Whether DRBD's mandatory bit (`NLA_F_MANDATORY`) was set.
    pub mandatory: bool,
    /// The payload, without header and padding.
    pub payload: &'a [u8],
    /// Header plus payload, without padding: what `nla_put_nohdr` copies.
    pub raw: &'a [u8],
}

impl<'a> Attr<'a> {
    fn fixed<const N: usize>(&self) -> Result<[u8; N], NlaError> {
        self.payload.try_into().map_err(|_| NlaError::WrongSize)
    }

    /// The payload as a u8 (also DRBD's "flag" fields).
    pub fn get_u8(&self) -> Result<u8, NlaError> {
        Ok(u8::from_ne_bytes(self.fixed()?))
    }

    /// A DRBD flag field: a u8 where any non-zero value means set.
    pub fn get_flag(&self) -> Result<bool, NlaError> {
        Ok(self.get_u8()? != 0)
    }

    /// The payload as a host-order u32.
    pub fn get_u32(&self) -> Result<u32, NlaError> {
        Ok(u32::from_ne_bytes(self.fixed()?))
    }

    /// The payload as a host-order s32 (sent as an NLA_U32).
    pub fn get_s32(&self) -> Result<i32, NlaError> {
        Ok(i32::from_ne_bytes(self.fixed()?))
    }

    /// The payload as a host-order u64.
    pub fn get_u64(&self) -> Result<u64, NlaError> {
        Ok(u64::from_ne_bytes(self.fixed()?))
    }

    /// A NUL-terminated string field whose C array holds `max_size` bytes
    /// (NUL included), checked like the kernel's NLA_NUL_STRING policy.
    /// Returns the bytes before the first NUL; they need not be UTF-8.
    pub fn get_str(&self, max_size: usize) -> Result<&'a [u8], NlaError> {
        let payload = self.payload;
        let Some(nul) = payload.iter().position(|&b| b == 0) else {
            return Err(NlaError::MissingNul);
        };
        // One trailing NUL does not count against the limit, anything else does.
        let counted = match payload.split_last() {
            Some((0, rest)) => rest.len(),
            _ => payload.len(),
        };
        if counted > max_size.saturating_sub(1) {
            return Err(NlaError::TooLong);
        }
        payload.get(..nul).ok_or(NlaError::MissingNul)
    }

    /// A binary field of at most `max_size` bytes.
    pub fn get_bytes(&self, max_size: usize) -> Result<&'a [u8], NlaError> {
        if self.payload.len() > max_size {
            return Err(NlaError::TooLong);
        }
        Ok(self.payload)
    }

    /// The attributes inside this one's payload.
    pub fn nested_attrs(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }
}

/// Validating iterator over a sequence of attributes.
///
/// Yields `Err` once for the first malformed attribute and then stops.
/// Attributes of number 0 (alignment pads) are skipped. The final
/// attribute's padding may be missing, as the kernel tolerates it too.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// Iterates over the attributes in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn parse_next(&mut self) -> Result<Option<Attr<'a>>, NlaError> {
        loop {
            if self.rest.is_empty() {
                return Ok(None);
            }
            let Some(([l0, l1, t0, t1], _)) = self.rest.split_first_chunk::<NLA_HDRLEN>() else {
                return Err(NlaError::TruncatedHeader);
            };
            let len = usize::from(u16::from_ne_bytes([*l0, *l1]));
            let nla_type = u16::from_ne_bytes([*t0, *t1]);
            if len < NLA_HDRLEN {
                return Err(NlaError::BadLength);
            }
            let (raw, after) = self.rest.split_at_checked(len).ok_or(NlaError::BadLength)?;
            let pad = aligned(len).ok_or(NlaError::BadLength)?.saturating_sub(len);
            self.rest = match after.get(pad..) {
                Some(next) => next,
                None if after.is_empty() => after,
                None => return Err(NlaError::BadAlignment),
            };
            let number = nla_type & NLA_TYPE_MASK;
            if number == 0 {
                continue;
            }
            return Ok(Some(Attr {
                number,
                nested: nla_type & NLA_F_NESTED != 0,
                mandatory: nla_type & NLA_F_MANDATORY != 0,
                payload: raw.get(NLA_HDRLEN..).unwrap_or_default(),
                raw,
            }));
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, NlaError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.parse_next();
        if item.is_err() {
            self.rest = &[];
        }
        item.transpose()
    }
}

/// An open nest returned by [`NlaWriter::begin_nest`]; hand it back to
/// [`NlaWriter::end_nest`] (or `cancel_nest`) once its members are written.
#[derive(Debug)]
#[must_use = "an open nest must be ended"]
pub struct Nest {
    start: usize,
}

/// Writes attributes into a caller-provided buffer.
///
/// Each write either fits completely (attribute and padding) or fails with
/// `NlaError::Overflow` and leaves the buffer as it was.
#[derive(Debug)]
pub struct NlaWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> NlaWriter<'a> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Number of bytes written so far (always a multiple of 4 unless the
    /// caller used `put_raw` with an odd length, which it pads).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Appends the concatenation of `parts`, then zero padding to a multiple
    /// of 4, or nothing at all if it does not fit.
    fn append(&mut self, parts: &[&[u8]]) -> Result<(), NlaError> {
        let total = parts
            .iter()
            .try_fold(0usize, |sum, p| sum.checked_add(p.len()));
        let end = total
            .and_then(|t| self.len.checked_add(t))
            .ok_or(NlaError::Overflow)?;
        let padded_end = aligned(end).ok_or(NlaError::Overflow)?;
        let out = self
            .buf
            .get_mut(self.len..padded_end)
            .ok_or(NlaError::Overflow)?;
        let mut rest = out;
        for part in parts {
            let (head, tail) = rest
                .split_at_mut_checked(part.len())
                .ok_or(NlaError::Overflow)?;
            head.copy_from_slice(part);
            rest = tail;
        }
        rest.fill(0);
        self.len = padded_end;
        Ok(())
    }

    /// Appends bytes that already form attributes or a header, padded to 4.
    pub fn put_raw(&mut self, bytes: &[u8]) -> Result<(), NlaError> {
        self.append(&[bytes])
    }

    fn put_parts(&mut self, nla_type: u16, value: &[u8], suffix: &[u8]) -> Result<(), NlaError> {
        let len = NLA_HDRLEN
            .checked_add(value.len())
            .and_then(|l| l.checked_add(suffix.len()))
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(NlaError::TooLong)?;
        self.append(&[&len.to_ne_bytes(), &nla_type.to_ne_bytes(), value, suffix])
    }

    /// Appends an attribute with the given payload.
    pub fn put_bytes(&mut self, nla_type: u16, payload: &[u8]) -> Result<(), NlaError> {
        self.put_parts(nla_type, payload, &[])
    }

    /// Appends a u8 attribute.
    pub fn put_u8(&mut self, nla_type: u16, value: u8) -> Result<(), NlaError> {
        self.put_bytes(nla_type, &[value])
    }

    /// Appends a DRBD flag field (u8 0 or 1).
    pub fn put_flag(&mut self, nla_type: u16, value: bool) -> Result<(), NlaError> {
        self.put_u8(nla_type, u8::from(value))
    }

    /// Appends a host-order u32 attribute.
    pub fn put_u32(&mut self, nla_type: u16, value: u32) -> Result<(), NlaError> {
        self.put_bytes(nla_type, &value.to_ne_bytes())
    }

    /// Appends an s32 as the NLA_U32 it travels as.
    pub fn put_s32(&mut self, nla_type: u16, value: i32) -> Result<(), NlaError> {
        self.put_bytes(nla_type, &value.to_ne_bytes())
    }

    /// Appends a host-order u64 attribute.
    pub fn put_u64(&mut self, nla_type: u16, value: u64) -> Result<(), NlaError> {
        self.put_bytes(nla_type, &value.to_ne_bytes())
    }

    /// Appends a string attribute: `value` followed by a NUL.
    pub fn put_str(&mut self, nla_type: u16, value: &[u8]) -> Result<(), NlaError> {
        self.put_parts(nla_type, value, &[0])
    }

    /// Opens a nest: writes a header whose length `end_nest` fills in.
    /// Pass `NLA_F_NESTED | number` to flag it as drbd-utils and the
    /// kernel's `nla_nest_start` do.
    pub fn begin_nest(&mut self, nla_type: u16) -> Result<Nest, NlaError> {
        let start = self.len;
        self.put_parts(nla_type, &[], &[])?;
        Ok(Nest { start })
    }

    /// Closes a nest: its length becomes everything written since it opened.
    pub fn end_nest(&mut self, nest: Nest) -> Result<(), NlaError> {
        let len = self
            .len
            .checked_sub(nest.start)
            .ok_or(NlaError::BadLength)?;
        let len = u16::try_from(len).map_err(|_| NlaError::TooLong)?;
        self.patch(nest.start, &len.to_ne_bytes())
    }

    /// Drops a nest and everything written into it.
    pub fn cancel_nest(&mut self, nest: Nest) {
        self.len = self.len.min(nest.start);
    }

    /// Overwrites already written bytes at `offset` (e.g. a header field).
    pub fn patch(&mut self, offset: usize, bytes: &[u8]) -> Result<(), NlaError> {
        let end = offset.checked_add(bytes.len()).ok_or(NlaError::Overflow)?;
        if end > self.len {
            return Err(NlaError::Overflow);
        }
        let target = self.buf.get_mut(offset..end).ok_or(NlaError::Overflow)?;
        target.copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )]
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn attr_bytes(len: u16, nla_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&nla_type.to_ne_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn collect(bytes: &[u8]) -> Vec<Result<Attr<'_>, NlaError>> {
        Attrs::new(bytes).collect()
    }

    #[test]
    fn writer_and_iterator_round_trip() {
        let mut buf = [0xAAu8; 128];
        let mut w = NlaWriter::new(&mut buf);
        w.put_u8(1, 7).unwrap();
        w.put_u32(2 | NLA_F_MANDATORY, 0xdead_beef).unwrap();
        w.put_u64(3, u64::MAX - 1).unwrap();
        let nest = w.begin_nest(NLA_F_NESTED | 4).unwrap();
        w.put_str(1, b"r0").unwrap();
        w.put_s32(2, -3).unwrap();
        w.end_nest(nest).unwrap();
        w.put_bytes(5, &[1, 2, 3, 4, 5]).unwrap();
        w.put_flag(6, true).unwrap();
        assert_eq!(w.len() % 4, 0);
        let bytes = w.written().to_vec();
        let attrs: Vec<_> = Attrs::new(&bytes).map(Result::unwrap).collect();
        assert_eq!(attrs.len(), 6);
        assert_eq!(attrs[0].get_u8(), Ok(7));
        assert!(attrs[1].mandatory && !attrs[1].nested);
        assert_eq!(attrs[1].get_u32(), Ok(0xdead_beef));
        assert_eq!(attrs[2].get_u64(), Ok(u64::MAX - 1));
        assert!(attrs[3].nested && attrs[3].number == 4);
        let inner: Vec<_> = attrs[3].nested_attrs().map(Result::unwrap).collect();
        assert_eq!(inner[0].get_str(128), Ok(&b"r0"[..]));
        assert_eq!(inner[1].get_s32(), Ok(-3));
        assert_eq!(attrs[4].get_bytes(5), Ok(&[1u8, 2, 3, 4, 5][..]));
        assert_eq!(attrs[5].get_flag(), Ok(true));
        // Padding is zeroed even though the buffer held 0xAA.
        assert_eq!(&bytes[4..8], &[7, 0, 0, 0]);
        assert_eq!(attrs[3].raw.len(), 4 + 8 + 8);
    }

    #[test]
    fn skips_type_zero_and_tolerates_missing_final_padding() {
        let mut bytes = attr_bytes(4, 0, &[]);
        bytes.extend(attr_bytes(5, 9, &[1]));
        let attrs = collect(&bytes);
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].unwrap().get_u8(), Ok(1));
    }

    #[test]
    fn truncated_header() {
        let mut bytes = attr_bytes(8, 1, &[0; 4]);
        bytes.extend_from_slice(&[8, 0]);
        let attrs = collect(&bytes);
        assert!(attrs[0].is_ok());
        assert_eq!(attrs[1], Err(NlaError::TruncatedHeader));
        assert_eq!(attrs.len(), 2, "stops after the first error");
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(collect(&attr_bytes(3, 1, &[])), [Err(NlaError::BadLength)]);
        assert_eq!(
            collect(&attr_bytes(12, 1, &[0; 4])),
            [Err(NlaError::BadLength)]
        );
        assert_eq!(collect(&attr_bytes(0, 1, &[])), [Err(NlaError::BadLength)]);
    }

    #[test]
    fn bad_alignment() {
        // len 5 needs 3 padding bytes, only 2 follow.
        let bytes = attr_bytes(5, 1, &[1, 0, 0]);
        assert_eq!(collect(&bytes), [Err(NlaError::BadAlignment)]);
    }

    #[test]
    fn integer_sizes_are_exact() {
        let bytes = attr_bytes(7, 1, &[1, 2, 3, 0]);
        let a = collect(&bytes)[0].unwrap();
        assert_eq!(a.get_u32(), Err(NlaError::WrongSize));
        assert_eq!(a.get_u8(), Err(NlaError::WrongSize));
        assert_eq!(a.get_u64(), Err(NlaError::WrongSize));
    }

    #[test]
    fn strings() {
        let parse = |payload: &[u8], max: usize| {
            let bytes = attr_bytes(4 + payload.len() as u16, 1, payload);
            let attrs = collect(&bytes);
            let a = attrs[0].unwrap();
            a.get_str(max).map(|s| s.to_vec())
        };
        assert_eq!(parse(b"abc\0", 4), Ok(b"abc".to_vec()));
        assert_eq!(parse(b"abcd\0", 4), Err(NlaError::TooLong));
        assert_eq!(parse(b"abc\0\0", 4), Err(NlaError::TooLong));
        assert_eq!(parse(b"abc", 4), Err(NlaError::MissingNul));
        assert_eq!(parse(b"", 4), Err(NlaError::MissingNul));
        assert_eq!(parse(b"\xff\xfe\0", 4), Ok(b"\xff\xfe".to_vec()));
        assert_eq!(parse(b"x\0", usize::MAX), Ok(b"x".to_vec()));
        let bytes = attr_bytes(9, 1, &[0; 5]);
        assert_eq!(
            collect(&bytes)[0].unwrap().get_bytes(4),
            Err(NlaError::TooLong)
        );
    }

    #[test]
    fn writer_overflow_leaves_buffer_unchanged() {
        let mut buf = [0u8; 12];
        let mut w = NlaWriter::new(&mut buf);
        w.put_u32(1, 5).unwrap();
        assert_eq!(w.put_u32(2, 6), Err(NlaError::Overflow));
        assert_eq!(w.put_u8(2, 6), Err(NlaError::Overflow));
        assert_eq!(w.put_str(2, b"abc"), Err(NlaError::Overflow));
        assert_eq!(w.len(), 8);
        w.put_raw(&[1]).unwrap();
        assert_eq!(w.len(), 12);
        assert_eq!(w.begin_nest(3).err(), Some(NlaError::Overflow));
        assert_eq!(w.patch(10, &[0; 4]), Err(NlaError::Overflow));
    }

    #[test]
    fn nests_too_long_and_cancel() {
        let mut big = std::vec![0u8; 90_000];
        let mut w = NlaWriter::new(&mut big);
        assert_eq!(w.put_bytes(1, &[0; 65_532]), Err(NlaError::TooLong));
        let nest = w.begin_nest(2).unwrap();
        w.put_bytes(1, &[0; 40_000]).unwrap();
        w.put_bytes(1, &[0; 40_000]).unwrap();
        let start_len = 0;
        let nest2 = Nest { start: nest.start };
        assert_eq!(w.end_nest(nest), Err(NlaError::TooLong));
        w.cancel_nest(nest2);
        assert_eq!(w.len(), start_len);
        assert!(w.is_empty());
    }
}
