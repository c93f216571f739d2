//! The DRBD 8.4 wire protocol: packet headers, command codes and payloads.
//!
//! Everything is big-endian on the wire. Block ids and barrier numbers are
//! opaque to the receiver (the C sender puts host-order pointers there);
//! they are read and written here as big-endian integers, which echoes the
//! exact bytes back, and makes the special ids (`ID_SYNCER`, `ID_IN_SYNC`,
//! `ID_OUT_OF_SYNC`) compare equal to their C values.
//!
//! Decoders take the payload bytes that followed a header and never panic,
//! whatever they are given. Encoders write the payload into a caller's
//! buffer and return its length. `payload_size_limits` lets a receiver
//! reject a packet from its header alone, before reading the payload.

use super::genl::{disk_conf, State, StateChangeResult};
use super::uuid::Uuids;
use super::wire::{wire_struct, Reader, WireField, Writer};

/// Magic of the 8-byte h80 header.
pub const DRBD_MAGIC: u32 = 0x8374_0267;
/// Magic of the 8-byte h95 header ("big packet"): 16 bits only.
pub const DRBD_MAGIC_BIG: u16 = 0x835a;
/// Magic of the 16-byte h100 header.
pub const DRBD_MAGIC_100: u32 = 0x8620_ec20;

/// Lowest protocol version this implementation speaks.
pub const PRO_VERSION_MIN: u32 = super::genl::PRO_VERSION_MIN;
/// Highest protocol version this implementation speaks.
pub const PRO_VERSION_MAX: u32 = super::genl::PRO_VERSION_MAX;
/// The version headers follow until the feature handshake is done: h80 only.
pub const PRO_VERSION_HANDSHAKE: u32 = 80;
/// Feature flags the 6.12 driver advertises.
pub const PRO_FEATURES: u32 =
    feature::TRIM | feature::THIN_RESYNC | feature::WSAME | feature::WZEROES;

/// Feature flags of P_CONNECTION_FEATURES (`DRBD_FF_*`).
pub mod feature {
    /// Discards travel as P_TRIM.
    pub const TRIM: u32 = 1;
    /// P_RS_THIN_REQ / P_RS_DEALLOCATED during resync.
    pub const THIN_RESYNC: u32 = 2;
    /// P_SIZES carries queue limits; 128 MiB batch bios; UUID rule 41.
    pub const WSAME: u32 = 4;
    /// Write-zeroes travel as P_ZEROES.
    pub const WZEROES: u32 = 8;
    /// rdrbd's own: the peer resolves the conflicting writes of two
    /// Primaries (P_SUPERSEDED, P_RETRY_WRITE, ordered by sequence
    /// numbers). The C driver masks unknown flags away, so only two rdrbd
    /// nodes agree on it.
    pub const RDRBD_WRITE_CONFLICTS: u32 = 1 << 31;
}

/// Flags of P_DATA, P_TRIM and P_ZEROES (`DP_*`).
pub mod dp {
    /// Unused since long.
    pub const HARDBARRIER: u32 = 1;
    /// REQ_SYNC.
    pub const RW_SYNC: u32 = 2;
    /// Sent during resync: the receiver may clear the bits and answer
    /// P_RS_WRITE_ACK.
    pub const MAY_SET_IN_SYNC: u32 = 4;
    /// Unused.
    pub const UNPLUG: u32 = 8;
    /// REQ_FUA.
    pub const FUA: u32 = 16;
    /// REQ_PREFLUSH.
    pub const FLUSH: u32 = 32;
    /// Discard.
    pub const DISCARD: u32 = 64;
    /// apv >= 100: answer P_RECV_ACK on receipt (protocol B).
    pub const SEND_RECEIVE_ACK: u32 = 128;
    /// apv >= 100: answer P_WRITE_ACK when written (protocol C, resync).
    pub const SEND_WRITE_ACK: u32 = 256;
    /// Write-same; the 6.12 driver never sends it.
    pub const WSAME: u32 = 512;
    /// Write-zeroes.
    pub const ZEROES: u32 = 1024;
}

/// `conn_flags` of P_PROTOCOL (`enum drbd_conn_flags`).
pub mod conn_flags {
    /// The sender has discard-my-data configured.
    pub const DISCARD_MY_DATA: u32 = 1;
    /// The sender connects with --dry-run.
    pub const DRY_RUN: u32 = 2;
}

/// `dds_flags` of P_SIZES (`enum dds_flags`).
pub mod dds_flags {
    /// Resize was forced.
    pub const FORCED: u16 = 1;
    /// Do not resync the newly grown area.
    pub const NO_RESYNC: u16 = 2;
}

/// `wire_protocol` values of P_PROTOCOL.
pub mod wire_protocol {
    use super::super::genl::WireProtocol;
    /// Asynchronous: done when handed to TCP.
    pub const A: u32 = WireProtocol::A as u32;
    /// Memory synchronous: done on P_RECV_ACK.
    pub const B: u32 = WireProtocol::B as u32;
    /// Synchronous: done on P_WRITE_ACK.
    pub const C: u32 = WireProtocol::C as u32;
}

/// Block id of every resync request and its answers.
pub const ID_SYNCER: u64 = u64::MAX;
/// Block id of P_OV_RESULT: the block matched.
pub const ID_IN_SYNC: u64 = 4711;
/// Block id of P_OV_RESULT: the block differed.
pub const ID_OUT_OF_SYNC: u64 = 4712;

/// Largest payload an h80 header is used for from apv 95 on; also the
/// max_bio_size cap for apv <= 94.
pub const MAX_SIZE_H80_PACKET: u32 = 1 << 15;
/// max_bio_size cap for apv 95..=99.
pub const MAX_BIO_SIZE_P95: u32 = 1 << 17;
/// Largest data block of P_DATA and the replies, and of a data request.
pub const MAX_BIO_SIZE: u32 = 1 << 20;
/// Largest P_TRIM / P_ZEROES size (`DRBD_MAX_BBIO_SECTORS << 9`).
pub const MAX_BATCH_BIO_SIZE: u32 = 128 << 20;
/// Header plus payload of a bitmap packet fit into this.
pub const SOCKET_BUFFER_SIZE: usize = 4096;
/// Room for algorithm names and the shared secret, NUL included.
pub const SHARED_SECRET_MAX: usize = 64;
/// Largest digest the kernel crypto API produces (`HASH_MAX_DIGESTSIZE`).
pub const MAX_DIGEST_SIZE: u32 = 64;
/// Size of the challenge each side sends in P_AUTH_CHALLENGE.
pub const AUTH_CHALLENGE_LEN: u32 = 64;
/// Bitmap encoding of P_COMPRESSED_BITMAP (`RLE_VLI_Bits`), the only one.
pub const RLE_VLI_BITS: u8 = 2;

/// Why bytes could not be decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// Fewer bytes than the layout needs.
    TooShort,
    /// More bytes than the layout allows.
    TooLong,
    /// The header does not start with the magic of the agreed version.
    BadMagic(u32),
    /// An h100 header with non-zero padding.
    HeaderPadNotZero,
    /// A command code DRBD 8.4 does not define.
    UnknownCommand(u16),
    /// A defined command that this socket or phase does not accept.
    UnexpectedCommand(u16),
    /// The output buffer is too small.
    BufferTooSmall,
    /// A payload too large for the header the protocol version allows.
    PayloadTooLarge,
    /// A volume other than 0 needs the h100 header (apv >= 100).
    VolumeNeedsH100,
    /// The peer's protocol range does not overlap ours.
    IncompatibleVersion,
    /// A string longer than its field, or with an embedded NUL.
    BadString,
    /// A state word with values 8.4 does not define.
    BadStateWord,
    /// P_COMPRESSED_BITMAP with an encoding other than RLE_VLI_Bits.
    BadBitmapEncoding,
    /// A P_BITMAP chunk whose length is not the expected number of words.
    BadBitmapChunk,
    /// An RLE stream that ends inside a code word.
    BadRleCode,
    /// An RLE run reaching beyond the last bit of the bitmap.
    RleBeyondBitmap,
    /// A run length the VLI code cannot express (0 or above 2^56).
    VliOutOfRange,
    /// A bitmap source reported a zero-length run (it changed while read).
    ZeroRunLength,
    /// A block's data does not match the data-integrity-alg digest it
    /// came with.
    IntegrityCheckFailed,
}

impl ProtocolError {
    /// A short English description, for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort => "packet too short",
            Self::TooLong => "packet too long",
            Self::BadMagic(_) => "wrong magic value in header",
            Self::HeaderPadNotZero => "header padding is not zero",
            Self::UnknownCommand(_) => "unknown packet command",
            Self::UnexpectedCommand(_) => "unexpected packet command",
            Self::BufferTooSmall => "output buffer too small",
            Self::PayloadTooLarge => "payload too large for the header",
            Self::VolumeNeedsH100 => "volume number needs protocol 100",
            Self::IncompatibleVersion => "incompatible DRBD dialects",
            Self::BadString => "string too long or with embedded NUL",
            Self::BadStateWord => "state word with undefined values",
            Self::BadBitmapEncoding => "unknown bitmap encoding",
            Self::BadBitmapChunk => "bitmap chunk of wrong size",
            Self::BadRleCode => "bitmap decoding error",
            Self::RleBeyondBitmap => "bitmap overflow while decoding RLE",
            Self::VliOutOfRange => "run length not encodable",
            Self::ZeroRunLength => "zero run length while encoding bitmap",
            Self::IntegrityCheckFailed => "data integrity check failed",
        }
    }
}

