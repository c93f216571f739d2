//! Checksum-based resync (`csums-alg`; 8.4's `receive_SyncParam`,
//! `read_for_csum`/`w_e_send_csum`, `w_e_end_csum_rs_req`,
//! `got_IsInSync`). The decisions are `drbd_include::csums`; this file
//! applies them to our blocks and the connection.
//!
//! Both nodes must name the same csums-alg and verify-alg in
//! P_SYNC_PARAM89 (a difference at connect goes StandAlone; a peer that
//! changes them on a live connection is followed, as it follows ours:
//! `Connection::change_sync_algs`). A SyncTarget with a csums-alg reads each
//! out-of-sync block itself and sends P_CSUM_RS_REQUEST with its digest;
//! the SyncSource digests its own block and answers P_RS_IS_IN_SYNC (both
//! clear the bits, no data crosses) or P_RS_DATA_REPLY. Both count the
//! blocks found equal and log 8.4's summary at the end of the resync.

use kernel::prelude::*;

use crate::drbd_block_digest::{send_block_digest, with_block_digest, DigestSendError};
use crate::drbd_net::{alg_bytes, digest_named, NetConfig, NetError, SyncAlgs};
use crate::drbd_include::csums::{self, AlgAgreement, CsumAnswer};
use crate::drbd_include::fixed_str::FixedStr;
use crate::drbd_include::genl::net_conf;
use crate::drbd_include::protocol::{self as proto, Packet, SyncParams, ID_SYNCER};
use crate::drbd_req::DeviceIo;
use crate::drbd_peer_device::ResyncShared;
use crate::drbd_sender::Replica;
use crate::kernel_glue::block::BlockPages;
use crate::kernel_glue::crypto::Digest;

/// An algorithm name as configured or agreed.
pub(crate) type AlgName = FixedStr<{ net_conf::SECRET_SIZE }>;

/// An algorithm name for the log (ours were checked at connect; the
/// peer's may be any bytes).
fn shown(alg: &[u8]) -> &str {
    core::str::from_utf8(alg).unwrap_or("<not UTF-8>")
}

/// The receiver's csums-alg transform for serving P_CSUM_RS_REQUEST,
/// allocated at the first one for the csums-alg then in force
/// (`ConnShared::sync_algs`), again when that changed.
pub(crate) struct CsumsState {
    source_digest: Option<(AlgName, Digest)>,
}

impl CsumsState {
    pub(crate) fn new() -> Self {
        Self { source_digest: None }
    }

    /// The transform a SyncTarget starting now uses for its requests,
    /// if it resyncs by checksums (`use_checksum_based_resync`: with
    /// csums-after-crash-only, only while this node is a crashed Primary).
    pub(crate) fn target_digest(
        &self,
        name: &str,
        cfg: &NetConfig,
        csums_alg: Option<AlgName>,
        version: u32,
        crashed_primary: bool,
    ) -> Option<Digest> {
        let alg = &csums_alg?;
        if !csums::use_checksum_based_resync(version, true, cfg.csums_after_crash_only, crashed_primary) {
            return None;
        }
        match digest_named(alg) {
            Ok(d) => Some(d),
            Err(e) => {
                pr_warn!("{}: csums-alg \"{}\" unavailable (error {}); resyncing without checksums\n",
                    name, shown(alg.as_bytes()), e.to_errno());
                None
            }
        }
    }

    /// The transform to compare a P_CSUM_RS_REQUEST's digest with: of
    /// `alg`, the csums-alg in force.
    fn source_digest(&mut self, name: &str, alg: Option<AlgName>) -> core::result::Result<&Digest, NetError> {
        let Some(alg) = alg else {
            pr_err!("{}: CsumRSRequest, but no csums-alg is agreed\n", name);
            return Err(NetError::Refused);
        };
        if self.source_digest.as_ref().is_none_or(|(cached, _)| *cached != alg) {
            self.source_digest = Some((alg, digest_named(&alg).map_err(NetError::Io)?));
        }
        self.source_digest.as_ref().map(|(_, d)| d).ok_or(NetError::Refused)
    }
}

/// `receive_SyncParam` for the algorithm names: the peer's verify-alg and
/// csums-alg must equal `algs`, ours, while connecting (8.4: "Different
/// ... settings", disconnect: StandAlone); later a different one is the
/// peer's net-options change, adopted as 8.4 does. Returns the algorithms
/// in force from now on.
pub(crate) fn receive_sync_params(
    name: &str,
    mut algs: SyncAlgs,
    handshake: bool,
    version: u32,
    p: &SyncParams<'_>,
) -> core::result::Result<SyncAlgs, NetError> {
    if version >= 88 {
        algs.verify = agree(name, "verify-alg", algs.verify, p.verify_alg, handshake)?;
    }
    if version >= csums::MIN_VERSION {
        algs.csums = agree(name, "csums-alg", algs.csums, p.csums_alg, handshake)?;
    }
    Ok(algs)
}

/// The verify-alg or csums-alg (`what`) after the peer's P_SYNC_PARAM
/// named `peer` where ours is `ours`: at the handshake they must be equal
/// ("Different ... settings", StandAlone); later the peer's is adopted.
fn agree(name: &str, what: &str, ours: Option<AlgName>, peer: &[u8], handshake: bool) -> core::result::Result<Option<AlgName>, NetError> {
    let mine = alg_bytes(&ours);
    match csums::compare_alg(mine, peer, handshake) {
        AlgAgreement::Same => Ok(ours),
        AlgAgreement::MismatchAtHandshake => {
            pr_err!("{}: Different {} settings. me=\"{}\" peer=\"{}\"\n", name, what, shown(mine), shown(peer));
            Err(NetError::GiveUp)
        }
        AlgAgreement::AdoptPeer => adopt(name, what, peer),
    }
}

