// SPDX-License-Identifier: GPL-2.0
//! The state engine (8.4's `drbd_state.c`): the states of a device and of
//! its peer device live here, under one lock, and change only through
//! [`StateEngine::change`]: the proposed change is sanitised, checked
//! against the rules (`include/src/state.rs`), committed, logged as 8.4
//! logs it, and waiters are woken. The device ([`crate::drbd_req::DeviceIo`])
//! then acts on the difference: it broadcasts the new state and lets
//! suspended I/O go.
//!
//! One peer device today; the states are kept per object
//! ([`States::device`], [`States::peer`]) so that more peers become more
//! peer-device states under the same lock, and a cluster-wide change (8.4's
//! P_STATE_CHG_REQ, DRBD 9's two-phase commit) is a [`Kind::Soft`] change
//! that first asks the peers, then commits here.

use kernel::prelude::*;
use kernel::sync::{CondVar, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::drbd_include::genl::{ConnState, Fencing, Role, StateChangeResult, WireProtocol};
use crate::drbd_include::protocol_settings::ProtocolSettings;
use crate::drbd_include::state::{self, ChangeLine, Context, Kind, PeerDeviceStates, StateSummary, States};

/// A committed change: the states before and after.
#[derive(Clone, Copy)]
pub(crate) struct Transition {
    pub(crate) old: States,
    pub(crate) new: States,
}

/// What the engine's lock protects (C's `req_lock` for the state).
struct Locked {
    states: States,
    /// Outstanding opens of `/dev/drbdN` (`open_cnt`): a Secondary has
    /// none, and demotion waits for none.
    opens: u32,
    /// The agreed protocol settings while a net config exists.
    net: Option<ProtocolSettings>,
    /// The `fencing` disk option (a rule of promotion and connection loss).
    fencing: Fencing,
    /// The peer device's states when the connection last left Connected
    /// (by Timeout, TearDown, a network failure...): what the teardown
    /// after it decides on (a new current UUID, fencing), as
    /// `after_state_ch` looks at the old state.
    peer_at_loss: Option<PeerDeviceStates>,
}

/// The states of one device and its peer device.
#[pin_data]
pub(crate) struct StateEngine {
    minor: u32,
    #[pin]
    locked: Mutex<Locked>,
    /// Notified after every committed change.
    #[pin]
    changed: CondVar,
}

impl StateEngine {
    /// A new minor's states: Secondary, Diskless, StandAlone.
    pub(crate) fn new(minor: u32) -> impl PinInit<Self> {
        pin_init!(Self {
            minor,
            locked <- new_mutex!(Locked { states: States::UNCONFIGURED, opens: 0, net: None, fencing: Fencing::DontCare, peer_at_loss: None },
                "rdrbd::StateEngine::locked"),
            changed <- new_condvar!("rdrbd::StateEngine::changed"),
        })
    }

    /// The current states.
    pub(crate) fn states(&self) -> States {
        self.locked.lock().states
    }

    /// The wire protocol while a net config exists.
    pub(crate) fn protocol(&self) -> Option<WireProtocol> {
        self.locked.lock().net.map(|n| n.wire_protocol)
    }

    /// Records the protocol settings (net config set, changed by either
    /// side, or removed): `allow-two-primaries` is a rule of the state.
    pub(crate) fn set_protocol(&self, net: Option<ProtocolSettings>) {
        self.locked.lock().net = net;
    }

    /// The `fencing` disk option.
    pub(crate) fn fencing(&self) -> Fencing {
        self.locked.lock().fencing
    }

    /// Sets the `fencing` disk option (attach, disk-options).
    pub(crate) fn set_fencing(&self, policy: Fencing) {
        self.locked.lock().fencing = policy;
    }

    /// `__drbd_set_state`: applies `change` to a copy of the states,
    /// sanitises it, checks it as `kind` says (a soft change's context is
    /// the engine's: the opens, `allow-two-primaries`), and commits it; logs the
    /// change (or, refused, why) and wakes waiters. Nothing else may run
    /// under the lock: `change` only edits the copy.
    pub(crate) fn change(&self, kind: Kind, change: impl FnOnce(&mut States)) -> Result<Transition, StateChangeResult> {
        self.change_unless(kind, change, |_| false)
    }

    /// The first step of a change that may need the peer's consent
    /// (`drbd_req_state` before it asks): the change as [`Self::change`]
    /// would make it now, checked; nothing committed. A refusal is logged.
    pub(crate) fn preview(&self, kind: Kind, change: impl FnOnce(&mut States)) -> Result<Transition, StateChangeResult> {
        self.change_unless(kind, change, |_| true)
    }

    /// [`Self::change`], committing only if `dry_run` says no for the
    /// checked transition.
    fn change_unless(
        &self,
        kind: Kind,
        change: impl FnOnce(&mut States),
        dry_run: impl FnOnce(&Transition) -> bool,
    ) -> Result<Transition, StateChangeResult> {
        let (outcome, warning) = {
            let mut locked = self.locked.lock();
            let old = locked.states;
            let mut proposed = old;
            change(&mut proposed);
            let (new, warning) = state::sanitize(proposed);
            let kind = match kind {
                Kind::Soft(_) => Kind::Soft(Context {
                    two_primaries: locked.net.is_some_and(|n| n.two_primaries),
                    opened: locked.opens != 0,
                }),
                Kind::Hard => Kind::Hard,
            };
            match state::check(&old, &new, kind) {
                Ok(()) if dry_run(&Transition { old, new }) => return Ok(Transition { old, new }),
                Ok(()) => {
                    locked.states = new;
                    let (was, is) = (old.peer.conn >= ConnState::Connected, new.peer.conn >= ConnState::Connected);
                    if was && !is {
                        locked.peer_at_loss = Some(old.peer);
                    } else if is && !was {
                        locked.peer_at_loss = None;
                    }
                    (Ok(Transition { old, new }), warning)
                }
                Err(e) => (Err((e, old, new)), None),
            }
        };
        match outcome {
            Ok(t) => {
                self.changed.notify_all();
                if let Some(w) = warning {
                    pr_warn!("drbd{}: {}\n", self.minor, w.text());
                }
                let line = ChangeLine { old: t.old.word(), new: t.new.word() };
                if !line.is_empty() {
                    pr_info!("drbd{}: {}\n", self.minor, line);
                }
                Ok(t)
            }
            Err((e, old, new)) => {
                // print_st_err: a transient refusal is retried, not logged.
                if e != StateChangeResult::InTransientState {
                    pr_err!("drbd{}: State change failed: {}\n", self.minor, e.text());
                    pr_err!("drbd{}:  state = {}\n", self.minor, StateSummary(old.word()));
                    pr_err!("drbd{}: wanted = {}\n", self.minor, StateSummary(new.word()));
                }
                Err(e)
            }
        }
    }

    /// The peer device's states before the connection was lost, once.
    pub(crate) fn take_peer_at_loss(&self) -> Option<PeerDeviceStates> {
        self.locked.lock().peer_at_loss.take()
    }

    /// Waits while `busy(states)` holds, at most `timeout_ms`; returns the
    /// states then.
    pub(crate) fn wait_while(&self, busy: impl Fn(&States) -> bool, timeout_ms: u32) -> States {
        let deadline = crate::kernel_glue::now_ms().saturating_add(u64::from(timeout_ms));
        let mut locked = self.locked.lock();
        while busy(&locked.states) {
            let left = deadline.saturating_sub(crate::kernel_glue::now_ms());
            if left == 0 {
                break;
            }
            let jiffies = kernel::time::msecs_to_jiffies(u32::try_from(left).unwrap_or(u32::MAX));
            let _ = self.changed.wait_interruptible_timeout(&mut locked, jiffies);
        }
        locked.states
    }

    /// `drbd_open`: a Secondary can be opened neither for writing (EROFS)
    /// nor for reading (EMEDIUMTYPE).
    pub(crate) fn open(&self, write: bool) -> Result {
        let mut locked = self.locked.lock();
        if locked.states.device.role != Role::Primary {
            return Err(if write { EROFS } else { Error::from_errno(-(kernel::bindings::EMEDIUMTYPE as i32)) });
        }
        locked.opens = locked.opens.checked_add(1).ok_or(EBUSY)?;
        Ok(())
    }

    /// `drbd_release`.
    pub(crate) fn release(&self) {
        let mut locked = self.locked.lock();
        locked.opens = locked.opens.saturating_sub(1);
    }
}
