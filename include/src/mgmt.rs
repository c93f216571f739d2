//! The state rules of DRBD 8.4's management commands (`drbd_state.c`'s
//! `is_valid_state`, `is_valid_soft_transition`,
//! `is_valid_conn_transition` and `sanitize_state`, narrowed to what
//! invalidate, invalidate-remote, pause-sync/resume-sync, online verify
//! and resize change), and the cluster-wide state change request they
//! send (P_STATE_CHG_REQ with a mask and a value).
//!
//! Every function is a pure decision on a [`Snapshot`] of one device, so
//! the kernel driver only gathers the state and carries out the verdict.

use super::genl::{ConnState, DiskState, Fencing, RetCode, Role, StateChangeResult};

/// The role bits of a state word (`union drbd_state`).
pub const ROLE_MASK: u32 = 3;

/// The connection-state bits of a state word.
pub const CONN_MASK: u32 = 31 << 4;

/// The disk-state bits of a state word.
pub const DISK_MASK: u32 = 15 << 9;

/// The first protocol version with online verify (`is_valid_state`).
pub const VERIFY_MIN_VERSION: u32 = 88;

/// The first protocol version that can resize without a resync.
pub const NO_RESYNC_RESIZE_MIN_VERSION: u32 = 93;

/// What a management command looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Own role.
    pub role: Role,
    /// The peer's role (Unknown without a connection).
    pub peer: Role,
    /// The connection state (without the paused variants, see [`shown_conn`]).
    pub conn: ConnState,
    /// Own disk.
    pub disk: DiskState,
    /// The peer's disk.
    pub pdsk: DiskState,
    /// A verify-alg is configured in the net options.
    pub verify_alg: bool,
    /// Agreed protocol version (0 without a connection).
    pub link_version: u32,
}

/// How a command is carried out once the rules allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// No peer involved: change the local state only (invalidate on a
    /// StandAlone Secondary: disk Inconsistent and every bit set;
    /// invalidate-remote on a StandAlone Primary: every bit set).
    LocalOnly,
    /// Ask the peer first: P_STATE_CHG_REQ for this connection state
    /// (from our point of view), then change ours.
    ClusterWide(ConnState),
}

/// The mask and value of P_STATE_CHG_REQ asking for connection state
/// `conn` (as the requester sees it).
pub fn conn_request(conn: ConnState) -> (u32, u32) {
    (CONN_MASK, (conn as u32) << 4)
}

/// The connection state a P_STATE_CHG_REQ asks for, if it asks for a
/// connection state and nothing else.
pub fn requested_conn(mask: u32, val: u32) -> Option<ConnState> {
    if mask != CONN_MASK {
        return None;
    }
    ConnState::from_raw((val & CONN_MASK) >> 4)
}

/// `convert_state`: the peer's view of a connection state (source and
/// target swap sides).
pub fn as_seen_by_peer(conn: ConnState) -> ConnState {
    use ConnState::*;
    match conn {
        StartingSyncS => StartingSyncT,
        StartingSyncT => StartingSyncS,
        WfBitMapS => WfBitMapT,
        WfBitMapT => WfBitMapS,
        SyncSource => SyncTarget,
        SyncTarget => SyncSource,
        VerifyS => VerifyT,
        VerifyT => VerifyS,
        PausedSyncS => PausedSyncT,
        PausedSyncT => PausedSyncS,
        Ahead => Behind,
        Behind => Ahead,
        other => other,
    }
}

/// The P_STATE_CHG_REQ of a promotion while connected (`drbd_set_role`
/// makes it cluster-wide, `cl_wide_st_chg`): role Primary, and with
/// `--force` also the disk UpToDate. A C peer that sees both of us
/// Inconsistent then considers a resync at our next P_STATE.
pub fn promote_request(forced: bool) -> (u32, u32) {
    let (mut mask, mut val) = (ROLE_MASK, Role::Primary as u32);
    if forced {
        mask |= DISK_MASK;
        val |= (DiskState::UpToDate as u32) << 9;
    }
    (mask, val)
}

/// Whether the peer's P_STATE_CHG_REQ asks for its promotion.
pub fn requests_promotion(mask: u32, val: u32) -> bool {
    mask & ROLE_MASK == ROLE_MASK && val & ROLE_MASK == Role::Primary as u32
}

/// `is_valid_state`'s rule for two Primaries, from the promoting side
/// (our own promotion while the peer is Primary) and from the granting
/// side (the peer's promotion while we are Primary).
pub fn check_promotion(role: Role, peer: Role, conn: ConnState, two_primaries: bool) -> Result<(), StateChangeResult> {
    let connected = conn >= ConnState::Connected;
    if connected && role == Role::Primary && peer == Role::Primary && !two_primaries {
        return Err(StateChangeResult::TwoPrimaries);
    }
    Ok(())
}

/// `receive_req_state` for the peer's promotion: refused if it would make
/// two Primaries without allow-two-primaries; `Ok(true)` when both disks
/// are Inconsistent and the peer was Secondary, which means the peer was
/// forced UpToDate and a resync must be considered at its next P_STATE
/// (`after_state_ch`'s CONSIDER_RESYNC).
pub fn grant_peer_promotion(s: &Snapshot, two_primaries: bool) -> Result<bool, StateChangeResult> {
    check_promotion(s.role, Role::Primary, s.conn, two_primaries)?;
    Ok(s.disk == DiskState::Inconsistent && s.pdsk == DiskState::Inconsistent && s.peer == Role::Secondary)
}

