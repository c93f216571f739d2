//! Ahead/Behind (8.4's `on-congestion`, `maybe_pull_ahead`): a Primary
//! replicating with protocol A over a link or to a disk slower than its
//! writes either blocks its writers (`block`, the default), drops the
//! connection (`disconnect`), or stops sending data for a while
//! (`pull-ahead`): it goes Ahead, the peer Behind (its disk Outdated), and
//! each write only tells the peer which blocks it changed
//! (P_OUT_OF_SYNC). Once everything sent before has reached the peer's
//! disk, the Primary resyncs the changed blocks to it and both are
//! UpToDate again.
//!
//! Congestion is measured as 8.4 measures it: the sectors sent and not yet
//! covered by a barrier ack (`ap_in_flight`, against `cong-fill`) and the
//! activity-log extents with writes in flight (`act_log->used`, against
//! `cong-extents`).

use super::genl::{net_conf, ConnState, DiskState};

/// What the Primary does when it finds its replication congested.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnCongestion {
    /// Writers wait (no check at all).
    Block,
    /// Ahead/Behind until the link drains, then a resync.
    PullAhead,
    /// The connection is dropped (StandAlone, as 8.4 discards the network
    /// configuration).
    Disconnect,
}

impl OnCongestion {
    /// The netlink value (`DRBD_NLA_NET_CONF`'s on-congestion).
    pub fn from_raw(v: u32) -> Option<Self> {
        match v {
            net_conf::OC_BLOCK => Some(Self::Block),
            net_conf::OC_PULL_AHEAD => Some(Self::PullAhead),
            net_conf::OC_DISCONNECT => Some(Self::Disconnect),
            _ => None,
        }
    }

    /// The netlink value.
    pub fn to_raw(self) -> u32 {
        match self {
            Self::Block => net_conf::OC_BLOCK,
            Self::PullAhead => net_conf::OC_PULL_AHEAD,
            Self::Disconnect => net_conf::OC_DISCONNECT,
        }
    }
}

/// The congestion options of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CongestionPolicy {
    /// `on-congestion`.
    pub on_congestion: OnCongestion,
    /// `cong-fill` in sectors (0: the fill is not looked at).
    pub fill_sectors: u32,
    /// `cong-extents`.
    pub extents: u32,
}

/// How loaded the replication is when a write is about to be sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Load {
    /// Sectors sent to the peer and not yet covered by a barrier ack.
    pub in_flight_sectors: u64,
    /// Activity-log extents with writes in flight.
    pub al_busy: u32,
}

/// Which thresholds were reached (8.4 logs each).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reached {
    /// "Congestion-fill threshold reached".
    pub fill: bool,
    /// "Congestion-extents threshold reached".
    pub extents: bool,
}

/// What to do with the next write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Replicate it as usual.
    Replicate,
    /// Go Ahead (and only mark this write out of sync at the peer).
    PullAhead(Reached),
    /// Drop the connection.
    Disconnect(Reached),
}

/// Protocol 96 introduced Ahead/Behind (P_OUT_OF_SYNC); an older peer is
/// never pulled ahead of.
pub const MIN_PROTOCOL: u32 = 96;

/// How long the link must have been drained (nothing in flight) before
/// the Primary leaves Ahead for SyncSource (8.4's `start_resync_timer`).
pub const RESYNC_DELAY_MS: u64 = 1000;

/// `maybe_pull_ahead`: the verdict for a write about to be replicated
/// while the connection is `conn`, our disk `disk`, the peer speaking
/// protocol `link_version`. Only a Connected UpToDate Primary pulls ahead
/// (8.4 would from a running resync too; rdrbd finishes that first).
pub fn judge(policy: &CongestionPolicy, link_version: u32, conn: ConnState, disk: DiskState, load: Load) -> Verdict {
    if policy.on_congestion == OnCongestion::Block
        || link_version < MIN_PROTOCOL
        || conn != ConnState::Connected
        || disk != DiskState::UpToDate
    {
        return Verdict::Replicate;
    }
    let reached = Reached {
        fill: policy.fill_sectors != 0 && load.in_flight_sectors >= u64::from(policy.fill_sectors),
        extents: load.al_busy >= policy.extents,
    };
    if !reached.fill && !reached.extents {
        return Verdict::Replicate;
    }
    match policy.on_congestion {
        OnCongestion::PullAhead => Verdict::PullAhead(reached),
        OnCongestion::Disconnect => Verdict::Disconnect(reached),
        OnCongestion::Block => Verdict::Replicate,
    }
}