/// Defines the command enum with `from_raw` and the C `cmdname()` text.
macro_rules! packet_enum {
    ($($variant:ident = $value:literal => $name:literal, $doc:literal;)*) => {
        /// Command code of a packet (`enum drbd_packet`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Packet {
            $(#[doc = $doc] $variant = $value,)*
        }

        impl Packet {
            /// The command with this code; `None` if 8.4 defines none.
            pub fn from_raw(raw: u16) -> Option<Self> {
                match raw {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The name the C driver logs (`cmdname`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

packet_enum! {
    Data = 0x00 => "Data", "Replicated write (data socket).";
    DataReply = 0x01 => "DataReply", "Answer to P_DATA_REQUEST.";
    RsDataReply = 0x02 => "RSDataReply", "Answer to P_RS_DATA_REQUEST / P_CSUM_RS_REQUEST.";
    Barrier = 0x03 => "Barrier", "Closes an epoch.";
    Bitmap = 0x04 => "ReportBitMap", "Plain bitmap chunk.";
    BecomeSyncTarget = 0x05 => "BecomeSyncTarget", "Obsolete; never accepted.";
    BecomeSyncSource = 0x06 => "BecomeSyncSource", "Obsolete; never accepted.";
    UnplugRemote = 0x07 => "UnplugRemote", "Hint; no payload.";
    DataRequest = 0x08 => "DataRequest", "Remote read.";
    RsDataRequest = 0x09 => "RSDataRequest", "Resync read request.";
    SyncParam = 0x0a => "SyncParam", "Resync parameters, apv <= 88.";
    Protocol = 0x0b => "ReportProtocol", "Net options, once per connection.";
    Uuids = 0x0c => "ReportUUIDs", "UUID set, bitmap weight and flags.";
    Sizes = 0x0d => "ReportSizes", "Device sizes.";
    State = 0x0e => "ReportState", "State word.";
    SyncUuid = 0x0f => "ReportSyncUUID", "Sync UUID; starts resync on the target.";
    AuthChallenge = 0x10 => "AuthChallenge", "Random challenge (connect only).";
    AuthResponse = 0x11 => "AuthResponse", "HMAC of the peer's challenge (connect only).";
    StateChgReq = 0x12 => "StateChgRequest", "Per-volume cluster-wide state change.";
    Ping = 0x13 => "Ping", "Liveness probe (meta socket).";
    PingAck = 0x14 => "PingAck", "Answer to P_PING.";
    RecvAck = 0x15 => "RecvAck", "Protocol B ack.";
    WriteAck = 0x16 => "WriteAck", "Protocol C ack.";
    RsWriteAck = 0x17 => "RSWriteAck", "Write ack that also sets the range in sync.";
    Superseded = 0x18 => "Superseded", "Two-primaries conflict: write dropped.";
    NegAck = 0x19 => "NegAck", "Write failed or not done.";
    NegDReply = 0x1a => "NegDReply", "P_DATA_REQUEST failed.";
    NegRsDReply = 0x1b => "NegRSDReply", "Resync or verify read failed.";
    BarrierAck = 0x1c => "BarrierAck", "Epoch written.";
    StateChgReply = 0x1d => "StateChgReply", "Answer to P_STATE_CHG_REQ.";
    OvRequest = 0x1e => "OVRequest", "Online verify request.";
    OvReply = 0x1f => "OVReply", "Online verify digest.";
    OvResult = 0x20 => "OVResult", "Online verify verdict.";
    CsumRsRequest = 0x21 => "CsumRSRequest", "Checksum-based resync request.";
    RsIsInSync = 0x22 => "CsumRSIsInSync", "Checksum matched.";
    SyncParam89 = 0x23 => "SyncParam89", "Resync parameters, apv >= 89.";
    CompressedBitmap = 0x24 => "CBitmap", "RLE/VLI bitmap chunk.";
    DelayProbe = 0x27 => "DelayProbe", "Accepted and ignored on both sockets.";
    OutOfSync = 0x28 => "OutOfSync", "Mark a range out of sync.";
    RsCancel = 0x29 => "RSCancel", "Resync request cancelled (source is Ahead).";
    ConnStChgReq = 0x2a => "conn_st_chg_req", "Connection-wide state change, apv >= 100.";
    ConnStChgReply = 0x2b => "conn_st_chg_reply", "Answer to P_CONN_ST_CHG_REQ.";
    RetryWrite = 0x2c => "RetryWrite", "Two-primaries conflict: retry the write.";
    ProtocolUpdate = 0x2d => "protocol_update", "Net options changed while connected.";
    Trim = 0x31 => "Trim", "Discard.";
    RsThinReq = 0x32 => "rs_thin_req", "Thin resync request.";
    RsDeallocated = 0x33 => "rs_deallocated", "Thin resync answer: range is zero.";
    Wsame = 0x34 => "WriteSame", "Defined, but 6.12 neither sends nor accepts it.";
    Zeroes = 0x36 => "Zeroes", "Write zeroes.";
    MayIgnore = 0x100 => "MayIgnore", "Marker only; never accepted.";
    MaxOptCmd = 0x101 => "MaxOptCmd", "Marker only; never accepted.";
    InitialMeta = 0xfff1 => "InitialMeta", "First packet on the meta socket.";
    InitialData = 0xfff2 => "InitialData", "First packet on the data socket.";
    ConnectionFeatures = 0xfffe => "ConnectionFeatures", "Feature handshake.";
}

/// The two TCP connections of a DRBD connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// Bulk and control traffic (`drbdd`).
    Data,
    /// Pings, acks, replies (`drbd_ack_receiver`).
    Meta,
}

impl Packet {
    /// Whether the C receive loop of that socket has a handler for it.
    /// Handshake packets (initial, features, auth) are read by the connect
    /// code only and are refused here.
    pub fn accepted_on(self, socket: Socket) -> bool {
        use Packet::*;
        match socket {
            Socket::Data => matches!(
                self,
                Data | DataReply
                    | RsDataReply
                    | Barrier
                    | Bitmap
                    | CompressedBitmap
                    | UnplugRemote
                    | DataRequest
                    | RsDataRequest
                    | SyncParam
                    | SyncParam89
                    | Protocol
                    | Uuids
                    | Sizes
                    | State
                    | StateChgReq
                    | SyncUuid
                    | OvRequest
                    | OvReply
                    | CsumRsRequest
                    | RsThinReq
                    | DelayProbe
                    | OutOfSync
                    | ConnStChgReq
                    | ProtocolUpdate
                    | Trim
                    | Zeroes
                    | RsDeallocated
            ),
            Socket::Meta => matches!(
                self,
                Ping | PingAck
                    | RecvAck
                    | WriteAck
                    | RsWriteAck
                    | Superseded
                    | NegAck
                    | NegDReply
                    | NegRsDReply
                    | OvResult
                    | BarrierAck
                    | StateChgReply
                    | RsIsInSync
                    | DelayProbe
                    | RsCancel
                    | ConnStChgReply
                    | RetryWrite
            ),
        }
    }
}

/// What the feature handshake agreed on; decides header layout and several
/// payload layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Agreed protocol version (apv).
    pub version: u32,
    /// Agreed feature flags (`feature::*`).
    pub features: u32,
}

impl Link {
    /// Before P_CONNECTION_FEATURES: apv 80, h80 headers, no features.
    pub const HANDSHAKE: Self = Self {
        version: PRO_VERSION_HANDSHAKE,
        features: 0,
    };

    /// Size of every header on this link (`drbd_header_size`).
    pub fn header_size(self) -> usize {
        if self.version >= 100 {
            HeaderKind::H100.size()
        } else {
            HeaderKind::H80.size()
        }
    }

    /// Whether a feature flag was agreed.
    pub fn has(self, feature: u32) -> bool {
        self.features & feature != 0
    }

    /// The cap on max_bio_size advertised in P_SIZES for this version.
    pub fn max_bio_size(self) -> u32 {
        match self.version {
            0..=94 => MAX_SIZE_H80_PACKET,
            95..=99 => MAX_BIO_SIZE_P95,
            _ => MAX_BIO_SIZE,
        }
    }

    /// Payload bytes a bitmap packet may carry (socket buffer minus header).
    pub fn bitmap_payload_max(self) -> usize {
        SOCKET_BUFFER_SIZE.saturating_sub(self.header_size())
    }
}

/// Checks that `len` fits a u32 length field.
fn wire_len(len: usize) -> Result<u32, ProtocolError> {
    u32::try_from(len).map_err(|_| ProtocolError::PayloadTooLarge)
}

/// The C string in `bytes`: up to the first NUL, and at most `max` bytes
/// (the C receivers force a NUL at the end of their fixed buffers).
fn c_string(bytes: &[u8], max: usize) -> &[u8] {
    let bytes = bytes.get(..max).unwrap_or(bytes);
    match bytes.iter().position(|&b| b == 0) {
        Some(nul) => bytes.get(..nul).unwrap_or(bytes),
        None => bytes,
    }
}

/// An algorithm name we may send: fits a 64-byte field with its NUL.
fn check_alg(name: &[u8]) -> Result<(), ProtocolError> {
    if name.len() >= SHARED_SECRET_MAX || name.contains(&0) {
        Err(ProtocolError::BadString)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Headers

/// The three header layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// magic u32, command u16, length u16.
    H80,
    /// magic u16, command u16, length u32 (apv 95..=99, large payloads).
    H95,
    /// magic u32, volume u16, command u16, length u32, pad u32 (apv >= 100).
    H100,
}

impl HeaderKind {
    /// Bytes on the wire.
    pub fn size(self) -> usize {
        match self {
            Self::H80 | Self::H95 => 8,
            Self::H100 => 16,
        }
    }

    /// The header the C sender uses for a payload of `length` bytes
    /// (`prepare_header`).
    pub fn for_payload(link: Link, length: u32) -> Self {
        if link.version >= 100 {
            Self::H100
        } else if link.version >= 95 && length > MAX_SIZE_H80_PACKET {
            Self::H95
        } else {
            Self::H80
        }
    }
}

/// A decoded packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Command code.
    pub cmd: Packet,
    /// Volume number; always 0 below apv 100.
    pub volume: u16,
    /// Payload bytes after the header.
    pub length: u32,
}

impl Header {
    /// Decodes the first `link.header_size()` bytes of `bytes`, accepting
    /// what the C `decode_header` accepts: only h100 on 16-byte links,
    /// h95 or h80 on 8-byte links.
    pub fn decode(link: Link, bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        let first = u32::from_be_bytes(r.array::<4>()?);
        let (cmd, volume, length) = if link.header_size() == HeaderKind::H100.size() {
            if first != DRBD_MAGIC_100 {
                return Err(ProtocolError::BadMagic(first));
            }
            let volume = r.u16()?;
            let cmd = r.u16()?;
            let length = r.u32()?;
            if r.u32()? != 0 {
                return Err(ProtocolError::HeaderPadNotZero);
            }
            (cmd, volume, length)
        } else if (first >> 16) as u16 == DRBD_MAGIC_BIG {
            let cmd = first as u16;
            (cmd, 0, r.u32()?)
        } else if first == DRBD_MAGIC {
            let cmd = r.u16()?;
            (cmd, 0, u32::from(r.u16()?))
        } else {
            return Err(ProtocolError::BadMagic(first));
        };
        let cmd = Packet::from_raw(cmd).ok_or(ProtocolError::UnknownCommand(cmd))?;
        Ok(Self {
            cmd,
            volume,
            length,
        })
    }

    /// Encodes with the header the C sender would choose; returns its size.
    pub fn encode(&self, link: Link, out: &mut [u8]) -> Result<usize, ProtocolError> {
        self.encode_as(HeaderKind::for_payload(link, self.length), out)
    }

    /// Encodes with an explicit layout; returns its size.
    pub fn encode_as(&self, kind: HeaderKind, out: &mut [u8]) -> Result<usize, ProtocolError> {
        if kind != HeaderKind::H100 && self.volume != 0 {
            return Err(ProtocolError::VolumeNeedsH100);
        }
        let mut w = Writer::new(out, kind.size())?;
        let cmd = self.cmd as u16;
        match kind {
            HeaderKind::H80 => {
                let length =
                    u16::try_from(self.length).map_err(|_| ProtocolError::PayloadTooLarge)?;
                w.u32(DRBD_MAGIC)?;
                w.u16(cmd)?;
                w.u16(length)?;
            }
            HeaderKind::H95 => {
                w.u16(DRBD_MAGIC_BIG)?;
                w.u16(cmd)?;
                w.u32(self.length)?;
            }
            HeaderKind::H100 => {
                w.u32(DRBD_MAGIC_100)?;
                w.u16(self.volume)?;
                w.u16(cmd)?;
                w.u32(self.length)?;
                w.u32(0)?;
            }
        }
        Ok(w.len())
    }
}

/// Writes a whole packet: `payload` fills the buffer after the header and
/// returns the payload length, then the header is written in front.
/// Returns header plus payload length.
pub fn encode_packet(
    link: Link,
    cmd: Packet,
    volume: u16,
    out: &mut [u8],
    payload: impl FnOnce(&mut [u8]) -> Result<usize, ProtocolError>,
) -> Result<usize, ProtocolError> {
    // h80 and h95 have the same size, so the header size is known before
    // the payload length is.
    let header_size = link.header_size();
    let body = out
        .get_mut(header_size..)
        .ok_or(ProtocolError::BufferTooSmall)?;
    let length = payload(body)?;
    let header = Header {
        cmd,
        volume,
        length: wire_len(length)?,
    };
    header.encode(link, out)?;
    header_size
        .checked_add(length)
        .ok_or(ProtocolError::PayloadTooLarge)
}

// ---------------------------------------------------------------------------
// Size limits

/// Smallest and largest payload length (inclusive) a receiver accepts for
/// `cmd` on `link`, as the C receivers check it before reading the payload;
/// `None` if the command is never accepted. Data-carrying packets allow a
/// digest of up to `MAX_DIGEST_SIZE` bytes plus `MAX_BIO_SIZE` data. For
/// P_BITMAP the exact length depends on the transfer position
/// (`bitmap_rle::BitmapXfer` checks it).
pub fn payload_size_limits(cmd: Packet, link: Link) -> Option<(u32, u32)> {
    use Packet::*;
    let exact = |n: usize| -> Option<(u32, u32)> {
        let n = u32::try_from(n).ok()?;
        Some((n, n))
    };
    const DATA_MAX: u32 = DataPacket::SIZE as u32 + MAX_DIGEST_SIZE + MAX_BIO_SIZE;
    const DIGEST_MAX: u32 = BlockRequest::SIZE as u32 + MAX_DIGEST_SIZE;
    let bitmap_max = u32::try_from(link.bitmap_payload_max()).ok()?;
    match cmd {
        InitialData | InitialMeta | Ping | PingAck | UnplugRemote => exact(0),
        ConnectionFeatures => exact(self::ConnectionFeatures::SIZE),
        AuthChallenge => Some((AUTH_CHALLENGE_LEN, 2 * AUTH_CHALLENGE_LEN)),
        AuthResponse => Some((1, MAX_DIGEST_SIZE)),
        Data | DataReply | RsDataReply => Some((DataPacket::SIZE as u32, DATA_MAX)),
        Trim | Zeroes => exact(self::Trim::SIZE),
        DataRequest | RsDataRequest | OvRequest | RsThinReq => exact(BlockRequest::SIZE),
        OvReply | CsumRsRequest => Some((BlockRequest::SIZE as u32, DIGEST_MAX)),
        RecvAck | WriteAck | RsWriteAck | Superseded | NegAck | NegDReply | NegRsDReply
        | OvResult | RsIsInSync | RsCancel | RetryWrite => exact(BlockAck::SIZE),
        OutOfSync | RsDeallocated => exact(BlockDesc::SIZE),
        Barrier => exact(self::Barrier::SIZE),
        BarrierAck => exact(self::BarrierAck::SIZE),
        Bitmap => Some((0, bitmap_max)),
        CompressedBitmap => Some((2, bitmap_max)),
        SyncParam | SyncParam89 => SyncParams::size_limits(link),
        Protocol | ProtocolUpdate => ProtocolParams::size_limits(link),
        Uuids => exact(UuidsPacket::SIZE),
        Sizes => exact(self::Sizes::size(link)),
        State => exact(StatePacket::SIZE),
        SyncUuid => exact(self::SyncUuid::SIZE),
        StateChgReq | ConnStChgReq => exact(ReqState::SIZE),
        StateChgReply | ConnStChgReply => exact(StateReply::SIZE),
        DelayProbe => exact(self::DelayProbe::SIZE),
        BecomeSyncTarget | BecomeSyncSource | Wsame | MayIgnore | MaxOptCmd => None,
    }
}

/// Checks a header's payload length against `payload_size_limits`.
pub fn check_payload_size(cmd: Packet, link: Link, length: u32) -> Result<(), ProtocolError> {
    let (min, max) =
        payload_size_limits(cmd, link).ok_or(ProtocolError::UnexpectedCommand(cmd as u16))?;
    if length < min {
        Err(ProtocolError::TooShort)
    } else if length > max {
        Err(ProtocolError::TooLong)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Payloads with a fixed layout. `decode` wants exactly `SIZE` bytes.

wire_struct! {
    /// P_CONNECTION_FEATURES (`p_connection_features`, 72 bytes).
    pub struct ConnectionFeatures {
        /// Lowest version the sender speaks.
        pub protocol_min: u32,
        /// Features the sender supports.
        pub feature_flags: u32,
        /// Highest version the sender speaks; 0 means "same as min".
        pub protocol_max: u32,
    }
    // The pad word and the seven reserved u64s of C.
    padding: 4 + 7 * 8;
}

impl ConnectionFeatures {
    /// What the 6.12 driver sends: 86..=101 with every feature.
    pub const OURS: Self = Self {
        protocol_min: PRO_VERSION_MIN,
        feature_flags: PRO_FEATURES,
        protocol_max: PRO_VERSION_MAX,
    };

    /// The link both sides agree on, from what we sent and what the peer
    /// sent (`drbd_do_features`): the highest common version, the common
    /// features.
    pub fn negotiate(own: &Self, peer: &Self) -> Result<Link, ProtocolError> {
        let peer_max = if peer.protocol_max == 0 {
            peer.protocol_min
        } else {
            peer.protocol_max
        };
        if own.protocol_max < peer.protocol_min || own.protocol_min > peer_max {
            return Err(ProtocolError::IncompatibleVersion);
        }
        Ok(Link {
            version: own.protocol_max.min(peer_max),
            features: own.feature_flags & peer.feature_flags,
        })
    }
}

wire_struct! {
    /// P_DATA, P_DATA_REPLY, P_RS_DATA_REPLY fixed part (`p_data`, 24 bytes);
    /// the optional integrity digest and the data follow.
    pub struct DataPacket {
        /// Start sector.
        pub sector: u64,
        /// Opaque request handle, echoed in the ack (ID_SYNCER for resync).
        pub block_id: u64,
        /// P_DATA: per-device sequence number; replies: 0.
        pub seq_num: u32,
        /// `dp::*` flags; replies: 0.
        pub dp_flags: u32,
    }
}

wire_struct! {
    /// P_TRIM and P_ZEROES (`p_trim`, 28 bytes): `p_data` plus the byte count;
    /// no data follows.
    pub struct Trim {
        /// Sector, block id, sequence number and flags as in P_DATA.
        pub data: DataPacket,
        /// Bytes to discard or zero.
        pub size: u32,
    }
}

wire_struct! {
    /// Block requests (`p_block_req`, 24 bytes): P_DATA_REQUEST,
    /// P_RS_DATA_REQUEST, P_OV_REQUEST, P_RS_THIN_REQ, and the fixed part of
    /// P_CSUM_RS_REQUEST and P_OV_REPLY (a digest follows).
    pub struct BlockRequest {
        /// Start sector.
        pub sector: u64,
        /// Opaque handle (ID_SYNCER for resync and verify).
        pub block_id: u64,
        /// Bytes.
        pub blksize: u32,
    }
    // The pad word of C.
    padding: 4;
}

wire_struct! {
    /// Per-block acks on the meta socket (`p_block_ack`, 24 bytes): P_RECV_ACK,
    /// P_WRITE_ACK, P_RS_WRITE_ACK, P_SUPERSEDED, P_NEG_ACK, P_NEG_DREPLY,
    /// P_NEG_RS_DREPLY, P_RS_IS_IN_SYNC, P_OV_RESULT, P_RS_CANCEL,
    /// P_RETRY_WRITE.
    pub struct BlockAck {
        /// Sector, echoed.
        pub sector: u64,
        /// Block id, echoed (ID_IN_SYNC / ID_OUT_OF_SYNC for P_OV_RESULT).
        pub block_id: u64,
        /// Bytes.
        pub blksize: u32,
        /// The sender's per-device sequence number.
        pub seq_num: u32,
    }
}

wire_struct! {
    /// P_OUT_OF_SYNC and P_RS_DEALLOCATED (`p_block_desc`, 16 bytes).
    pub struct BlockDesc {
        /// Start sector.
        pub sector: u64,
        /// Bytes.
        pub blksize: u32,
    }
    // The pad word of C.
    padding: 4;
}

wire_struct! {
    /// P_BARRIER (`p_barrier`, 8 bytes).
    pub struct Barrier {
        /// Opaque epoch number (host order in C): echo it unchanged.
        pub barrier: u32,
    }
    // The pad word of C.
    padding: 4;
}

wire_struct! {
    /// P_BARRIER_ACK (`p_barrier_ack`, 8 bytes).
    pub struct BarrierAck {
        /// The barrier number as received.
        pub barrier: u32,
        /// Number of writes in the epoch.
        pub set_size: u32,
    }
}

wire_struct! {
    /// P_UUIDS (`p_uuids`, 48 bytes).
    pub struct UuidsPacket {
        /// Current, bitmap and history UUIDs.
        pub uuids: Uuids,
        /// Set bits in the sender's bitmap ("changes" of the after-sb policies).
        pub bitmap_bits: u64,
        /// `uuid::uuid_flags::*`.
        pub flags: u64,
    }
}

/// The UUID set in P_UUIDS: current, bitmap, then the two history UUIDs.
impl WireField for Uuids {
    const SIZE: usize = 4 * 8;
    type Raw = Self;

    fn read(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            current: r.u64()?,
            bitmap: r.u64()?,
            history: [r.u64()?, r.u64()?],
        })
    }

    fn check(raw: Self) -> Result<Self, ProtocolError> {
        Ok(raw)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), ProtocolError> {
        w.u64(self.current)?;
        w.u64(self.bitmap)?;
        for h in self.history {
            w.u64(h)?;
        }
        Ok(())
    }
}

wire_struct! {
    /// P_SYNC_UUID (`p_rs_uuid`, 8 bytes).
    pub struct SyncUuid {
        /// The sync UUID the target adopts as its current UUID.
        pub uuid: u64,
    }
}

wire_struct! {
    /// P_STATE (`p_state`, 4 bytes): the sender's state word.
    pub struct StatePacket {
        /// The sender's state, from its point of view.
        pub state: State,
    }
}

/// A state word; one with field values 8.4 does not define is
/// `BadStateWord`.
impl WireField for State {
    const SIZE: usize = 4;
    type Raw = u32;

    fn read(r: &mut Reader<'_>) -> Result<u32, ProtocolError> {
        r.u32()
    }

    fn check(word: u32) -> Result<Self, ProtocolError> {
        Self::from_u32(word).ok_or(ProtocolError::BadStateWord)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), ProtocolError> {
        w.u32(self.to_u32())
    }
}

wire_struct! {
    /// P_STATE_CHG_REQ and P_CONN_ST_CHG_REQ (`p_req_state`, 8 bytes). Mask
    /// and value are raw state words: a mask has all field bits set (role 3,
    /// conn 31), which is no valid state.
    pub struct ReqState {
        /// Which fields to change.
        pub mask: u32,
        /// Their new values, from the sender's point of view.
        pub val: u32,
    }
}

impl ReqState {
    /// Bits of the connection state in a state word (`conn:5` at bit 4).
    const CONN_SHIFT: u32 = 4;
    const CONN_BITS: u32 = 31;

    /// A request that changes only the connection state to `conn`, as
    /// `conn_request_state(NS(conn, ...))` sends it in P_CONN_ST_CHG_REQ.
    pub fn conn_change(conn: super::genl::ConnState) -> Self {
        Self { mask: Self::CONN_BITS << Self::CONN_SHIFT, val: (conn as u32) << Self::CONN_SHIFT }
    }

    /// The connection state the request asks for, if it changes it (a
    /// graceful disconnect asks for Disconnecting).
    pub fn requested_conn(&self) -> Option<super::genl::ConnState> {
        if (self.mask >> Self::CONN_SHIFT) & Self::CONN_BITS == 0 {
            return None;
        }
        super::genl::ConnState::from_raw((self.val >> Self::CONN_SHIFT) & Self::CONN_BITS)
    }
}

wire_struct! {
    /// P_STATE_CHG_REPLY and P_CONN_ST_CHG_REPLY (`p_req_state_reply`).
    pub struct StateReply {
        /// `enum drbd_state_rv`, kept raw so unknown codes survive.
        pub retcode: i32,
    }
}

impl StateReply {
    /// The result, if 8.4 defines the code.
    pub fn result(&self) -> Option<StateChangeResult> {
        StateChangeResult::from_raw(self.retcode)
    }
}

wire_struct! {
    /// P_DELAY_PROBE (`p_delay_probe93`, 8 bytes); received and ignored.
    pub struct DelayProbe {
        /// Matches the probes on the two sockets.
        pub seq_num: u32,
        /// Microseconds after the reference time.
        pub offset: u32,
    }
}

/// The queue limits tail of P_SIZES (`o_qlim`), sent with FF_WSAME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueLimits {
    /// Physical block size, bytes.
    pub physical_block_size: u32,
    /// Logical block size, bytes.
    pub logical_block_size: u32,
    /// Alignment offset, bytes.
    pub alignment_offset: u32,
    /// Minimum I/O size, bytes.
    pub io_min: u32,
    /// Optimal I/O size, bytes.
    pub io_opt: u32,
    /// The backing device can discard.
    pub discard_enabled: bool,
    /// Always false in 6.12.
    pub discard_zeroes_data: bool,
    /// Always false in 6.12.
    pub write_same_capable: bool,
}

/// P_SIZES (`p_sizes`, 32 bytes, 56 with FF_WSAME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Sectors the sender's backing device offers; 0 if diskless.
    pub d_size: u64,
    /// User-requested size in sectors; 0 = none.
    pub u_size: u64,
    /// Current exported capacity; 0 asks the peer to answer with its sizes.
    pub c_size: u64,
    /// Largest bio the sender accepts, bytes (capped by `Link::max_bio_size`).
    pub max_bio_size: u32,
    /// Always 0.
    pub queue_order_type: u16,
    /// `dds_flags::*`.
    pub dds_flags: u16,
    /// Present exactly when FF_WSAME is agreed.
    pub qlim: Option<QueueLimits>,
}

impl Sizes {
    /// Size without the queue limits.
    pub const SIZE: usize = 32;
    /// Size with the queue limits.
    pub const SIZE_WITH_QLIM: usize = 56;

    /// The payload size on this link.
    pub fn size(link: Link) -> usize {
        if link.has(feature::WSAME) {
            Self::SIZE_WITH_QLIM
        } else {
            Self::SIZE
        }
    }

    /// The sizes rdrbd sends (`drbd_send_sizes`): the largest bio this
    /// link allows and, exactly when FF_WSAME is agreed, 512-byte queue
    /// limits without discard.
    pub fn ours(link: Link, d_size: u64, u_size: u64, c_size: u64, dds_flags: u16) -> Self {
        let qlim = link.has(feature::WSAME).then_some(QueueLimits {
            physical_block_size: 512,
            logical_block_size: 512,
            io_min: 512,
            ..QueueLimits::default()
        });
        Self { d_size, u_size, c_size, max_bio_size: link.max_bio_size(), queue_order_type: 0, dds_flags, qlim }
    }

    /// Decodes; the layout follows the agreed features.
    pub fn decode(link: Link, bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        let mut p = Self {
            d_size: r.u64()?,
            u_size: r.u64()?,
            c_size: r.u64()?,
            max_bio_size: r.u32()?,
            queue_order_type: r.u16()?,
            dds_flags: r.u16()?,
            qlim: None,
        };
        if link.has(feature::WSAME) {
            let q = QueueLimits {
                physical_block_size: r.u32()?,
                logical_block_size: r.u32()?,
                alignment_offset: r.u32()?,
                io_min: r.u32()?,
                io_opt: r.u32()?,
                discard_enabled: r.u8()? != 0,
                discard_zeroes_data: r.u8()? != 0,
                write_same_capable: r.u8()? != 0,
            };
            r.skip(1)?;
            p.qlim = Some(q);
        }
        r.finish()?;
        Ok(p)
    }

    /// Encodes; with FF_WSAME the queue limits (or zeros) are appended.
    pub fn encode(&self, link: Link, out: &mut [u8]) -> Result<usize, ProtocolError> {
        let mut w = Writer::new(out, Self::size(link))?;
        w.u64(self.d_size)?;
        w.u64(self.u_size)?;
        w.u64(self.c_size)?;
        w.u32(self.max_bio_size)?;
        w.u16(self.queue_order_type)?;
        w.u16(self.dds_flags)?;
        if link.has(feature::WSAME) {
            let q = self.qlim.unwrap_or_default();
            w.u32(q.physical_block_size)?;
            w.u32(q.logical_block_size)?;
            w.u32(q.alignment_offset)?;
            w.u32(q.io_min)?;
            w.u32(q.io_opt)?;
            w.u8(u8::from(q.discard_enabled))?;
            w.u8(u8::from(q.discard_zeroes_data))?;
            w.u8(u8::from(q.write_same_capable))?;
            w.u8(0)?;
        }
        Ok(w.len())
    }
}

// ---------------------------------------------------------------------------
// Payloads whose layout depends on the protocol version.

/// P_PROTOCOL and P_PROTOCOL_UPDATE (`p_protocol`, 24 bytes, then from apv
/// 87 the data-integrity-alg as a NUL-terminated string of at most 64 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolParams<'a> {
    /// `wire_protocol::A/B/C`.
    pub wire_protocol: u32,
    /// after-sb-0pri, from the sender's point of view.
    pub after_sb_0p: u32,
    /// after-sb-1pri.
    pub after_sb_1p: u32,
    /// after-sb-2pri.
    pub after_sb_2p: u32,
    /// `conn_flags::*`.
    pub conn_flags: u32,
    /// allow-two-primaries, 0 or 1.
    pub two_primaries: u32,
    /// data-integrity-alg without the NUL; empty for none.
    pub integrity_alg: &'a [u8],
}

impl<'a> ProtocolParams<'a> {
    /// Size of the fixed part.
    pub const FIXED_SIZE: usize = 24;

    fn size_limits(link: Link) -> Option<(u32, u32)> {
        const FIXED: u32 = ProtocolParams::FIXED_SIZE as u32;
        const WITH_ALG: u32 = FIXED + SHARED_SECRET_MAX as u32;
        if link.version >= 87 {
            Some((FIXED, WITH_ALG))
        } else {
            Some((FIXED, FIXED))
        }
    }

    /// Decodes like `receive_protocol`: the string ends at the first NUL
    /// and is cut at 63 bytes.
    pub fn decode(link: Link, bytes: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        let mut p = Self {
            wire_protocol: r.u32()?,
            after_sb_0p: r.u32()?,
            after_sb_1p: r.u32()?,
            after_sb_2p: r.u32()?,
            conn_flags: r.u32()?,
            two_primaries: r.u32()?,
            integrity_alg: &[],
        };
        if link.version >= 87 {
            let tail = r.rest();
            if tail.len() > SHARED_SECRET_MAX {
                return Err(ProtocolError::TooLong);
            }
            p.integrity_alg = c_string(tail, SHARED_SECRET_MAX - 1);
        } else {
            r.finish()?;
        }
        Ok(p)
    }

    /// Encodes (`__drbd_send_protocol`); the string is sent from apv 87.
    pub fn encode(&self, link: Link, out: &mut [u8]) -> Result<usize, ProtocolError> {
        check_alg(self.integrity_alg)?;
        let tail = if link.version >= 87 {
            self.integrity_alg.len().saturating_add(1)
        } else {
            0
        };
        let mut w = Writer::new(out, Self::FIXED_SIZE.saturating_add(tail))?;
        w.u32(self.wire_protocol)?;
        w.u32(self.after_sb_0p)?;
        w.u32(self.after_sb_1p)?;
        w.u32(self.after_sb_2p)?;
        w.u32(self.conn_flags)?;
        w.u32(self.two_primaries)?;
        if link.version >= 87 {
            w.put(self.integrity_alg)?;
            w.u8(0)?;
        }
        Ok(w.len())
    }
}

/// The dynamic resync controller settings of P_SYNC_PARAM89 (apv >= 95).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsController {
    /// c-plan-ahead, 0.1 s.
    pub plan_ahead: u32,
    /// c-delay-target, 0.1 s.
    pub delay_target: u32,
    /// c-fill-target, sectors.
    pub fill_target: u32,
    /// c-max-rate, KiB/s.
    pub max_rate: u32,
}

