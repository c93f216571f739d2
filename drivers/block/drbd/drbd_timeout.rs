//! The request timer of a connection (8.4's `request_timer_fn`, its
//! network part): a peer that still answers pings but has stopped
//! finishing our writes must not keep the Primary waiting forever. When
//! the oldest write it has not finished is older than ko-count * timeout,
//! the connection is declared lost (conn Timeout); the connection's
//! teardown then marks the unfinished writes out of sync and completes
//! them, and the next handshake resyncs them. The decision is
//! `drbd_include::request_timer`; the meta-socket thread calls
//! [`RequestTimer::check`] between packets.

use kernel::prelude::*;

use crate::drbd_conn::{ConnShared, ConnVolume};
use crate::drbd_net::NetError;
use crate::drbd_include::genl::ConnState;
use crate::drbd_include::request_timer::{time_after, NetVerdict};

/// How often to look while the timer is off (ko-count or timeout 0), so
/// that turning it on with `net-options` takes effect soon.
const OFF_RECHECK_MS: u64 = 1000;

/// When the next check is due.
pub(crate) struct RequestTimer {
    next_check_ms: u64,
}

impl RequestTimer {
    /// A timer whose first check is due at `now_ms`.
    pub(crate) fn new(now_ms: u64) -> Self {
        Self { next_check_ms: now_ms }
    }

    /// Checks the oldest unfinished write if a check is due at `now_ms`;
    /// returns when the next one is. `Err`: the peer timed out (logged
    /// with 8.4's words, the view shows Timeout): end the connection.
    pub(crate) fn check(&mut self, shared: &ConnShared, now_ms: u64) -> core::result::Result<u64, NetError> {
        if time_after(self.next_check_ms, now_ms) {
            return Ok(self.next_check_ms);
        }
        let timeouts = shared.timing.net_timeouts();
        let Some(ent_ms) = timeouts.effective_ms() else {
            self.next_check_ms = now_ms.wrapping_add(OFF_RECHECK_MS);
            return Ok(self.next_check_ms);
        };
        let Some(replica) = shared.volume.as_ref().and_then(|v| v.io.replica()) else {
            self.next_check_ms = now_ms.wrapping_add(ent_ms);
            return Ok(self.next_check_ms);
        };
        let (verdict, next) = replica.check_overdue(now_ms, ent_ms);
        self.next_check_ms = next;
        let name = shared.name.as_str();
        let (ko, timeout) = (timeouts.ko_count, timeouts.timeout_ds);
        match verdict {
            NetVerdict::InTime => return Ok(next),
            NetVerdict::BarrierNotSent { waited_ms } => {
                pr_warn!("{}: We did not send a P_BARRIER for {}ms > ko-count ({}) * timeout ({} * 0.1s); drbd kernel thread blocked?\n",
                    name, waited_ms, ko, timeout);
                return Ok(next);
            }
            NetVerdict::RequestOverdue { waited_ms } => {
                pr_warn!("{}: Remote failed to finish a request within {}ms > ko-count ({}) * timeout ({} * 0.1s)\n",
                    name, waited_ms, ko, timeout);
            }
            NetVerdict::BarrierOverdue { waited_ms } => {
                pr_warn!("{}: Remote failed to answer a P_BARRIER (sent {}ms ago) within ko-count ({}) * timeout ({} * 0.1s)\n",
                    name, waited_ms, ko, timeout);
            }
        }
        declare_timeout(shared);
        Err(NetError::Refused)
    }
}

/// `_conn_request_state(connection, NS(conn, C_TIMEOUT), ...)`: shown
/// until the connection thread has torn the connection down.
fn declare_timeout(shared: &ConnShared) {
    let Some(ConnVolume { io, .. }) = &shared.volume else { return };
    io.set_state(|s| s.peer.conn = ConnState::Timeout);
}
