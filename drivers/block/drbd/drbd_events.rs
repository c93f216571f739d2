//! DRBD_EVENT broadcasts: every change of a device's state word (role,
//! disk, connection, suspension) goes to the `events` multicast group with
//! the state before and after, as C DRBD's `drbd_bcast_event` sends it
//! from `after_state_ch` (`drbdsetup events` prints these).
//!
//! State changes happen both under the registry lock (configuration
//! requests) and in connection threads (which never take that lock), so
//! the device itself notices them: `DeviceIo` calls [`StateEvents::publish`]
//! after each change, and this compares with the last state broadcast.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::new_mutex;
use kernel::sync::Mutex;

use crate::drbd_include::genl::{self as api, cmd, state_info, CfgContext, ReplyBuilder, StateInfo};
use crate::kernel_glue::genl::multicast_event;
use crate::ResourceName;

/// Sequence numbers of broadcasts, shared by all devices as in C DRBD
/// (`drbd_genl_seq`); listeners see gaps when they miss messages.
static EVENT_SEQ: AtomicU32 = AtomicU32::new(2);

/// Room for one broadcast: header, CFG_CONTEXT with a 127-byte resource
/// name and STATE_INFO come to about 330 bytes.
const EVENT_BUF: usize = 512;

/// Which device broadcasts are about.
#[derive(Clone, Copy)]
pub(crate) struct DeviceIdent {
    pub(crate) minor: u32,
    pub(crate) volume: u32,
    pub(crate) resource: ResourceName,
}

/// The broadcasting side of one device.
#[pin_data]
pub(crate) struct StateEvents {
    ident: DeviceIdent,
    /// The state word last broadcast; held while broadcasting so that
    /// listeners see changes in the order they happened.
    #[pin]
    last: Mutex<u32>,
    /// Open [`StateEvents::batch`] scopes: a multi-field change is one
    /// event, as one `__drbd_set_state` is in C.
    batch: AtomicU32,
}

/// Counters that go with a state broadcast.
#[derive(Clone, Copy, Default)]
pub(crate) struct EventCounters {
    pub(crate) capacity: u64,
    pub(crate) read_sectors: u64,
    pub(crate) written_sectors: u64,
}

impl StateEvents {
    /// A device that starts in `initial` (a new minor: Diskless Secondary).
    pub(crate) fn new(ident: DeviceIdent, initial: u32) -> impl PinInit<Self> {
        pin_init!(Self {
            ident,
            last <- new_mutex!(initial, "rdrbd::StateEvents::last"),
            batch: AtomicU32::new(0),
        })
    }

    /// Starts a change of several fields; [`StateEvents::end_batch`] ends
    /// it, and only then is the change published.
    pub(crate) fn begin_batch(&self) {
        self.batch.fetch_add(1, Ordering::SeqCst);
    }

    /// Ends a [`StateEvents::begin_batch`] scope.
    pub(crate) fn end_batch(&self) {
        let _ = self.batch.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Broadcasts a change if `now()` differs from the last state sent.
    /// `now` runs under this device's event lock, so it must not take it.
    pub(crate) fn publish(&self, now: impl FnOnce() -> u32, counters: EventCounters) {
        if self.batch.load(Ordering::SeqCst) != 0 {
            return;
        }
        let mut last = self.last.lock();
        let new = now();
        if new == *last {
            return;
        }
        let prev = core::mem::replace(&mut *last, new);
        if let Err(e) = self.broadcast(prev, new, counters) {
            pr_warn!("drbd{}: error {} while broadcasting a state change\n", self.ident.minor, e.to_errno());
        }
    }

    fn broadcast(&self, prev: u32, new: u32, counters: EventCounters) -> Result {
        let mut buf = [0u8; EVENT_BUF];
        let too_big = |_| Error::from_errno(-(kernel::bindings::EMSGSIZE as i32));
        let mut msg = ReplyBuilder::new(&mut buf, self.ident.minor).map_err(too_big)?;
        msg.put_cfg_context(&CfgContext {
            volume: Some(self.ident.volume),
            resource_name: Some(self.ident.resource.as_bytes()),
            my_addr: None,
            peer_addr: None,
        })
        .map_err(too_big)?;
        msg.put_state_info(&StateInfo {
            sib_reason: state_info::SIB_STATE_CHANGE,
            current_state: new,
            prev_state: Some(prev),
            new_state: Some(new),
            capacity: counters.capacity,
            read_cnt: counters.read_sectors,
            writ_cnt: counters.written_sectors,
            ..StateInfo::default()
        })
        .map_err(too_big)?;
        let seq = EVENT_SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        multicast_event(cmd::EVENT, seq, msg.bytes())
    }
}

/// The state word of a new minor: Diskless, Secondary, StandAlone.
pub(crate) fn unconfigured_state() -> u32 {
    api::State {
        role: api::Role::Secondary,
        peer: api::Role::Unknown,
        conn: api::ConnState::StandAlone,
        disk: api::DiskState::Diskless,
        pdsk: api::DiskState::DUnknown,
        susp: false,
        aftr_isp: false,
        peer_isp: false,
        user_isp: false,
        susp_nod: false,
        susp_fen: false,
    }
    .to_u32()
}
