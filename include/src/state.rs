//! The rules of the state engine, as 8.4's `drbd_state.c` has them:
//! which states are valid (`is_valid_state`), which changes the driver may
//! refuse (`is_valid_soft_transition`) and which no change may make
//! (`is_valid_transition`), what a change implies (`sanitize_state`), and
//! the kernel log line of a change (`drbd_pr_state_change`).
//!
//! The states are kept per object, as DRBD 9 does: what belongs to the
//! device ([`DeviceStates`]) and what belongs to its relation with one peer
//! ([`PeerDeviceStates`]). [`States`] joins a device with its (today at most
//! one) peer device; [`States::word`] is the 8.4 state word of the pair.

use core::fmt;

use super::genl::{ConnState, DiskState, Role, State, StateChangeResult};
use super::mgmt::{pdsk_while_unconnected, shown_conn};

/// The states of a device itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeviceStates {
    /// Primary or Secondary.
    pub role: Role,
    /// The own disk.
    pub disk: DiskState,
    /// I/O suspended by the user (`suspend-io`; `susp`).
    pub susp_user: bool,
    /// I/O frozen while the fence-peer helper runs (`susp_fen`).
    pub susp_fen: bool,
    /// The user paused the resync (`user_isp`).
    pub user_isp: bool,
    /// The resync waits for another minor's (`resync-after`, `aftr_isp`).
    pub aftr_isp: bool,
}

/// The states of a device towards one peer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerDeviceStates {
    /// The connection state (stored unpaused; [`States::word`] shows
    /// PausedSyncS/T while a pause flag is set).
    pub conn: ConnState,
    /// The peer's role.
    pub peer: Role,
    /// The peer's disk.
    pub pdsk: DiskState,
    /// The peer paused the resync (its `user_isp` or `aftr_isp`).
    pub peer_isp: bool,
}

/// A device and its peer device: what one state change changes at once.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct States {
    /// The device's own states.
    pub device: DeviceStates,
    /// Its states towards the (one) peer.
    pub peer: PeerDeviceStates,
}

impl PeerDeviceStates {
    /// No connection configured.
    pub const STANDALONE: Self =
        Self { conn: ConnState::StandAlone, peer: Role::Unknown, pdsk: DiskState::DUnknown, peer_isp: false };
}

impl States {
    /// A new minor: Secondary, Diskless, StandAlone.
    pub const UNCONFIGURED: Self = Self {
        device: DeviceStates {
            role: Role::Secondary,
            disk: DiskState::Diskless,
            susp_user: false,
            susp_fen: false,
            user_isp: false,
            aftr_isp: false,
        },
        peer: PeerDeviceStates::STANDALONE,
    };

    /// The 8.4 state word (`union drbd_state`).
    pub fn word(&self) -> State {
        let (d, p) = (&self.device, &self.peer);
        State {
            role: d.role,
            peer: p.peer,
            conn: shown_conn(p.conn, self.sync_paused()),
            disk: d.disk,
            pdsk: p.pdsk,
            susp: d.susp_user,
            aftr_isp: d.aftr_isp,
            peer_isp: p.peer_isp,
            user_isp: d.user_isp,
            susp_nod: false,
            susp_fen: d.susp_fen,
        }
    }

    /// Whether a resync must not make progress (a pause flag is set).
    pub fn sync_paused(&self) -> bool {
        self.device.user_isp || self.device.aftr_isp || self.peer.peer_isp
    }

    /// Whether application I/O waits (`is_susp`).
    pub fn io_suspended(&self) -> bool {
        self.device.susp_user || self.device.susp_fen
    }
}

/// Who asks for a change, which decides the checks it passes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A request the driver may refuse (a user's command; 8.4 without
    /// `CS_HARD`): the new state must be valid and the transition soft-valid.
    Soft(Context),
    /// A fact (the network broke, the disk failed, the peer told us): only
    /// [`is_valid_transition`] can refuse it.
    Hard,
}

/// What [`is_valid_state`] needs besides the states.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Context {
    /// `allow-two-primaries` of the connection.
    pub two_primaries: bool,
    /// Whether `/dev/drbdN` is open.
    pub opened: bool,
}

