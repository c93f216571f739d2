//! Big-endian byte cursors over caller buffers, for the wire protocol's
//! payloads. They only ever use checked slice access: a short input is
//! `TooShort`, a short output `BufferTooSmall`, never a panic.
//!
//! `wire_struct!` builds a fixed-layout payload (struct, `SIZE`, `decode`,
//! `encode`) from one list of its fields, so the field order is written
//! once instead of three times.

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

/// A value with a fixed-size big-endian layout: a field of a
/// `wire_struct!` payload.
///
/// Decoding is split in two because the C receivers check a payload's
/// size before they look at its content: `read` takes the bytes of every
/// field, the payload is checked to end there, and only then `check` turns
/// the values into fields and may reject them (a state word 8.4 does not
/// define). So a payload of the wrong length is `TooShort` or `TooLong`
/// whatever it contains.
pub(crate) trait WireField: Sized {
    /// Bytes on the wire.
    const SIZE: usize;

    /// The value as read, before `check`.
    type Raw;

    /// Reads `SIZE` bytes.
    fn read(r: &mut Reader<'_>) -> Result<Self::Raw, ProtocolError>;

    /// The field for a value read by `read`.
    fn check(raw: Self::Raw) -> Result<Self, ProtocolError>;

    /// Writes `SIZE` bytes.
    fn write(&self, w: &mut Writer<'_>) -> Result<(), ProtocolError>;
}

/// Integers are fields as they are: every value is valid.
macro_rules! wire_int {
    ($($int:ident),*) => {$(
        impl WireField for $int {
            const SIZE: usize = core::mem::size_of::<$int>();
            type Raw = Self;

            fn read(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
                r.$int()
            }

            fn check(raw: Self) -> Result<Self, ProtocolError> {
                Ok(raw)
            }

            fn write(&self, w: &mut Writer<'_>) -> Result<(), ProtocolError> {
                w.$int(*self)
            }
        }
    )*};
}

wire_int!(u32, i32, u64);

/// Defines a payload of fixed size from its fields in wire order: the
/// struct (plain data: Debug, Clone, Copy, PartialEq, Eq), its payload
/// `SIZE`, `decode` (exactly `SIZE` bytes, else `TooShort` or `TooLong`;
/// padding is not looked at, as in C) and `encode` (padding written as
/// zeros; returns `SIZE`), and `WireField` so that another payload can
/// hold it as a field. Every field type is a `WireField`; `padding: N;`
/// after the fields is the number of bytes that follow them in C.
///
/// The expansion names `super::wire` and `super::protocol` rather than
/// `$crate::...`: the kernel module compiles these files as modules of its
/// own crate under another path, so only the paths between sibling
/// modules are the same in both crates.
macro_rules! wire_struct {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $($(#[$field_attr:meta])* pub $field:ident: $ty:ty,)*
        }
        $(padding: $padding:expr;)?
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            $($(#[$field_attr])* pub $field: $ty,)*
        }

        impl $name {
            /// Payload size: the fields and the padding.
            pub const SIZE: usize = <Self as super::wire::WireField>::SIZE;

            /// Decodes exactly `SIZE` bytes; padding is ignored.
            pub fn decode(bytes: &[u8]) -> Result<Self, super::protocol::ProtocolError> {
                let mut r = super::wire::Reader::new(bytes);
                let raw = <Self as super::wire::WireField>::read(&mut r)?;
                r.finish()?;
                <Self as super::wire::WireField>::check(raw)
            }

            /// Encodes with zero padding; returns the length.
            pub fn encode(&self, out: &mut [u8]) -> Result<usize, super::protocol::ProtocolError> {
                let mut w = super::wire::Writer::new(out, Self::SIZE)?;
                super::wire::WireField::write(self, &mut w)?;
                Ok(w.len())
            }
        }

        impl super::wire::WireField for $name {
            const SIZE: usize =
                0 $(+ <$ty as super::wire::WireField>::SIZE)* $(+ $padding)?;
            type Raw = ($(<$ty as super::wire::WireField>::Raw,)*);

            fn read(
                r: &mut super::wire::Reader<'_>,
            ) -> Result<Self::Raw, super::protocol::ProtocolError> {
                // A tuple's elements are evaluated left to right: wire order.
                let raw = ($(<$ty as super::wire::WireField>::read(r)?,)*);
                $(r.skip($padding)?;)?
                Ok(raw)
            }

            fn check(raw: Self::Raw) -> Result<Self, super::protocol::ProtocolError> {
                let ($($field,)*) = raw;
                Ok(Self {
                    $($field: <$ty as super::wire::WireField>::check($field)?,)*
                })
            }

            fn write(
                &self,
                w: &mut super::wire::Writer<'_>,
            ) -> Result<(), super::protocol::ProtocolError> {
                $(super::wire::WireField::write(&self.$field, w)?;)*
                $(w.zeros($padding)?;)?
                Ok(())
            }
        }
    };
}

pub(crate) use wire_struct;
