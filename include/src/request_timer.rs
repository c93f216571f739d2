//! When a peer that still answers pings has stopped finishing our writes
//! (8.4's request timer, `request_timer_fn` / `net_timeout_reached`), and
//! how many blocked sends on the data socket we sit out before giving up
//! (`we_should_drop_the_connection`, the `ko-count`).
//!
//! Both use the net options `timeout` (tenths of a second) and `ko-count`:
//! a write whose acknowledgement (or whose epoch's barrier ack) has not
//! come within `ko-count * timeout` of its sending ends the connection
//! (conn Timeout), so the Primary never waits forever for a Secondary
//! that stopped writing; each send that blocks for `timeout` counts
//! `ko-count` down, and the connection is dropped when it reaches zero.
//! A `ko-count` or `timeout` of 0 turns the request timer off, as in 8.4.
//!
//! Times are milliseconds of a monotonic clock, compared with wrapping
//! arithmetic like jiffies.

/// The net options both decisions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetTimeouts {
    /// `timeout`, tenths of a second.
    pub timeout_ds: u32,
    /// `ko-count`.
    pub ko_count: u32,
}

impl NetTimeouts {
    /// `ko-count * timeout` in milliseconds (8.4's `ent`); `None` when
    /// either is 0: the request timer is off.
    pub fn effective_ms(&self) -> Option<u64> {
        let ms = u64::from(self.timeout_ds).saturating_mul(100).saturating_mul(u64::from(self.ko_count));
        (ms != 0).then_some(ms)
    }
}

/// Whether `a` is later than `b` on a wrapping clock (`time_after`).
pub fn time_after(a: u64, b: u64) -> bool {
    // Reinterpreting the wrapped difference as signed is the point here.
    (b.wrapping_sub(a) as i64) < 0
}

/// Milliseconds from `earlier` to `later` (0 if `later` is not later).
pub fn elapsed_ms(later: u64, earlier: u64) -> u64 {
    if time_after(later, earlier) {
        later.wrapping_sub(earlier)
    } else {
        0
    }
}

/// The oldest write the peer has not finished: the head of the transfer
/// log (8.4's `req_not_net_done`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OldestWrite {
    /// When it was handed to the data socket (`pre_send_jif`).
    pub sent_at_ms: u64,
    /// Its P_WRITE_ACK / P_RECV_ACK has not come yet (`RQ_NET_PENDING`;
    /// never for protocol A).
    pub ack_pending: bool,
    /// The epoch it was sent in.
    pub epoch: u32,
}

/// What the sender has done lately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderView {
    /// The epoch new writes go into (still open: no P_BARRIER for it).
    pub current_epoch: u32,
    /// When the last P_BARRIER went out (`last_sent_barrier_jif`).
    pub last_barrier_sent_ms: u64,
    /// When the connection was established (`last_reconnect_jif`): the
    /// peer gets a full `ko-count * timeout` after that.
    pub connected_at_ms: u64,
}

/// The request timer's finding about the oldest unfinished write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetVerdict {
    /// Nothing overdue (or nothing to blame the peer for).
    InTime,
    /// The peer has not acknowledged the write for `waited_ms` ("Remote
    /// failed to finish a request within ..."): the connection times out.
    RequestOverdue {
        /// Since the write was sent.
        waited_ms: u64,
    },
    /// The write is acknowledged (or protocol A), but the barrier closing
    /// its epoch has not been answered for `waited_ms` ("Remote failed to
    /// answer a P_BARRIER ..."): the connection times out.
    BarrierOverdue {
        /// Since the last barrier was sent.
        waited_ms: u64,
    },
    /// The write is overdue, but its epoch was never closed: our own
    /// sender is stuck, not the peer ("We did not send a P_BARRIER ...");
    /// worth a warning, not a disconnect.
    BarrierNotSent {
        /// Since the write was sent.
        waited_ms: u64,
    },
}