impl RsController {
    /// What a diskless node sends.
    pub const DEFAULTS: Self = Self {
        plan_ahead: disk_conf::C_PLAN_AHEAD_LIMITS.default,
        delay_target: disk_conf::C_DELAY_TARGET_LIMITS.default,
        fill_target: disk_conf::C_FILL_TARGET_LIMITS.default,
        max_rate: disk_conf::C_MAX_RATE_LIMITS.default,
    };
}

/// P_SYNC_PARAM / P_SYNC_PARAM89 (`p_rs_param*`). The layout depends on apv:
/// <= 87 rate only; 88 rate and a NUL-terminated verify-alg; 89..=94 rate
/// and two 64-byte alg fields (132 bytes); >= 95 plus the controller (148).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncParams<'a> {
    /// resync-rate, KiB/s.
    pub resync_rate: u32,
    /// verify-alg without NUL (apv >= 88).
    pub verify_alg: &'a [u8],
    /// csums-alg without NUL (apv >= 89).
    pub csums_alg: &'a [u8],
    /// Controller settings (apv >= 95; `None` when decoded below that).
    pub controller: Option<RsController>,
}

impl<'a> SyncParams<'a> {
    /// Size for apv 89..=94.
    pub const SIZE_89: usize = 132;
    /// Size for apv >= 95.
    pub const SIZE_95: usize = 148;

