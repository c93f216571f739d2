//! `c-min-rate`: a resync steps aside for application I/O while it runs
//! faster than that rate (8.4's `drbd_rs_c_min_rate_throttle`). The
//! backing disk saw application I/O when its sectors, less the resync's
//! own, grew by more than 64 since the last look (or application writes
//! wait); then the resync's speed over its recent marks decides. The
//! SyncSource then waits 100 ms before it serves a request (unless its
//! peer is Primary: that would slow the peer's reads too), the SyncTarget
//! sends no request until its next tick.

/// Sectors of application I/O that count as activity (8.4's `> 64`).
const ACTIVITY_SECTORS: u64 = 64;

/// What the throttle looks at.
#[derive(Clone, Copy, Debug)]
pub struct Activity {
    /// Sectors the backing disk read and wrote but for the resync's own,
    /// ever (a counter that only grows).
    pub app_sectors: u64,
    /// Application writes wait (for the activity log, or for a resync
    /// read of their extent).
    pub app_waiting: bool,
}

/// Whether the resync should slow down, given `c_min_rate` (KiB/s, 0:
/// never), the activity now, `last_sectors` (the activity counter at the
/// last look that found activity, updated here) and the resync's recent
/// speed in KiB/s.
pub fn should_slow_down(c_min_rate: u32, now: Activity, last_sectors: &mut u64, speed_kib: u64) -> bool {
    if c_min_rate == 0 {
        return false;
    }
    if now.app_waiting || now.app_sectors.wrapping_sub(*last_sectors) > ACTIVITY_SECTORS {
        *last_sectors = now.app_sectors;
        return speed_kib > u64::from(c_min_rate);
    }
    false
}

/// The speed in KiB/s of a resync that had `mark_left` 4 KiB blocks to go
/// `elapsed_ms` ago and has `left` now (whole seconds, at least one, as
/// 8.4 computes it).
pub fn speed_kib(mark_left: u64, left: u64, elapsed_ms: u64) -> u64 {
    let secs = (elapsed_ms / 1000).max(1);
    mark_left.saturating_sub(left) / secs * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(app_sectors: u64) -> Activity {
        Activity { app_sectors, app_waiting: false }
    }

    #[test]
    fn off_when_c_min_rate_is_zero() {
        let mut last = 0;
        assert!(!should_slow_down(0, Activity { app_sectors: 1 << 20, app_waiting: true }, &mut last, 1 << 20));
        assert_eq!(last, 0);
    }

    #[test]
    fn slows_down_above_the_rate_with_activity() {
        let mut last = 0;
        assert!(should_slow_down(250, busy(65), &mut last, 251));
        assert_eq!(last, 65);
        // No new activity since: no slowing down.
        assert!(!should_slow_down(250, busy(100), &mut last, 100_000));
        assert_eq!(last, 65);
        // Activity again, but the resync is at or below the rate.
        assert!(!should_slow_down(250, busy(200), &mut last, 250));
        assert_eq!(last, 200);
    }

    #[test]
    fn waiting_writes_are_activity() {
        let mut last = 10;
        assert!(should_slow_down(250, Activity { app_sectors: 10, app_waiting: true }, &mut last, 1000));
    }

    #[test]
    fn speed_over_whole_seconds() {
        // 2560 blocks (10 MiB) in 2.5 s: counted over 2 s, as 8.4.
        assert_eq!(speed_kib(10_000, 7_440, 2_500), 5_120);
        // Under a second counts as one.
        assert_eq!(speed_kib(100, 0, 10), 400);
        // More left than at the mark (bits set meanwhile): 0.
        assert_eq!(speed_kib(5, 9, 3_000), 0);
    }
}