/// `sanitize_state`'s `susp_fen`: a Primary that loses its peer under
/// `resource-and-stonith`, the peer's disk not known Outdated or worse
/// (`pdsk_unconnected`, as [`pdsk_while_unconnected`] gives it), freezes
/// its I/O until the fence-peer helper has outdated the peer.
pub fn freeze_on_lost_peer(fencing: Fencing, primary: bool, pdsk_unconnected: DiskState) -> bool {
    fencing == Fencing::ResourceAndStonith && primary && pdsk_unconnected > DiskState::Outdated
}

/// `sanitize_state` without a connection: the peer's disk stays known
/// only as Inconsistent or Outdated (e.g. after fence-peer outdated it).
pub fn pdsk_while_unconnected(pdsk: DiskState) -> DiskState {
    match pdsk {
        DiskState::Inconsistent | DiskState::Outdated => pdsk,
        _ => DiskState::DUnknown,
    }
}

/// `is_valid_state`'s SS_PRIMARY_NOP: with a fencing policy, promotion
/// without a connection needs the peer known outdated; the caller runs
/// the fence-peer helper first (`drbd_set_role` → `conn_try_outdate_peer`).
pub fn promotion_needs_fencing(fencing: Fencing, conn: ConnState, pdsk: DiskState) -> bool {
    fencing >= Fencing::ResourceOnly
        && conn < ConnState::Connected
        && pdsk >= DiskState::DUnknown
}

