//! Big-endian byte cursors over caller buffers, for the wire protocol's
//! payloads. They only ever use checked slice access: a short input is
//! `TooShort`, a short output `BufferTooSmall`, never a panic.

use super::protocol::ProtocolError;

/// Reads big-endian fields front to back.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(ProtocolError::TooShort)?;
        self.rest = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), ProtocolError> {
        self.rest = self.rest.get(n..).ok_or(ProtocolError::TooShort)?;
        Ok(())
    }

    /// Takes `n` bytes as a slice.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(ProtocolError::TooShort)?;
        self.rest = tail;
        Ok(head)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Fails if bytes are left over.
    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TooLong)
        }
    }
}

/// Writes big-endian fields front to back into a caller's buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Fails up front unless `need` bytes fit, so nothing is half written.
    pub(crate) fn new(buf: &'a mut [u8], need: usize) -> Result<Self, ProtocolError> {
        if buf.len() < need {
            return Err(ProtocolError::BufferTooSmall);
        }
        Ok(Self { buf, pos: 0 })
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(ProtocolError::BufferTooSmall)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(ProtocolError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), ProtocolError> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), ProtocolError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), ProtocolError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn i32(&mut self, v: i32) -> Result<(), ProtocolError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), ProtocolError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn zeros(&mut self, n: usize) -> Result<(), ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(ProtocolError::BufferTooSmall)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(ProtocolError::BufferTooSmall)?
            .fill(0);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.pos
    }
}
