//! `disk-timeout`: when the backing disk has not finished a request for
//! that long, it counts as failed and is detached (8.4's request timer,
//! "Local backing device failed to meet the disk-timeout", then
//! `DRBD_FORCE_DETACH`).
//!
//! Requests are not timed one by one (that would mean a timestamp and a
//! list per request, or a scan of all of them per tick). Instead each
//! request in flight to the disk is counted in one of [`AGE_SLOTS`] slots,
//! the slot of the generation current when it was submitted; its
//! completion uncounts it. Every [`tick_ms`] the generation advances and
//! its slot is reused: whatever is still counted there was submitted at
//! least `AGE_SLOTS - 1` ticks, the whole disk-timeout, ago. So a request
//! is declared late after between 1 and `AGE_SLOTS / (AGE_SLOTS - 1)`
//! times the disk-timeout, never before; the cost is one atomic add per
//! submission and completion and a constant amount of work per tick.

/// Generations a request's age is counted in.
pub const AGE_SLOTS: usize = 4;

/// The tick between generations for a `disk-timeout` of `timeout_ds`
/// tenths of a second; `None` when disk-timeout is off (0).
pub fn tick_ms(timeout_ds: u32) -> Option<u64> {
    if timeout_ds == 0 {
        return None;
    }
    let timeout_ms = u64::from(timeout_ds).saturating_mul(100);
    let ticks = (AGE_SLOTS as u64).saturating_sub(1);
    Some(timeout_ms.checked_div(ticks).unwrap_or(timeout_ms).max(1))
}

/// The slot of requests submitted in `generation`.
pub fn slot_of(generation: u32) -> usize {
    // AGE_SLOTS is a small constant: the remainder fits.
    generation.checked_rem(AGE_SLOTS as u32).unwrap_or(0) as usize
}

/// At a tick that found `left` requests still counted in the slot about
/// to be reused: has the disk missed the disk-timeout? Not within one
/// disk-timeout of the attach (8.4 measures from `last_reattach_jif`),
/// which requests from before it cannot have aged through.
pub fn missed(left: u32, timeout_ds: u32, now_ms: u64, attached_at_ms: u64) -> bool {
    let timeout_ms = u64::from(timeout_ds).saturating_mul(100);
    left != 0 && timeout_ds != 0 && now_ms.saturating_sub(attached_at_ms) >= timeout_ms
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn off_at_zero() {
        assert_eq!(tick_ms(0), None);
        assert!(!missed(5, 0, 1_000_000, 0));
    }

    #[test]
    fn ticks_split_the_timeout() {
        assert_eq!(tick_ms(30), Some(1000));
        assert_eq!(tick_ms(1), Some(33));
        assert_eq!(tick_ms(u32::MAX).map(|t| t > 0), Some(true));
    }

    #[test]
    fn not_within_a_timeout_of_the_attach() {
        assert!(!missed(1, 20, 1_999, 0));
        assert!(missed(1, 20, 2_000, 0));
        assert!(!missed(0, 20, 5_000, 0));
    }

    /// Requests with submit and completion times (ms) against a simulated
    /// ticker: a request is reported only if it was older than the
    /// timeout, and every request older than 4/3 timeout plus a tick is.
    #[test]
    fn reports_late_requests_and_only_those() {
        let timeout_ds = 30;
        let timeout = 3_000u64;
        let tick = tick_ms(timeout_ds).unwrap();
        let mut rng = crate::test_rng::XorShift(99);
        for _ in 0..200 {
            let reqs: Vec<(u64, u64)> = (0..20)
                .map(|_| {
                    let start = (rng.next() % 20_000) + 1;
                    (start, start + rng.next() % 6_000)
                })
                .collect();
            let mut counts = [0u32; AGE_SLOTS];
            let mut generation = 0u32;
            let mut slot_of_req = std::vec![None; reqs.len()];
            let mut reported_at = None;
            for now in 0..40_000u64 {
                for (i, &(start, end)) in reqs.iter().enumerate() {
                    if now == start {
                        let s = slot_of(generation);
                        counts[s] += 1;
                        slot_of_req[i] = Some(s);
                    }
                    if now == end {
                        if let Some(s) = slot_of_req[i].take() {
                            counts[s] -= 1;
                        }
                    }
                }
                if now > 0 && now % tick == 0 {
                    generation += 1;
                    let left = counts[slot_of(generation)];
                    if missed(left, timeout_ds, now, 0) {
                        reported_at = Some(now);
                        break;
                    }
                }
            }
            match reported_at {
                Some(t) => {
                    // Some request in flight at t is at least a timeout old.
                    assert!(reqs.iter().any(|&(s, e)| s + timeout <= t && e > t), "early report at {t}: {reqs:?}");
                }
                None => {
                    // No request outlived 4/3 timeout plus a tick.
                    let limit = timeout * 4 / 3 + tick;
                    assert!(reqs.iter().all(|&(s, e)| e - s < limit), "missed a late request: {reqs:?}");
                }
            }
        }
    }
}