/// What the fence-peer helper's exit code means (`conn_try_outdate_peer`,
/// `enum drbd_peer_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceVerdict {
    /// The peer's disk is now known to be this (Inconsistent or Outdated).
    PeerDisk(DiskState, &'static str),
    /// The peer is Primary: outdate our own disk.
    OutdateSelf,
    /// Nothing learned (the peer is unreachable and we are not UpToDate).
    Nothing(&'static str),
    /// The helper failed or returned nonsense.
    Broken,
}

/// Reads the fence-peer helper's exit code `code`; `own_disk` is our disk.
pub fn fence_peer_verdict(code: u8, own_disk: DiskState) -> FenceVerdict {
    match code {
        3 => FenceVerdict::PeerDisk(DiskState::Inconsistent, "peer is inconsistent or worse"),
        4 => FenceVerdict::PeerDisk(DiskState::Outdated, "peer was fenced"),
        5 if own_disk == DiskState::UpToDate => {
            FenceVerdict::PeerDisk(DiskState::Outdated, "peer is unreachable, assumed to be dead")
        }
        5 => FenceVerdict::Nothing("peer unreachable, doing nothing since disk != UpToDate"),
        6 => FenceVerdict::OutdateSelf,
        7 => FenceVerdict::PeerDisk(DiskState::Outdated, "peer was stonithed"),
        _ => FenceVerdict::Broken,
    }
}

/// `sanitize_state`: a resync with any of the pause flags set shows as
/// PausedSyncS / PausedSyncT.
pub fn shown_conn(conn: ConnState, paused: bool) -> ConnState {
    match conn {
        ConnState::SyncSource if paused => ConnState::PausedSyncS,
        ConnState::SyncTarget if paused => ConnState::PausedSyncT,
        other => other,
    }
}

/// Whether a resync or verify (or the way into one) is running.
fn resync_running(conn: ConnState) -> bool {
    conn > ConnState::Connected
}

/// The checks of a change of the connection state to `ns_conn` with the
/// other fields unchanged: `is_valid_conn_transition`, then
/// `is_valid_state`, then `is_valid_soft_transition`, as `drbd_req_state`
/// runs them.
pub fn check_conn_change(s: &Snapshot, ns_conn: ConnState) -> Result<(), StateChangeResult> {
    use ConnState::*;
    let (oc, nc) = (s.conn as u32, ns_conn as u32);
    // is_valid_conn_transition
    if oc == nc {
        return Err(StateChangeResult::NothingToDo);
    }
    if s.conn == StandAlone || oc < WfReportParams as u32 {
        return Err(StateChangeResult::NeedConnection);
    }
    // is_valid_state
    let starting = matches!(ns_conn, StartingSyncS | StartingSyncT);
    let verify = matches!(ns_conn, VerifyS | VerifyT);
    if nc > Connected as u32 {
        if s.disk < DiskState::Inconsistent {
            return Err(StateChangeResult::NoLocalDisk);
        }
        if s.pdsk < DiskState::Inconsistent {
            return Err(StateChangeResult::NoRemoteDisk);
        }
        if s.disk != DiskState::UpToDate && s.pdsk != DiskState::UpToDate {
            return Err(StateChangeResult::NoUpToDateDisk);
        }
    }
    if verify && !s.verify_alg {
        return Err(StateChangeResult::NoVerifyAlg);
    }
    if verify && s.link_version < VERIFY_MIN_VERSION {
        return Err(StateChangeResult::NotSupported);
    }
    if starting && s.pdsk == DiskState::DUnknown {
        return Err(StateChangeResult::NeedConnection);
    }
    // is_valid_soft_transition
    if (starting || verify) && oc < Connected as u32 {
        return Err(StateChangeResult::NeedConnection);
    }
    if (starting || verify) && resync_running(s.conn) {
        return Err(StateChangeResult::ResyncRunning);
    }
    Ok(())
}

/// `drbd_adm_invalidate`: a StandAlone Secondary just invalidates its
/// disk; otherwise a full resync as SyncTarget (C_STARTING_SYNC_T), a
/// Primary's too: its application goes on meanwhile, reading the blocks
/// not yet resynced from the peer.
pub fn invalidate(s: &Snapshot) -> Result<Plan, StateChangeResult> {
    if s.conn == ConnState::StandAlone && s.role == Role::Secondary {
        return Ok(Plan::LocalOnly);
    }
    check_conn_change(s, ConnState::StartingSyncT)?;
    if s.pdsk != DiskState::UpToDate {
        // The peer would be the source of a full sync.
        return Err(StateChangeResult::NoUpToDateDisk);
    }
    Ok(Plan::ClusterWide(ConnState::StartingSyncT))
}

/// `drbd_adm_invalidate_peer`: a StandAlone Primary just marks every
/// block for the next resync; otherwise a full resync as SyncSource
/// (C_STARTING_SYNC_S).
pub fn invalidate_peer(s: &Snapshot) -> Result<Plan, StateChangeResult> {
    if s.conn == ConnState::StandAlone && s.role == Role::Primary {
        return Ok(Plan::LocalOnly);
    }
    check_conn_change(s, ConnState::StartingSyncS)?;
    if s.disk != DiskState::UpToDate {
        return Err(StateChangeResult::NoUpToDateDisk);
    }
    Ok(Plan::ClusterWide(ConnState::StartingSyncS))
}

/// `drbd_adm_start_ov`: online verify as VerifyS.
pub fn start_verify(s: &Snapshot) -> Result<Plan, StateChangeResult> {
    check_conn_change(s, ConnState::VerifyS)?;
    Ok(Plan::ClusterWide(ConnState::VerifyS))
}

/// `receive_req_state`: whether we grant the peer's request for
/// connection state `peer_conn` (its point of view); `Ok` carries the
/// state we go to.
pub fn grant_peer_request(s: &Snapshot, peer_conn: ConnState) -> Result<ConnState, StateChangeResult> {
    let ours = as_seen_by_peer(peer_conn);
    check_conn_change(s, ours)?;
    match ours {
        ConnState::StartingSyncS if s.disk != DiskState::UpToDate => Err(StateChangeResult::NoUpToDateDisk),
        ConnState::StartingSyncS | ConnState::StartingSyncT | ConnState::VerifyT => Ok(ours),
        _ => Err(StateChangeResult::NotSupported),
    }
}

/// `drbd_adm_pause_sync`: setting user_isp again is
/// `ERR_PAUSE_IS_SET`.
pub fn pause_sync(user_isp: bool) -> Result<(), RetCode> {
    if user_isp {
        Err(RetCode::PauseIsSet)
    } else {
        Ok(())
    }
}

/// `drbd_adm_resume_sync`: clearing a clear user_isp is an error that
/// says what else keeps the resync paused: a resync-after dependency
/// (`aftr_isp`) or the peer.
pub fn resume_sync(user_isp: bool, aftr_isp: bool, peer_isp: bool, conn: ConnState) -> Result<(), RetCode> {
    if user_isp {
        return Ok(());
    }
    let resyncing = matches!(conn, ConnState::SyncSource | ConnState::SyncTarget);
    if resyncing && aftr_isp {
        Err(RetCode::PicAfterDep)
    } else if resyncing && peer_isp {
        Err(RetCode::PicPeerDep)
    } else {
        Err(RetCode::PauseIsClear)
    }
}

/// What `resize` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResizeRequest {
    /// Requested size in sectors, 0: as large as the backing disk allows.
    pub size: u64,
    /// `--assume-clean`.
    pub no_resync: bool,
    /// `--assume-peer-has-space`.
    pub force: bool,
    /// Activity log layout asked for.
    pub al_stripes: u32,
    /// KiB.
    pub al_stripe_size: u32,
}

/// What the size of a device is decided from (`drbd_new_dev_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeInputs {
    /// The peer's disk size, 0 when unknown (never connected, diskless).
    pub peer_size: u64,
    /// The last agreed size (the size exposed now).
    pub last_agreed: u64,
    /// The largest size our backing disk and metadata allow.
    pub my_max: u64,
    /// `--size`, 0 for "as large as possible".
    pub user_size: u64,
    /// Connected to the peer.
    pub connected: bool,
    /// `--assume-peer-has-space`.
    pub assume_peer_has_space: bool,
}

/// The size `drbd_new_dev_size` decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSize {
    /// Sectors.
    pub size: u64,
    /// `--size` asked for more than is available ("Requested disk size
    /// is too big"); the size is then what is available.
    pub too_big: bool,
    /// Not connected, but the user forced growing as if the peer had
    /// the space ("Resize while not connected was forced by the user!").
    pub forced_unconnected: bool,
}