/// What [`sanitize`] changed that the log should tell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Warning {
    /// A failing disk ended an online verify.
    AbortedOnlineVerify,
    /// A failing disk ended a resync.
    AbortedResync,
}

impl Warning {
    /// 8.4's text (`print_sanitize_warnings`).
    pub fn text(self) -> &'static str {
        match self {
            Warning::AbortedOnlineVerify => "Online-verify aborted.",
            Warning::AbortedResync => "Resync aborted.",
        }
    }
}

/// `sanitize_state`: the changes a change implies. Without a connection
/// the peer's role and pause are unknown and its disk only known when
/// Inconsistent or Outdated; Ahead, the peer's disk is at best Consistent,
/// Behind, ours at best Outdated; a resync or verify ends when either disk
/// fails.
pub fn sanitize(ns: States) -> (States, Option<Warning>) {
    let mut ns = ns;
    let mut warning = None;
    if ns.peer.conn < ConnState::Connected {
        ns.peer.peer_isp = false;
        ns.peer.peer = Role::Unknown;
        ns.peer.pdsk = pdsk_while_unconnected(ns.peer.pdsk);
    }
    // Ahead, the peer misses writes: its disk is at best Consistent; Behind,
    // ours is at best Outdated (8.4's disk_max/pdsk_max of these states).
    if ns.peer.conn == ConnState::Ahead && ns.peer.pdsk > DiskState::Consistent {
        ns.peer.pdsk = DiskState::Consistent;
    }
    if ns.peer.conn == ConnState::Behind && ns.device.disk > DiskState::Outdated {
        ns.device.disk = DiskState::Outdated;
    }
    if ns.peer.conn > ConnState::Connected
        && (ns.device.disk <= DiskState::Failed || ns.peer.pdsk <= DiskState::Failed)
    {
        warning = Some(if matches!(ns.peer.conn, ConnState::VerifyS | ConnState::VerifyT) {
            Warning::AbortedOnlineVerify
        } else {
            Warning::AbortedResync
        });
        ns.peer.conn = ConnState::Connected;
    }
    (ns, warning)
}

/// `is_valid_state` (the rules whose inputs rdrbd keeps in the states).
pub fn is_valid_state(ns: &States, ctx: &Context) -> Result<(), StateChangeResult> {
    use StateChangeResult as R;
    let (d, p) = (&ns.device, &ns.peer);
    let primary = d.role == Role::Primary;
    if primary && p.peer == Role::Primary && !ctx.two_primaries {
        return Err(R::TwoPrimaries);
    }
    if d.role == Role::Secondary && ctx.opened {
        return Err(R::DeviceInUse);
    }
    if primary && p.conn < ConnState::Connected && d.disk < DiskState::UpToDate {
        return Err(R::NoUpToDateDisk);
    }
    if primary && d.disk <= DiskState::Inconsistent && p.pdsk <= DiskState::Inconsistent {
        return Err(R::NoUpToDateDisk);
    }
    if p.conn > ConnState::Connected && d.disk < DiskState::Inconsistent {
        return Err(R::NoLocalDisk);
    }
    if p.conn > ConnState::Connected && p.pdsk < DiskState::Inconsistent {
        return Err(R::NoRemoteDisk);
    }
    if p.conn > ConnState::Connected && d.disk < DiskState::UpToDate && p.pdsk < DiskState::UpToDate {
        return Err(R::NoUpToDateDisk);
    }
    if matches!(p.conn, ConnState::Connected | ConnState::WfBitMapS | ConnState::SyncSource | ConnState::PausedSyncS)
        && d.disk == DiskState::Outdated
    {
        return Err(R::ConnectedOutdates);
    }
    if primary && d.disk < DiskState::UpToDate && p.pdsk < DiskState::UpToDate {
        return Err(R::NoUpToDateDisk);
    }
    Ok(())
}