    /// The command the sender uses on this link.
    pub fn command(link: Link) -> Packet {
        if link.version >= 89 {
            Packet::SyncParam89
        } else {
            Packet::SyncParam
        }
    }

    fn size_limits(link: Link) -> Option<(u32, u32)> {
        let size = match link.version {
            0..=87 => 4,
            88 => {
                const WITH_ALG: u32 = 4 + SHARED_SECRET_MAX as u32;
                return Some((5, WITH_ALG));
            }
            89..=94 => Self::SIZE_89 as u32,
            _ => Self::SIZE_95 as u32,
        };
        Some((size, size))
    }

    /// Decodes like `receive_SyncParam` (either command code is accepted,
    /// the layout follows apv); strings end at the first NUL and are cut at
    /// 63 bytes.
    pub fn decode(link: Link, bytes: &'a [u8]) -> Result<Self, ProtocolError> {
        let (min, max) = Self::size_limits(link).ok_or(ProtocolError::TooShort)?;
        let len = wire_len(bytes.len())?;
        if len < min {
            return Err(ProtocolError::TooShort);
        }
        if len > max {
            return Err(ProtocolError::TooLong);
        }
        let mut r = Reader::new(bytes);
        let mut p = Self {
            resync_rate: r.u32()?,
            verify_alg: &[],
            csums_alg: &[],
            controller: None,
        };
        match link.version {
            0..=87 => {}
            88 => {
                // C overwrites the last received byte with NUL.
                let tail = r.bytes(r.rest().len())?;
                let keep = tail.len().saturating_sub(1);
                p.verify_alg = c_string(tail, keep);
            }
            _ => {
                p.verify_alg = c_string(r.bytes(SHARED_SECRET_MAX)?, SHARED_SECRET_MAX - 1);
                p.csums_alg = c_string(r.bytes(SHARED_SECRET_MAX)?, SHARED_SECRET_MAX - 1);
                if link.version >= 95 {
                    p.controller = Some(RsController {
                        plan_ahead: r.u32()?,
                        delay_target: r.u32()?,
                        fill_target: r.u32()?,
                        max_rate: r.u32()?,
                    });
                }
            }
        }
        r.finish()?;
        Ok(p)
    }

