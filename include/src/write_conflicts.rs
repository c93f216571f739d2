//! Writes in flight on one device, by the sectors they cover (8.4's
//! `write_requests` interval tree and `handle_write_conflicts`).
//!
//! A local write is tracked from submission until both its write to our
//! disk and its peer's part (ack, or whatever ended the connection) are
//! done; a replicated write from the peer from its arrival until it is
//! answered. Two overlapping writes are never in flight together on one
//! disk: a local write overlapping a tracked one waits before it starts
//! (8.4's `complete_conflicting_writes`), so the disk cannot reorder what
//! the peer gets in order, and the replicas end equal.
//!
//! With two Primaries, a peer write can arrive while an overlapping local
//! write is in flight: both nodes wrote "at the same time", and one node
//! (the one holding RESOLVE_CONFLICTS) decides the order for both
//! ([`WriteIntervals::judge_peer`]): a peer write inside the local one is
//! superseded (not written here, P_SUPERSEDED: the local write, which the
//! peer writes after its own, covers it), any other is retried
//! (P_RETRY_WRITE: the peer writes it again, and sends it again, once our
//! write is done there). The other node only waits for that verdict.
//!
//! A SyncTarget's resync requests are tracked too, from the request until
//! its reply is written (8.4's resync extents locked with BME_NO_WRITES in
//! `drbd_try_rs_begin_io`, for a SyncTarget that is Primary): a request
//! waits for the local writes it overlaps to be done on both nodes (so the
//! source reads them), and a local write overlapping a request waits for
//! its reply to be written (which would otherwise overwrite it with older
//! data). Peer writes do not look at them: the source orders its replies
//! after its own writes.
//!
//! The slots are allocated once per device; a chunk count per 1 MiB of
//! the device (hashed into [`BUCKETS`]) lets the common case, nothing in
//! flight nearby, answer without looking at the writes in flight.

use core::ops::DerefMut;

/// Whether a peer must be refused: two Primaries are allowed, and it
/// does not resolve their conflicting writes as rdrbd does (it lacks
/// rdrbd's feature flag: the C driver, which fails them itself).
pub fn refuses_peer(two_primaries: bool, link: super::protocol::Link) -> bool {
    two_primaries && !link.has(super::protocol::feature::RDRBD_WRITE_CONFLICTS)
}

/// Whether packet number `a` is newer than `b` (`seq_greater`: 32-bit
/// wrap-around, the newer half of the circle).
pub fn seq_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// A write's position: the sectors `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First sector.
    pub start: u64,
    /// One past the last sector.
    pub end: u64,
}

impl Range {
    /// The sectors `size` bytes at `sector` touch (at least one).
    pub fn of(sector: u64, size: u32) -> Self {
        let sectors = u64::from(size).div_ceil(512).max(1);
        Self { start: sector, end: sector.saturating_add(sectors) }
    }

    /// Whether the two share a sector.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies within this one.
    pub fn contains(&self, other: &Range) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// Who issued a tracked write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An application write to this node's device.
    Local,
    /// A replicated write from the peer.
    Peer,
    /// A resync request of ours (we are SyncTarget), until its reply is
    /// written or it is answered otherwise.
    Resync,
}

/// A write in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    /// Where it writes.
    pub range: Range,
    /// Who issued it.
    pub origin: Origin,
    /// A local write whose write to our disk has not completed yet
    /// (8.4's RQ_LOCAL_PENDING).
    pub local_pending: bool,
    /// A local write the resolving peer asked us to retry
    /// (P_RETRY_WRITE, 8.4's RQ_POSTPONED): written again, and sent again,
    /// once the peer's conflicting write is done here.
    pub postponed: bool,
    /// A peer write that restarts the postponed local writes it overlaps
    /// once it is done (8.4's EE_RESTART_REQUESTS).
    pub restarts: bool,
    /// A local write the peer has acknowledged: it is on the peer's disk
    /// already, so a peer write numbered after that ack came later and
    /// does not conflict with it (it only waits for our disk write).
    pub acked: bool,
}

impl Write {
    /// A local write of `size` bytes at `sector`, just submitted.
    pub fn local(sector: u64, size: u32) -> Self {
        Self { range: Range::of(sector, size), origin: Origin::Local, local_pending: true, postponed: false, restarts: false, acked: false }
    }

    /// A peer write of `size` bytes at `sector`, just arrived.
    pub fn peer(sector: u64, size: u32) -> Self {
        Self { range: Range::of(sector, size), origin: Origin::Peer, local_pending: true, postponed: false, restarts: false, acked: false }
    }

    /// A resync request for `size` bytes at `sector`, about to be sent.
    pub fn resync(sector: u64, size: u32) -> Self {
        Self { range: Range::of(sector, size), origin: Origin::Resync, local_pending: false, postponed: false, restarts: false, acked: false }
    }
}