/// `is_valid_soft_transition` (the rules about the fields rdrbd changes
/// through soft requests).
pub fn is_valid_soft_transition(os: &States, ns: &States) -> Result<(), StateChangeResult> {
    use StateChangeResult as R;
    let (oc, nc) = (os.peer.conn, ns.peer.conn);
    let starting = matches!(nc, ConnState::StartingSyncS | ConnState::StartingSyncT);
    let verify = matches!(nc, ConnState::VerifyS | ConnState::VerifyT);
    if starting && oc > ConnState::Connected {
        return Err(R::ResyncRunning);
    }
    if ns.device.disk > DiskState::Attaching && os.device.disk == DiskState::Diskless {
        return Err(R::IsDiskless);
    }
    if ns.device.disk == DiskState::Outdated && os.device.disk < DiskState::Outdated && os.device.disk != DiskState::Attaching {
        return Err(R::LowerThanOutdated);
    }
    if (starting || verify) && oc < ConnState::Connected {
        return Err(R::NeedConnection);
    }
    if verify && nc != oc && oc > ConnState::Connected {
        return Err(R::ResyncRunning);
    }
    Ok(())
}

/// `is_valid_conn_transition`: how the connection state may move at all.
fn is_valid_conn_transition(oc: ConnState, nc: ConnState) -> Result<(), StateChangeResult> {
    use ConnState::*;
    use StateChangeResult as R;
    if oc == nc {
        return Ok(());
    }
    if oc == StandAlone && nc == Disconnecting {
        return Err(R::AlreadyStandalone);
    }
    if oc == StandAlone && nc != Unconnected {
        return Err(R::NeedConnection);
    }
    // A connection goes through the parameter exchange before it counts.
    if oc < WfReportParams && nc >= Connected {
        return Err(R::NeedConnection);
    }
    // After a network error only Unconnected or Disconnecting may follow.
    if oc >= Timeout && oc <= TearDown && nc != Unconnected && nc != Disconnecting {
        return Err(R::InTransientState);
    }
    if oc == Disconnecting && nc != StandAlone {
        return Err(R::InTransientState);
    }
    Ok(())
}

/// `is_valid_transition`: what no change may do, not even a hard one.
pub fn is_valid_transition(os: &States, ns: &States) -> Result<(), StateChangeResult> {
    is_valid_conn_transition(os.peer.conn, ns.peer.conn)?;
    // A disk cannot fail (again) once detached.
    if ns.device.disk == DiskState::Failed && os.device.disk == DiskState::Diskless {
        return Err(StateChangeResult::IsDiskless);
    }
    Ok(())
}

/// The checks `__drbd_set_state` runs on a sanitised change, in its order:
/// a soft change must reach a valid state (unless the old state was invalid
/// for the same reason) by a soft-valid transition; every change must be a
/// valid transition.
pub fn check(os: &States, ns: &States, kind: Kind) -> Result<(), StateChangeResult> {
    if let Kind::Soft(ctx) = kind {
        match is_valid_state(ns, &ctx) {
            Ok(()) => {}
            Err(e) if is_valid_state(os, &ctx) == Err(e) => {}
            Err(e) => return Err(e),
        }
        is_valid_soft_transition(os, ns)?;
    }
    is_valid_transition(os, ns)
}

/// Whether a change needs the peer's consent before it is made (8.4's
/// `cl_wide_st_chg`): connected, a promotion, the start of a full sync
/// (StartingSyncS/T) or our disk failing; a disconnect; online verify as
/// VerifyS; a reconnect (WFReportParams). The peer is asked with
/// P_STATE_CHG_REQ and the change is made only if it agrees; with more
/// peers this becomes DRBD 9's two-phase commit over all of them.
pub fn is_cluster_wide(os: &States, ns: &States) -> bool {
    let (oc, nc) = (os.peer.conn, ns.peer.conn);
    (oc >= ConnState::Connected
        && nc >= ConnState::Connected
        && ((os.device.role != Role::Primary && ns.device.role == Role::Primary)
            || (oc != ConnState::StartingSyncT && nc == ConnState::StartingSyncT)
            || (oc != ConnState::StartingSyncS && nc == ConnState::StartingSyncS)
            || (os.device.disk != DiskState::Failed && ns.device.disk == DiskState::Failed)))
        || (oc >= ConnState::Connected && nc == ConnState::Disconnecting)
        || (oc == ConnState::Connected && nc == ConnState::VerifyS)
        || (oc == ConnState::Connected && nc == ConnState::WfReportParams)
}

