//! `read-balancing` (8.4's `remote_due_to_read_balancing`): which reads an
//! UpToDate peer serves although our own disk could. A read our disk
//! cannot serve goes to the peer whatever the policy (`io_error`'s
//! `read_source`).

/// The disk option's values (`enum drbd_read_balancing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ReadBalancing {
    /// Every read our disk can serve is local (the default).
    PreferLocal = 0,
    /// Every read goes to the peer.
    PreferRemote = 1,
    /// Local and peer by turns.
    RoundRobin = 2,
    /// To the peer when more local requests are in flight than peer ones.
    LeastPending = 3,
    /// To the peer when the backing device is congested: Linux 6.12 has no
    /// congestion to ask about, so local, as the in-tree 8.4 driver does.
    WhenCongestedRemote = 4,
    /// Stripes of 32 KiB: the odd ones are read from the peer.
    Striping32K = 5,
    /// Stripes of 64 KiB.
    Striping64K = 6,
    /// Stripes of 128 KiB.
    Striping128K = 7,
    /// Stripes of 256 KiB.
    Striping256K = 8,
    /// Stripes of 512 KiB.
    Striping512K = 9,
    /// Stripes of 1 MiB.
    Striping1M = 10,
}

/// Requests in flight, for [`ReadBalancing::LeastPending`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// On our backing disk (8.4's `local_cnt`), the read in question
    /// included.
    pub local: u32,
    /// Waiting for the peer (8.4's `ap_pending_cnt + rs_pending_cnt`).
    pub peer: u32,
}

impl ReadBalancing {
    /// The policy `raw` names; `None` for an unknown value.
    pub fn from_raw(raw: u32) -> Option<Self> {
        use ReadBalancing::*;
        [
            PreferLocal, PreferRemote, RoundRobin, LeastPending, WhenCongestedRemote, Striping32K, Striping64K,
            Striping128K, Striping256K, Striping512K, Striping1M,
        ]
        .get(usize::try_from(raw).ok()?)
        .copied()
    }

    /// Whether a read starting at `sector`, which our disk and an UpToDate
    /// peer could both serve, goes to the peer. `in_flight` is asked only
    /// by [`Self::LeastPending`]; `turn` (the previous turn, flipping it)
    /// only by [`Self::RoundRobin`].
    pub fn to_peer(self, sector: u64, in_flight: impl FnOnce() -> InFlight, turn: impl FnOnce() -> bool) -> bool {
        match self {
            Self::PreferLocal | Self::WhenCongestedRemote => false,
            Self::PreferRemote => true,
            Self::RoundRobin => turn(),
            Self::LeastPending => {
                let n = in_flight();
                n.local > n.peer
            }
            striping => {
                // 32 KiB is 2^15 bytes, 2^6 sectors; each step doubles it.
                let shift = (striping as u32 - Self::Striping32K as u32) + 6;
                (sector >> shift) & 1 == 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: InFlight = InFlight { local: 1, peer: 0 };

    #[test]
    fn values_are_8_4_s() {
        assert_eq!(ReadBalancing::from_raw(0), Some(ReadBalancing::PreferLocal));
        assert_eq!(ReadBalancing::from_raw(4), Some(ReadBalancing::WhenCongestedRemote));
        assert_eq!(ReadBalancing::from_raw(10), Some(ReadBalancing::Striping1M));
        assert_eq!(ReadBalancing::from_raw(11), None);
        for raw in 0..=10 {
            assert_eq!(ReadBalancing::from_raw(raw).map(|p| p as u32), Some(raw));
        }
    }

    #[test]
    fn fixed_policies() {
        let never = || -> InFlight { unreachable!() };
        let no_turn = || -> bool { unreachable!() };
        assert!(!ReadBalancing::PreferLocal.to_peer(0, never, no_turn));
        assert!(!ReadBalancing::WhenCongestedRemote.to_peer(0, never, no_turn));
        assert!(ReadBalancing::PreferRemote.to_peer(12345, never, no_turn));
    }

    #[test]
    fn round_robin_and_least_pending() {
        assert!(ReadBalancing::RoundRobin.to_peer(0, || IDLE, || true));
        assert!(!ReadBalancing::RoundRobin.to_peer(0, || IDLE, || false));
        // 8.4: local_cnt > ap_pending + rs_pending.
        assert!(ReadBalancing::LeastPending.to_peer(0, || InFlight { local: 1, peer: 0 }, || false));
        assert!(!ReadBalancing::LeastPending.to_peer(0, || InFlight { local: 3, peer: 3 }, || false));
        assert!(ReadBalancing::LeastPending.to_peer(0, || InFlight { local: 4, peer: 3 }, || false));
    }

    #[test]
    fn striping_alternates_by_stripe() {
        let s = |p: ReadBalancing, sector| p.to_peer(sector, || IDLE, || false);
        // 32 KiB = 64 sectors.
        assert!(!s(ReadBalancing::Striping32K, 0));
        assert!(!s(ReadBalancing::Striping32K, 63));
        assert!(s(ReadBalancing::Striping32K, 64));
        assert!(!s(ReadBalancing::Striping32K, 128));
        // 1 MiB = 2048 sectors.
        assert!(!s(ReadBalancing::Striping1M, 2047));
        assert!(s(ReadBalancing::Striping1M, 2048));
        assert!(s(ReadBalancing::Striping1M, 4095));
        assert!(!s(ReadBalancing::Striping1M, 4096));
        assert!(s(ReadBalancing::Striping128K, 256));
    }
}