    /// Encodes the layout for apv (`drbd_send_sync_param`); without a
    /// controller, apv >= 95 sends `RsController::DEFAULTS`.
    pub fn encode(&self, link: Link, out: &mut [u8]) -> Result<usize, ProtocolError> {
        check_alg(self.verify_alg)?;
        check_alg(self.csums_alg)?;
        let size = match link.version {
            0..=87 => 4,
            88 => 4usize
                .saturating_add(self.verify_alg.len())
                .saturating_add(1),
            89..=94 => Self::SIZE_89,
            _ => Self::SIZE_95,
        };
        let mut w = Writer::new(out, size)?;
        w.u32(self.resync_rate)?;
        match link.version {
            0..=87 => {}
            88 => {
                w.put(self.verify_alg)?;
                w.u8(0)?;
            }
            _ => {
                for alg in [self.verify_alg, self.csums_alg] {
                    w.put(alg)?;
                    w.zeros(SHARED_SECRET_MAX.saturating_sub(alg.len()))?;
                }
                if link.version >= 95 {
                    let c = self.controller.unwrap_or(RsController::DEFAULTS);
                    w.u32(c.plan_ahead)?;
                    w.u32(c.delay_target)?;
                    w.u32(c.fill_target)?;
                    w.u32(c.max_rate)?;
                }
            }
        }
        Ok(w.len())
    }
}

/// The first byte of P_COMPRESSED_BITMAP (`p_compressed_bm.encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapEncoding {
    /// Bits 0-3: the code, `RLE_VLI_BITS`.
    pub code: u8,
    /// Bits 4-6: unused zero bits at the end of the last byte.
    pub pad_bits: u8,
    /// Bit 7: the first run is of set bits.
    pub first_run_set: bool,
}

impl BitmapEncoding {
    /// Unpacks the byte.
    pub fn from_byte(byte: u8) -> Self {
        Self {
            code: byte & 0x0f,
            pad_bits: (byte >> 4) & 0x07,
            first_run_set: byte & 0x80 != 0,
        }
    }

    /// Packs the byte (fields are masked to their bit widths).
    pub fn to_byte(self) -> u8 {
        (self.code & 0x0f) | ((self.pad_bits & 0x07) << 4) | (u8::from(self.first_run_set) << 7)
    }
}

// ---------------------------------------------------------------------------
// Whole-payload decoding