/// What happens to a local write at submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Tracked in this slot; it may go to the disk.
    Admitted(u16),
    /// A tracked write overlaps it: it must wait.
    Conflict,
    /// No slot free: it must wait.
    Full,
}

/// What becomes of a peer write that overlaps writes in flight here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerVerdict {
    /// Write it; `restarts`: postponed local writes it overlaps are
    /// written (and sent) again after it.
    Write {
        /// Restart the overlapping postponed local writes once it is done.
        restarts: bool,
    },
    /// (Resolver) a local write in flight contains it: not written, the
    /// peer hears P_SUPERSEDED.
    Superseded {
        /// The local write that covers it.
        local: Range,
    },
    /// (Resolver) it overlaps a local write in flight without lying
    /// inside it: not written, the peer hears P_RETRY_WRITE.
    Retry {
        /// The local write it overlaps.
        local: Range,
    },
    /// Wait until a tracked write it overlaps is done (or, on the node
    /// that does not resolve, until the peer's verdict on ours is in).
    Wait,
}

/// Hash buckets of 1 MiB chunks.
pub const BUCKETS: usize = 512;

/// Sectors per chunk, as a shift: 1 MiB.
const CHUNK_SHIFT: u32 = 11;

/// Writes spanning more chunks than this are not counted per chunk: while
/// one is tracked every lookup looks at all writes.
const MAX_COUNTED_CHUNKS: u64 = 4;

/// The writes in flight on a device, in caller-provided slots (all `None`
/// while free).
pub struct WriteIntervals<S> {
    slots: S,
    /// Tracked writes per chunk bucket.
    buckets: [u16; BUCKETS],
    /// Tracked writes too wide to count per chunk.
    wide: u32,
    len: usize,
    /// No slot below this is free.
    lowest_free: usize,
    /// No slot from this on is used: lookups stop here, so they cost
    /// the writes in flight, not the slots.
    top: usize,
}

/// The chunk buckets of `range`, or `None` if it spans too many.
fn chunk_span(range: &Range) -> Option<(u64, u64)> {
    let first = range.start >> CHUNK_SHIFT;
    let last = range.end.saturating_sub(1) >> CHUNK_SHIFT;
    (last.saturating_sub(first) < MAX_COUNTED_CHUNKS).then_some((first, last))
}

fn bucket_of(chunk: u64) -> usize {
    // BUCKETS is a power of two: the mask keeps the index in range.
    (chunk as usize) & (BUCKETS - 1)
}

impl<S: DerefMut<Target = [Option<Write>]>> WriteIntervals<S> {
    /// Empty, over `slots` (at most `u16::MAX` are used).
    pub fn new(mut slots: S) -> Self {
        for slot in slots.iter_mut() {
            *slot = None;
        }
        Self { slots, buckets: [0; BUCKETS], wide: 0, len: 0, lowest_free: 0, top: 0 }
    }

