//! Checksum-based resync (`csums-alg`; 8.4's `receive_SyncParam`,
//! `read_for_csum`/`w_e_send_csum`, `w_e_end_csum_rs_req`,
//! `got_IsInSync`). The decisions are `drbd_include::csums`; this file
//! applies them to our blocks and the connection.
//!
//! Both nodes must name the same csums-alg in P_SYNC_PARAM89 (a
//! difference at connect goes StandAlone; a peer that changes it on a
//! live connection is followed). A SyncTarget with a csums-alg reads each
//! out-of-sync block itself and sends P_CSUM_RS_REQUEST with its digest;
//! the SyncSource digests its own block and answers P_RS_IS_IN_SYNC (both
//! clear the bits, no data crosses) or P_RS_DATA_REPLY. Both count the
//! blocks found equal and log 8.4's summary at the end of the resync.

use kernel::prelude::*;

use crate::drbd_block_digest::{send_block_digest, with_block_digest, DigestSendError};
use crate::drbd_net::{digest_named, NetConfig, NetError};
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

/// The csums-alg of one connection, owned by its receiver: the
/// configured one until the peer changes it, and its transform for
/// serving P_CSUM_RS_REQUEST (allocated at the first one).
pub(crate) struct CsumsState {
    alg: Option<AlgName>,
    source_digest: Option<Digest>,
}

impl CsumsState {
    pub(crate) fn new(cfg: &NetConfig) -> Self {
        Self { alg: cfg.csums_alg, source_digest: None }
    }

    fn alg_bytes(&self) -> &[u8] {
        self.alg.as_ref().map_or(&[][..], |a| a.as_bytes())
    }

    /// `receive_SyncParam` for the algorithm names: the peer's verify-alg
    /// and csums-alg must equal ours while connecting (8.4: "Different
    /// ... settings", disconnect: StandAlone). Later a different csums-alg
    /// is the peer's net-options change, and adopted as 8.4 does.
    pub(crate) fn receive_sync_params(
        &mut self,
        name: &str,
        cfg: &NetConfig,
        handshake: bool,
        version: u32,
        p: &SyncParams<'_>,
    ) -> core::result::Result<(), NetError> {
        let our_verify = cfg.verify_alg.as_ref().map_or(&[][..], |a| a.as_bytes());
        if version >= 88 && csums::compare_alg(our_verify, p.verify_alg, handshake) == AlgAgreement::MismatchAtHandshake {
            pr_err!("{}: Different verify-alg settings. me=\"{}\" peer=\"{}\"\n", name, shown(our_verify), shown(p.verify_alg));
            return Err(NetError::GiveUp);
        }
        if version < csums::MIN_VERSION {
            return Ok(());
        }
        match csums::compare_alg(self.alg_bytes(), p.csums_alg, handshake) {
            AlgAgreement::Same => Ok(()),
            AlgAgreement::MismatchAtHandshake => {
                pr_err!("{}: Different csums-alg settings. me=\"{}\" peer=\"{}\"\n", name, shown(self.alg_bytes()), shown(p.csums_alg));
                Err(NetError::GiveUp)
            }
            AlgAgreement::AdoptPeer => self.adopt(name, p.csums_alg),
        }
    }

    /// The peer changed its csums-alg on the live connection.
    fn adopt(&mut self, name: &str, peer: &[u8]) -> core::result::Result<(), NetError> {
        let alg = if peer.is_empty() {
            None
        } else {
            let Some(alg) = FixedStr::new(peer).filter(|a| !a.as_bytes().contains(&0)) else {
                pr_err!("{}: peer's csums-alg is not a valid name\n", name);
                return Err(NetError::GiveUp);
            };
            if digest_named(&alg).is_err() {
                // 8.4 (drbd_crypto_alloc_digest_safe): disconnect.
                pr_err!("{}: Can not allocate \"{}\" as csums-alg\n", name, shown(peer));
                return Err(NetError::GiveUp);
            }
            Some(alg)
        };
        pr_info!("{}: using csums-alg: \"{}\"\n", name, shown(peer));
        self.alg = alg;
        self.source_digest = None;
        Ok(())
    }

    /// The transform a SyncTarget starting now uses for its requests,
    /// if it resyncs by checksums (`use_checksum_based_resync`: with
    /// csums-after-crash-only, only while this node is a crashed Primary).
    pub(crate) fn target_digest(&self, name: &str, cfg: &NetConfig, version: u32, crashed_primary: bool) -> Option<Digest> {
        let alg = self.alg.as_ref()?;
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

    /// The transform to compare a P_CSUM_RS_REQUEST's digest with.
    fn source_digest(&mut self, name: &str) -> core::result::Result<&Digest, NetError> {
        if self.source_digest.is_none() {
            let Some(alg) = self.alg.as_ref() else {
                pr_err!("{}: CsumRSRequest, but no csums-alg is agreed\n", name);
                return Err(NetError::Refused);
            };
            self.source_digest = Some(digest_named(alg).map_err(NetError::Io)?);
        }
        self.source_digest.as_ref().ok_or(NetError::Refused)
    }
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
    pages: &mut BlockPages,
    buf: &mut [u8],
    req: proto::BlockRequest,
    peer_digest: &[u8],
) -> core::result::Result<CsumServed, NetError> {
    let digest = state.source_digest(name)?;
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
