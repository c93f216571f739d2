// SPDX-License-Identifier: GPL-2.0
//! A device's writes in flight by the sectors they cover (8.4's
//! `write_requests` tree; the rules are `drbd_include::write_conflicts`).
//!
//! A local write is admitted before it goes to the disk: one overlapping
//! a tracked write waits for it (in the submitter thread, never in
//! `submit_bio`). It leaves once every part of it is done: its clone to
//! the backing disk and each peer token taken for it (sent, acked, or
//! dropped with the connection). Parts end in any context, interrupt
//! context included, so they only count down an atomic word per slot and
//! wake the waiters; whoever takes the lock next sweeps the finished
//! writes out. Peer writes are tracked by the receiver from their arrival
//! until they are answered.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kernel::new_spinlock;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Mutex, SpinLock};

use crate::drbd_include::write_conflicts::{Admission, Origin, PeerVerdict, Range, Write, WriteIntervals};
use crate::kernel_glue::block::PeerToken;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// Writes tracked at most (local and peer): past that, local writes wait.
const SLOTS: usize = 4096;

/// Bits of a slot's progress word: parts still to come (low 16 bits), and
/// whether the local disk write is done.
const PARTS: u32 = 0xffff;
const LOCAL_DONE: u32 = 1 << 16;

/// An interval number: a slot + 1 (0 means "not tracked" to the glue).
pub(crate) type Interval = u32;

fn slot_of(interval: Interval) -> Option<u16> {
    u16::try_from(interval.checked_sub(1)?).ok()
}

/// `SLOTS` values made by `value` (for types that are not `Clone`).
fn filled<T>(value: impl Fn() -> T) -> Result<KVVec<T>> {
    let mut v = KVVec::with_capacity(SLOTS, GFP_KERNEL)?;
    for _ in 0..SLOTS {
        v.push(value(), GFP_KERNEL)?;
    }
    Ok(v)
}

fn interval_of(slot: u16) -> Interval {
    u32::from(slot) + 1
}

/// What a finished peer write leaves to do.
pub(crate) struct PeerDone {
    /// Postponed local writes it overlapped are to be restarted.
    pub(crate) restarts: bool,
    pub(crate) range: Range,
}

/// The writes in flight on one device.
#[pin_data]
pub(crate) struct WriteConflicts {
    #[pin]
    tracked: SpinLock<WriteIntervals<KVVec<Option<Write>>>>,
    /// Per slot: what is left of a local write (see `PARTS`, `LOCAL_DONE`).
    progress: KVVec<AtomicU32>,
    /// A local write's parts all ended since the last sweep.
    finished: AtomicBool,
    /// The ack tokens of postponed writes (P_RETRY_WRITE), by slot: they
    /// keep the bio, and its data, for the write's restart.
    #[pin]
    postponed: Mutex<KVVec<Option<PeerToken>>>,
    /// Woken when a write leaves, finishes locally or is postponed.
    #[pin]
    changed: WaitQueue,
}

