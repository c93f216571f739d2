//! Checksum-based resync (`csums-alg`, protocol version >= 89): the
//! decisions of DRBD 8.4's `receive_SyncParam` (both sides must agree on
//! the algorithm), `use_checksum_based_resync`, `w_e_end_csum_rs_req`
//! (the SyncSource answers a digest with "in sync" or with the data) and
//! the "equal checksums" summary of `drbd_resync_finished`.
//!
//! The SyncTarget reads its own out-of-sync block and sends its digest
//! (P_CSUM_RS_REQUEST) instead of asking for the data; the SyncSource
//! digests its block and answers P_RS_IS_IN_SYNC when both are equal (no
//! data crosses the wire), P_RS_DATA_REPLY otherwise.

/// The first protocol version with checksum-based resync.
pub const MIN_VERSION: u32 = 89;

/// How `receive_SyncParam` treats the peer's name of an algorithm
/// (csums-alg, verify-alg) against ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgAgreement {
    /// Both name the same algorithm (or both none).
    Same,
    /// They differ while the connection is being established: 8.4 logs
    /// "Different csums-alg settings" and disconnects (StandAlone).
    MismatchAtHandshake,
    /// They differ on an established connection: the peer changed its
    /// net options; 8.4 adopts the peer's algorithm.
    AdoptPeer,
}

/// Compares the algorithm names (without NUL) as 8.4 does (`strcmp`).
pub fn compare_alg(ours: &[u8], peer: &[u8], handshake: bool) -> AlgAgreement {
    if ours == peer {
        AlgAgreement::Same
    } else if handshake {
        AlgAgreement::MismatchAtHandshake
    } else {
        AlgAgreement::AdoptPeer
    }
}

/// `use_checksum_based_resync`: whether a SyncTarget sends digests
/// rather than plain requests. `crashed_primary`: this node was a
/// Primary that crashed (only then with `csums-after-crash-only`).
pub fn use_checksum_based_resync(version: u32, configured: bool, after_crash_only: bool, crashed_primary: bool) -> bool {
    version >= MIN_VERSION && configured && (!after_crash_only || crashed_primary)
}

/// A peer's digest that cannot be compared with ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestLengthMismatch {
    /// Bytes the peer sent.
    pub peer: usize,
    /// Bytes of our algorithm's digest.
    pub own: usize,
}

/// Checks the length of a digest the peer sent (P_CSUM_RS_REQUEST):
/// it must be exactly our algorithm's digest size (8.4 only asserts it
/// and then compares our size's worth of bytes).
pub fn check_peer_digest(peer: &[u8], own_size: usize) -> Result<(), DigestLengthMismatch> {
    if peer.len() == own_size && own_size != 0 {
        Ok(())
    } else {
        Err(DigestLengthMismatch { peer: peer.len(), own: own_size })
    }
}

/// The SyncSource's answer to a P_CSUM_RS_REQUEST whose block it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsumAnswer {
    /// Same digest: clear the bits, P_RS_IS_IN_SYNC, no data.
    InSync,
    /// Different: P_RS_DATA_REPLY with our block.
    SendData,
}

/// `w_e_end_csum_rs_req`: equal digests mean equal blocks.
pub fn answer(own: &[u8], peer: &[u8]) -> CsumAnswer {
    if !own.is_empty() && own == peer {
        CsumAnswer::InSync
    } else {
        CsumAnswer::SendData
    }
}

/// Bitmap bits (4 KiB blocks) a P_RS_IS_IN_SYNC of `blksize` bytes counts
/// as having equal checksums (8.4: `blksize >> BM_BLOCK_SHIFT`).
pub fn same_csum_bits(blksize: u32) -> u64 {
    u64::from(blksize >> 12)
}

/// The figures of 8.4's line at the end of a checksum-based resync:
/// "%u %% had equal checksums, eliminated: %luK; transferred %luK total %luK".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsumSummary {
    /// Percent of the resync's blocks that had equal checksums.
    pub percent: u64,
    /// KiB not transferred.
    pub eliminated_kib: u64,
    /// KiB transferred.
    pub transferred_kib: u64,
    /// KiB to sync when the resync began.
    pub total_kib: u64,
}