impl NetVerdict {
    /// Whether the connection must be declared lost (conn Timeout).
    pub fn drops_connection(&self) -> bool {
        matches!(self, Self::RequestOverdue { .. } | Self::BarrierOverdue { .. })
    }
}

/// `net_timeout_reached`: is the oldest unfinished write `oldest` overdue
/// at `now_ms`, given the effective timeout `ent_ms` (`ko-count * timeout`)?
pub fn net_timeout_reached(oldest: Option<OldestWrite>, sender: &SenderView, now_ms: u64, ent_ms: u64) -> NetVerdict {
    let Some(oldest) = oldest else { return NetVerdict::InTime };
    if !time_after(now_ms, oldest.sent_at_ms.wrapping_add(ent_ms)) {
        return NetVerdict::InTime;
    }
    // Just (re)connected: writes sent before that are not this peer's fault.
    if !time_after(now_ms, sender.connected_at_ms.wrapping_add(ent_ms)) {
        return NetVerdict::InTime;
    }
    let waited_ms = elapsed_ms(now_ms, oldest.sent_at_ms);
    if oldest.ack_pending {
        return NetVerdict::RequestOverdue { waited_ms };
    }
    if oldest.epoch == sender.current_epoch {
        return NetVerdict::BarrierNotSent { waited_ms };
    }
    // The write's own time may be much older than the barrier that asks
    // for it (a sender blocked, then sending a lot at once): blame the
    // peer only for a barrier unanswered for the whole timeout.
    if time_after(now_ms, sender.last_barrier_sent_ms.wrapping_add(ent_ms)) {
        return NetVerdict::BarrierOverdue { waited_ms: elapsed_ms(now_ms, sender.last_barrier_sent_ms) };
    }
    NetVerdict::InTime
}

/// When the request timer should look again (8.4 re-arms its timer for
/// the moment the oldest write becomes overdue, else a whole `ent_ms`
/// from now).
pub fn next_check_ms(oldest: Option<&OldestWrite>, now_ms: u64, ent_ms: u64) -> u64 {
    match oldest {
        Some(w) if time_after(w.sent_at_ms.wrapping_add(ent_ms), now_ms) => w.sent_at_ms.wrapping_add(ent_ms),
        _ => now_ms.wrapping_add(ent_ms),
    }
}

/// What to do after a send on the data socket blocked for `timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendTimeout {
    /// Try again; `ko_left` more such timeouts are tolerated ("sock_sendmsg
    /// time expired, ko = N").
    Retry {
        /// Remaining count.
        ko_left: u32,
    },
    /// `ko-count` timeouts in a row: drop the connection.
    Drop,
}

/// The ko-count of one send on the data socket (8.4 reloads it from the
/// net options at the start of every `drbd_send`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KoCounter {
    left: u32,
}

impl KoCounter {
    /// A fresh count of `ko_count`.
    pub fn new(ko_count: u32) -> Self {
        Self { left: ko_count }
    }