/// The kernel log line of a change (`drbd_pr_state_change`):
/// `role( Secondary -> Primary ) disk( Inconsistent -> UpToDate ) ...`;
/// empty when nothing shown changed.
pub struct ChangeLine {
    /// The state word before the change.
    pub old: State,
    /// The state word after it.
    pub new: State,
}

impl ChangeLine {
    /// Whether the line would be empty.
    pub fn is_empty(&self) -> bool {
        let (o, n) = (&self.old, &self.new);
        o.role == n.role
            && o.peer == n.peer
            && o.conn == n.conn
            && o.disk == n.disk
            && o.pdsk == n.pdsk
            && is_susp(o) == is_susp(n)
            && o.aftr_isp == n.aftr_isp
            && o.peer_isp == n.peer_isp
            && o.user_isp == n.user_isp
    }
}

fn is_susp(s: &State) -> bool {
    s.susp || s.susp_fen || s.susp_nod
}

impl fmt::Display for ChangeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (o, n) = (&self.old, &self.new);
        let mut sep = "";
        let mut part = |f: &mut fmt::Formatter<'_>, name: &str, a: &dyn fmt::Display, b: &dyn fmt::Display| {
            let r = write!(f, "{sep}{name}( {a} -> {b} )");
            sep = " ";
            r
        };
        if o.role != n.role {
            part(f, "role", &o.role.name(), &n.role.name())?;
        }
        if o.peer != n.peer {
            part(f, "peer", &o.peer.name(), &n.peer.name())?;
        }
        if o.conn != n.conn {
            part(f, "conn", &o.conn.name(), &n.conn.name())?;
        }
        if o.disk != n.disk {
            part(f, "disk", &o.disk.name(), &n.disk.name())?;
        }
        if o.pdsk != n.pdsk {
            part(f, "pdsk", &o.pdsk.name(), &n.pdsk.name())?;
        }
        if is_susp(o) != is_susp(n) {
            part(f, "susp", &u8::from(is_susp(o)), &u8::from(is_susp(n)))?;
        }
        if o.aftr_isp != n.aftr_isp {
            part(f, "aftr_isp", &u8::from(o.aftr_isp), &u8::from(n.aftr_isp))?;
        }
        if o.peer_isp != n.peer_isp {
            part(f, "peer_isp", &u8::from(o.peer_isp), &u8::from(n.peer_isp))?;
        }
        if o.user_isp != n.user_isp {
            part(f, "user_isp", &u8::from(o.user_isp), &u8::from(n.user_isp))?;
        }
        Ok(())
    }
}

/// `print_st`: ` cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r-----`,
/// for the lines of a refused change.
pub struct StateSummary(pub State);