/// The summary of a resync of `total` bits of which `same` had equal
/// checksums; `None` for an empty resync (8.4 prints nothing then).
pub fn summary(same: u64, total: u64) -> Option<CsumSummary> {
    if total == 0 {
        return None;
    }
    // 8.4's formula: exact below 100000 bits, no overflow above.
    let percent = if total < 100_000 { same.saturating_mul(100) / total } else { same / (total / 100) };
    Some(CsumSummary {
        percent,
        eliminated_kib: same.saturating_mul(4),
        transferred_kib: total.saturating_sub(same).saturating_mul(4),
        total_kib: total.saturating_mul(4),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_names_agree() {
        assert_eq!(compare_alg(b"crc32c", b"crc32c", true), AlgAgreement::Same);
        assert_eq!(compare_alg(b"", b"", true), AlgAgreement::Same);
    }

    #[test]
    fn different_names_disconnect_at_handshake_and_are_adopted_later() {
        assert_eq!(compare_alg(b"crc32c", b"sha256", true), AlgAgreement::MismatchAtHandshake);
        assert_eq!(compare_alg(b"crc32c", b"", true), AlgAgreement::MismatchAtHandshake);
        assert_eq!(compare_alg(b"", b"crc32c", true), AlgAgreement::MismatchAtHandshake);
        assert_eq!(compare_alg(b"crc32c", b"sha256", false), AlgAgreement::AdoptPeer);
        // strcmp is case sensitive.
        assert_eq!(compare_alg(b"crc32c", b"CRC32C", true), AlgAgreement::MismatchAtHandshake);
    }

    #[test]
    fn checksums_need_version_89_and_an_algorithm() {
        assert!(use_checksum_based_resync(89, true, false, false));
        assert!(use_checksum_based_resync(101, true, false, false));
        assert!(!use_checksum_based_resync(88, true, false, false));
        assert!(!use_checksum_based_resync(101, false, false, true));
    }

    #[test]
    fn after_crash_only_needs_a_crashed_primary() {
        assert!(!use_checksum_based_resync(101, true, true, false));
        assert!(use_checksum_based_resync(101, true, true, true));
    }

    #[test]
    fn peer_digest_must_have_our_length() {
        assert_eq!(check_peer_digest(&[1, 2, 3, 4], 4), Ok(()));
        assert_eq!(check_peer_digest(&[1, 2, 3], 4), Err(DigestLengthMismatch { peer: 3, own: 4 }));
        assert_eq!(check_peer_digest(&[0; 32], 4), Err(DigestLengthMismatch { peer: 32, own: 4 }));
        assert_eq!(check_peer_digest(&[], 0), Err(DigestLengthMismatch { peer: 0, own: 0 }));
    }

    #[test]
    fn equal_digests_mean_in_sync() {
        assert_eq!(answer(&[9, 8, 7, 6], &[9, 8, 7, 6]), CsumAnswer::InSync);
        assert_eq!(answer(&[9, 8, 7, 6], &[9, 8, 7, 5]), CsumAnswer::SendData);
        assert_eq!(answer(&[9, 8, 7, 6], &[9, 8, 7]), CsumAnswer::SendData);
        assert_eq!(answer(&[], &[]), CsumAnswer::SendData);
    }

    #[test]
    fn in_sync_acks_count_whole_blocks() {
        assert_eq!(same_csum_bits(4096), 1);
        assert_eq!(same_csum_bits(128 * 1024), 32);
        // A clipped last request of the device counts its whole blocks.
        assert_eq!(same_csum_bits(4096 + 512), 1);
        assert_eq!(same_csum_bits(512), 0);
    }

    #[test]
    fn summary_as_8_4_prints_it() {
        assert_eq!(summary(0, 0), None);
        assert_eq!(
            summary(3, 4),
            Some(CsumSummary { percent: 75, eliminated_kib: 12, transferred_kib: 4, total_kib: 16 })
        );
        assert_eq!(
            summary(0, 10),
            Some(CsumSummary { percent: 0, eliminated_kib: 0, transferred_kib: 40, total_kib: 40 })
        );
        // Large resyncs: s / (t / 100).
        assert_eq!(summary(150_000, 200_000).map(|s| s.percent), Some(75));
        assert_eq!(summary(u64::MAX / 2, u64::MAX / 2).map(|s| s.percent), Some(100));
    }

    #[test]
    fn summary_never_underflows() {
        // Blocks resynced twice (bits set again meanwhile) may count more
        // equal checksums than the resync began with.
        let s = summary(12, 10).unwrap_or(CsumSummary { percent: 0, eliminated_kib: 0, transferred_kib: 1, total_kib: 0 });
        assert_eq!(s.transferred_kib, 0);
        assert_eq!(s.percent, 120);
    }
}
