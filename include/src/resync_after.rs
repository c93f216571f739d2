//! `resync-after` (8.4's `_drbd_may_sync_now`, `_drbd_pause_after`,
//! `_drbd_resume_next`, `drbd_resync_after_valid`): a minor whose disk
//! option names another minor resyncs only while that one (and the one it
//! names, and so on) neither resyncs nor is paused; meanwhile its resync is
//! paused with `aftr_isp` (PausedSyncS/T, the `a` flag of /proc/drbd).

use super::genl::{ConnState, RetCode};

/// What the order needs to know of one minor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Member {
    /// The minor number.
    pub minor: u32,
    /// A backing disk is attached (not Diskless): its options count.
    pub attached: bool,
    /// StandAlone and Diskless: nothing to pause (`_drbd_pause_after`
    /// skips it).
    pub idle: bool,
    /// `resync-after`: the minor it waits for.
    pub resync_after: Option<u32>,
    /// Its connection state (unpaused).
    pub conn: ConnState,
    /// Paused by the user or the peer (`user_isp`, `peer_isp`).
    pub paused_otherwise: bool,
    /// Paused by its dependency (`aftr_isp`).
    pub aftr_isp: bool,
}

/// Resyncing or verifying, paused or not (8.4's `conn` between
/// C_SYNC_SOURCE and C_PAUSED_SYNC_T): what a dependent minor waits for.
pub fn resyncing(conn: ConnState) -> bool {
    (ConnState::SyncSource as u32..=ConnState::PausedSyncT as u32).contains(&(conn as u32))
}

impl Member {
    /// [`resyncing`], or paused for any reason.
    fn busy(&self) -> bool {
        resyncing(self.conn) || self.paused_otherwise || self.aftr_isp
    }
}

fn find(members: &[Member], minor: u32) -> Option<&Member> {
    members.iter().find(|m| m.minor == minor)
}

/// `_drbd_may_sync_now`: whether no minor along `minor`'s resync-after
/// chain resyncs or is paused. A detached or missing minor ends the chain;
/// so does a loop (which [`check`] keeps out).
pub fn may_sync_now(members: &[Member], minor: u32) -> bool {
    let mut current = find(members, minor);
    for _ in 0..=members.len() {
        let Some(m) = current else { return true };
        if !m.attached {
            return true;
        }
        let Some(after) = m.resync_after else { return true };
        let Some(next) = find(members, after) else { return true };
        if next.busy() {
            return false;
        }
        current = Some(next);
    }
    true
}

/// `drbd_resync_after_valid`: whether `minor` may wait for `after` (-1:
/// for nobody). Naming a missing or detached minor is fine; a loop is not.
pub fn check(members: &[Member], minor: u32, after: i32) -> Result<(), RetCode> {
    if after == -1 {
        return Ok(());
    }
    let Ok(mut next) = u32::try_from(after) else { return Err(RetCode::ResyncAfter) };
    if next > MINOR_MAX {
        return Err(RetCode::ResyncAfter);
    }
    for _ in 0..=members.len() {
        if next == minor {
            return Err(RetCode::ResyncAfterCycle);
        }
        let Some(m) = find(members, next).filter(|m| m.attached) else { return Ok(()) };
        let Some(after) = m.resync_after else { return Ok(()) };
        next = after;
    }
    // A loop among the others (cannot be formed through `check`).
    Err(RetCode::ResyncAfterCycle)
}

/// The largest minor (8.4's MINORMASK).
pub const MINOR_MAX: u32 = (1 << 20) - 1;