/// `drbd_new_dev_size`: the minimum of both disks when both are known;
/// otherwise the last agreed size, clipped by what is known (so an
/// unconnected device does not grow unless the user assumes the peer has
/// the space); then `--size` if it fits.
pub fn new_dev_size(i: &SizeInputs) -> NewSize {
    let forced_unconnected = !i.connected && i.assume_peer_has_space;
    let peer = if forced_unconnected { i.my_max } else { i.peer_size };
    let mine = i.my_max;
    let size = if peer != 0 && mine != 0 {
        peer.min(mine)
    } else if i.last_agreed != 0 {
        let mut size = i.last_agreed;
        if mine != 0 {
            size = size.min(mine);
        }
        if peer != 0 {
            size = size.min(peer);
        }
        size
    } else if peer != 0 {
        peer
    } else {
        mine
    };
    let too_big = i.user_size > size;
    let size = if i.user_size != 0 && !too_big { i.user_size } else { size };
    NewSize { size, too_big, forced_unconnected }
}

/// What the peer's P_SIZES at the handshake does to our size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeSize {
    /// The size agreed is the one we have.
    Keep,
    /// The device takes this size (sectors): the smaller of both disks.
    Change(u64),
    /// The agreed size would shrink a disk with usable data: refused ("The
    /// peer's disk size is too small!"), the connection goes StandAlone.
    PeerTooSmall {
        /// What the device would shrink to.
        new: u64,
    },
}

/// `receive_sizes` before the connection is established: both disks'
/// sizes and the smaller of both user sizes (`min_not_zero`) decide
/// (`new_dev_size`, connected); a disk with usable data (Outdated or
/// better, in `disk`) is never shrunk at connect (8.4 allows that only
/// online), an Inconsistent one is.
pub fn handshake_size(i: &SizeInputs, peer_user_size: u64, disk: DiskState) -> HandshakeSize {
    let user_size = match (i.user_size, peer_user_size) {
        (0, peer) => peer,
        (mine, 0) => mine,
        (mine, peer) => mine.min(peer),
    };
    let new = new_dev_size(&SizeInputs { user_size, connected: true, assume_peer_has_space: false, ..*i }).size;
    if new < i.last_agreed && disk >= DiskState::Outdated {
        HandshakeSize::PeerTooSmall { new }
    } else if new != i.last_agreed && new != 0 {
        HandshakeSize::Change(new)
    } else {
        HandshakeSize::Keep
    }
}

/// DRBD's `ppsize`: `kib` KiB as a number below 10000 and its unit
/// (K, M, G, T, P, E), rounded as 8.4's log lines show sizes.
pub fn ppsize(kib: u64) -> (u64, char) {
    const UNITS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];
    let mut size = kib;
    let mut base = 0usize;
    while size >= 10000 && base < UNITS.len().saturating_sub(1) {
        // Shift and round (size >> 10 is far from overflowing).
        size = (size >> 10).saturating_add(u64::from(size & (1 << 9) != 0));
        base = base.saturating_add(1);
    }
    (size, UNITS.get(base).copied().unwrap_or('E'))
}

/// The outcome of a resize request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeVerdict {
    /// The size stays (also when the request asks for more than there
    /// is: 8.4 logs "Requested disk size is too big").
    Unchanged {
        /// The request asked for more than there is.
        too_big: bool,
    },
    /// The device grows to this many sectors.
    Grow(u64),
    /// The device shrinks to this many sectors (only with `--size`).
    Shrink(u64),
}