/// The peer changed its verify-alg or csums-alg (`what`) on the live
/// connection to `peer`: adopted, as 8.4's `receive_SyncParam` does, if
/// the kernel has it (else 8.4 disconnects).
fn adopt(name: &str, what: &str, peer: &[u8]) -> core::result::Result<Option<AlgName>, NetError> {
    let alg = if peer.is_empty() {
        None
    } else {
        let Some(alg) = FixedStr::new(peer).filter(|a| !a.as_bytes().contains(&0)) else {
            pr_err!("{}: peer's {} is not a valid name\n", name, what);
            return Err(NetError::GiveUp);
        };
        if digest_named(&alg).is_err() {
            // 8.4 (drbd_crypto_alloc_digest_safe): disconnect.
            pr_err!("{}: Can not allocate \"{}\" as {}\n", name, shown(peer), what);
            return Err(NetError::GiveUp);
        }
        Some(alg)
    };
    pr_info!("{}: using {}: \"{}\"\n", name, what, shown(peer));
    Ok(alg)
}

/// What the SyncSource did with a P_CSUM_RS_REQUEST.
pub(crate) enum CsumServed {
    /// Equal blocks: bits cleared here; the caller sends P_RS_IS_IN_SYNC.
    InSync,
    /// Different: P_RS_DATA_REPLY went out.
    DataSent,
    /// Our block could not be read: the caller sends P_NEG_RS_DREPLY.
    ReadFailed,
}

/// The SyncSource's side of a P_CSUM_RS_REQUEST (`w_e_end_csum_rs_req`),
/// once the caller checked the range and that our disk is UpToDate.
/// The peer's digest must have our algorithm's length.
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve_request(
    name: &str,
    io: &DeviceIo,
    rs: &ResyncShared,
    replica: &Replica,
    state: &mut CsumsState,
    alg: Option<AlgName>,
    pages: &mut BlockPages,
    buf: &mut [u8],
    req: proto::BlockRequest,
    peer_digest: &[u8],
) -> core::result::Result<CsumServed, NetError> {
    let digest = state.source_digest(name, alg)?;
    if let Err(bad) = csums::check_peer_digest(peer_digest, digest.size()) {
        pr_err!("{}: CsumRSRequest with a digest of {} bytes, csums-alg gives {}\n", name, bad.peer, bad.own);
        return Err(NetError::Refused);
    }
    rs.note_csums_used();
    let mut answer = CsumAnswer::SendData;
    let mut send_failed = false;
    let result = with_block_digest(io, digest, pages, buf, req.sector, req.blksize, |data, sum| {
        answer = csums::answer(sum, peer_digest);
        match answer {
            // Cleared while writes to the block are still held off, so a
            // write coming after keeps its bits.
            CsumAnswer::InSync => {
                io.set_in_sync(req.sector, req.blksize);
                Ok(())
            }
            CsumAnswer::SendData => {
                io.count_net(req.blksize, true);
                replica.send_rs_reply(req.sector, ID_SYNCER, data).inspect_err(|_| send_failed = true)
            }
        }
    });
    match result {
        Ok(()) if answer == CsumAnswer::InSync => {
            rs.add_same_csum(csums::same_csum_bits(req.blksize));
            rs.note_left(|| io.out_of_sync_bits());
            Ok(CsumServed::InSync)
        }
        Ok(()) => Ok(CsumServed::DataSent),
        Err(e) if send_failed => Err(NetError::Io(e)),
        Err(e) => {
            pr_err!("{}: reading sector {} for the peer's checksum failed: error {}\n", name, req.sector, e.to_errno());
            Ok(CsumServed::ReadFailed)
        }
    }
}

/// The SyncTarget's request for `size` bytes at `sector` with checksums
/// (`read_for_csum` + `w_e_send_csum`): P_CSUM_RS_REQUEST with the digest
/// of our block. A block we cannot read is asked for whole
/// (P_RS_DATA_REQUEST). An error means the connection broke.
pub(crate) fn send_request(
    io: &DeviceIo,
    replica: &Replica,
    digest: &Digest,
    pages: &mut BlockPages,
    buf: &mut [u8],
    sector: u64,
    size: u32,
) -> Result {
    let req = proto::BlockRequest { sector, block_id: ID_SYNCER, blksize: size };
    match send_block_digest(io, replica, digest, pages, buf, Packet::CsumRsRequest, req) {
        Ok(()) => Ok(()),
        Err(DigestSendError::Send(e)) => Err(e),
        Err(DigestSendError::Local(e)) => {
            pr_warn!("reading sector {} for its checksum failed (error {}); requesting the data\n", sector, e.to_errno());
            replica.send_rs_request(sector, size)
        }
    }
}

/// 8.4's line at the end of a checksum-based resync, on either side.
pub(crate) fn log_summary(name: &str, rs: &ResyncShared) {
    if !rs.csums_used() {
        return;
    }
    if let Some(s) = csums::summary(rs.same_csum(), rs.total()) {
        pr_info!("{}: {} % had equal checksums, eliminated: {}K; transferred {}K total {}K\n",
            name, s.percent, s.eliminated_kib, s.transferred_kib, s.total_kib);
    }
}