    /// A send timed out. With `ko-count` 0 the count never runs out (8.4's
    /// `!--ko_count` wraps), so such sends are retried without end.
    pub fn send_timed_out(&mut self) -> SendTimeout {
        self.left = self.left.wrapping_sub(1);
        if self.left == 0 {
            SendTimeout::Drop
        } else {
            SendTimeout::Retry { ko_left: self.left }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENT: u64 = 3000;

    fn sender(current_epoch: u32, last_barrier_sent_ms: u64) -> SenderView {
        SenderView { current_epoch, last_barrier_sent_ms, connected_at_ms: 0 }
    }

    fn write(sent_at_ms: u64, ack_pending: bool, epoch: u32) -> Option<OldestWrite> {
        Some(OldestWrite { sent_at_ms, ack_pending, epoch })
    }

    #[test]
    fn effective_timeout_is_ko_count_times_timeout() {
        assert_eq!(NetTimeouts { timeout_ds: 60, ko_count: 7 }.effective_ms(), Some(42_000));
        assert_eq!(NetTimeouts { timeout_ds: 60, ko_count: 0 }.effective_ms(), None);
        assert_eq!(NetTimeouts { timeout_ds: 0, ko_count: 7 }.effective_ms(), None);
    }

    #[test]
    fn nothing_unfinished_is_in_time() {
        assert_eq!(net_timeout_reached(None, &sender(1, 0), 1_000_000, ENT), NetVerdict::InTime);
    }

    #[test]
    fn unacked_write_times_out_after_ent() {
        let s = sender(2, 10_000);
        assert_eq!(net_timeout_reached(write(10_000, true, 1), &s, 13_000, ENT), NetVerdict::InTime);
        let v = net_timeout_reached(write(10_000, true, 1), &s, 13_001, ENT);
        assert_eq!(v, NetVerdict::RequestOverdue { waited_ms: 3001 });
        assert!(v.drops_connection());
    }

    #[test]
    fn fresh_connection_gets_a_full_timeout() {
        let s = SenderView { current_epoch: 2, last_barrier_sent_ms: 0, connected_at_ms: 12_000 };
        assert_eq!(net_timeout_reached(write(5_000, true, 1), &s, 14_000, ENT), NetVerdict::InTime);
        assert!(net_timeout_reached(write(5_000, true, 1), &s, 15_001, ENT).drops_connection());
    }

    #[test]
    fn acked_write_in_open_epoch_is_our_fault() {
        let v = net_timeout_reached(write(10_000, false, 3), &sender(3, 0), 20_000, ENT);
        assert_eq!(v, NetVerdict::BarrierNotSent { waited_ms: 10_000 });
        assert!(!v.drops_connection());
    }

    #[test]
    fn unanswered_barrier_counts_from_its_sending() {
        // The write is old, but its barrier went out only recently.
        assert_eq!(net_timeout_reached(write(1_000, false, 3), &sender(4, 9_000), 10_000, ENT), NetVerdict::InTime);
        let v = net_timeout_reached(write(1_000, false, 3), &sender(4, 9_000), 12_001, ENT);
        assert_eq!(v, NetVerdict::BarrierOverdue { waited_ms: 3001 });
        assert!(v.drops_connection());
    }

    #[test]
    fn clock_wraps() {
        let sent = u64::MAX - 1000;
        let s = SenderView { current_epoch: 2, last_barrier_sent_ms: sent, connected_at_ms: sent.wrapping_sub(10_000) };
        assert_eq!(net_timeout_reached(write(sent, true, 1), &s, 1000, ENT), NetVerdict::InTime);
        assert_eq!(net_timeout_reached(write(sent, true, 1), &s, 2500, ENT), NetVerdict::RequestOverdue { waited_ms: 3501 });
    }

    #[test]
    fn next_check_is_when_the_oldest_becomes_overdue() {
        let w = OldestWrite { sent_at_ms: 10_000, ack_pending: true, epoch: 1 };
        assert_eq!(next_check_ms(Some(&w), 11_000, ENT), 13_000);
        // Already overdue (e.g. not blamed on the peer): a whole ent later.
        assert_eq!(next_check_ms(Some(&w), 14_000, ENT), 17_000);
        assert_eq!(next_check_ms(None, 14_000, ENT), 17_000);
    }

    #[test]
    fn ko_count_runs_out() {
        let mut ko = KoCounter::new(3);
        assert_eq!(ko.send_timed_out(), SendTimeout::Retry { ko_left: 2 });
        assert_eq!(ko.send_timed_out(), SendTimeout::Retry { ko_left: 1 });
        assert_eq!(ko.send_timed_out(), SendTimeout::Drop);
        let mut one = KoCounter::new(1);
        assert_eq!(one.send_timed_out(), SendTimeout::Drop);
    }

    #[test]
    fn ko_count_zero_never_drops() {
        let mut ko = KoCounter::new(0);
        assert_eq!(ko.send_timed_out(), SendTimeout::Retry { ko_left: u32::MAX });
        assert!(matches!(ko.send_timed_out(), SendTimeout::Retry { .. }));
    }
}
