//! Local I/O errors: what DRBD 8.4 does when the backing disk fails a
//! request (`__drbd_chk_io_error_` with the `on-io-error` policy), and
//! where a read is served from (`drbd_may_do_local_read` and the remote
//! read of a diskless or failing node).
//!
//! Pure decisions; the driver gathers the state and carries them out.

use super::genl::{ConnState, DiskState};

/// `disk-options --on-io-error` (`enum drbd_io_error_p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnIoError {
    /// `pass_on`: a failed read or write makes the disk Inconsistent; the
    /// disk stays attached.
    PassOn,
    /// `call-local-io-error`: run the `local-io-error` helper, and detach.
    CallHelper,
    /// `detach`: go Diskless and go on through the peer.
    Detach,
}

impl OnIoError {
    /// The policy of this `disk_conf.on_io_error` value.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::PassOn),
            1 => Some(Self::CallHelper),
            2 => Some(Self::Detach),
            _ => None,
        }
    }

    /// The `disk_conf.on_io_error` value.
    pub fn to_raw(self) -> u32 {
        match self {
            Self::PassOn => 0,
            Self::CallHelper => 1,
            Self::Detach => 2,
        }
    }
}

/// What failed (`enum drbd_force_detach_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoFailure {
    /// An application or peer read of the data area.
    Read,
    /// A read-ahead: allowed to fail, no consequence for the disk.
    ReadAhead,
    /// An application, peer or resync write of the data area.
    Write,
    /// Metadata I/O (superblock, activity log, bitmap): always detaches.
    Meta,
    /// A request the disk did not finish within `disk-timeout`: always
    /// detaches (8.4's `DRBD_FORCE_DETACH`).
    Timeout,
}

/// What the disk state does after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskVerdict {
    /// Nothing changes.
    Keep,
    /// The disk becomes Inconsistent and stays attached (`pass_on`).
    Inconsistent,
    /// The disk becomes Failed, then Diskless; `run_helper`: the
    /// `local-io-error` helper runs first.
    Detach {
        /// Whether `call-local-io-error` asked for the helper.
        run_helper: bool,
    },
}

/// `__drbd_chk_io_error_`: the disk's fate after `failure` under `policy`,
/// with the disk now in `disk`. Only a disk better than Inconsistent is
/// made Inconsistent, and only one better than Failed is failed.
pub fn disk_verdict(policy: OnIoError, failure: IoFailure, disk: DiskState) -> DiskVerdict {
    let attached = disk > DiskState::Failed;
    match (policy, failure) {
        (_, IoFailure::ReadAhead) => DiskVerdict::Keep,
        (OnIoError::PassOn, IoFailure::Read | IoFailure::Write) => {
            if disk > DiskState::Inconsistent {
                DiskVerdict::Inconsistent
            } else {
                DiskVerdict::Keep
            }
        }
        // Metadata errors and timeouts detach under every policy (pass_on too).
        (policy, _) if attached => DiskVerdict::Detach { run_helper: policy == OnIoError::CallHelper },
        _ => DiskVerdict::Keep,
    }
}

/// Where a read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSource {
    /// The backing disk.
    Local,
    /// The peer, by P_DATA_REQUEST.
    Peer,
    /// Nowhere: the read fails (no good data reachable).
    Nowhere,
}

/// Whether a disk in this state holds data (Inconsistent, Outdated,
/// Consistent or UpToDate): writes go to a peer with such a disk.
pub fn has_data(disk: DiskState) -> bool {
    matches!(disk, DiskState::Inconsistent | DiskState::Outdated | DiskState::Consistent | DiskState::UpToDate)
}

/// Whether the local disk can serve a read (`drbd_may_do_local_read`): an
/// UpToDate disk always; an Inconsistent, Outdated or Consistent one only
/// where the bitmap has no bit set (`range_in_sync`); else not.
pub fn local_read_ok(disk: DiskState, range_in_sync: bool) -> bool {
    match disk {
        DiskState::UpToDate => true,
        DiskState::Inconsistent | DiskState::Outdated | DiskState::Consistent => range_in_sync,
        _ => false,
    }
}

/// Whether the peer can serve a read: connected (no handshake or bitmap
/// exchange in progress) and its disk UpToDate.
pub fn peer_read_ok(conn: ConnState, pdsk: DiskState) -> bool {
    pdsk == DiskState::UpToDate && conn >= ConnState::Connected
}

/// Where a read of a range goes first (8.4's `do_remote_read`): to our
/// disk if it can serve it, unless the peer can too and `balance_to_peer`
/// (the read-balancing policy, asked only then) says so; else to the peer
/// if it can.
pub fn read_source(
    disk: DiskState,
    range_in_sync: bool,
    conn: ConnState,
    pdsk: DiskState,
    balance_to_peer: impl FnOnce() -> bool,
) -> ReadSource {
    if local_read_ok(disk, range_in_sync) {
        if peer_read_ok(conn, pdsk) && balance_to_peer() {
            ReadSource::Peer
        } else {
            ReadSource::Local
        }
    } else if peer_read_ok(conn, pdsk) {
        ReadSource::Peer
    } else {
        ReadSource::Nowhere
    }
}

