// SPDX-License-Identifier: GPL-2.0
//! `resync-after` across minors (8.4's `drbd_pause_after`,
//! `drbd_resume_next`, `drbd_resync_after_changed`; the rules are
//! `drbd_include::resync_after`, host-tested): every minor is a member of
//! the driver's one [`ResyncOrder`]; whenever a member's resync starts or
//! ends, a pause is set or cleared, or a disk comes or goes, the order is
//! settled again and each member's `aftr_isp` set as the rules say (which
//! pauses or resumes its resync and tells its peer, as a user's pause does).

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

use crate::drbd_include::genl::RetCode;
use crate::drbd_include::resync_after::{self, Member};

/// A minor as the order sees it.
pub(crate) trait OrderMember: Send + Sync {
    /// Its minor, disk, option, connection and pauses now.
    fn order_view(&self) -> Member;
    /// Sets its `aftr_isp` (a state change, if it differs).
    fn set_aftr_isp(&self, on: bool);
}

/// The minors whose resyncs may wait for each other.
#[pin_data]
pub(crate) struct ResyncOrder<T: OrderMember> {
    /// Slots of the members (`None`: a deleted minor's slot).
    #[pin]
    members: Mutex<KVVec<Option<Arc<T>>>>,
}

impl<T: OrderMember> ResyncOrder<T> {
    /// An order without members.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self { members <- new_mutex!(KVVec::new(), "rdrbd::ResyncOrder::members") })
    }

    /// A new minor joins.
    pub(crate) fn add(&self, member: Arc<T>) -> Result {
        let mut members = self.members.lock();
        match members.iter_mut().find(|m| m.is_none()) {
            Some(slot) => *slot = Some(member),
            None => members.push(Some(member), GFP_KERNEL)?,
        }
        Ok(())
    }

    /// Minor `minor` is deleted; the others are settled without it.
    pub(crate) fn remove(&self, minor: u32) {
        {
            let mut members = self.members.lock();
            for slot in members.iter_mut() {
                if slot.as_ref().is_some_and(|m| m.order_view().minor == minor) {
                    *slot = None;
                }
            }
        }
        self.settle();
    }

    /// The members' views, in slot order.
    fn views(members: &[Option<Arc<T>>]) -> Result<KVVec<Member>> {
        let mut views = KVVec::with_capacity(members.len(), GFP_KERNEL)?;
        for m in members.iter().flatten() {
            views.push(m.order_view(), GFP_KERNEL)?;
        }
        Ok(views)
    }

    /// `drbd_resync_after_valid`: may `minor` wait for `after`?
    pub(crate) fn check(&self, minor: u32, after: i32) -> core::result::Result<(), RetCode> {
        let members = self.members.lock();
        let views = Self::views(&members).map_err(|_| RetCode::NoMem)?;
        resync_after::check(&views, minor, after)
    }

    /// `drbd_resync_after_changed`: every member's `aftr_isp` as the
    /// rules say now. Only `aftr_isp` changes here, and a change of it
    /// alone does not settle the order again.
    pub(crate) fn settle(&self) {
        let members = self.members.lock();
        let Ok(mut views) = Self::views(&members) else {
            pr_err!("drbd: out of memory settling the resync-after order\n");
            return;
        };
        if !resync_after::settle(&mut views) {
            return;
        }
        for (member, view) in members.iter().flatten().zip(views.iter()) {
            member.set_aftr_isp(view.aftr_isp);
        }
    }
}