/// A decoded payload; which variant follows from the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// P_INITIAL_DATA, P_INITIAL_META, P_PING, P_PING_ACK, P_UNPLUG_REMOTE.
    Empty,
    /// P_CONNECTION_FEATURES.
    Features(ConnectionFeatures),
    /// P_AUTH_CHALLENGE or P_AUTH_RESPONSE: the challenge or the HMAC.
    Auth(&'a [u8]),
    /// P_PROTOCOL, P_PROTOCOL_UPDATE.
    Protocol(ProtocolParams<'a>),
    /// P_SYNC_PARAM, P_SYNC_PARAM89.
    SyncParams(SyncParams<'a>),
    /// P_SIZES.
    Sizes(Sizes),
    /// P_UUIDS.
    Uuids(UuidsPacket),
    /// P_SYNC_UUID.
    SyncUuid(SyncUuid),
    /// P_STATE.
    State(StatePacket),
    /// P_STATE_CHG_REQ, P_CONN_ST_CHG_REQ.
    ReqState(ReqState),
    /// P_STATE_CHG_REPLY, P_CONN_ST_CHG_REPLY.
    StateReply(StateReply),
    /// P_DATA, P_DATA_REPLY, P_RS_DATA_REPLY: fixed part, then digest and
    /// data (whatever of them the caller passed in).
    Data {
        /// The fixed part.
        head: DataPacket,
        /// Digest (if an integrity alg is configured) and data.
        rest: &'a [u8],
    },
    /// P_TRIM, P_ZEROES.
    Trim(Trim),
    /// P_DATA_REQUEST, P_RS_DATA_REQUEST, P_OV_REQUEST, P_RS_THIN_REQ, and
    /// P_CSUM_RS_REQUEST / P_OV_REPLY with their digest.
    Request {
        /// The fixed part.
        req: BlockRequest,
        /// The digest; empty for the plain requests.
        digest: &'a [u8],
    },
    /// Every `p_block_ack` packet.
    Ack(BlockAck),
    /// P_OUT_OF_SYNC, P_RS_DEALLOCATED.
    Desc(BlockDesc),
    /// P_BARRIER.
    Barrier(Barrier),
    /// P_BARRIER_ACK.
    BarrierAck(BarrierAck),
    /// P_BITMAP: little-endian 64-bit words.
    Bitmap(&'a [u8]),
    /// P_COMPRESSED_BITMAP (code already checked to be RLE_VLI_Bits).
    CompressedBitmap {
        /// The first byte.
        encoding: BitmapEncoding,
        /// The bit stream.
        code: &'a [u8],
    },
    /// P_DELAY_PROBE.
    DelayProbe(DelayProbe),
}

/// Decodes the payload of a `cmd` packet, after checking its length with
/// `payload_size_limits`.
pub fn decode_body(cmd: Packet, link: Link, payload: &[u8]) -> Result<Body<'_>, ProtocolError> {
    use Packet::*;
    check_payload_size(cmd, link, wire_len(payload.len())?)?;
    let split = |n: usize| payload.split_at_checked(n).ok_or(ProtocolError::TooShort);
    Ok(match cmd {
        InitialData | InitialMeta | Ping | PingAck | UnplugRemote => Body::Empty,
        ConnectionFeatures => Body::Features(self::ConnectionFeatures::decode(payload)?),
        AuthChallenge | AuthResponse => Body::Auth(payload),
        Protocol | ProtocolUpdate => Body::Protocol(ProtocolParams::decode(link, payload)?),
        SyncParam | SyncParam89 => Body::SyncParams(SyncParams::decode(link, payload)?),
        Sizes => Body::Sizes(self::Sizes::decode(link, payload)?),
        Uuids => Body::Uuids(UuidsPacket::decode(payload)?),
        SyncUuid => Body::SyncUuid(self::SyncUuid::decode(payload)?),
        State => Body::State(StatePacket::decode(payload)?),
        StateChgReq | ConnStChgReq => Body::ReqState(ReqState::decode(payload)?),
        StateChgReply | ConnStChgReply => Body::StateReply(StateReply::decode(payload)?),
        Data | DataReply | RsDataReply => {
            let (head, rest) = split(DataPacket::SIZE)?;
            Body::Data {
                head: DataPacket::decode(head)?,
                rest,
            }
        }
        Trim | Zeroes => Body::Trim(self::Trim::decode(payload)?),
        DataRequest | RsDataRequest | OvRequest | RsThinReq | OvReply | CsumRsRequest => {
            let (req, digest) = split(BlockRequest::SIZE)?;
            Body::Request {
                req: BlockRequest::decode(req)?,
                digest,
            }
        }
        RecvAck | WriteAck | RsWriteAck | Superseded | NegAck | NegDReply | NegRsDReply
        | OvResult | RsIsInSync | RsCancel | RetryWrite => Body::Ack(BlockAck::decode(payload)?),
        OutOfSync | RsDeallocated => Body::Desc(BlockDesc::decode(payload)?),
        Barrier => Body::Barrier(self::Barrier::decode(payload)?),
        BarrierAck => Body::BarrierAck(self::BarrierAck::decode(payload)?),
        Bitmap => Body::Bitmap(payload),
        CompressedBitmap => {
            let (&first, code) = payload.split_first().ok_or(ProtocolError::TooShort)?;
            let encoding = BitmapEncoding::from_byte(first);
            if encoding.code != RLE_VLI_BITS {
                return Err(ProtocolError::BadBitmapEncoding);
            }
            Body::CompressedBitmap { encoding, code }
        }
        DelayProbe => Body::DelayProbe(self::DelayProbe::decode(payload)?),
        BecomeSyncTarget | BecomeSyncSource | Wsame | MayIgnore | MaxOptCmd => {
            return Err(ProtocolError::UnexpectedCommand(cmd as u16))
        }
    })
}

#[cfg(test)]
mod tests {    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    extern crate std;
    use super::super::genl::{ConnState, DiskState, Role};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn our_sizes_carry_queue_limits_only_with_wsame() {
        let plain = Link { version: 101, features: 0 };
        let wsame = Link { version: 101, features: feature::WSAME };
        let s = Sizes::ours(plain, 100, 0, 90, dds_flags::FORCED);
        assert_eq!((s.d_size, s.u_size, s.c_size, s.dds_flags, s.qlim), (100, 0, 90, dds_flags::FORCED, None));
        let q = Sizes::ours(wsame, 100, 0, 90, 0).qlim.unwrap();
        assert_eq!((q.logical_block_size, q.physical_block_size, q.io_min, q.discard_enabled), (512, 512, 512, false));
        let mut buf = [0u8; Sizes::SIZE_WITH_QLIM];
        let s = Sizes::ours(wsame, 100, 0, 90, 0);
        let n = s.encode(wsame, &mut buf).unwrap();
        assert_eq!(Sizes::decode(wsame, &buf[..n]), Ok(s));
    }


    #[test]
    fn graceful_disconnect_request() {
        let req = ReqState::conn_change(ConnState::Disconnecting);
        // What 8.4 sends: mask conn (0x1f << 4), val C_DISCONNECTING (1).
        assert_eq!(req, ReqState { mask: 0x1f0, val: 0x10 });
        assert_eq!(req.requested_conn(), Some(ConnState::Disconnecting));
        // A promotion request (role mask only) does not touch conn.
        assert_eq!(ReqState { mask: 3, val: 1 }.requested_conn(), None);
        // A conn value 8.4 does not define.
        assert_eq!(ReqState { mask: 0x1f0, val: 0x1f0 }.requested_conn(), None);
    }

    const L80: Link = Link::HANDSHAKE;
    const L86: Link = Link {
        version: 86,
        features: 0,
    };
    const L88: Link = Link {
        version: 88,
        features: 0,
    };
    const L90: Link = Link {
        version: 90,
        features: 0,
    };
    const L95: Link = Link {
        version: 95,
        features: 0,
    };
    const L101: Link = Link {
        version: 101,
        features: PRO_FEATURES,
    };
    const L101_NOWSAME: Link = Link {
        version: 101,
        features: feature::TRIM,
    };
    const LINKS: [Link; 7] = [L80, L86, L88, L90, L95, L101, L101_NOWSAME];

    fn packet(link: Link, cmd: Packet, volume: u16, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 16 + payload.len()];
        let n = encode_packet(link, cmd, volume, &mut buf, |out| {
            out[..payload.len()].copy_from_slice(payload);
            Ok(payload.len())
        })
        .unwrap();
        buf.truncate(n);
        buf
    }

    /// Encodes with `enc`, decodes the bytes as `cmd` and checks `want`.
    fn round_trip(
        link: Link,
        cmd: Packet,
        enc: impl Fn(&mut [u8]) -> Result<usize, ProtocolError>,
        want: Body<'_>,
    ) {
        let mut buf = [0u8; 256];
        let n = enc(&mut buf).unwrap();
        assert_eq!(decode_body(cmd, link, &buf[..n]).unwrap(), want, "{cmd:?}");
        // Every shorter buffer is refused by the encoder, never panics.
        for short in 0..n {
            assert_eq!(enc(&mut buf[..short]), Err(ProtocolError::BufferTooSmall));
        }
        // Truncated and extended payloads are refused by the decoder unless
        // the command has a variable tail.
        let (min, max) = payload_size_limits(cmd, link).unwrap();
        if n > 0 && min as usize == n {
            assert!(decode_body(cmd, link, &buf[..n - 1]).is_err());
        }
        if max as usize == n {
            let long = vec![0u8; n + 1];
            assert_eq!(decode_body(cmd, link, &long), Err(ProtocolError::TooLong));
        }
    }

    #[test]
    fn h80_h95_h100_layouts() {
        let h = Header {
            cmd: Packet::Data,
            volume: 0,
            length: 24 + 4096,
        };
        let mut b = [0u8; 16];
        assert_eq!(h.encode_as(HeaderKind::H80, &mut b), Ok(8));
        assert_eq!(b[..8], [0x83, 0x74, 0x02, 0x67, 0, 0, 0x10, 0x18]);
        assert_eq!(h.encode_as(HeaderKind::H95, &mut b), Ok(8));
        assert_eq!(b[..8], [0x83, 0x5a, 0, 0, 0, 0, 0x10, 0x18]);
        let h = Header { volume: 3, ..h };
        assert_eq!(h.encode_as(HeaderKind::H100, &mut b), Ok(16));
        assert_eq!(
            b,
            [0x86, 0x20, 0xec, 0x20, 0, 3, 0, 0, 0, 0, 0x10, 0x18, 0, 0, 0, 0]
        );
        assert_eq!(Header::decode(L101, &b), Ok(h));
        assert_eq!(
            h.encode_as(HeaderKind::H80, &mut b),
            Err(ProtocolError::VolumeNeedsH100)
        );
    }

    #[test]
    fn header_choice_follows_version_and_length() {
        let k = HeaderKind::for_payload;
        assert_eq!(k(L80, 1 << 20), HeaderKind::H80);
        assert_eq!(k(L90, 100), HeaderKind::H80);
        assert_eq!(k(L95, MAX_SIZE_H80_PACKET), HeaderKind::H80);
        assert_eq!(k(L95, MAX_SIZE_H80_PACKET + 1), HeaderKind::H95);
        assert_eq!(k(L101, 0), HeaderKind::H100);
        // apv < 95 cannot carry more than 64 KiB.
        let h = Header {
            cmd: Packet::Data,
            volume: 0,
            length: 70_000,
        };
        assert_eq!(
            h.encode(L90, &mut [0u8; 8]),
            Err(ProtocolError::PayloadTooLarge)
        );
        // 8-byte links accept both h80 and h95, whatever the length.
        let mut b = [0u8; 8];
        h.encode(L95, &mut b).unwrap();
        assert_eq!(Header::decode(L86, &b), Ok(h));
        let small = Header { length: 12, ..h };
        small.encode_as(HeaderKind::H95, &mut b).unwrap();
        assert_eq!(Header::decode(L95, &b), Ok(small));
    }

    #[test]
    fn header_rejects_garbage() {
        let mut b = [0u8; 16];
        Header {
            cmd: Packet::Ping,
            volume: 0,
            length: 0,
        }
        .encode_as(HeaderKind::H100, &mut b)
        .unwrap();
        // h100 magic on an 8-byte link, h80 magic on a 16-byte link.
        assert_eq!(
            Header::decode(L95, &b),
            Err(ProtocolError::BadMagic(DRBD_MAGIC_100))
        );
        let mut h80 = [0u8; 16];
        Header {
            cmd: Packet::Ping,
            volume: 0,
            length: 0,
        }
        .encode_as(HeaderKind::H80, &mut h80)
        .unwrap();
        assert_eq!(
            Header::decode(L101, &h80),
            Err(ProtocolError::BadMagic(DRBD_MAGIC))
        );
        let mut padded = b;
        padded[15] = 1;
        assert_eq!(
            Header::decode(L101, &padded),
            Err(ProtocolError::HeaderPadNotZero)
        );
        let mut unknown = b;
        unknown[7] = 0x25; // reserved for protocol D
        assert_eq!(
            Header::decode(L101, &unknown),
            Err(ProtocolError::UnknownCommand(0x25))
        );
        for n in 0..16 {
            assert_eq!(Header::decode(L101, &b[..n]), Err(ProtocolError::TooShort));
        }
        for n in 0..8 {
            assert_eq!(Header::decode(L90, &h80[..n]), Err(ProtocolError::TooShort));
        }
    }

    #[test]
    fn p_state_under_h100_is_byte_exact() {
        // Connected Secondary/Primary UpToDate/UpToDate: 0x000110a6.
        let state = State {
            role: Role::Secondary,
            peer: Role::Primary,
            conn: ConnState::Connected,
            disk: DiskState::UpToDate,
            pdsk: DiskState::UpToDate,
            susp: false,
            aftr_isp: false,
            peer_isp: false,
            user_isp: false,
            susp_nod: false,
            susp_fen: false,
        };
        let mut buf = [0u8; 32];
        let n = encode_packet(L101, Packet::State, 0, &mut buf, |out| {
            StatePacket { state }.encode(out)
        })
        .unwrap();
        assert_eq!(
            buf[..n],
            [
                0x86, 0x20, 0xec, 0x20, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0,
                0x00, 0x01, 0x10, 0xa6
            ]
        );
        let h = Header::decode(L101, &buf).unwrap();
        assert_eq!(h.cmd, Packet::State);
        assert_eq!(
            decode_body(h.cmd, L101, &buf[16..n]),
            Ok(Body::State(StatePacket { state }))
        );
        assert_eq!(
            StatePacket::decode(&[0x80, 0, 0, 0]),
            Err(ProtocolError::BadStateWord)
        );
    }

    #[test]
    fn p_data_under_h95_is_byte_exact() {
        // Sector 8, 4096 bytes, seq 1, block id 0x1122334455667788,
        // DP_SEND_WRITE_ACK is not sent below 100: flags RW_SYNC only.
        // (The C sender uses h95 only above 32 KiB; h95 is forced here.)
        assert_eq!(HeaderKind::for_payload(L95, 24 + 4096), HeaderKind::H80);
        let d = DataPacket {
            sector: 8,
            block_id: 0x1122_3344_5566_7788,
            seq_num: 1,
            dp_flags: dp::RW_SYNC,
        };
        let mut buf = [0u8; 32];
        let payload_len = (DataPacket::SIZE + 4096) as u32;
        let hs = Header {
            cmd: Packet::Data,
            volume: 0,
            length: payload_len,
        }
        .encode_as(HeaderKind::H95, &mut buf)
        .unwrap();
        let n = hs + d.encode(&mut buf[hs..]).unwrap();
        assert_eq!(
            buf[..n],
            [
                0x83, 0x5a, 0x00, 0x00, 0x00, 0x00, 0x10, 0x18, // h95
                0, 0, 0, 0, 0, 0, 0, 8, // sector
                0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // block_id
                0, 0, 0, 1, // seq_num
                0, 0, 0, 2, // dp_flags
            ]
        );
        let h = Header::decode(L95, &buf).unwrap();
        assert_eq!(h.length, payload_len);
        let mut full = buf[hs..n].to_vec();
        full.resize(DataPacket::SIZE + 4096, 0xab);
        match decode_body(Packet::Data, L95, &full).unwrap() {
            Body::Data { head, rest } => {
                assert_eq!(head, d);
                assert_eq!(rest.len(), 4096);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn initial_packets_are_h80_with_no_payload() {
        assert_eq!(
            packet(L80, Packet::InitialData, 0, &[]),
            [0x83, 0x74, 0x02, 0x67, 0xff, 0xf2, 0, 0]
        );
        assert_eq!(
            packet(L80, Packet::InitialMeta, 0, &[]),
            [0x83, 0x74, 0x02, 0x67, 0xff, 0xf1, 0, 0]
        );
        assert_eq!(decode_body(Packet::InitialMeta, L80, &[]), Ok(Body::Empty));
        assert_eq!(
            decode_body(Packet::InitialData, L80, &[0]),
            Err(ProtocolError::TooLong)
        );
    }

    #[test]
    fn connection_features_and_negotiation() {
        let mut buf = [0u8; 80];
        let n = ConnectionFeatures::OURS.encode(&mut buf).unwrap();
        assert_eq!(n, 72);
        assert_eq!(buf[..12], [0, 0, 0, 86, 0, 0, 0, 0x0f, 0, 0, 0, 101]);
        assert!(buf[12..72].iter().all(|&b| b == 0));
        round_trip(
            L80,
            Packet::ConnectionFeatures,
            |o| ConnectionFeatures::OURS.encode(o),
            Body::Features(ConnectionFeatures::OURS),
        );
        let ours = ConnectionFeatures::OURS;
        let peer = |min, flags, max| ConnectionFeatures {
            protocol_min: min,
            feature_flags: flags,
            protocol_max: max,
        };
        assert_eq!(
            ConnectionFeatures::negotiate(&ours, &peer(86, 0x4, 101)),
            Ok(Link {
                version: 101,
                features: 4
            })
        );
        assert_eq!(
            ConnectionFeatures::negotiate(&ours, &peer(86, 0xff, 96)),
            Ok(Link {
                version: 96,
                features: 0x0f
            })
        );
        // protocol_max 0 means "only protocol_min".
        assert_eq!(
            ConnectionFeatures::negotiate(&ours, &peer(90, 0, 0)).map(|l| l.version),
            Ok(90)
        );
        assert_eq!(
            ConnectionFeatures::negotiate(&ours, &peer(102, 0, 110)),
            Err(ProtocolError::IncompatibleVersion)
        );
        assert_eq!(
            ConnectionFeatures::negotiate(&ours, &peer(80, 0, 85)),
            Err(ProtocolError::IncompatibleVersion)
        );
        // DRBD 9 peers advertise higher versions: we settle on 101.
        assert_eq!(
            ConnectionFeatures::negotiate(&ours, &peer(86, 0x1f, 121)).map(|l| l.version),
            Ok(101)
        );
    }

    #[test]
    fn auth_framing() {
        let challenge = [7u8; 64];
        let p = packet(L101, Packet::AuthChallenge, 0, &challenge);
        let h = Header::decode(L101, &p).unwrap();
        assert_eq!((h.cmd, h.length), (Packet::AuthChallenge, 64));
        assert_eq!(
            decode_body(h.cmd, L101, &p[16..]),
            Ok(Body::Auth(&challenge[..]))
        );
        assert_eq!(
            decode_body(Packet::AuthChallenge, L101, &[0; 63]),
            Err(ProtocolError::TooShort)
        );
        assert_eq!(
            decode_body(Packet::AuthChallenge, L101, &[0; 129]),
            Err(ProtocolError::TooLong)
        );
        assert!(decode_body(Packet::AuthChallenge, L101, &[0; 128]).is_ok());
        assert_eq!(
            decode_body(Packet::AuthResponse, L101, &[1; 20]),
            Ok(Body::Auth(&[1u8; 20][..]))
        );
        assert_eq!(
            decode_body(Packet::AuthResponse, L101, &[]),
            Err(ProtocolError::TooShort)
        );
    }

    #[test]
    fn protocol_params_by_version() {
        let p = ProtocolParams {
            wire_protocol: wire_protocol::C,
            after_sb_0p: 1,
            after_sb_1p: 0,
            after_sb_2p: 0,
            conn_flags: conn_flags::DISCARD_MY_DATA,
            two_primaries: 0,
            integrity_alg: b"sha1",
        };
        let mut buf = [0u8; 128];
        assert_eq!(p.encode(L101, &mut buf), Ok(29));
        assert_eq!(&buf[24..29], b"sha1\0");
        round_trip(
            L101,
            Packet::Protocol,
            |o| p.encode(L101, o),
            Body::Protocol(p),
        );
        round_trip(
            L101,
            Packet::ProtocolUpdate,
            |o| p.encode(L101, o),
            Body::Protocol(p),
        );
        // Before 87 there is no string.
        let old = ProtocolParams {
            integrity_alg: b"",
            ..p
        };
        assert_eq!(p.encode(L86, &mut buf), Ok(24));
        round_trip(
            L86,
            Packet::Protocol,
            |o| p.encode(L86, o),
            Body::Protocol(old),
        );
        // No string at all and an empty string both mean "none".
        p.encode(L101, &mut buf).unwrap();
        assert_eq!(
            ProtocolParams::decode(L101, &buf[..24])
                .unwrap()
                .integrity_alg,
            b""
        );
        // A 64-byte string without NUL is cut at 63, like the C receiver.
        let mut long = buf[..24].to_vec();
        long.extend_from_slice(&[b'x'; 64]);
        assert_eq!(
            ProtocolParams::decode(L101, &long)
                .unwrap()
                .integrity_alg
                .len(),
            63
        );
        long.push(0);
        assert_eq!(
            decode_body(Packet::Protocol, L101, &long),
            Err(ProtocolError::TooLong)
        );
        // Names we cannot send.
        let bad = ProtocolParams {
            integrity_alg: &[b'a'; 64],
            ..p
        };
        assert_eq!(bad.encode(L101, &mut buf), Err(ProtocolError::BadString));
        let nul = ProtocolParams {
            integrity_alg: b"a\0b",
            ..p
        };
        assert_eq!(nul.encode(L101, &mut buf), Err(ProtocolError::BadString));
    }

    #[test]
    fn sync_params_by_version() {
        let c = RsController {
            plan_ahead: 20,
            delay_target: 10,
            fill_target: 100,
            max_rate: 102_400,
        };
        let full = SyncParams {
            resync_rate: 250,
            verify_alg: b"md5",
            csums_alg: b"crc32c",
            controller: Some(c),
        };
        let mut buf = [0u8; 256];
        // apv 101: 148 bytes, P_SYNC_PARAM89.
        assert_eq!(SyncParams::command(L101), Packet::SyncParam89);
        assert_eq!(full.encode(L101, &mut buf), Ok(148));
        assert_eq!(buf[..4], [0, 0, 0, 250]);
        assert_eq!(&buf[4..8], b"md5\0");
        assert_eq!(&buf[68..75], b"crc32c\0");
        assert_eq!(buf[132..136], [0, 0, 0, 20]);
        assert_eq!(buf[144..148], [0, 1, 0x90, 0]);
        round_trip(
            L101,
            Packet::SyncParam89,
            |o| full.encode(L101, o),
            Body::SyncParams(full),
        );
        // apv 90: 132 bytes, no controller.
        let l = Link {
            version: 90,
            features: 0,
        };
        let no_ctl = SyncParams {
            controller: None,
            ..full
        };
        assert_eq!(full.encode(l, &mut buf), Ok(132));
        round_trip(
            l,
            Packet::SyncParam89,
            |o| full.encode(l, o),
            Body::SyncParams(no_ctl),
        );
        // apv 88: rate + verify-alg string, P_SYNC_PARAM.
        assert_eq!(SyncParams::command(L88), Packet::SyncParam);
        assert_eq!(full.encode(L88, &mut buf), Ok(8));
        let v88 = SyncParams {
            csums_alg: b"",
            ..no_ctl
        };
        round_trip(
            L88,
            Packet::SyncParam,
            |o| full.encode(L88, o),
            Body::SyncParams(v88),
        );
        assert_eq!(
            decode_body(Packet::SyncParam, L88, &[0, 0, 0, 1]),
            Err(ProtocolError::TooShort)
        );
        // The last byte is forced to NUL, as in C.
        assert_eq!(
            SyncParams::decode(L88, &[0, 0, 0, 1, b'a', b'b'])
                .unwrap()
                .verify_alg,
            b"a"
        );
        // apv 86: rate only.
        let v86 = SyncParams {
            verify_alg: b"",
            ..v88
        };
        assert_eq!(full.encode(L86, &mut buf), Ok(4));
        round_trip(
            L86,
            Packet::SyncParam,
            |o| full.encode(L86, o),
            Body::SyncParams(v86),
        );
        // 64-byte fields without NUL are cut at 63.
        let mut raw = [b'z'; 148];
        raw[..4].copy_from_slice(&[0, 0, 0, 1]);
        let p = SyncParams::decode(L101, &raw).unwrap();
        assert_eq!((p.verify_alg.len(), p.csums_alg.len()), (63, 63));
        // Without controller, apv >= 95 sends the defaults.
        let diskless = SyncParams {
            controller: None,
            ..full
        };
        diskless.encode(L101, &mut buf).unwrap();
        assert_eq!(
            SyncParams::decode(L101, &buf[..148]).unwrap().controller,
            Some(RsController::DEFAULTS)
        );
    }

    #[test]
    fn sizes_with_and_without_qlim() {
        let s = Sizes {
            d_size: 2_097_152,
            u_size: 0,
            c_size: 2_097_152,
            max_bio_size: MAX_BIO_SIZE,
            queue_order_type: 0,
            dds_flags: dds_flags::NO_RESYNC,
            qlim: Some(QueueLimits {
                physical_block_size: 4096,
                logical_block_size: 512,
                alignment_offset: 0,
                io_min: 4096,
                io_opt: 0,
                discard_enabled: true,
                discard_zeroes_data: false,
                write_same_capable: false,
            }),
        };
        let mut buf = [0u8; 64];
        assert_eq!(s.encode(L101, &mut buf), Ok(56));
        assert_eq!(buf[24..28], [0, 0x10, 0, 0]);
        assert_eq!(buf[52..56], [1, 0, 0, 0]);
        round_trip(L101, Packet::Sizes, |o| s.encode(L101, o), Body::Sizes(s));
        let no_q = Sizes { qlim: None, ..s };
        assert_eq!(s.encode(L101_NOWSAME, &mut buf), Ok(32));
        round_trip(
            L101_NOWSAME,
            Packet::Sizes,
            |o| s.encode(L101_NOWSAME, o),
            Body::Sizes(no_q),
        );
        assert_eq!(
            decode_body(Packet::Sizes, L101, &[0; 32]),
            Err(ProtocolError::TooShort)
        );
        assert_eq!(
            decode_body(Packet::Sizes, L101_NOWSAME, &[0; 56]),
            Err(ProtocolError::TooLong)
        );
        assert_eq!(L90.max_bio_size(), 32 << 10);
        assert_eq!(L95.max_bio_size(), 128 << 10);
        assert_eq!(L101.max_bio_size(), 1 << 20);
    }

    #[test]
    fn fixed_packets_round_trip() {
        let uuids = UuidsPacket {
            uuids: Uuids {
                current: 0x0123_4567_89ab_cdef,
                bitmap: 4,
                history: [u64::MAX, 0],
            },
            bitmap_bits: 12345,
            flags: 4,
        };
        let state = State::from_u32(0x000110a6).unwrap();
        let req = ReqState {
            mask: 0x1f0,
            val: 0x10,
        };
        let reply = StateReply { retcode: -19 };
        let data = DataPacket {
            sector: 1 << 40,
            block_id: ID_SYNCER,
            seq_num: u32::MAX,
            dp_flags: dp::MAY_SET_IN_SYNC | dp::SEND_WRITE_ACK,
        };
        let trim = Trim {
            data,
            size: MAX_BATCH_BIO_SIZE,
        };
        let breq = BlockRequest {
            sector: 77,
            block_id: ID_SYNCER,
            blksize: 65536,
        };
        let ack = BlockAck {
            sector: 9,
            block_id: ID_OUT_OF_SYNC,
            blksize: 4096,
            seq_num: 3,
        };
        let desc = BlockDesc {
            sector: 1,
            blksize: 512,
        };
        for link in [L90, L95, L101] {
            round_trip(link, Packet::Uuids, |o| uuids.encode(o), Body::Uuids(uuids));
            round_trip(
                link,
                Packet::SyncUuid,
                |o| SyncUuid { uuid: 42 }.encode(o),
                Body::SyncUuid(SyncUuid { uuid: 42 }),
            );
            round_trip(
                link,
                Packet::State,
                |o| StatePacket { state }.encode(o),
                Body::State(StatePacket { state }),
            );
            for cmd in [Packet::StateChgReq, Packet::ConnStChgReq] {
                round_trip(link, cmd, |o| req.encode(o), Body::ReqState(req));
            }
            for cmd in [Packet::StateChgReply, Packet::ConnStChgReply] {
                round_trip(link, cmd, |o| reply.encode(o), Body::StateReply(reply));
            }
            for cmd in [Packet::Data, Packet::DataReply, Packet::RsDataReply] {
                round_trip(
                    link,
                    cmd,
                    |o| data.encode(o),
                    Body::Data {
                        head: data,
                        rest: &[],
                    },
                );
            }
            for cmd in [Packet::Trim, Packet::Zeroes] {
                round_trip(link, cmd, |o| trim.encode(o), Body::Trim(trim));
            }
            for cmd in [
                Packet::DataRequest,
                Packet::RsDataRequest,
                Packet::OvRequest,
                Packet::RsThinReq,
                Packet::CsumRsRequest,
                Packet::OvReply,
            ] {
                round_trip(
                    link,
                    cmd,
                    |o| breq.encode(o),
                    Body::Request {
                        req: breq,
                        digest: &[],
                    },
                );
            }
            for cmd in [
                Packet::RecvAck,
                Packet::WriteAck,
                Packet::RsWriteAck,
                Packet::Superseded,
                Packet::NegAck,
                Packet::NegDReply,
                Packet::NegRsDReply,
                Packet::RsIsInSync,
                Packet::OvResult,
                Packet::RsCancel,
                Packet::RetryWrite,
            ] {
                round_trip(link, cmd, |o| ack.encode(o), Body::Ack(ack));
            }
            for cmd in [Packet::OutOfSync, Packet::RsDeallocated] {
                round_trip(link, cmd, |o| desc.encode(o), Body::Desc(desc));
            }
            let b = Barrier {
                barrier: 0xdead_beef,
            };
            round_trip(link, Packet::Barrier, |o| b.encode(o), Body::Barrier(b));
            let ba = BarrierAck {
                barrier: 0xdead_beef,
                set_size: 17,
            };
            round_trip(
                link,
                Packet::BarrierAck,
                |o| ba.encode(o),
                Body::BarrierAck(ba),
            );
            let dpb = DelayProbe {
                seq_num: 1,
                offset: 2,
            };
            round_trip(
                link,
                Packet::DelayProbe,
                |o| dpb.encode(o),
                Body::DelayProbe(dpb),
            );
            for cmd in [Packet::Ping, Packet::PingAck, Packet::UnplugRemote] {
                round_trip(link, cmd, |_| Ok(0), Body::Empty);
            }
        }
        assert_eq!(reply.result(), Some(StateChangeResult::ConcurrentStChg));
    }

    #[test]
    fn ack_and_request_bytes() {
        // P_WRITE_ACK under h100: sector 8, block id echoed, 4096, seq 2.
        let ack = BlockAck {
            sector: 8,
            block_id: 0xffff_8880_0123_4560,
            blksize: 4096,
            seq_num: 2,
        };
        let p = {
            let mut b = [0u8; 40];
            let n = encode_packet(L101, Packet::WriteAck, 0, &mut b, |o| ack.encode(o)).unwrap();
            b[..n].to_vec()
        };
        assert_eq!(
            p,
            [
                0x86, 0x20, 0xec, 0x20, 0, 0, 0, 0x16, 0, 0, 0, 24, 0, 0, 0, 0, //
                0, 0, 0, 0, 0, 0, 0, 8, //
                0xff, 0xff, 0x88, 0x80, 0x01, 0x23, 0x45, 0x60, //
                0, 0, 0x10, 0, 0, 0, 0, 2
            ]
        );
        // P_OV_RESULT carries ID_IN_SYNC as a big-endian 4711.
        let ov = BlockAck {
            sector: 0,
            block_id: ID_IN_SYNC,
            blksize: 4096,
            seq_num: 0,
        };
        let mut b = [0u8; 24];
        ov.encode(&mut b).unwrap();
        assert_eq!(b[8..16], [0, 0, 0, 0, 0, 0, 0x12, 0x67]);
        // A P_CSUM_RS_REQUEST keeps its digest.
        let req = BlockRequest {
            sector: 16,
            block_id: ID_SYNCER,
            blksize: 4096,
        };
        let mut buf = [0u8; 24 + 16];
        req.encode(&mut buf).unwrap();
        buf[24..].copy_from_slice(&[0x5a; 16]);
        assert_eq!(
            decode_body(Packet::CsumRsRequest, L101, &buf),
            Ok(Body::Request {
                req,
                digest: &[0x5a; 16]
            })
        );
        assert_eq!(
            decode_body(Packet::RsDataRequest, L101, &buf),
            Err(ProtocolError::TooLong)
        );
        assert!(decode_body(Packet::CsumRsRequest, L101, &[0; 24 + 65]).is_err());
    }

    #[test]
    fn compressed_bitmap_header() {
        assert_eq!(
            BitmapEncoding::from_byte(0xb2),
            BitmapEncoding {
                code: 2,
                pad_bits: 3,
                first_run_set: true
            }
        );
        for b in 0..=255u8 {
            assert_eq!(BitmapEncoding::from_byte(b).to_byte(), b);
        }
        assert_eq!(
            decode_body(Packet::CompressedBitmap, L101, &[0xb2, 1, 2]),
            Ok(Body::CompressedBitmap {
                encoding: BitmapEncoding::from_byte(0xb2),
                code: &[1, 2]
            })
        );
        assert_eq!(
            decode_body(Packet::CompressedBitmap, L101, &[0xb3, 1]),
            Err(ProtocolError::BadBitmapEncoding)
        );
        assert_eq!(
            decode_body(Packet::CompressedBitmap, L101, &[0xb2]),
            Err(ProtocolError::TooShort)
        );
        assert_eq!(
            decode_body(Packet::CompressedBitmap, L101, &[0x02; 4081]),
            Err(ProtocolError::TooLong)
        );
        assert!(decode_body(Packet::CompressedBitmap, L95, &[0x02; 4088]).is_ok());
        assert_eq!(payload_size_limits(Packet::Bitmap, L101), Some((0, 4080)));
        assert_eq!(payload_size_limits(Packet::Bitmap, L95), Some((0, 4088)));
    }

    #[test]
    fn command_table() {
        let mut known = 0;
        for raw in 0..=u16::MAX {
            if let Some(p) = Packet::from_raw(raw) {
                known += 1;
                assert_eq!(p as u16, raw);
                assert!(!p.name().is_empty());
            }
        }
        assert_eq!(known, 54);
        assert_eq!(Packet::from_raw(0x25), None);
        assert_eq!(Packet::from_raw(0x35), None);
        assert_eq!(Packet::ConnectionFeatures as u16, 0xfffe);
        assert_eq!(Packet::Zeroes as u16, 0x36);
        assert!(Packet::DelayProbe.accepted_on(Socket::Data));
        assert!(Packet::DelayProbe.accepted_on(Socket::Meta));
        assert!(!Packet::WriteAck.accepted_on(Socket::Data));
        assert!(!Packet::Data.accepted_on(Socket::Meta));
        assert!(!Packet::Wsame.accepted_on(Socket::Data));
        assert!(!Packet::ConnectionFeatures.accepted_on(Socket::Data));
        // Everything a receive loop accepts has size limits.
        for raw in 0..=u16::MAX {
            if let Some(p) = Packet::from_raw(raw) {
                for s in [Socket::Data, Socket::Meta] {
                    if p.accepted_on(s) {
                        assert!(payload_size_limits(p, L101).is_some(), "{p:?}");
                    }
                }
            }
        }
        for p in [
            Packet::BecomeSyncTarget,
            Packet::Wsame,
            Packet::MayIgnore,
            Packet::MaxOptCmd,
        ] {
            assert_eq!(payload_size_limits(p, L101), None);
            assert_eq!(
                decode_body(p, L101, &[]),
                Err(ProtocolError::UnexpectedCommand(p as u16))
            );
        }
    }

    #[test]
    fn size_limits_match_the_c_tables() {
        let l = |c| payload_size_limits(c, L101).unwrap();
        assert_eq!(l(Packet::Data), (24, 24 + 64 + (1 << 20)));
        assert_eq!(l(Packet::Trim), (28, 28));
        assert_eq!(l(Packet::Uuids), (48, 48));
        assert_eq!(l(Packet::Sizes), (56, 56));
        assert_eq!(l(Packet::State), (4, 4));
        assert_eq!(l(Packet::StateChgReq), (8, 8));
        assert_eq!(l(Packet::BarrierAck), (8, 8));
        assert_eq!(l(Packet::WriteAck), (24, 24));
        assert_eq!(l(Packet::Ping), (0, 0));
        assert_eq!(l(Packet::SyncParam89), (148, 148));
        assert_eq!(l(Packet::Protocol), (24, 88));
        assert_eq!(l(Packet::ConnectionFeatures), (72, 72));
        // wire_struct! adds the sizes up from the fields and the padding.
        assert_eq!(l(Packet::DataRequest), (24, 24));
        assert_eq!(l(Packet::OutOfSync), (16, 16));
        assert_eq!(l(Packet::Barrier), (8, 8));
        assert_eq!(l(Packet::SyncUuid), (8, 8));
        assert_eq!(l(Packet::StateChgReply), (4, 4));
        assert_eq!(l(Packet::DelayProbe), (8, 8));
        assert_eq!(
            check_payload_size(Packet::State, L101, 5),
            Err(ProtocolError::TooLong)
        );
        assert_eq!(
            check_payload_size(Packet::State, L101, 3),
            Err(ProtocolError::TooShort)
        );
        assert_eq!(check_payload_size(Packet::State, L101, 4), Ok(()));
    }

    /// A tiny deterministic generator for the garbage tests.
    use crate::test_rng::XorShift;

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let cmds: Vec<Packet> = (0..=u16::MAX).filter_map(Packet::from_raw).collect();
        let mut buf = vec![0u8; 300];
        let mut out = [0u8; 300];
        for round in 0..20_000 {
            let len = (rng.next() % 300) as usize;
            for b in buf.iter_mut().take(len) {
                *b = rng.next() as u8;
            }
            let bytes = &buf[..len];
            let link = LINKS[round % LINKS.len()];
            let _ = Header::decode(link, bytes);
            for &cmd in &cmds {
                // Whatever decodes must encode again to the same value.
                let Ok(body) = decode_body(cmd, link, bytes) else {
                    continue;
                };
                match body {
                    Body::Uuids(p) => {
                        let n = p.encode(&mut out).unwrap();
                        assert_eq!(&out[..n], bytes);
                    }
                    Body::Protocol(p) => {
                        let n = p.encode(link, &mut out).unwrap();
                        assert_eq!(ProtocolParams::decode(link, &out[..n]), Ok(p));
                    }
                    Body::SyncParams(p) => {
                        let n = p.encode(link, &mut out).unwrap();
                        assert_eq!(SyncParams::decode(link, &out[..n]), Ok(p));
                    }
                    Body::Sizes(p) => {
                        let n = p.encode(link, &mut out).unwrap();
                        assert_eq!(Sizes::decode(link, &out[..n]), Ok(p));
                    }
                    _ => {}
                }
            }
            let _ = ConnectionFeatures::decode(bytes);
            let _ = DataPacket::decode(bytes);
            let _ = Trim::decode(bytes);
            let _ = BlockRequest::decode(bytes);
            let _ = BlockAck::decode(bytes);
            let _ = BlockDesc::decode(bytes);
            let _ = Barrier::decode(bytes);
            let _ = BarrierAck::decode(bytes);
            let _ = UuidsPacket::decode(bytes);
            let _ = SyncUuid::decode(bytes);
            let _ = StatePacket::decode(bytes);
            let _ = ReqState::decode(bytes);
            let _ = StateReply::decode(bytes);
            let _ = DelayProbe::decode(bytes);
            let _ = Sizes::decode(link, bytes);
            let _ = ProtocolParams::decode(link, bytes);
            let _ = SyncParams::decode(link, bytes);
        }
    }

    #[test]
    fn error_reasons_are_distinct() {
        let all = [
            ProtocolError::TooShort,
            ProtocolError::TooLong,
            ProtocolError::BadMagic(0),
            ProtocolError::HeaderPadNotZero,
            ProtocolError::UnknownCommand(0),
            ProtocolError::UnexpectedCommand(0),
            ProtocolError::BufferTooSmall,
            ProtocolError::PayloadTooLarge,
            ProtocolError::VolumeNeedsH100,
            ProtocolError::IncompatibleVersion,
            ProtocolError::BadString,
            ProtocolError::BadStateWord,
            ProtocolError::BadBitmapEncoding,
            ProtocolError::BadBitmapChunk,
            ProtocolError::BadRleCode,
            ProtocolError::RleBeyondBitmap,
            ProtocolError::VliOutOfRange,
            ProtocolError::ZeroRunLength,
        ];
        let reasons: std::collections::BTreeSet<_> = all.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons.len(), all.len());
    }
}