/// Whether an Ahead Primary may start its resync (8.4's `got_BarrierAck`
/// arms the timer when `ap_in_flight` is 0): every write sent before it
/// went Ahead is on the peer's disk.
pub fn may_leave_ahead(conn: ConnState, in_flight_sectors: u64) -> bool {
    conn == ConnState::Ahead && in_flight_sectors == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PULL: CongestionPolicy = CongestionPolicy { on_congestion: OnCongestion::PullAhead, fill_sectors: 2048, extents: 100 };

    fn judge_load(policy: &CongestionPolicy, sectors: u64, busy: u32) -> Verdict {
        judge(policy, 101, ConnState::Connected, DiskState::UpToDate, Load { in_flight_sectors: sectors, al_busy: busy })
    }

    #[test]
    fn raw_values() {
        assert_eq!(OnCongestion::from_raw(0), Some(OnCongestion::Block));
        assert_eq!(OnCongestion::from_raw(1), Some(OnCongestion::PullAhead));
        assert_eq!(OnCongestion::from_raw(2), Some(OnCongestion::Disconnect));
        assert_eq!(OnCongestion::from_raw(3), None);
        for oc in [OnCongestion::Block, OnCongestion::PullAhead, OnCongestion::Disconnect] {
            assert_eq!(OnCongestion::from_raw(oc.to_raw()), Some(oc));
        }
    }

    #[test]
    fn thresholds() {
        assert_eq!(judge_load(&PULL, 2047, 99), Verdict::Replicate);
        assert_eq!(judge_load(&PULL, 2048, 0), Verdict::PullAhead(Reached { fill: true, extents: false }));
        assert_eq!(judge_load(&PULL, 0, 100), Verdict::PullAhead(Reached { fill: false, extents: true }));
        let disconnect = CongestionPolicy { on_congestion: OnCongestion::Disconnect, ..PULL };
        assert_eq!(judge_load(&disconnect, 4096, 100), Verdict::Disconnect(Reached { fill: true, extents: true }));
        // cong-fill 0 looks at the extents only.
        let no_fill = CongestionPolicy { fill_sectors: 0, ..PULL };
        assert_eq!(judge_load(&no_fill, u64::MAX, 0), Verdict::Replicate);
    }

    #[test]
    fn only_a_connected_up_to_date_node_of_a_new_peer() {
        let load = Load { in_flight_sectors: 1 << 20, al_busy: 1000 };
        let block = CongestionPolicy { on_congestion: OnCongestion::Block, ..PULL };
        assert_eq!(judge(&block, 101, ConnState::Connected, DiskState::UpToDate, load), Verdict::Replicate);
        assert_eq!(judge(&PULL, 95, ConnState::Connected, DiskState::UpToDate, load), Verdict::Replicate);
        for conn in [ConnState::Ahead, ConnState::SyncSource, ConnState::WfBitMapS] {
            assert_eq!(judge(&PULL, 101, conn, DiskState::UpToDate, load), Verdict::Replicate);
        }
        assert_eq!(judge(&PULL, 101, ConnState::Connected, DiskState::Consistent, load), Verdict::Replicate);
        assert!(matches!(judge(&PULL, 96, ConnState::Connected, DiskState::UpToDate, load), Verdict::PullAhead(_)));
    }

    #[test]
    fn leaving_ahead() {
        assert!(may_leave_ahead(ConnState::Ahead, 0));
        assert!(!may_leave_ahead(ConnState::Ahead, 8));
        assert!(!may_leave_ahead(ConnState::Connected, 0));
    }
}