/// `drbd_resync_after_changed`: `_drbd_pause_after` then
/// `_drbd_resume_next` until nothing changes; `aftr_isp` of `members`
/// updated in place. Returns whether any changed.
pub fn settle(members: &mut [Member]) -> bool {
    let mut any = false;
    // Each round changes at least one flag, each flag at most twice.
    for _ in 0..=members.len().saturating_mul(2) {
        let mut changed = false;
        for i in 0..members.len() {
            let Some(m) = members.get(i).copied() else { break };
            if m.idle || m.aftr_isp || may_sync_now(members, m.minor) {
                continue;
            }
            if let Some(m) = members.get_mut(i) {
                m.aftr_isp = true;
                changed = true;
            }
        }
        for i in 0..members.len() {
            let Some(m) = members.get(i).copied() else { break };
            if !m.aftr_isp || !may_sync_now(members, m.minor) {
                continue;
            }
            if let Some(m) = members.get_mut(i) {
                m.aftr_isp = false;
                changed = true;
            }
        }
        any |= changed;
        if !changed {
            break;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(minor: u32, after: Option<u32>, conn: ConnState) -> Member {
        Member { minor, attached: true, idle: false, resync_after: after, conn, paused_otherwise: false, aftr_isp: false }
    }

    #[test]
    fn a_dependency_that_resyncs_pauses() {
        let mut m = [member(0, None, ConnState::SyncSource), member(1, Some(0), ConnState::SyncSource)];
        assert!(!may_sync_now(&m, 1));
        assert!(may_sync_now(&m, 0));
        assert!(settle(&mut m));
        assert_eq!((m[0].aftr_isp, m[1].aftr_isp), (false, true));
        // Settled: nothing more.
        assert!(!settle(&mut m));
        // Minor 0 done: minor 1 goes on.
        m[0].conn = ConnState::Connected;
        assert!(settle(&mut m));
        assert!(!m[1].aftr_isp);
    }

    #[test]
    fn chains_and_pauses() {
        // 2 after 1 after 0; 0 resyncs: both wait, 1 because 0 resyncs,
        // 2 because 1 is paused.
        let mut m = [
            member(0, None, ConnState::SyncTarget),
            member(1, Some(0), ConnState::SyncTarget),
            member(2, Some(1), ConnState::Connected),
        ];
        settle(&mut m);
        assert_eq!((m[1].aftr_isp, m[2].aftr_isp), (true, true));
        // A user's pause of 0 keeps them waiting after 0 is done.
        m[0].conn = ConnState::Connected;
        m[0].paused_otherwise = true;
        settle(&mut m);
        assert_eq!((m[1].aftr_isp, m[2].aftr_isp), (true, true));
        m[0].paused_otherwise = false;
        settle(&mut m);
        // 1 resyncs now; 2 waits for that.
        assert_eq!((m[1].aftr_isp, m[2].aftr_isp), (false, true));
        m[1].conn = ConnState::Connected;
        settle(&mut m);
        assert!(!m[2].aftr_isp);
    }

    #[test]
    fn detached_missing_and_idle_minors() {
        let mut m = [member(0, None, ConnState::SyncSource), member(1, Some(0), ConnState::SyncSource)];
        m[0].attached = true;
        m[1].idle = true;
        assert!(!settle(&mut m));
        // The dependency is missing: free to go.
        let m = [member(1, Some(7), ConnState::SyncSource)];
        assert!(may_sync_now(&m, 1));
        // A detached minor's own option does not count.
        let mut m = [member(0, None, ConnState::SyncSource), member(1, Some(0), ConnState::SyncSource)];
        m[1].attached = false;
        assert!(may_sync_now(&m, 1));
    }

    #[test]
    fn loops_are_refused() {
        let m = [member(0, Some(1), ConnState::Connected), member(1, None, ConnState::Connected), member(2, Some(0), ConnState::Connected)];
        assert_eq!(check(&m, 1, 0), Err(RetCode::ResyncAfterCycle));
        assert_eq!(check(&m, 1, 2), Err(RetCode::ResyncAfterCycle));
        assert_eq!(check(&m, 1, 1), Err(RetCode::ResyncAfterCycle));
        assert_eq!(check(&m, 2, 1), Ok(()));
        assert_eq!(check(&m, 1, 9), Ok(()));
        assert_eq!(check(&m, 1, -1), Ok(()));
        assert_eq!(check(&m, 1, -2), Err(RetCode::ResyncAfter));
        assert_eq!(check(&m, 1, 1 << 20), Err(RetCode::ResyncAfter));
    }
}
