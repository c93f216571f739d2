//! Digests of our own blocks, shared by online verify (P_OV_REPLY and its
//! comparison on VerifyS) and checksum-based resync (P_CSUM_RS_REQUEST
//! and its comparison on the SyncSource). A block is read as a resync
//! read: application writes to it wait until the caller is done with it,
//! so the digest and whatever is sent or decided from it describe the
//! same data.

use kernel::prelude::*;

use crate::drbd_include::protocol::{self as proto, Packet};
use crate::drbd_req::DeviceIo;
use crate::drbd_sender::Replica;
use crate::kernel_glue::block::BlockPages;
use crate::kernel_glue::crypto::{Digest, HMAC_MAX_DIGEST};

/// Why a block's digest did not reach the peer.
pub(crate) enum DigestSendError {
    /// Reading or digesting our block failed; nothing was sent.
    Local(Error),
    /// The send failed: the connection is broken.
    Send(Error),
}

impl DigestSendError {
    /// The errno, whichever side failed.
    pub(crate) fn errno(&self) -> Error {
        match self {
            Self::Local(e) | Self::Send(e) => *e,
        }
    }
}

/// Reads `size` bytes at `sector` into `buf` and calls `then` with the
/// data and its digest while writes to the block are held off.
pub(crate) fn with_block_digest(
    io: &DeviceIo,
    digest: &Digest,
    pages: &mut BlockPages,
    buf: &mut [u8],
    sector: u64,
    size: u32,
    then: impl FnOnce(&[u8], &[u8]) -> Result,
) -> Result {
    let out = buf.get_mut(..size as usize).ok_or(EINVAL)?;
    io.read_for_resync(pages, sector, out, crate::drbd_include::faults::Fault::ResyncRead, |data| {
        let sum = digest.digest(data)?;
        then(data, sum.as_bytes())
    })
}

/// Sends `cmd` (P_OV_REPLY, P_CSUM_RS_REQUEST): the block request `req`
/// followed by the digest of our block it names. The send comes after
/// the block is released: it may wait for the peer's receiver, which may
/// be sending to ours, which may be waiting for this very block (8.4's
/// `w_e_send_csum` frees its request before sending for the same reason).
pub(crate) fn send_block_digest(
    io: &DeviceIo,
    replica: &Replica,
    digest: &Digest,
    pages: &mut BlockPages,
    buf: &mut [u8],
    cmd: Packet,
    req: proto::BlockRequest,
) -> core::result::Result<(), DigestSendError> {
    let mut sum = [0u8; HMAC_MAX_DIGEST];
    let mut len = 0;
    with_block_digest(io, digest, pages, buf, req.sector, req.blksize, |_, computed| {
        sum.get_mut(..computed.len()).ok_or(EINVAL)?.copy_from_slice(computed);
        len = computed.len();
        Ok(())
    })
    .map_err(DigestSendError::Local)?;
    let mut head = [0u8; proto::BlockRequest::SIZE];
    let n = req.encode(&mut head).map_err(|_| DigestSendError::Local(EINVAL))?;
    replica
        .send_with_data(cmd, head.get(..n).unwrap_or(&[]), sum.get(..len).unwrap_or(&[]))
        .map_err(DigestSendError::Send)
}