impl fmt::Display for StateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        let flag = |on: bool, c: char| if on { c } else { '-' };
        write!(
            f,
            "{{ cs:{} ro:{}/{} ds:{}/{} {}{}{}{}{}{} }}",
            s.conn.name(),
            s.role.name(),
            s.peer.name(),
            s.disk.name(),
            s.pdsk.name(),
            if is_susp(s) { 's' } else { 'r' },
            flag(s.aftr_isp, 'a'),
            flag(s.peer_isp, 'p'),
            flag(s.user_isp, 'u'),
            flag(s.susp_fen, 'F'),
            flag(s.susp_nod, 'N'),
        )
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::ToString;

    fn connected() -> States {
        let mut s = States::UNCONFIGURED;
        s.device.disk = DiskState::UpToDate;
        s.peer = PeerDeviceStates { conn: ConnState::Connected, peer: Role::Secondary, pdsk: DiskState::UpToDate, peer_isp: false };
        s
    }

    #[test]
    fn cluster_wide_changes_are_those_of_cl_wide_st_chg() {
        let os = connected();
        let with = |f: fn(&mut States)| {
            let mut ns = os;
            f(&mut ns);
            is_cluster_wide(&os, &ns)
        };
        assert!(with(|s| s.device.role = Role::Primary));
        assert!(with(|s| s.peer.conn = ConnState::StartingSyncT));
        assert!(with(|s| s.peer.conn = ConnState::StartingSyncS));
        assert!(with(|s| s.peer.conn = ConnState::VerifyS));
        assert!(with(|s| s.peer.conn = ConnState::Disconnecting));
        assert!(with(|s| s.device.disk = DiskState::Failed));
        // Local only: a demotion, a pause, outdating while connected is
        // the peer's to judge through P_STATE, not a request.
        assert!(!with(|s| s.device.role = Role::Secondary));
        assert!(!with(|s| s.device.user_isp = true));
        assert!(!with(|s| s.device.disk = DiskState::Outdated));
        // Not connected: nobody to ask.
        let mut alone = os;
        alone.peer.conn = ConnState::StandAlone;
        let mut ns = alone;
        ns.device.role = Role::Primary;
        assert!(!is_cluster_wide(&alone, &ns));
    }

    #[test]
    fn losing_the_connection_forgets_the_peer() {
        let mut ns = connected();
        ns.peer.peer = Role::Primary;
        ns.peer.peer_isp = true;
        ns.peer.conn = ConnState::NetworkFailure;
        let (s, w) = sanitize(ns);
        assert_eq!((s.peer.peer, s.peer.pdsk, s.peer.peer_isp, w), (Role::Unknown, DiskState::DUnknown, false, None));
        // An Outdated or Inconsistent peer stays known as such.
        for pdsk in [DiskState::Outdated, DiskState::Inconsistent] {
            let mut ns = connected();
            ns.peer.pdsk = pdsk;
            ns.peer.conn = ConnState::Timeout;
            assert_eq!(sanitize(ns).0.peer.pdsk, pdsk);
        }
    }

    #[test]
    fn ahead_and_behind_cap_the_lagging_disk() {
        let mut ns = connected();
        ns.peer.conn = ConnState::Ahead;
        let (s, w) = sanitize(ns);
        assert_eq!((s.device.disk, s.peer.pdsk, w), (DiskState::UpToDate, DiskState::Consistent, None));
        let mut ns = connected();
        ns.peer.conn = ConnState::Behind;
        let s = sanitize(ns).0;
        assert_eq!((s.device.disk, s.peer.pdsk), (DiskState::Outdated, DiskState::UpToDate));
        // An Inconsistent disk stays so.
        ns.device.disk = DiskState::Inconsistent;
        assert_eq!(sanitize(ns).0.device.disk, DiskState::Inconsistent);
        assert_eq!(check(&connected(), &sanitize(ns).0, Kind::Hard), Ok(()));
    }

    #[test]
    fn a_failing_disk_aborts_resync_and_verify() {
        let mut ns = connected();
        ns.peer.conn = ConnState::SyncSource;
        ns.peer.pdsk = DiskState::Failed;
        assert_eq!(sanitize(ns).0.peer.conn, ConnState::Connected);
        assert_eq!(sanitize(ns).1, Some(Warning::AbortedResync));
        let mut ns = connected();
        ns.peer.conn = ConnState::VerifyT;
        ns.device.disk = DiskState::Failed;
        assert_eq!(sanitize(ns).1, Some(Warning::AbortedOnlineVerify));
    }

    #[test]
    fn soft_changes_need_a_valid_state() {
        let os = connected();
        let mut ns = os;
        ns.device.role = Role::Primary;
        ns.peer.peer = Role::Primary;
        let soft = Kind::Soft(Context::default());
        assert_eq!(check(&os, &ns, soft), Err(StateChangeResult::TwoPrimaries));
        assert_eq!(check(&os, &ns, Kind::Soft(Context { two_primaries: true, opened: false })), Ok(()));
        // Demotion while open.
        let mut os = connected();
        os.device.role = Role::Primary;
        let mut ns = os;
        ns.device.role = Role::Secondary;
        assert_eq!(check(&os, &ns, Kind::Soft(Context { two_primaries: false, opened: true })), Err(StateChangeResult::DeviceInUse));
        // Promotion of an Inconsistent disk without a connection.
        let mut os = States::UNCONFIGURED;
        os.device.disk = DiskState::Inconsistent;
        let mut ns = os;
        ns.device.role = Role::Primary;
        assert_eq!(check(&os, &ns, soft), Err(StateChangeResult::NoUpToDateDisk));
        // Hard changes are facts.
        assert_eq!(check(&os, &ns, Kind::Hard), Ok(()));
    }

    #[test]
    fn an_invalid_old_state_does_not_block_an_unrelated_change() {
        // Primary with an Inconsistent disk, alone: invalid, yet pausing
        // the (absent) resync must not be refused for it.
        let mut os = States::UNCONFIGURED;
        os.device.role = Role::Primary;
        os.device.disk = DiskState::Inconsistent;
        let mut ns = os;
        ns.device.user_isp = true;
        assert_eq!(check(&os, &ns, Kind::Soft(Context::default())), Ok(()));
    }

    #[test]
    fn soft_transitions() {
        let os = States::UNCONFIGURED;
        let mut ns = os;
        ns.device.disk = DiskState::Outdated;
        assert_eq!(check(&os, &ns, Kind::Soft(Context::default())), Err(StateChangeResult::IsDiskless));
        let mut os = connected();
        os.device.disk = DiskState::Inconsistent;
        os.peer.conn = ConnState::SyncTarget;
        let mut ns = os;
        ns.peer.conn = ConnState::StartingSyncT;
        assert_eq!(is_valid_soft_transition(&os, &ns), Err(StateChangeResult::ResyncRunning));
    }

    #[test]
    fn connection_transitions() {
        use ConnState::*;
        let at = |c| States { peer: PeerDeviceStates { conn: c, ..PeerDeviceStates::STANDALONE }, ..States::UNCONFIGURED };
        let t = |a, b| is_valid_transition(&at(a), &at(b));
        assert_eq!(t(StandAlone, Unconnected), Ok(()));
        assert_eq!(t(StandAlone, Disconnecting), Err(StateChangeResult::AlreadyStandalone));
        assert_eq!(t(StandAlone, WfConnection), Err(StateChangeResult::NeedConnection));
        assert_eq!(t(WfConnection, Connected), Err(StateChangeResult::NeedConnection));
        assert_eq!(t(WfReportParams, Connected), Ok(()));
        assert_eq!(t(WfReportParams, WfBitMapT), Ok(()));
        assert_eq!(t(Timeout, WfConnection), Err(StateChangeResult::InTransientState));
        assert_eq!(t(Timeout, Unconnected), Ok(()));
        assert_eq!(t(Disconnecting, Unconnected), Err(StateChangeResult::InTransientState));
        assert_eq!(t(Disconnecting, StandAlone), Ok(()));
        let mut os = States::UNCONFIGURED;
        let mut ns = os;
        ns.device.disk = DiskState::Failed;
        assert_eq!(check(&os, &ns, Kind::Hard), Err(StateChangeResult::IsDiskless));
        os.device.disk = DiskState::UpToDate;
        assert_eq!(check(&os, &ns, Kind::Hard), Ok(()));
    }

    #[test]
    fn the_log_line_is_8_4_s() {
        let os = connected();
        let mut ns = os;
        ns.device.role = Role::Primary;
        ns.peer.conn = ConnState::Timeout;
        ns.device.susp_fen = true;
        let line = ChangeLine { old: os.word(), new: sanitize(ns).0.word() };
        assert_eq!(
            line.to_string(),
            "role( Secondary -> Primary ) peer( Secondary -> Unknown ) conn( Connected -> Timeout ) \
             pdsk( UpToDate -> DUnknown ) susp( 0 -> 1 )"
        );
        assert!(!line.is_empty());
        assert!(ChangeLine { old: os.word(), new: os.word() }.is_empty());
        // A pause shows as PausedSync in the word and as the flag.
        let mut os = connected();
        os.device.disk = DiskState::Inconsistent;
        os.peer.conn = ConnState::SyncTarget;
        let mut ns = os;
        ns.device.user_isp = true;
        assert_eq!(
            ChangeLine { old: os.word(), new: ns.word() }.to_string(),
            "conn( SyncTarget -> PausedSyncT ) user_isp( 0 -> 1 )"
        );
        assert_eq!(
            format!("{}", StateSummary(ns.word())),
            "{ cs:PausedSyncT ro:Secondary/Secondary ds:Inconsistent/UpToDate r--u-- }"
        );
    }
}