/// `drbd_adm_resize`'s checks, in its order, then the size decision of
/// `drbd_determine_dev_size`: `sizes` carries the current (last agreed)
/// size, what the backing disk and metadata allow once relocated, and the
/// peer's size; `al` is the current activity log layout (stripes, stripe
/// size KiB). Shrinking needs an explicit `--size` (`ERR_IMPLICIT_SHRINK`;
/// a `--size` that does not fit then is `ERR_MD_LAYOUT_NO_FIT`).
pub fn resize(
    s: &Snapshot,
    req: &ResizeRequest,
    sizes: &SizeInputs,
    al: (u32, u32),
) -> Result<(NewSize, ResizeVerdict), RetCode> {
    if resync_running(s.conn) {
        return Err(RetCode::ResizeResync);
    }
    if s.role == Role::Secondary && s.peer == Role::Secondary {
        return Err(RetCode::NoPrimary);
    }
    if req.no_resync && s.link_version < NO_RESYNC_RESIZE_MIN_VERSION {
        return Err(RetCode::NeedApv93);
    }
    if (req.al_stripes, req.al_stripe_size) != al {
        let al_size_k = u64::from(req.al_stripes) * u64::from(req.al_stripe_size);
        if al_size_k > 16 * 1024 * 1024 {
            return Err(RetCode::MdLayoutTooBig);
        }
        if al_size_k < 32 {
            return Err(RetCode::MdLayoutTooSmall);
        }
        if s.conn != ConnState::Connected && !req.force {
            return Err(RetCode::MdLayoutConnected);
        }
        // The caller's `sizes` are those of the new layout (the activity
        // log moves, the data area may shrink).
    }
    let inputs = SizeInputs { user_size: req.size, assume_peer_has_space: req.force, ..*sizes };
    let new = new_dev_size(&inputs);
    let current = sizes.last_agreed;
    let verdict = if new.size == current {
        ResizeVerdict::Unchanged { too_big: new.too_big }
    } else if new.size > current {
        ResizeVerdict::Grow(new.size)
    } else if req.size == 0 {
        return Err(RetCode::ImplicitShrink);
    } else if new.too_big {
        return Err(RetCode::MdLayoutNoFit);
    } else {
        ResizeVerdict::Shrink(new.size)
    };
    Ok((new, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnState::*;
    use DiskState::*;

    fn connected() -> Snapshot {
        Snapshot {
            role: Role::Secondary,
            peer: Role::Primary,
            conn: Connected,
            disk: UpToDate,
            pdsk: UpToDate,
            verify_alg: true,
            link_version: 101,
        }
    }

    #[test]
    fn request_words_round_trip() {
        let (mask, val) = conn_request(StartingSyncT);
        assert_eq!(mask, 0x1f0);
        assert_eq!(val, 12 << 4);
        assert_eq!(requested_conn(mask, val), Some(StartingSyncT));
        // A role change (mask 3) is no connection request.
        assert_eq!(requested_conn(3, 1), None);
        assert_eq!(requested_conn(mask | 3, val), None);
        assert_eq!(requested_conn(mask, 31 << 4), None);
    }

    #[test]
    fn promotion_request_words() {
        assert_eq!(promote_request(false), (3, 1));
        // --force: role Primary and disk UpToDate (8) at bit 9.
        assert_eq!(promote_request(true), (3 | 0xf << 9, 1 | 8 << 9));
        let (m, v) = promote_request(true);
        assert!(requests_promotion(m, v));
        assert!(!requests_promotion(3, 2));
        assert!(!requests_promotion(CONN_MASK, 1));
        assert!(!requests_promotion(conn_request(StartingSyncT).0, conn_request(StartingSyncT).1));
    }

    #[test]
    fn two_primaries_need_the_option() {
        let s = Snapshot { role: Role::Primary, peer: Role::Secondary, ..connected() };
        assert_eq!(grant_peer_promotion(&s, false), Err(StateChangeResult::TwoPrimaries));
        assert_eq!(grant_peer_promotion(&s, true), Ok(false));
        assert_eq!(check_promotion(Role::Primary, Role::Primary, Connected, false), Err(StateChangeResult::TwoPrimaries));
        assert_eq!(check_promotion(Role::Primary, Role::Primary, SyncSource, true), Ok(()));
        // Not connected: the peer's role is no concern.
        assert_eq!(check_promotion(Role::Primary, Role::Primary, WfConnection, false), Ok(()));
    }

    #[test]
    fn forced_peer_promotion_between_inconsistent_disks_considers_resync() {
        let both_inconsistent = Snapshot { peer: Role::Secondary, disk: Inconsistent, pdsk: Inconsistent, ..connected() };
        assert_eq!(grant_peer_promotion(&both_inconsistent, false), Ok(true));
        let ours_uptodate = Snapshot { disk: UpToDate, ..both_inconsistent };
        assert_eq!(grant_peer_promotion(&ours_uptodate, false), Ok(false));
        let peer_was_primary = Snapshot { peer: Role::Primary, ..both_inconsistent };
        assert_eq!(grant_peer_promotion(&peer_was_primary, false), Ok(false));
    }

    #[test]
    fn fencing_rules() {
        assert!(promotion_needs_fencing(Fencing::ResourceOnly, StandAlone, DUnknown));
        assert!(freeze_on_lost_peer(Fencing::ResourceAndStonith, true, DUnknown));
        assert!(!freeze_on_lost_peer(Fencing::ResourceAndStonith, true, Outdated));
        assert!(!freeze_on_lost_peer(Fencing::ResourceAndStonith, false, DUnknown));
        assert!(!freeze_on_lost_peer(Fencing::ResourceOnly, true, DUnknown));
        assert!(promotion_needs_fencing(Fencing::ResourceAndStonith, WfConnection, DUnknown));
        assert!(!promotion_needs_fencing(Fencing::DontCare, StandAlone, DUnknown));
        assert!(!promotion_needs_fencing(Fencing::ResourceOnly, StandAlone, Outdated));
        assert!(!promotion_needs_fencing(Fencing::ResourceOnly, Connected, UpToDate));
        assert_eq!(pdsk_while_unconnected(UpToDate), DUnknown);
        assert_eq!(pdsk_while_unconnected(Outdated), Outdated);
        assert_eq!(pdsk_while_unconnected(Inconsistent), Inconsistent);
        assert_eq!(pdsk_while_unconnected(Diskless), DUnknown);
    }

    #[test]
    fn fence_peer_exit_codes() {
        assert!(matches!(fence_peer_verdict(4, UpToDate), FenceVerdict::PeerDisk(Outdated, _)));
        assert!(matches!(fence_peer_verdict(3, UpToDate), FenceVerdict::PeerDisk(Inconsistent, _)));
        assert!(matches!(fence_peer_verdict(5, UpToDate), FenceVerdict::PeerDisk(Outdated, _)));
        assert!(matches!(fence_peer_verdict(5, Consistent), FenceVerdict::Nothing(_)));
        assert_eq!(fence_peer_verdict(6, UpToDate), FenceVerdict::OutdateSelf);
        assert!(matches!(fence_peer_verdict(7, UpToDate), FenceVerdict::PeerDisk(Outdated, _)));
        assert_eq!(fence_peer_verdict(0, UpToDate), FenceVerdict::Broken);
        assert_eq!(fence_peer_verdict(1, UpToDate), FenceVerdict::Broken);
    }

    #[test]
    fn peer_view_swaps_sides() {
        for (a, b) in [(StartingSyncS, StartingSyncT), (VerifyS, VerifyT), (SyncSource, SyncTarget)] {
            assert_eq!(as_seen_by_peer(a), b);
            assert_eq!(as_seen_by_peer(b), a);
        }
        assert_eq!(as_seen_by_peer(Connected), Connected);
    }

    #[test]
    fn paused_resync_shows_paused() {
        assert_eq!(shown_conn(SyncSource, true), PausedSyncS);
        assert_eq!(shown_conn(SyncTarget, true), PausedSyncT);
        assert_eq!(shown_conn(SyncTarget, false), SyncTarget);
        assert_eq!(shown_conn(Connected, true), Connected);
    }

    #[test]
    fn invalidate_rules() {
        let standalone = Snapshot { conn: StandAlone, peer: Role::Unknown, pdsk: DUnknown, ..connected() };
        assert_eq!(invalidate(&standalone), Ok(Plan::LocalOnly));
        let primary = Snapshot { role: Role::Primary, ..standalone };
        assert_eq!(invalidate(&primary), Err(StateChangeResult::NeedConnection));
        let waiting = Snapshot { conn: WfConnection, ..standalone };
        assert_eq!(invalidate(&waiting), Err(StateChangeResult::NeedConnection));
        assert_eq!(invalidate(&connected()), Ok(Plan::ClusterWide(StartingSyncT)));
        let syncing = Snapshot { conn: SyncSource, ..connected() };
        assert_eq!(invalidate(&syncing), Err(StateChangeResult::ResyncRunning));
        let both_bad = Snapshot { disk: Inconsistent, pdsk: Inconsistent, ..connected() };
        assert_eq!(invalidate(&both_bad), Err(StateChangeResult::NoUpToDateDisk));
        // A Primary becomes SyncTarget under its application.
        let connected_primary = Snapshot { role: Role::Primary, peer: Role::Secondary, ..connected() };
        assert_eq!(invalidate(&connected_primary), Ok(Plan::ClusterWide(StartingSyncT)));
        let primary_peer_bad = Snapshot { pdsk: Inconsistent, ..connected_primary };
        assert_eq!(invalidate(&primary_peer_bad), Err(StateChangeResult::NoUpToDateDisk));
    }

    #[test]
    fn invalidate_peer_rules() {
        let standalone = Snapshot { conn: StandAlone, peer: Role::Unknown, pdsk: DUnknown, ..connected() };
        assert_eq!(invalidate_peer(&standalone), Err(StateChangeResult::NeedConnection));
        let primary = Snapshot { role: Role::Primary, ..standalone };
        assert_eq!(invalidate_peer(&primary), Ok(Plan::LocalOnly));
        assert_eq!(invalidate_peer(&connected()), Ok(Plan::ClusterWide(StartingSyncS)));
        let inconsistent = Snapshot { disk: Inconsistent, ..connected() };
        assert_eq!(invalidate_peer(&inconsistent), Err(StateChangeResult::NoUpToDateDisk));
        let diskless_peer = Snapshot { pdsk: Diskless, ..connected() };
        assert_eq!(invalidate_peer(&diskless_peer), Err(StateChangeResult::NoRemoteDisk));
    }

    #[test]
    fn verify_rules() {
        assert_eq!(start_verify(&connected()), Ok(Plan::ClusterWide(VerifyS)));
        let no_alg = Snapshot { verify_alg: false, ..connected() };
        assert_eq!(start_verify(&no_alg), Err(StateChangeResult::NoVerifyAlg));
        let running = Snapshot { conn: VerifyS, ..connected() };
        assert_eq!(start_verify(&running), Err(StateChangeResult::NothingToDo));
        let syncing = Snapshot { conn: SyncTarget, disk: Inconsistent, ..connected() };
        assert_eq!(start_verify(&syncing), Err(StateChangeResult::ResyncRunning));
        let standalone = Snapshot { conn: StandAlone, ..connected() };
        assert_eq!(start_verify(&standalone), Err(StateChangeResult::NeedConnection));
        let old = Snapshot { link_version: 87, ..connected() };
        assert_eq!(start_verify(&old), Err(StateChangeResult::NotSupported));
    }

    #[test]
    fn peer_requests() {
        assert_eq!(grant_peer_request(&connected(), StartingSyncT), Ok(StartingSyncS));
        assert_eq!(grant_peer_request(&connected(), StartingSyncS), Ok(StartingSyncT));
        assert_eq!(grant_peer_request(&connected(), VerifyS), Ok(VerifyT));
        let no_alg = Snapshot { verify_alg: false, ..connected() };
        assert_eq!(grant_peer_request(&no_alg, VerifyS), Err(StateChangeResult::NoVerifyAlg));
        let primary = Snapshot { role: Role::Primary, ..connected() };
        assert_eq!(grant_peer_request(&primary, StartingSyncS), Ok(StartingSyncT));
        let inconsistent = Snapshot { disk: Inconsistent, ..connected() };
        assert_eq!(grant_peer_request(&inconsistent, StartingSyncT), Err(StateChangeResult::NoUpToDateDisk));
        assert_eq!(grant_peer_request(&connected(), Connected), Err(StateChangeResult::NothingToDo));
    }

    #[test]
    fn pause_and_resume() {
        assert_eq!(pause_sync(false), Ok(()));
        assert_eq!(pause_sync(true), Err(RetCode::PauseIsSet));
        assert_eq!(resume_sync(true, false, false, SyncTarget), Ok(()));
        assert_eq!(resume_sync(false, false, false, Connected), Err(RetCode::PauseIsClear));
        assert_eq!(resume_sync(false, false, true, SyncTarget), Err(RetCode::PicPeerDep));
        assert_eq!(resume_sync(false, true, true, SyncSource), Err(RetCode::PicAfterDep));
        assert_eq!(resume_sync(false, true, false, Connected), Err(RetCode::PauseIsClear));
    }

    #[test]
    fn resize_rules() {
        let primary = Snapshot { role: Role::Primary, peer: Role::Secondary, ..connected() };
        let req = ResizeRequest { size: 0, no_resync: false, force: false, al_stripes: 1, al_stripe_size: 32 };
        let al = (1, 32);
        let sizes = SizeInputs {
            peer_size: 1000,
            last_agreed: 1000,
            my_max: 1000,
            user_size: 0,
            connected: true,
            assume_peer_has_space: false,
        };
        let verdict = |s: &Snapshot, r: &ResizeRequest, z: &SizeInputs| resize(s, r, z, al).map(|(_, v)| v);
        assert_eq!(verdict(&primary, &req, &sizes), Ok(ResizeVerdict::Unchanged { too_big: false }));
        let big = ResizeRequest { size: 5000, ..req };
        assert_eq!(verdict(&primary, &big, &sizes), Ok(ResizeVerdict::Unchanged { too_big: true }));
        let small = ResizeRequest { size: 800, ..req };
        assert_eq!(verdict(&primary, &small, &sizes), Ok(ResizeVerdict::Shrink(800)));
        let secondaries = Snapshot { peer: Role::Secondary, ..connected() };
        assert_eq!(verdict(&secondaries, &req, &sizes), Err(RetCode::NoPrimary));
        let syncing = Snapshot { conn: SyncSource, ..primary };
        assert_eq!(verdict(&syncing, &req, &sizes), Err(RetCode::ResizeResync));
        let old = Snapshot { link_version: 92, ..primary };
        let clean = ResizeRequest { no_resync: true, ..req };
        assert_eq!(verdict(&old, &clean, &sizes), Err(RetCode::NeedApv93));
        let huge_al = ResizeRequest { al_stripes: 1024, al_stripe_size: 65536, ..req };
        assert_eq!(verdict(&primary, &huge_al, &sizes), Err(RetCode::MdLayoutTooBig));
        let standalone = Snapshot { conn: StandAlone, peer: Role::Unknown, ..primary };
        let two = ResizeRequest { al_stripes: 2, ..req };
        assert_eq!(verdict(&standalone, &two, &sizes), Err(RetCode::MdLayoutConnected));
        // Connected, or forced: the size is decided for the new layout; a
        // layout that leaves less room shrinks only with --size.
        assert_eq!(verdict(&primary, &two, &sizes), Ok(ResizeVerdict::Unchanged { too_big: false }));
        let forced = ResizeRequest { force: true, ..two };
        assert_eq!(verdict(&standalone, &forced, &sizes), Ok(ResizeVerdict::Unchanged { too_big: false }));
        let less_room = SizeInputs { my_max: 900, ..sizes };
        assert_eq!(verdict(&primary, &two, &less_room), Err(RetCode::ImplicitShrink));
    }

    #[test]
    fn resize_grows_to_the_smaller_disk() {
        let primary = Snapshot { role: Role::Primary, peer: Role::Secondary, ..connected() };
        let req = ResizeRequest { size: 0, no_resync: false, force: false, al_stripes: 1, al_stripe_size: 32 };
        let al = (1, 32);
        // Both grew, the peer less: the smaller one wins.
        let both = SizeInputs {
            peer_size: 1500,
            last_agreed: 1000,
            my_max: 2000,
            user_size: 0,
            connected: true,
            assume_peer_has_space: false,
        };
        assert_eq!(resize(&primary, &req, &both, al).map(|(_, v)| v), Ok(ResizeVerdict::Grow(1500)));
        // Only we grew: the peer's old size keeps it.
        let mine = SizeInputs { peer_size: 1000, ..both };
        assert_eq!(resize(&primary, &req, &mine, al).map(|(_, v)| v), Ok(ResizeVerdict::Unchanged { too_big: false }));
        // --size within what both have.
        let sized = ResizeRequest { size: 1200, ..req };
        assert_eq!(resize(&primary, &sized, &both, al).map(|(_, v)| v), Ok(ResizeVerdict::Grow(1200)));
    }

    #[test]
    fn unconnected_resize_needs_assume_peer_has_space() {
        let standalone = Snapshot { role: Role::Primary, peer: Role::Unknown, conn: StandAlone, ..connected() };
        let req = ResizeRequest { size: 0, no_resync: false, force: false, al_stripes: 1, al_stripe_size: 32 };
        let al = (1, 32);
        let sizes = SizeInputs {
            peer_size: 0,
            last_agreed: 1000,
            my_max: 2000,
            user_size: 0,
            connected: false,
            assume_peer_has_space: false,
        };
        // drbd_new_dev_size keeps the last agreed size without a peer.
        assert_eq!(resize(&standalone, &req, &sizes, al).map(|(_, v)| v), Ok(ResizeVerdict::Unchanged { too_big: false }));
        let forced = ResizeRequest { force: true, ..req };
        let grown = NewSize { size: 2000, too_big: false, forced_unconnected: true };
        assert_eq!(resize(&standalone, &forced, &sizes, al), Ok((grown, ResizeVerdict::Grow(2000))));
        let sized = ResizeRequest { size: 1500, ..forced };
        assert_eq!(resize(&standalone, &sized, &sizes, al).map(|(_, v)| v), Ok(ResizeVerdict::Grow(1500)));
        // A stale peer size from an earlier connection is overridden too.
        let stale = SizeInputs { peer_size: 1000, ..sizes };
        assert_eq!(resize(&standalone, &forced, &stale, al).map(|(_, v)| v), Ok(ResizeVerdict::Grow(2000)));
    }

    #[test]
    fn shrinking_needs_an_explicit_size() {
        let standalone = Snapshot { role: Role::Primary, peer: Role::Unknown, conn: StandAlone, ..connected() };
        let req = ResizeRequest { size: 0, no_resync: false, force: false, al_stripes: 1, al_stripe_size: 32 };
        let al = (1, 32);
        // The backing disk shrank under us.
        let shrunk = SizeInputs {
            peer_size: 0,
            last_agreed: 1000,
            my_max: 900,
            user_size: 0,
            connected: false,
            assume_peer_has_space: false,
        };
        assert_eq!(resize(&standalone, &req, &shrunk, al).map(|(_, v)| v), Err(RetCode::ImplicitShrink));
        let sized = ResizeRequest { size: 800, ..req };
        assert_eq!(resize(&standalone, &sized, &shrunk, al).map(|(_, v)| v), Ok(ResizeVerdict::Shrink(800)));
        let not_there = ResizeRequest { size: 950, ..req };
        assert_eq!(resize(&standalone, &not_there, &shrunk, al).map(|(_, v)| v), Err(RetCode::MdLayoutNoFit));
    }

    #[test]
    fn ppsize_as_8_4_prints_it() {
        assert_eq!(ppsize(9999), (9999, 'K'));
        assert_eq!(ppsize(98_300), (96, 'M'));
        assert_eq!(ppsize(65_532), (64, 'M'));
        assert_eq!(ppsize(10 << 20), (10, 'G'));
        assert_eq!(ppsize(u64::MAX).1, 'E');
    }

    #[test]
    fn handshake_takes_the_smaller_disk_but_never_shrinks_good_data() {
        let i = SizeInputs {
            peer_size: 40_000,
            last_agreed: 60_000,
            my_max: 60_000,
            user_size: 0,
            connected: false,
            assume_peer_has_space: false,
        };
        assert_eq!(handshake_size(&i, 0, DiskState::Inconsistent), HandshakeSize::Change(40_000));
        assert_eq!(handshake_size(&i, 0, DiskState::UpToDate), HandshakeSize::PeerTooSmall { new: 40_000 });
        assert_eq!(handshake_size(&i, 0, DiskState::Outdated), HandshakeSize::PeerTooSmall { new: 40_000 });
        // A bigger peer: our own disk limits it.
        let bigger = SizeInputs { peer_size: 80_000, ..i };
        assert_eq!(handshake_size(&bigger, 0, DiskState::UpToDate), HandshakeSize::Keep);
        // Both grew while apart: the device grows.
        let grown = SizeInputs { my_max: 70_000, peer_size: 90_000, ..i };
        assert_eq!(handshake_size(&grown, 0, DiskState::UpToDate), HandshakeSize::Change(70_000));
        // The smaller user size wins; a diskless peer changes nothing.
        assert_eq!(handshake_size(&bigger, 50_000, DiskState::Inconsistent), HandshakeSize::Change(50_000));
        assert_eq!(handshake_size(&SizeInputs { peer_size: 0, ..i }, 0, DiskState::UpToDate), HandshakeSize::Keep);
    }

    #[test]
    fn new_dev_size_without_any_agreement() {
        let fresh = SizeInputs {
            peer_size: 0,
            last_agreed: 0,
            my_max: 700,
            user_size: 0,
            connected: false,
            assume_peer_has_space: false,
        };
        assert_eq!(new_dev_size(&fresh).size, 700);
        let peer_only = SizeInputs { peer_size: 600, my_max: 0, ..fresh };
        assert_eq!(new_dev_size(&peer_only).size, 600);
        let too_big = SizeInputs { user_size: 800, ..fresh };
        assert_eq!(new_dev_size(&too_big), NewSize { size: 700, too_big: true, forced_unconnected: false });
    }

}