    /// Writes tracked.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn capacity(&self) -> usize {
        self.slots.len().min(usize::from(u16::MAX))
    }

    /// The write in `slot`.
    pub fn get(&self, slot: u16) -> Option<&Write> {
        self.slots.get(usize::from(slot)).and_then(Option::as_ref)
    }

    /// The write in `slot`, to change its flags (not its range).
    pub fn get_mut(&mut self, slot: u16) -> Option<&mut Write> {
        self.slots.get_mut(usize::from(slot)).and_then(Option::as_mut)
    }

    /// Whether a tracked write may overlap `range` (false: surely none).
    fn may_overlap(&self, range: &Range) -> bool {
        if self.len == 0 {
            return false;
        }
        if self.wide > 0 {
            return true;
        }
        match chunk_span(range) {
            Some((first, last)) => {
                (first..=last).any(|c| self.buckets.get(bucket_of(c)).is_some_and(|&n| n > 0))
            }
            None => true,
        }
    }

    /// The tracked writes overlapping `range`, with their slots.
    pub fn overlapping(&self, range: Range) -> impl Iterator<Item = (u16, &Write)> + '_ {
        let look = self.may_overlap(&range);
        self.slots
            .iter()
            .take(if look { self.top } else { 0 })
            .enumerate()
            .filter_map(move |(i, w)| match w {
                // At most u16::MAX slots are looked at: the index fits.
                Some(w) if w.range.overlaps(&range) => Some((i as u16, w)),
                _ => None,
            })
    }

    /// Whether a tracked write overlaps `range`.
    pub fn overlaps_any(&self, range: Range) -> bool {
        self.overlapping(range).next().is_some()
    }

    fn count(&mut self, range: &Range, add: bool) {
        match chunk_span(range) {
            Some((first, last)) => {
                for c in first..=last {
                    if let Some(n) = self.buckets.get_mut(bucket_of(c)) {
                        *n = if add { n.saturating_add(1) } else { n.saturating_sub(1) };
                    }
                }
            }
            None if add => self.wide = self.wide.saturating_add(1),
            None => self.wide = self.wide.saturating_sub(1),
        }
    }

    /// Tracks `write`; hands it back if no slot is free.
    pub fn insert(&mut self, write: Write) -> Result<u16, Write> {
        let capacity = self.capacity();
        if self.len >= capacity {
            return Err(write);
        }
        // The lowest free slot, so that the used ones stay packed low.
        for i in self.lowest_free..capacity {
            if let Some(slot) = self.slots.get_mut(i).filter(|s| s.is_none()) {
                *slot = Some(write);
                self.len = self.len.saturating_add(1);
                self.lowest_free = i.saturating_add(1);
                self.top = self.top.max(i.saturating_add(1));
                self.count(&write.range, true);
                // i < capacity <= u16::MAX.
                return Ok(i as u16);
            }
        }
        Err(write)
    }

    /// Stops tracking the write in `slot`.
    pub fn remove(&mut self, slot: u16) -> Option<Write> {
        let i = usize::from(slot);
        let write = self.slots.get_mut(i).and_then(Option::take)?;
        self.len = self.len.saturating_sub(1);
        self.lowest_free = self.lowest_free.min(i);
        while self.top > 0 && self.slots.get(self.top.saturating_sub(1)).is_some_and(Option::is_none) {
            self.top = self.top.saturating_sub(1);
        }
        self.count(&write.range, false);
        Some(write)
    }

    /// Keeps the writes `keep` says yes to (it may change their flags);
    /// the others leave.
    pub fn retain(&mut self, mut keep: impl FnMut(u16, &mut Write) -> bool) {
        for i in 0..self.top {
            // i < top <= u16::MAX.
            let slot = i as u16;
            let leave = match self.slots.get_mut(i).and_then(Option::as_mut) {
                Some(w) => !keep(slot, w),
                None => false,
            };
            if leave {
                self.remove(slot);
            }
        }
    }

    /// A local write of `size` bytes at `sector` is submitted: tracked
    /// unless it overlaps a write in flight or no slot is free.
    pub fn admit_local(&mut self, sector: u64, size: u32) -> Admission {
        let write = Write::local(sector, size);
        if self.overlaps_any(write.range) {
            return Admission::Conflict;
        }
        match self.insert(write) {
            Ok(slot) => Admission::Admitted(slot),
            Err(_) => Admission::Full,
        }
    }

    /// A resync request for `size` bytes at `sector` is to be sent: tracked
    /// unless a local write in flight overlaps it (its data must reach the
    /// peer first) or no slot is free. Peer writes in flight do not hold
    /// it up: the source answers after them.
    pub fn admit_resync(&mut self, sector: u64, size: u32) -> Admission {
        let request = Write::resync(sector, size);
        if self.overlapping(request.range).any(|(_, w)| w.origin != Origin::Peer) {
            return Admission::Conflict;
        }
        match self.insert(request) {
            Ok(slot) => Admission::Admitted(slot),
            Err(_) => Admission::Full,
        }
    }

    /// The resync request that starts at `sector` (requests never overlap
    /// each other).
    pub fn resync_at(&self, sector: u64) -> Option<u16> {
        self.overlapping(Range { start: sector, end: sector.saturating_add(1) })
            .find(|(_, w)| w.origin == Origin::Resync && w.range.start == sector)
            .map(|(slot, _)| slot)
    }

    /// The local write that covers `sector` (local writes never overlap
    /// each other, so there is at most one).
    pub fn local_at(&self, sector: u64) -> Option<u16> {
        self.overlapping(Range { start: sector, end: sector.saturating_add(1) })
            .find(|(_, w)| w.origin == Origin::Local)
            .map(|(slot, _)| slot)
    }

    /// `handle_write_conflicts` for the peer write tracked in `slot`:
    /// `resolver` says whether this node holds RESOLVE_CONFLICTS.
    pub fn judge_peer(&self, slot: u16, resolver: bool) -> PeerVerdict {
        let Some(peer) = self.get(slot) else { return PeerVerdict::Write { restarts: false } };
        let range = peer.range;
        // Our resync requests do not concern the peer's writes.
        let others = || {
            self.overlapping(range).filter(move |(s, w)| *s != slot && w.origin != Origin::Resync).map(|(_, w)| w)
        };
        if resolver {
            // One the peer acked before it sent this (the sequence numbers
            // saw to that) is older: this waits only for our disk to
            // finish it (8.4 takes it for a concurrent write, and then
            // supersedes a later write or waits for a restart that never
            // comes).
            if others().any(|w| w.origin == Origin::Local && w.acked && w.local_pending) {
                return PeerVerdict::Wait;
            }
            // A local write in flight overlaps: concurrent writes, decided here.
            let mut locals = others().filter(|w| w.origin == Origin::Local && !w.acked).peekable();
            if let Some(first) = locals.peek().map(|w| w.range) {
                return match locals.find(|w| w.range.contains(&range)) {
                    Some(w) => PeerVerdict::Superseded { local: w.range },
                    None => PeerVerdict::Retry { local: first },
                };
            }
            if others().any(|w| w.origin == Origin::Peer) {
                // An earlier peer write (cannot happen with one peer).
                return PeerVerdict::Wait;
            }
            return PeerVerdict::Write { restarts: false };
        }
        let mut restarts = false;
        for w in others() {
            match w.origin {
                Origin::Peer => return PeerVerdict::Wait,
                // The resolver has not decided on ours yet, or our disk
                // still writes it: wait.
                Origin::Local if w.local_pending || !w.postponed => return PeerVerdict::Wait,
                // Retried: this goes first, ours is written again after it.
                Origin::Local => restarts = true,
                Origin::Resync => {}
            }
        }
        PeerVerdict::Write { restarts }
    }

    /// The postponed local writes overlapping `range` whose disk write is
    /// done and that no peer write in flight overlaps any more: the ones to
    /// write and send again now (8.4's restarted request waits for those
    /// in `complete_conflicting_writes`; the last of them, judged while
    /// ours was postponed, restarts it when it is done).
    pub fn restartable(&self, range: Range) -> impl Iterator<Item = u16> + '_ {
        self.overlapping(range)
            .filter(|(_, w)| w.origin == Origin::Local && w.postponed && !w.local_pending)
            .filter(|(_, w)| !self.overlapping(w.range).any(|(_, o)| o.origin == Origin::Peer))
            .map(|(slot, _)| slot)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::manual_is_multiple_of,
    clippy::type_complexity,
    clippy::too_many_lines
)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn intervals(n: usize) -> WriteIntervals<Vec<Option<Write>>> {
        WriteIntervals::new(vec![None; n])
    }

    #[test]
    fn only_rdrbd_peers_with_two_primaries() {
        use crate::protocol::{feature, Link};
        let c = Link { features: feature::TRIM, ..Link::HANDSHAKE };
        let rdrbd = Link { features: feature::TRIM | feature::RDRBD_WRITE_CONFLICTS, ..Link::HANDSHAKE };
        assert!(refuses_peer(true, c));
        assert!(!refuses_peer(true, rdrbd));
        assert!(!refuses_peer(false, c));
    }

    #[test]
    fn sequence_numbers_wrap() {
        assert!(seq_newer(2, 1));
        assert!(!seq_newer(1, 1));
        assert!(!seq_newer(1, 2));
        assert!(seq_newer(0, u32::MAX));
        assert!(seq_newer(5, u32::MAX - 5));
    }

    #[test]
    fn ranges_round_up_to_sectors() {
        assert_eq!(Range::of(8, 4096), Range { start: 8, end: 16 });
        assert_eq!(Range::of(8, 100), Range { start: 8, end: 9 });
        assert_eq!(Range::of(8, 0), Range { start: 8, end: 9 });
        assert!(Range::of(0, 4096).overlaps(&Range::of(7, 512)));
        assert!(!Range::of(0, 4096).overlaps(&Range::of(8, 512)));
        assert!(Range::of(0, 8192).contains(&Range::of(8, 4096)));
        assert!(!Range::of(0, 8192).contains(&Range::of(12, 4096)));
    }

    #[test]
    fn overlapping_local_writes_wait() {
        let mut t = intervals(8);
        let Admission::Admitted(a) = t.admit_local(0, 4096) else { panic!() };
        assert_eq!(t.admit_local(4, 4096), Admission::Conflict);
        let Admission::Admitted(_) = t.admit_local(8, 4096) else { panic!() };
        assert_eq!(t.remove(a).map(|w| w.range), Some(Range::of(0, 4096)));
        assert!(matches!(t.admit_local(4, 2048), Admission::Admitted(_)));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn full_means_wait() {
        let mut t = intervals(2);
        assert!(matches!(t.admit_local(0, 512), Admission::Admitted(_)));
        assert!(matches!(t.admit_local(100, 512), Admission::Admitted(_)));
        assert_eq!(t.admit_local(200, 512), Admission::Full);
    }

    #[test]
    fn chunk_counts_follow_inserts_and_removes() {
        let mut t = intervals(16);
        // Far apart: different chunks; same bucket after wrapping.
        let far = (BUCKETS as u64) << CHUNK_SHIFT;
        let Admission::Admitted(a) = t.admit_local(0, 4096) else { panic!() };
        assert!(matches!(t.admit_local(far, 4096), Admission::Admitted(_)));
        assert!(!t.overlaps_any(Range::of(8, 4096)));
        t.remove(a);
        assert!(!t.overlaps_any(Range::of(0, 4096)));
        assert!(t.overlaps_any(Range::of(far, 512)));
        // A write across a chunk boundary counts in both.
        assert!(matches!(t.admit_local(2040, 8192), Admission::Admitted(_)));
        assert!(t.overlaps_any(Range::of(2050, 512)));
        assert!(t.overlaps_any(Range::of(2040, 512)));
    }

    #[test]
    fn slots_stay_packed_low() {
        let mut t = intervals(64);
        let slots: Vec<u16> = (0..5).map(|i| t.insert(Write::peer(i * 8, 4096)).unwrap()).collect();
        assert_eq!(slots, vec![0, 1, 2, 3, 4]);
        t.remove(1);
        t.remove(4);
        assert_eq!(t.top, 4);
        assert_eq!(t.insert(Write::peer(100, 512)), Ok(1));
        assert_eq!(t.insert(Write::peer(200, 512)), Ok(4));
        for s in 0..5 {
            t.remove(s);
        }
        assert_eq!((t.top, t.lowest_free, t.len()), (0, 0, 0));
    }

    #[test]
    fn retain_drops_and_updates() {
        let mut t = intervals(8);
        let a = t.insert(Write::local(0, 4096)).unwrap();
        let b = t.insert(Write::local(8, 4096)).unwrap();
        t.retain(|slot, w| {
            w.local_pending = false;
            slot != a
        });
        assert_eq!(t.len(), 1);
        assert!(!t.overlaps_any(Range::of(0, 4096)));
        assert!(!t.get(b).unwrap().local_pending);
    }

    #[test]
    fn wide_writes_are_found() {
        let mut t = intervals(4);
        let wide = 64u32 << 20;
        let Admission::Admitted(w) = t.admit_local(0, wide) else { panic!() };
        assert!(t.overlaps_any(Range::of(100_000, 512)));
        t.remove(w);
        assert!(!t.overlaps_any(Range::of(100_000, 512)));
        assert!(t.is_empty());
    }

    #[test]
    fn resolver_supersedes_contained_and_retries_others() {
        let mut t = intervals(8);
        let Admission::Admitted(_) = t.admit_local(0, 8192) else { panic!() };
        let inside = t.insert(Write::peer(8, 4096)).unwrap();
        assert_eq!(t.judge_peer(inside, true), PeerVerdict::Superseded { local: Range::of(0, 8192) });
        t.remove(inside);
        let across = t.insert(Write::peer(8, 8192)).unwrap();
        assert_eq!(t.judge_peer(across, true), PeerVerdict::Retry { local: Range::of(0, 8192) });
        t.remove(across);
        let apart = t.insert(Write::peer(16, 4096)).unwrap();
        assert_eq!(t.judge_peer(apart, true), PeerVerdict::Write { restarts: false });
    }

    #[test]
    fn resolver_decides_even_when_the_local_write_completed_locally() {
        let mut t = intervals(8);
        let Admission::Admitted(l) = t.admit_local(0, 4096) else { panic!() };
        // Written here, waiting for the peer's ack: still concurrent.
        t.get_mut(l).unwrap().local_pending = false;
        let p = t.insert(Write::peer(0, 4096)).unwrap();
        assert_eq!(t.judge_peer(p, true), PeerVerdict::Superseded { local: Range::of(0, 4096) });
    }

    #[test]
    fn a_write_the_peer_acked_is_older_than_its_later_writes() {
        let mut t = intervals(8);
        let Admission::Admitted(l) = t.admit_local(0, 8192) else { panic!() };
        t.get_mut(l).unwrap().acked = true;
        let p = t.insert(Write::peer(8, 4096)).unwrap();
        // Our disk still writes it: wait, then write the peer's after it.
        assert_eq!(t.judge_peer(p, true), PeerVerdict::Wait);
        t.get_mut(l).unwrap().local_pending = false;
        assert_eq!(t.judge_peer(p, true), PeerVerdict::Write { restarts: false });
    }

    #[test]
    fn the_other_node_waits_for_the_verdict() {
        let mut t = intervals(8);
        let Admission::Admitted(l) = t.admit_local(0, 4096) else { panic!() };
        let p = t.insert(Write::peer(0, 8192)).unwrap();
        // In flight, or written and not yet judged by the resolver: wait.
        assert_eq!(t.judge_peer(p, false), PeerVerdict::Wait);
        t.get_mut(l).unwrap().local_pending = false;
        assert_eq!(t.judge_peer(p, false), PeerVerdict::Wait);
        // Retried: the peer's write goes first, ours again after it.
        t.get_mut(l).unwrap().postponed = true;
        assert_eq!(t.judge_peer(p, false), PeerVerdict::Write { restarts: true });
        // Not while the peer's write is in flight here.
        assert_eq!(t.restartable(Range::of(0, 8192)).count(), 0);
        t.remove(p);
        assert_eq!(t.restartable(Range::of(0, 8192)).collect::<Vec<_>>(), vec![l]);
        let p = t.insert(Write::peer(0, 8192)).unwrap();
        // Superseded (or acked): it leaves, and the peer's write goes.
        t.remove(l);
        assert_eq!(t.judge_peer(p, false), PeerVerdict::Write { restarts: false });
    }

    #[test]
    fn resync_requests_and_local_writes_wait_for_each_other() {
        let mut t = intervals(8);
        let Admission::Admitted(l) = t.admit_local(8, 4096) else { panic!() };
        // A local write in flight: the request waits until it is done.
        assert_eq!(t.admit_resync(0, 65536), Admission::Conflict);
        t.remove(l);
        let Admission::Admitted(r) = t.admit_resync(0, 65536) else { panic!() };
        // A request in flight: local writes into it wait, others go.
        assert_eq!(t.admit_local(120, 512), Admission::Conflict);
        assert!(matches!(t.admit_local(128, 4096), Admission::Admitted(_)));
        assert_eq!(t.resync_at(0), Some(r));
        assert_eq!(t.resync_at(8), None);
        assert_eq!(t.local_at(0), None);
        t.remove(r);
        assert!(matches!(t.admit_local(120, 512), Admission::Admitted(_)));
    }

    #[test]
    fn peer_writes_and_resync_requests_do_not_wait_for_each_other() {
        let mut t = intervals(4);
        let p = t.insert(Write::peer(0, 4096)).unwrap();
        let Admission::Admitted(r) = t.admit_resync(0, 8192) else { panic!() };
        assert_eq!(t.judge_peer(p, false), PeerVerdict::Write { restarts: false });
        assert_eq!(t.judge_peer(p, true), PeerVerdict::Write { restarts: false });
        let q = t.insert(Write::peer(8, 4096)).unwrap();
        assert_eq!(t.judge_peer(q, true), PeerVerdict::Write { restarts: false });
        assert_eq!(t.resync_at(0), Some(r));
        assert_eq!(t.admit_resync(16, 4096), Admission::Admitted(3));
        assert_eq!(t.admit_resync(24, 4096), Admission::Full);
    }

    #[test]
    fn a_postponed_write_still_on_its_way_to_disk_is_waited_for() {
        let mut t = intervals(8);
        let Admission::Admitted(l) = t.admit_local(0, 4096) else { panic!() };
        t.get_mut(l).unwrap().postponed = true;
        let p = t.insert(Write::peer(0, 4096)).unwrap();
        assert_eq!(t.judge_peer(p, false), PeerVerdict::Wait);
        assert_eq!(t.restartable(Range::of(0, 4096)).count(), 0);
    }

    #[test]
    fn peer_writes_wait_for_earlier_peer_writes() {
        let mut t = intervals(8);
        let a = t.insert(Write::peer(0, 4096)).unwrap();
        let b = t.insert(Write::peer(4, 4096)).unwrap();
        assert_eq!(t.judge_peer(b, true), PeerVerdict::Wait);
        assert_eq!(t.judge_peer(b, false), PeerVerdict::Wait);
        t.remove(a);
        assert_eq!(t.judge_peer(b, true), PeerVerdict::Write { restarts: false });
        // And local writes wait for peer writes.
        assert_eq!(t.admit_local(0, 4096), Admission::Conflict);
    }

    #[test]
    fn the_local_write_at_a_sector_is_found() {
        let mut t = intervals(8);
        let Admission::Admitted(l) = t.admit_local(16, 8192) else { panic!() };
        t.insert(Write::peer(0, 4096)).unwrap();
        assert_eq!(t.local_at(16), Some(l));
        assert_eq!(t.local_at(0), None);
    }

    /// `WriteIntervals` against a plain list: random inserts (narrow,
    /// across chunks, colliding buckets, wide), removes and retains; every
    /// lookup finds exactly the overlapping writes.
    #[test]
    fn lookups_match_a_plain_list() {
        let mut rng = crate::test_rng::XorShift(0x5eed);
        let mut t = intervals(64);
        let mut model: Vec<(u16, Range)> = Vec::new();
        let far = (BUCKETS as u64) << CHUNK_SHIFT;
        let random_range = |rng: &mut crate::test_rng::XorShift| {
            let base = [0, 2040, far, far + 4000][rng.below(4)];
            let start = base + rng.below(64) as u64;
            let sectors = [1, 8, 64, 2048, 20_000][rng.below(5)];
            Range { start, end: start + sectors }
        };
        for _ in 0..20_000 {
            match rng.below(10) {
                0..=4 => {
                    let r = random_range(&mut rng);
                    let w = Write { range: r, ..Write::peer(0, 512) };
                    match t.insert(w) {
                        Ok(slot) => model.push((slot, r)),
                        Err(_) => assert_eq!(model.len(), 64),
                    }
                }
                5..=7 if !model.is_empty() => {
                    let (slot, r) = model.swap_remove(rng.below(model.len()));
                    assert_eq!(t.remove(slot).map(|w| w.range), Some(r));
                }
                8 => {
                    let cut = rng.next();
                    t.retain(|slot, _| (u64::from(slot) ^ cut) % 3 != 0);
                    model.retain(|&(slot, _)| (u64::from(slot) ^ cut) % 3 != 0);
                }
                _ => {}
            }
            assert_eq!(t.len(), model.len());
            let q = random_range(&mut rng);
            let mut found: Vec<u16> = t.overlapping(q).map(|(s, _)| s).collect();
            let mut want: Vec<u16> = model.iter().filter(|(_, r)| r.overlaps(&q)).map(|&(s, _)| s).collect();
            found.sort_unstable();
            want.sort_unstable();
            assert_eq!(found, want);
        }
    }

    /// Two Primaries writing the same sectors at random, every message and
    /// completion in random order (but each socket in order), run through
    /// 8.4's protocol as the kernel runs it (sequence numbers on the
    /// resolver, `judge_peer`, P_SUPERSEDED / P_RETRY_WRITE, restarts):
    /// both disks end equal and every write completes. (Without the
    /// `acked` rule, 8.4's own, seed 7 never completes a retried write;
    /// restarting a postponed write while another peer write overlaps it
    /// left seed 1 so.)
    #[test]
    fn two_primaries_end_with_equal_disks() {
        for seed in 1..1000u64 {
            two_primaries_run(seed);
        }
    }

    #[derive(Clone, Copy, Debug)]
    struct Data {
        id: u32,
        range: Range,
        value: u32,
        seq: u32,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum AckKind {
        Write,
        Superseded,
        Retry,
    }

    #[derive(Default)]
    struct Node {
        t: Option<WriteIntervals<Vec<Option<Write>>>>,
        disk: Vec<u32>,
        seq: u32,
        peer_seq: u32,
        // Local writes: (id, slot, range, value, disk write pending, acked).
        locals: Vec<(u32, u16, Range, u32, bool, bool)>,
        // Disk writes in flight: (value, range, Some(peer slot, id) for a peer write).
        disk_queue: Vec<(u32, Range, Option<(u16, u32)>)>,
        // The peer write the receiver is judging.
        current: Option<(Data, u16)>,
        to_submit: Vec<(Range, u32)>,
        done: u32,
    }

    fn two_primaries_run(seed: u64) {
        let mut rng = crate::test_rng::XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        const SECTORS: usize = 24;
        const WRITES: u32 = 12;
        let mut nodes: [Node; 2] = [Node::default(), Node::default()];
        let mut data: [std::collections::VecDeque<Data>; 2] = Default::default();
        let mut meta: [std::collections::VecDeque<(AckKind, u32, u32)>; 2] = Default::default();
        for (n, node) in nodes.iter_mut().enumerate() {
            node.t = Some(intervals(32));
            node.disk = vec![0; SECTORS];
            for k in 0..WRITES {
                let start = rng.below(SECTORS - 1) as u64;
                let len = 1 + rng.below(6) as u64;
                let range = Range { start, end: (start + len).min(SECTORS as u64) };
                node.to_submit.push((range, (n as u32 + 1) * 1000 + k));
            }
        }
        let send_data = |node: &mut Node, out: &mut std::collections::VecDeque<Data>, id: u32, range: Range, value: u32| {
            node.seq += 1;
            out.push_back(Data { id, range, value, seq: node.seq });
        };
        for _step in 0..200_000 {
            // Every event that can happen now, as (node, kind).
            let mut events = Vec::new();
            for n in 0..2 {
                let node = &nodes[n];
                if !node.to_submit.is_empty() && node.locals.len() < 3 {
                    events.push((n, 0));
                }
                if !node.disk_queue.is_empty() {
                    events.push((n, 1));
                }
                if node.current.is_some() || data[1 - n].front().is_some_and(|d| n == 1 || !seq_newer(d.seq.wrapping_sub(1), node.peer_seq)) {
                    events.push((n, 2));
                }
                if !meta[1 - n].is_empty() {
                    events.push((n, 3));
                }
            }
            if events.is_empty() {
                break;
            }
            let (n, kind) = events[rng.below(events.len())];
            let resolver = n == 0;
            let (this, other) = if n == 0 {
                let (a, b) = nodes.split_at_mut(1);
                (&mut a[0], &mut b[0])
            } else {
                let (a, b) = nodes.split_at_mut(1);
                (&mut b[0], &mut a[0])
            };
            let _ = other;
            match kind {
                // The application submits a write (if nothing overlaps it).
                0 => {
                    let i = rng.below(this.to_submit.len());
                    let (range, value) = this.to_submit[i];
                    let t = this.t.as_mut().unwrap();
                    if let Admission::Admitted(slot) = t.admit_local(range.start, ((range.end - range.start) * 512) as u32) {
                        this.to_submit.swap_remove(i);
                        this.locals.push((value, slot, range, value, true, false));
                        this.disk_queue.push((value, range, None));
                        send_data(this, &mut data[n], value, range, value);
                    }
                }
                // A disk write completes (in any order).
                1 => {
                    let (value, range, peer) = this.disk_queue.swap_remove(rng.below(this.disk_queue.len()));
                    for s in range.start..range.end {
                        this.disk[s as usize] = value;
                    }
                    match peer {
                        None => {
                            let l = this.locals.iter_mut().find(|l| l.0 == value).unwrap();
                            l.4 = false;
                            let slot = l.1;
                            this.t.as_mut().unwrap().get_mut(slot).unwrap().local_pending = false;
                        }
                        Some((slot, id)) => {
                            // Answered, then it leaves; postponed writes it
                            // goes before are written and sent again.
                            this.seq += 1;
                            meta[n].push_back((AckKind::Write, id, this.seq));
                            let t = this.t.as_mut().unwrap();
                            let w = t.remove(slot).unwrap();
                            let again: Vec<u16> = if w.restarts { t.restartable(w.range).collect() } else { Vec::new() };
                            for slot in again {
                                let w = this.t.as_mut().unwrap().get_mut(slot).unwrap();
                                w.postponed = false;
                                w.local_pending = true;
                                let l = this.locals.iter_mut().find(|l| l.1 == slot).unwrap();
                                l.4 = true;
                                let (id, range, value) = (l.0, l.2, l.3);
                                this.disk_queue.push((value, range, None));
                                send_data(this, &mut data[n], id, range, value);
                            }
                        }
                    }
                }
                // The receiver takes the next P_DATA (the resolver only
                // once the peer's earlier acks are processed) or judges
                // the one it holds again.
                2 => {
                    let (d, slot) = match this.current.take() {
                        Some(c) => c,
                        None => {
                            let d = data[1 - n].pop_front().unwrap();
                            if seq_newer(d.seq, this.peer_seq) {
                                this.peer_seq = d.seq;
                            }
                            let size = ((d.range.end - d.range.start) * 512) as u32;
                            let slot = this.t.as_mut().unwrap().insert(Write::peer(d.range.start, size)).unwrap();
                            (d, slot)
                        }
                    };
                    let t = this.t.as_mut().unwrap();
                    match t.judge_peer(slot, resolver) {
                        PeerVerdict::Write { restarts } => {
                            t.get_mut(slot).unwrap().restarts = restarts;
                            this.disk_queue.push((d.value, d.range, Some((slot, d.id))));
                        }
                        verdict @ (PeerVerdict::Superseded { .. } | PeerVerdict::Retry { .. }) => {
                            t.remove(slot);
                            let kind = if matches!(verdict, PeerVerdict::Superseded { .. }) { AckKind::Superseded } else { AckKind::Retry };
                            this.seq += 1;
                            meta[n].push_back((kind, d.id, this.seq));
                        }
                        PeerVerdict::Wait => this.current = Some((d, slot)),
                    }
                }
                // The meta socket delivers the peer's next ack.
                _ => {
                    let (kind, id, seq) = meta[1 - n].pop_front().unwrap();
                    let i = this.locals.iter().position(|l| l.0 == id).unwrap();
                    let slot = this.locals[i].1;
                    match kind {
                        AckKind::Write | AckKind::Superseded => {
                            this.locals[i].5 = true;
                            this.t.as_mut().unwrap().get_mut(slot).unwrap().acked = true;
                        }
                        AckKind::Retry => this.t.as_mut().unwrap().get_mut(slot).unwrap().postponed = true,
                    }
                    if seq_newer(seq, this.peer_seq) {
                        this.peer_seq = seq;
                    }
                }
            }
            // Local writes done on both counts leave.
            for node in nodes.iter_mut() {
                let t = node.t.as_mut().unwrap();
                let before = node.locals.len();
                node.locals.retain(|l| {
                    let finished = !l.4 && l.5;
                    if finished {
                        t.remove(l.1);
                    }
                    !finished
                });
                node.done += (before - node.locals.len()) as u32;
            }
        }
        for (n, node) in nodes.iter().enumerate() {
            if node.done != WRITES {
                std::eprintln!("node {n}: locals {:?} current {:?} to_submit {:?} disk_queue {:?} seq {} peer_seq {}",
                    node.locals, node.current, node.to_submit, node.disk_queue, node.seq, node.peer_seq);
                let t = node.t.as_ref().unwrap();
                for (slot, w) in t.overlapping(Range { start: 0, end: u64::MAX }) {
                    std::eprintln!("  slot {slot}: {w:?}");
                }
                std::eprintln!("data in {:?} meta in {:?}", data[1 - n], meta[1 - n]);
            }
        }
        for node in &nodes {
            assert_eq!(node.done, WRITES, "seed {seed}: a write never completed");
            assert!(node.t.as_ref().unwrap().is_empty(), "seed {seed}");
        }
        assert_eq!(nodes[0].disk, nodes[1].disk, "seed {seed}: the disks differ");
    }
}