impl WriteConflicts {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            tracked <- new_spinlock!(WriteIntervals::new(KVVec::from_elem(None, SLOTS, GFP_KERNEL)?),
                "rdrbd::WriteConflicts::tracked"),
            progress: filled(|| AtomicU32::new(0))?,
            finished: AtomicBool::new(false),
            postponed <- new_mutex!(filled(|| None)?, "rdrbd::WriteConflicts::postponed"),
            changed <- new_wait_queue!("rdrbd::WriteConflicts::changed"),
        }? Error)
    }

    fn progress(&self, slot: u16) -> Option<&AtomicU32> {
        self.progress.get(usize::from(slot))
    }

    /// Takes the finished local writes out and, with `flags`, brings the
    /// others' `local_pending` up to date. The caller holds the lock.
    fn sweep(&self, t: &mut WriteIntervals<KVVec<Option<Write>>>, flags: bool) {
        // Cleared first: a write finishing during the pass sets it again.
        if !self.finished.swap(false, Ordering::AcqRel) && !flags {
            return;
        }
        t.retain(|slot, w| {
            if w.origin != Origin::Local {
                return true;
            }
            let p = self.progress(slot).map_or(0, |p| p.load(Ordering::Acquire));
            w.local_pending = p & LOCAL_DONE == 0;
            p & PARTS != 0
        });
    }

    /// Admits a local write of `size` bytes at `sector` if nothing in
    /// flight overlaps it and a slot is free: its interval number, with
    /// one part (the local write) counted.
    fn try_admit(&self, sector: u64, size: u32) -> Admission {
        let mut t = self.tracked.lock();
        self.sweep(&mut t, false);
        let admission = t.admit_local(sector, size);
        if let Admission::Admitted(slot) = admission {
            if let Some(p) = self.progress(slot) {
                p.store(1, Ordering::Release);
            }
        }
        admission
    }

    /// [`Self::try_admit`] for the bio path: `None` if a write in flight
    /// overlaps it (it is for the submitter thread to wait). While every
    /// slot is taken it waits for one, as the sender's full queue makes
    /// submitters wait: the back pressure that keeps memory reclaim from
    /// queueing writes without bound (swap on `/dev/drbdN`). That wait
    /// is for writes submitted earlier, whose clones already left this
    /// task's bio list.
    pub(crate) fn admit_or_defer(&self, sector: u64, size: u32) -> Option<Interval> {
        let mut admitted = None;
        self.changed.wait_until(|| match self.try_admit(sector, size) {
            Admission::Admitted(slot) => {
                admitted = Some(interval_of(slot));
                true
            }
            Admission::Conflict => true,
            Admission::Full => false,
        });
        admitted
    }

    /// [`Self::try_admit`] without waiting: `None` if it would have to.
    pub(crate) fn admit_now(&self, sector: u64, size: u32) -> Option<Interval> {
        match self.try_admit(sector, size) {
            Admission::Admitted(slot) => Some(interval_of(slot)),
            Admission::Conflict | Admission::Full => None,
        }
    }

    /// [`Self::try_admit`], waiting until it can be (sleeps).
    pub(crate) fn admit_waiting(&self, sector: u64, size: u32) -> Interval {
        let mut admitted = 0;
        self.changed.wait_until(|| {
            if let Admission::Admitted(slot) = self.try_admit(sector, size) {
                admitted = interval_of(slot);
            }
            admitted != 0
        });
        admitted
    }

    /// A resync request of ours for `size` bytes at `sector` is to be sent
    /// (we are SyncTarget, perhaps Primary): waits until every local write
    /// it overlaps is done on both nodes, so that the source reads their
    /// data, and a slot is free; then tracks it, so that local writes into
    /// it wait until its reply is written. `None` if `give_up` said so
    /// first (checked on every wake-up).
    pub(crate) fn admit_resync(&self, sector: u64, size: u32, give_up: impl Fn() -> bool) -> Option<Interval> {
        let mut admitted = None;
        self.changed.wait_until(|| {
            let mut t = self.tracked.lock();
            self.sweep(&mut t, false);
            if let Admission::Admitted(slot) = t.admit_resync(sector, size) {
                admitted = Some(interval_of(slot));
            }
            admitted.is_some() || give_up()
        });
        admitted
    }

    /// The resync request at `sector` is answered (its reply written, or
    /// none coming): local writes into its range may go.
    pub(crate) fn resync_answered(&self, sector: u64) {
        let removed = {
            let mut t = self.tracked.lock();
            t.resync_at(sector).and_then(|slot| t.remove(slot))
        };
        if removed.is_some() {
            self.changed.wake_all();
        }
    }

    /// The connection is gone and its writes are answered: no resync
    /// request will be.
    pub(crate) fn release_resync(&self) {
        self.tracked.lock().retain(|_, w| w.origin != Origin::Resync);
        self.changed.wake_all();
    }

    /// One more part of `interval` (a peer token about to be taken).
    pub(crate) fn add_part(&self, interval: Interval) {
        if let Some(p) = slot_of(interval).and_then(|s| self.progress(s)) {
            p.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A part of local write `interval` ended (any context).
    pub(crate) fn part_done(&self, interval: Interval) {
        let Some(p) = slot_of(interval).and_then(|s| self.progress(s)) else { return };
        if p.fetch_sub(1, Ordering::AcqRel) & PARTS == 1 {
            self.finished.store(true, Ordering::Release);
            self.changed.wake_all();
        }
    }

    /// The disk write of local write `interval` completed (any context).
    pub(crate) fn local_done(&self, interval: Interval) {
        if let Some(p) = slot_of(interval).and_then(|s| self.progress(s)) {
            p.fetch_or(LOCAL_DONE, Ordering::AcqRel);
            self.changed.wake_all();
        }
    }

    /// A peer write of `size` bytes at `sector` arrived: tracked (waiting
    /// for a free slot), so that local writes overlapping it wait.
    pub(crate) fn track_peer(&self, sector: u64, size: u32) -> Interval {
        let mut interval = 0;
        self.changed.wait_until(|| {
            let mut t = self.tracked.lock();
            self.sweep(&mut t, false);
            interval = t.insert(Write::peer(sector, size)).map_or(0, interval_of);
            interval != 0
        });
        interval
    }

    /// `handle_write_conflicts` for tracked peer write `interval`.
    pub(crate) fn judge_peer(&self, interval: Interval, resolver: bool) -> PeerVerdict {
        let Some(slot) = slot_of(interval) else { return PeerVerdict::Write { restarts: false } };
        let mut t = self.tracked.lock();
        self.sweep(&mut t, true);
        t.judge_peer(slot, resolver)
    }

    /// Waits (at most `timeout_ms`) until something changes that may
    /// change [`Self::judge_peer`]'s verdict; false on timeout.
    pub(crate) fn wait_for_change(&self, interval: Interval, resolver: bool, timeout_ms: u32) -> bool {
        self.changed.wait_until_timeout(|| self.judge_peer(interval, resolver) != PeerVerdict::Wait, timeout_ms)
    }

    /// Peer write `interval` is answered (or was not written): it leaves.
    pub(crate) fn peer_done(&self, interval: Interval) -> Option<PeerDone> {
        let slot = slot_of(interval)?;
        let w = self.tracked.lock().remove(slot)?;
        self.changed.wake_all();
        Some(PeerDone { restarts: w.restarts, range: w.range })
    }

    /// Marks tracked peer write `interval` as the one that restarts the
    /// postponed local writes it overlaps.
    pub(crate) fn set_restarts(&self, interval: Interval) {
        let Some(slot) = slot_of(interval) else { return };
        if let Some(w) = self.tracked.lock().get_mut(slot) {
            w.restarts = true;
        }
    }

    /// The peer acknowledged our write at `sector` (written there, or
    /// failed): a peer write it numbered after the ack is no longer
    /// concurrent with it (`Write::acked`). Before the ack counts as
    /// processed.
    pub(crate) fn peer_acked(&self, sector: u64) {
        let mut t = self.tracked.lock();
        if let Some(w) = t.local_at(sector).and_then(|slot| t.get_mut(slot)) {
            w.acked = true;
        }
    }

    /// Local write `interval` was admitted but never submitted: it leaves.
    pub(crate) fn cancel(&self, interval: Interval) {
        let Some(slot) = slot_of(interval) else { return };
        {
            let mut t = self.tracked.lock();
            t.remove(slot);
            if let Some(p) = self.progress(slot) {
                p.store(0, Ordering::Release);
            }
        }
        self.changed.wake_all();
    }

    /// The resolving peer asked us to retry the local write at `sector`
    /// (P_RETRY_WRITE): it is postponed, `ack` (its ack token) kept for its
    /// restart. Hands `ack` back if no local write is tracked there.
    pub(crate) fn postpone(&self, sector: u64, ack: PeerToken) -> core::result::Result<(), PeerToken> {
        let mut tokens = self.postponed.lock();
        let slot = {
            let mut t = self.tracked.lock();
            let Some(slot) = t.local_at(sector) else { return Err(ack) };
            if let Some(w) = t.get_mut(slot) {
                w.postponed = true;
            }
            slot
        };
        match tokens.get_mut(usize::from(slot)) {
            Some(kept) => *kept = Some(ack),
            None => return Err(ack),
        }
        drop(tokens);
        self.changed.wake_all();
        Ok(())
    }

    /// The postponed local writes overlapping `range` whose disk write is
    /// done, each with its kept token: counted as submitted once more (one
    /// more part, the disk write pending), for `restart` to write (and
    /// send) again.
    pub(crate) fn take_restartable(&self, range: Range, mut restart: impl FnMut(Interval, PeerToken)) {
        loop {
            let next = {
                let mut tokens = self.postponed.lock();
                let mut t = self.tracked.lock();
                self.sweep(&mut t, true);
                let found = t.restartable(range).next();
                found.and_then(|slot| {
                    let token = tokens.get_mut(usize::from(slot))?.take()?;
                    if let Some(w) = t.get_mut(slot) {
                        w.postponed = false;
                        w.local_pending = true;
                    }
                    if let Some(p) = self.progress(slot) {
                        // The new clone's part (first: the count never
                        // reads 0 meanwhile); its disk write is pending.
                        p.fetch_add(1, Ordering::AcqRel);
                        p.fetch_and(!LOCAL_DONE, Ordering::AcqRel);
                    }
                    Some((interval_of(slot), token))
                })
            };
            match next {
                Some((interval, token)) => restart(interval, token),
                None => return,
            }
        }
    }

    /// The connection is gone: the postponed writes complete as they are
    /// (on our disk; out of sync for the resync, as their bits say).
    pub(crate) fn release_postponed(&self) {
        loop {
            let token = {
                let mut tokens = self.postponed.lock();
                let Some(slot) = tokens.iter().position(Option::is_some) else { return };
                if let Ok(slot) = u16::try_from(slot) {
                    if let Some(w) = self.tracked.lock().get_mut(slot) {
                        w.postponed = false;
                    }
                }
                tokens.get_mut(slot).and_then(Option::take)
            };
            // Given outside the locks (it may complete the bio).
            drop(token);
        }
    }
}