/// Where a read that failed on the backing disk is retried (8.4 retries
/// a failed read, read-ahead excepted, on the peer; the application sees
/// the error only if no peer has the data).
pub fn retry_failed_read(failure: IoFailure, conn: ConnState, pdsk: DiskState) -> ReadSource {
    if failure == IoFailure::Read && peer_read_ok(conn, pdsk) {
        ReadSource::Peer
    } else {
        ReadSource::Nowhere
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_and_reject_unknown_values() {
        for raw in 0..3 {
            assert_eq!(OnIoError::from_raw(raw).map(OnIoError::to_raw), Some(raw));
        }
        assert_eq!(OnIoError::from_raw(3), None);
    }

    #[test]
    fn pass_on_makes_a_good_disk_inconsistent_and_keeps_it() {
        for failure in [IoFailure::Read, IoFailure::Write] {
            assert_eq!(disk_verdict(OnIoError::PassOn, failure, DiskState::UpToDate), DiskVerdict::Inconsistent);
            assert_eq!(disk_verdict(OnIoError::PassOn, failure, DiskState::Outdated), DiskVerdict::Inconsistent);
            assert_eq!(disk_verdict(OnIoError::PassOn, failure, DiskState::Inconsistent), DiskVerdict::Keep);
        }
    }

    #[test]
    fn metadata_errors_detach_under_every_policy() {
        for policy in [OnIoError::PassOn, OnIoError::Detach] {
            assert_eq!(disk_verdict(policy, IoFailure::Meta, DiskState::UpToDate), DiskVerdict::Detach { run_helper: false });
        }
        assert_eq!(disk_verdict(OnIoError::CallHelper, IoFailure::Meta, DiskState::Inconsistent),
            DiskVerdict::Detach { run_helper: true });
    }

    #[test]
    fn a_missed_disk_timeout_detaches_under_every_policy() {
        for policy in [OnIoError::PassOn, OnIoError::Detach] {
            assert_eq!(disk_verdict(policy, IoFailure::Timeout, DiskState::UpToDate), DiskVerdict::Detach { run_helper: false });
        }
        assert_eq!(disk_verdict(OnIoError::CallHelper, IoFailure::Timeout, DiskState::UpToDate),
            DiskVerdict::Detach { run_helper: true });
        assert_eq!(disk_verdict(OnIoError::Detach, IoFailure::Timeout, DiskState::Failed), DiskVerdict::Keep);
    }

    #[test]
    fn detach_and_helper_fail_an_attached_disk_once() {
        assert_eq!(disk_verdict(OnIoError::Detach, IoFailure::Write, DiskState::UpToDate), DiskVerdict::Detach { run_helper: false });
        assert_eq!(disk_verdict(OnIoError::CallHelper, IoFailure::Read, DiskState::Outdated), DiskVerdict::Detach { run_helper: true });
        // Already failing or gone: no second detach, no second helper.
        for disk in [DiskState::Failed, DiskState::Diskless, DiskState::Attaching] {
            assert_eq!(disk_verdict(OnIoError::CallHelper, IoFailure::Write, disk), DiskVerdict::Keep);
        }
    }

    #[test]
    fn disks_with_data() {
        assert!(has_data(DiskState::Inconsistent) && has_data(DiskState::UpToDate));
        assert!(!has_data(DiskState::DUnknown) && !has_data(DiskState::Diskless) && !has_data(DiskState::Failed));
    }

    #[test]
    fn read_ahead_failures_change_nothing() {
        for policy in [OnIoError::PassOn, OnIoError::CallHelper, OnIoError::Detach] {
            assert_eq!(disk_verdict(policy, IoFailure::ReadAhead, DiskState::UpToDate), DiskVerdict::Keep);
        }
        assert_eq!(retry_failed_read(IoFailure::ReadAhead, ConnState::Connected, DiskState::UpToDate), ReadSource::Nowhere);
    }

    #[test]
    fn reads_prefer_good_local_data_then_an_uptodate_peer() {
        let (c, u) = (ConnState::Connected, DiskState::UpToDate);
        assert_eq!(read_source(DiskState::UpToDate, false, c, u, || false), ReadSource::Local);
        assert_eq!(read_source(DiskState::Inconsistent, true, c, u, || false), ReadSource::Local);
        assert_eq!(read_source(DiskState::Inconsistent, false, c, u, || false), ReadSource::Peer);
        assert_eq!(read_source(DiskState::Diskless, true, c, u, || false), ReadSource::Peer);
        assert_eq!(read_source(DiskState::Failed, true, ConnState::SyncSource, u, || false), ReadSource::Peer);
        assert_eq!(read_source(DiskState::Diskless, true, ConnState::WfReportParams, u, || false), ReadSource::Nowhere);
        assert_eq!(read_source(DiskState::Diskless, true, c, DiskState::Outdated, || false), ReadSource::Nowhere);
        assert_eq!(read_source(DiskState::Inconsistent, false, ConnState::StandAlone, DiskState::DUnknown, || false), ReadSource::Nowhere);
        // Read-balancing sends a read our disk could serve to the peer,
        // only if the peer can serve it.
        assert_eq!(read_source(DiskState::UpToDate, false, c, u, || true), ReadSource::Peer);
        assert_eq!(read_source(DiskState::Inconsistent, true, c, u, || true), ReadSource::Peer);
        assert_eq!(read_source(DiskState::UpToDate, false, c, DiskState::Outdated, || true), ReadSource::Local);
        assert_eq!(read_source(DiskState::UpToDate, false, ConnState::WfReportParams, u, || true), ReadSource::Local);
    }

    #[test]
    fn failed_reads_retry_on_an_uptodate_connected_peer_only() {
        assert_eq!(retry_failed_read(IoFailure::Read, ConnState::Connected, DiskState::UpToDate), ReadSource::Peer);
        assert_eq!(retry_failed_read(IoFailure::Read, ConnState::Connected, DiskState::Inconsistent), ReadSource::Nowhere);
        assert_eq!(retry_failed_read(IoFailure::Read, ConnState::StandAlone, DiskState::DUnknown), ReadSource::Nowhere);
    }
}
