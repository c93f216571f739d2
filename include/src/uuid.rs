//! Data generation UUIDs: the resync decision of a connection handshake
//! (`drbd_uuid_compare`, `drbd_sync_handshake` and the after-split-brain
//! policies) and the UUID updates on promotion, connection loss and resync,
//! all as pure functions.
//!
//! Both nodes run the handshake independently and must reach mirrored
//! results, so this follows the C rule by rule, including the rules that
//! rewrite UUIDs (34, 35, 51, 71) and the rule numbers the C logs.
//! Random values (new UUIDs) come from the caller.

use super::genl::{ConnState, DiskState, Role};
use super::protocol::{feature, Link, PRO_VERSION_MAX};

/// Current UUID of freshly created metadata.
pub const UUID_JUST_CREATED: u64 = 4;
/// Added to the bitmap UUID to form the next sync UUID.
pub const UUID_NEW_BM_OFFSET: u64 = 0x0001_0000_0000_0000;

/// Flags word of P_UUIDS.
pub mod uuid_flags {
    /// The sender has discard-my-data configured.
    pub const DISCARD_MY_DATA: u64 = 1;
    /// The sender is a crashed primary.
    pub const CRASHED_PRIMARY: u64 = 2;
    /// The sender's disk (shown as Negotiating) is Inconsistent.
    pub const INCONSISTENT: u64 = 4;
    /// Skip the initial sync (new-current-uuid --clear-bitmap).
    pub const SKIP_INITIAL_SYNC: u64 = 8;
}

/// One node's UUIDs (`md.uuid[UI_CURRENT..=UI_HISTORY_END]`). Bit 0 of the
/// current UUID records "was Primary when it was set" and is ignored in
/// comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uuids {
    /// Current data generation.
    pub current: u64,
    /// Generation the bitmap tracks changes against; 0 when none.
    pub bitmap: u64,
    /// Older generations, most recent first.
    pub history: [u64; 2],
}

/// A UUID slot (`enum drbd_uuid_index`, without the packet-only entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// UI_CURRENT.
    Current,
    /// UI_BITMAP.
    Bitmap,
    /// UI_HISTORY_START.
    History1,
    /// UI_HISTORY_END.
    History2,
}

/// A UUID without its "was Primary" bit.
fn masked(uuid: u64) -> u64 {
    uuid & !1
}

impl Uuids {
    /// The UUIDs `drbdmeta create-md` writes.
    pub const JUST_CREATED: Self = Self {
        current: UUID_JUST_CREATED,
        bitmap: 0,
        history: [0, 0],
    };

    /// Value of a slot.
    pub fn get(&self, slot: Slot) -> u64 {
        match slot {
            Slot::Current => self.current,
            Slot::Bitmap => self.bitmap,
            Slot::History1 => self.history[0],
            Slot::History2 => self.history[1],
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut u64 {
        match slot {
            Slot::Current => &mut self.current,
            Slot::Bitmap => &mut self.bitmap,
            Slot::History1 => &mut self.history[0],
            Slot::History2 => &mut self.history[1],
        }
    }

    /// Sets a slot (`_drbd_uuid_set`); the current UUID gets bit 0 set
    /// exactly when `primary`.
    pub fn set(&mut self, slot: Slot, val: u64, primary: bool) {
        let val = match slot {
            Slot::Current if primary => val | 1,
            Slot::Current => masked(val),
            _ => val,
        };
        *self.slot_mut(slot) = val;
    }

    /// Sets a slot after pushing its old non-zero value into history slot 1
    /// (`drbd_uuid_set`).
    pub fn set_rotating(&mut self, slot: Slot, val: u64, primary: bool) {
        let old = self.get(slot);
        if old != 0 {
            self.move_history();
            self.history[0] = old;
        }
        self.set(slot, val, primary);
    }

    /// History slot 1 moves to slot 2 (`drbd_uuid_move_history`).
    pub fn move_history(&mut self) {
        self.history[1] = self.history[0];
    }

    /// A new current UUID; the old one becomes the bitmap UUID, overwriting
    /// it (`drbd_uuid_new_current`).
    pub fn new_current(&mut self, random: u64, primary: bool) {
        self.bitmap = self.current;
        self.set(Slot::Current, random, primary);
    }

    /// Sets the bitmap UUID (`drbd_uuid_set_bm`): 0 pushes the old value
    /// into history; any other value replaces it without bit 0.
    pub fn set_bitmap_uuid(&mut self, val: u64) {
        if self.bitmap == 0 && val == 0 {
            return;
        }
        if val == 0 {
            self.move_history();
            self.history[0] = self.bitmap;
            self.bitmap = 0;
        } else {
            self.bitmap = masked(val);
        }
    }

    /// Promotion to Primary (`drbd_set_role`): a new current UUID if the
    /// peer's data is out of reach and no bitmap UUID is pending, or if the
    /// promotion is forced; then bit 0 is set. Returns whether a new UUID
    /// was made (the caller writes the metadata).
    pub fn promote(&mut self, random: u64, conn: ConnState, pdsk: DiskState, forced: bool) -> bool {
        let peer_unreachable = conn < ConnState::Connected
            || pdsk <= DiskState::Failed;
        let new = (peer_unreachable && self.bitmap == 0) || forced;
        if new {
            self.new_current(random, true);
        }
        self.current |= 1;
        new
    }

    /// Demotion to Secondary: bit 0 is cleared.
    pub fn demote(&mut self) {
        self.current = masked(self.current);
    }

    /// Whether losing the peer's data needs a new current UUID
    /// (`after_state_ch`): a Primary on either side, no bitmap UUID yet and
    /// an UpToDate disk. The C defers it while IO is suspended.
    pub fn needs_new_current_on_lost_peer(&self, role: Role, peer: Role, disk: DiskState) -> bool {
        (role == Role::Primary || peer == Role::Primary)
            && self.bitmap == 0
            && disk == DiskState::UpToDate
    }

    /// The sync UUID a SyncSource generates and sends in P_SYNC_UUID
    /// (`drbd_gen_and_send_sync_uuid`): bitmap UUID plus
    /// `UUID_NEW_BM_OFFSET`, or `random` if there is none; it becomes the
    /// bitmap UUID, the old one goes to history.
    pub fn gen_sync_uuid(&mut self, random: u64) -> u64 {
        let uuid = match self.bitmap {
            0 | UUID_JUST_CREATED => random,
            bm => bm.wrapping_add(UUID_NEW_BM_OFFSET),
        };
        self.set_rotating(Slot::Bitmap, uuid, false);
        uuid
    }

    /// The SyncTarget adopts a received sync UUID (`receive_sync_uuid`):
    /// current := it, bitmap := 0, no history rotation.
    pub fn receive_sync_uuid(&mut self, uuid: u64, primary: bool) {
        self.set(Slot::Current, uuid, primary);
        self.set(Slot::Bitmap, 0, primary);
    }

    /// A resync finished without failed blocks (`drbd_resync_finished`).
    /// The target takes over the peer's bitmap and history, moves its sync
    /// UUID into the bitmap slot and adopts the peer's current UUID; then
    /// both sides push the bitmap UUID into history. Afterwards `peer` (our
    /// copy of the peer's UUIDs) equals ours.
    pub fn resync_finished(&mut self, peer: &mut Uuids, was_sync_target: bool, primary: bool) {
        if was_sync_target {
            self.bitmap = peer.bitmap;
            self.history = peer.history;
            self.set_rotating(Slot::Bitmap, self.current, primary);
            self.set(Slot::Current, peer.current, primary);
        }
        self.set_bitmap_uuid(0);
        *peer = *self;
    }

    /// `drbdsetup new-current-uuid` (`drbd_adm_new_c_uuid`): the bitmap UUID
    /// goes to history, then a new current UUID whose predecessor becomes
    /// the bitmap UUID. With --clear-bitmap on a connected fresh pair
    /// (skip initial sync) the caller then clears the bitmap UUID.
    pub fn new_current_uuid(&mut self, random: u64, primary: bool) {
        self.set_rotating(Slot::Bitmap, 0, primary);
        self.new_current(random, primary);
    }

    /// The peer skips the initial sync (P_UUIDS flag SKIP_INITIAL_SYNC on
    /// a connected, just created node, apv >= 90): adopt its current UUID,
    /// clear the bitmap UUID.
    pub fn skip_initial_sync(&mut self, peer_current: u64, primary: bool) {
        self.set(Slot::Current, peer_current, primary);
        self.set(Slot::Bitmap, 0, primary);
    }
}

/// Whether a peer disk change loses contact to the peer's data
/// (`lost_contact_to_peer_data`).
pub fn lost_contact_to_peer_data(old: DiskState, new: DiskState) -> bool {
    use DiskState::*;
    let had = |d: DiskState| d >= Inconsistent && d != DUnknown && d != Outdated;
    let lost = |d: DiskState| d < Inconsistent || d == DUnknown || d == Outdated;
    (had(old) && lost(new)) || (old == DUnknown && matches!(new, Diskless | Failed | Outdated))
}

/// What `drbd_uuid_compare` decided ("hg" in the C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDecision {
    /// 0: the data is the same.
    NoSync,
    /// 1: become SyncSource, sync what the bitmaps say.
    SyncSource,
    /// -1: become SyncTarget, sync what the bitmaps say.
    SyncTarget,
    /// 2: become SyncSource of a full sync.
    FullSyncSource,
    /// -2: become SyncTarget of a full sync.
    FullSyncTarget,
    /// 100: split brain, both bitmaps are relative to the same generation;
    /// the after-sb-0pri/1pri/2pri policy for the number of current
    /// Primaries may resolve it.
    SplitBrainAutoRecover,
    /// -100: split brain with only a common history; only always-asbp or
    /// discard-my-data resolve it.
    SplitBrainDisconnect,
    /// -1000: no common generation at all.
    UnrelatedData,
    /// -1000 - version: resolving needs this protocol version (91).
    NeedsProtocol(u32),
    /// -(0x10000 | protocol | features << 8): needs a newer peer.
    NeedsFeatures {
        /// Minimum protocol version.
        protocol: u32,
        /// Feature flags both sides need.
        features: u32,
    },
}

impl SyncDecision {
    /// The integer the C uses (and logs).
    pub fn hg(self) -> i32 {
        let small = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        match self {
            Self::NoSync => 0,
            Self::SyncSource => 1,
            Self::SyncTarget => -1,
            Self::FullSyncSource => 2,
            Self::FullSyncTarget => -2,
            Self::SplitBrainAutoRecover => 100,
            Self::SplitBrainDisconnect => -100,
            Self::UnrelatedData => -1000,
            Self::NeedsProtocol(v) => (-1000i32).saturating_sub(small(v)),
            Self::NeedsFeatures { protocol, features } => {
                let code = 0x10000 | (protocol & 0xff) | ((features & 0xff) << 8);
                0i32.saturating_sub(small(code))
            }
        }
    }
}

/// Result of `uuid_compare`: the decision and the rule number the C logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// "uuid_compare()=hg by rule N".
    pub rule: u32,
    /// The decision.
    pub decision: SyncDecision,
}

/// What `uuid_compare` needs besides the two UUID sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareContext {
    /// Our role now.
    pub own_role: Role,
    /// The peer's role (from its P_STATE).
    pub peer_role: Role,
    /// Our CRASHED_PRIMARY flag (we were Primary when we went down).
    pub own_crashed_primary: bool,
    /// The flags word of the peer's P_UUIDS.
    pub peer_flags: u64,
    /// We hold RESOLVE_CONFLICTS (we accepted the peer's meta socket).
    pub resolve_conflicts: bool,
    /// Agreed version and features.
    pub link: Link,
}

/// `drbd_uuid_compare`: compares our UUIDs with our copy of the peer's.
/// Rules 34 and 71 fix our own UUIDs, rules 35 and 51 fix the copy of the
/// peer's, exactly as the C does.
pub fn uuid_compare(own: &mut Uuids, peer: &mut Uuids, ctx: &CompareContext) -> Comparison {
    use SyncDecision::*;
    let at = |rule: u32, decision: SyncDecision| Comparison { rule, decision };
    let apv = ctx.link.version;
    let self_current = masked(own.current);
    let peer_current = masked(peer.current);

    // Rule 10: both just created.
    if self_current == UUID_JUST_CREATED && peer_current == UUID_JUST_CREATED {
        return at(10, NoSync);
    }
    // Rule 20: we are just created (or have no UUID), the peer has data.
    if (self_current == UUID_JUST_CREATED || self_current == 0) && peer_current != UUID_JUST_CREATED
    {
        return at(20, FullSyncTarget);
    }
    // Rule 30: the peer is just created (or has no UUID), we have data.
    if self_current != UUID_JUST_CREATED && (peer_current == UUID_JUST_CREATED || peer_current == 0)
    {
        return at(30, FullSyncSource);
    }

    if self_current == peer_current {
        // Rules 34/36: we have a bitmap UUID the peer lacks; we were
        // SyncSource. The C still reports rule 30 if apv < 91.
        if peer.bitmap == 0 && own.bitmap != 0 {
            if apv < 91 {
                return at(30, NeedsProtocol(91));
            }
            if masked(own.bitmap) == masked(peer.history[0])
                && masked(own.history[0]) == masked(peer.history[1])
            {
                // Rule 34: we missed the "resync finished" event; finish it.
                own.move_history();
                own.history[0] = own.bitmap;
                own.bitmap = 0;
                return at(34, SyncSource);
            }
            // Rule 36: the peer failed to write the sync UUID.
            return at(36, SyncSource);
        }
        // Rules 35/37: the mirror image; we were SyncTarget.
        if own.bitmap == 0 && peer.bitmap != 0 {
            if apv < 91 {
                return at(30, NeedsProtocol(91));
            }
            if masked(own.history[0]) == masked(peer.bitmap)
                && masked(own.history[1]) == masked(peer.history[0])
            {
                // Rule 35: the peer missed the "resync finished" event;
                // correct our copy of its UUIDs.
                peer.history[1] = peer.history[0];
                peer.history[0] = peer.bitmap;
                peer.bitmap = 0;
                return at(35, SyncTarget);
            }
            // Rule 37: we failed to write the sync UUID.
            return at(37, SyncTarget);
        }

        // Rule 40: common power failure; roles at crash time decide.
        // rct bit 0: we crashed as primary, bit 1: the peer did.
        let rct = u8::from(ctx.own_crashed_primary)
            | if ctx.peer_flags & uuid_flags::CRASHED_PRIMARY != 0 {
                2
            } else {
                0
            };
        if rct == 0 {
            return at(40, NoSync);
        }
        // Rule 41: equal unrotated UUIDs but a Primary now (IO was frozen).
        // FF_WSAME marks a peer new enough to agree on this.
        let own_primary = ctx.own_role == Role::Primary;
        let peer_primary = ctx.peer_role == Role::Primary;
        if own_primary || peer_primary {
            if !ctx.link.has(feature::WSAME) {
                return at(
                    41,
                    NeedsFeatures {
                        protocol: PRO_VERSION_MAX,
                        features: feature::WSAME,
                    },
                );
            }
            return at(
                41,
                match (own_primary, peer_primary) {
                    (true, true) => SplitBrainDisconnect,
                    (true, false) => SyncSource,
                    _ => SyncTarget,
                },
            );
        }
        // Rule 40, both Secondary: the one that crashed as primary wins;
        // both did: RESOLVE_CONFLICTS breaks the tie.
        return at(
            40,
            match rct {
                1 => SyncSource,
                2 => SyncTarget,
                _ if ctx.resolve_conflicts => SyncTarget,
                _ => SyncSource,
            },
        );
    }

    // Rule 50: the peer's bitmap tracks changes against our current data.
    if self_current == masked(peer.bitmap) {
        return at(50, SyncTarget);
    }

    // Rule 51: the same, but the peer's last P_SYNC_UUID as SyncSource
    // did not get through; undo it in our copy.
    let peer_h1 = masked(peer.history[0]);
    if self_current == peer_h1 {
        let lost_sync_uuid = if apv < 96 {
            masked(own.history[0]) == masked(peer.history[1])
        } else {
            peer_h1.wrapping_add(UUID_NEW_BM_OFFSET) == masked(peer.bitmap)
        };
        if lost_sync_uuid {
            if apv < 91 {
                return at(51, NeedsProtocol(91));
            }
            peer.bitmap = peer.history[0];
            peer.history[0] = peer.history[1];
            return at(51, SyncTarget);
        }
    }

    // Rule 60: our current data is an old generation of the peer's.
    if peer.history.iter().any(|&h| masked(h) == self_current) {
        return at(60, FullSyncTarget);
    }

    // Rule 70: our bitmap tracks changes against the peer's current data.
    let self_bitmap = masked(own.bitmap);
    if self_bitmap == peer_current {
        return at(70, SyncSource);
    }

    // Rule 71: the same, but our last P_SYNC_UUID did not get through;
    // undo it on our side.
    let self_h1 = masked(own.history[0]);
    if self_h1 == peer_current {
        let lost_sync_uuid = if apv < 96 {
            masked(own.history[1]) == masked(peer.history[0])
        } else {
            self_h1.wrapping_add(UUID_NEW_BM_OFFSET) == self_bitmap
        };
        if lost_sync_uuid {
            if apv < 91 {
                return at(71, NeedsProtocol(91));
            }
            own.bitmap = own.history[0];
            own.history[0] = own.history[1];
            return at(71, SyncSource);
        }
    }

    // Rule 80: the peer's current data is an old generation of ours.
    if own.history.iter().any(|&h| masked(h) == peer_current) {
        return at(80, FullSyncSource);
    }

    // Rule 90: both changed data since the same generation: split brain.
    if self_bitmap == masked(peer.bitmap) && self_bitmap != 0 {
        return at(90, SplitBrainAutoRecover);
    }

    // Rule 100: some common history (zero slots count, as in C).
    for own_h in own.history {
        if peer.history.iter().any(|&h| masked(h) == masked(own_h)) {
            return at(100, SplitBrainDisconnect);
        }
    }

    // Nothing in common; the C still reports rule 100.
    at(100, UnrelatedData)
}

pub use super::genl::AfterSbPolicy;

/// The net options the handshake consults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitBrainConfig {
    /// after-sb-0pri.
    pub after_sb_0p: AfterSbPolicy,
    /// after-sb-1pri.
    pub after_sb_1p: AfterSbPolicy,
    /// after-sb-2pri.
    pub after_sb_2p: AfterSbPolicy,
    /// rr-conflict: Disconnect, CallHelper or Violently.
    pub rr_conflict: AfterSbPolicy,
    /// always-asbp: apply the policies even to rule-100 split brains.
    pub always_asbp: bool,
}

impl SplitBrainConfig {
    /// drbdsetup defaults: disconnect everywhere, no always-asbp.
    pub const DEFAULT: Self = Self {
        after_sb_0p: AfterSbPolicy::Disconnect,
        after_sb_1p: AfterSbPolicy::Disconnect,
        after_sb_2p: AfterSbPolicy::Disconnect,
        rr_conflict: AfterSbPolicy::Disconnect,
        always_asbp: false,
    };
}

/// Everything `drbd_sync_handshake` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeInput {
    /// The result of `uuid_compare`.
    pub comparison: Comparison,
    /// Our UUIDs after `uuid_compare`.
    pub own_uuids: Uuids,
    /// Our copy of the peer's UUIDs after `uuid_compare`.
    pub peer_uuids: Uuids,
    /// Our role now.
    pub own_role: Role,
    /// The peer's role.
    pub peer_role: Role,
    /// Our disk state now.
    pub own_disk: DiskState,
    /// The disk state an attach is heading for; used when `own_disk` is
    /// Negotiating.
    pub pending_disk: DiskState,
    /// The peer's disk (Negotiating already resolved from its flags).
    pub peer_disk: DiskState,
    /// Set bits in our bitmap when we sent P_UUIDS.
    pub own_changes: u64,
    /// Set bits in the peer's bitmap (P_UUIDS word 4).
    pub peer_changes: u64,
    /// Our DISCARD_MY_DATA flag.
    pub discard_my_data: bool,
    /// The flags word of the peer's P_UUIDS.
    pub peer_flags: u64,
    /// We hold RESOLVE_CONFLICTS.
    pub resolve_conflicts: bool,
    /// Either side connects with --dry-run.
    pub dry_run: bool,
    /// Split-brain policies.
    pub config: SplitBrainConfig,
}

/// Why the handshake drops the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeAbort {
    /// "Unrelated data, aborting!"
    UnrelatedData,
    /// Needs a newer protocol version.
    NeedsProtocol(u32),
    /// Needs a newer peer (version and features).
    NeedsFeatures {
        /// Minimum protocol version.
        protocol: u32,
        /// Feature flags.
        features: u32,
    },
    /// "Split-Brain detected but unresolved".
    SplitBrain,
    /// "I shall become SyncSource, but I am inconsistent!"
    InconsistentSyncSource,
    /// "I shall become SyncTarget, but I am primary!" (rr-conflict).
    PrimarySyncTarget,
    /// Dry run: the decision is in `Handshake::hg`.
    DryRun,
}

/// Where the handshake leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeResult {
    /// No resync: Connected.
    Connected,
    /// WFBitMapS; `full_sync`: set every bit first.
    SyncSource {
        /// Set all bits and write the bitmap first.
        full_sync: bool,
    },
    /// WFBitMapT; `full_sync`: set every bit first.
    SyncTarget {
        /// Set all bits and write the bitmap first.
        full_sync: bool,
    },
    /// Drop the connection.
    Abort(HandshakeAbort),
}

/// Usermode helpers the handshake calls (`drbd_khelper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelperCalls {
    /// "initial-split-brain"
    pub initial_split_brain: bool,
    /// "split-brain"
    pub split_brain: bool,
    /// "pri-lost" (rr-conflict call-pri-lost)
    pub pri_lost: bool,
    /// "pri-lost-after-sb" (demotion failed)
    pub pri_lost_after_sb: bool,
}

/// Outcome of `sync_handshake`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The final "hg".
    pub hg: i32,
    /// The new connection state, or why to drop.
    pub result: HandshakeResult,
    /// Helpers to run.
    pub helpers: HelperCalls,
    /// We demoted ourselves (call-pri-lost-after-sb).
    pub demoted: bool,
}

/// State threaded through the after-sb recovery.
struct Recovery<'a, F: FnMut() -> bool> {
    input: &'a HandshakeInput,
    own_role: Role,
    demoted: bool,
    helpers: HelperCalls,
    try_demote: F,
}

impl<F: FnMut() -> bool> Recovery<'_, F> {
    /// `drbd_asb_recover_0p`, also the base of the 1p/2p policies.
    fn zero_primaries(&self) -> i32 {
        use AfterSbPolicy::*;
        let i = self.input;
        let policy = i.config.after_sb_0p;
        // Bit 0 of the bitmap UUID: already Primary when the peer was lost.
        let own_older = i.own_uuids.bitmap & 1 == 1;
        let peer_older = i.peer_uuids.bitmap & 1 == 1;
        let tie = if i.resolve_conflicts { -1 } else { 1 };
        let least_changes = || match i.own_changes.cmp(&i.peer_changes) {
            core::cmp::Ordering::Less => -1,
            core::cmp::Ordering::Greater => 1,
            core::cmp::Ordering::Equal => tie,
        };
        let zero_changes = || {
            if i.peer_changes == 0 && i.own_changes == 0 {
                tie
            } else if i.peer_changes == 0 {
                1
            } else if i.own_changes == 0 {
                -1
            } else if policy == DiscardZeroChanges {
                -100
            } else {
                least_changes()
            }
        };
        let older_primary = || match (own_older, peer_older) {
            (false, true) => 1,
            (true, false) => -1,
            _ => zero_changes(),
        };
        match policy {
            Consensus | DiscardSecondary | CallHelper | Violently | Disconnect => -100,
            DiscardYoungerPrimary => match (own_older, peer_older) {
                (false, true) => -1,
                (true, false) => 1,
                _ => older_primary(),
            },
            DiscardOlderPrimary => older_primary(),
            DiscardZeroChanges => zero_changes(),
            DiscardLeastChanges => least_changes(),
            DiscardLocal => -1,
            DiscardRemote => 1,
        }
    }

    /// call-pri-lost-after-sb: if the 0pri result discards us while we are
    /// Primary, demote; if that fails, call the helper and give up.
    fn call_pri_lost(&mut self, hg: i32, only_if_primary: bool) -> i32 {
        if hg == -1 && (!only_if_primary || self.own_role == Role::Primary) {
            if (self.try_demote)() {
                self.own_role = Role::Secondary;
                self.demoted = true;
                hg
            } else {
                self.helpers.pri_lost_after_sb = true;
                -100
            }
        } else {
            hg
        }
    }

    /// `drbd_asb_recover_1p`.
    fn one_primary(&mut self) -> i32 {
        use AfterSbPolicy::*;
        match self.input.config.after_sb_1p {
            Consensus => match self.zero_primaries() {
                -1 if self.own_role == Role::Secondary => -1,
                1 if self.own_role == Role::Primary => 1,
                _ => -100,
            },
            Violently => self.zero_primaries(),
            DiscardSecondary => {
                if self.own_role == Role::Primary {
                    1
                } else {
                    -1
                }
            }
            CallHelper => {
                let hg = self.zero_primaries();
                self.call_pri_lost(hg, true)
            }
            // Disconnect, and the 0pri-only values (configuration errors).
            _ => -100,
        }
    }

    /// `drbd_asb_recover_2p`.
    fn two_primaries(&mut self) -> i32 {
        use AfterSbPolicy::*;
        match self.input.config.after_sb_2p {
            Violently => self.zero_primaries(),
            CallHelper => {
                let hg = self.zero_primaries();
                self.call_pri_lost(hg, false)
            }
            _ => -100,
        }
    }
}

/// `drbd_sync_handshake`: turns the UUID comparison into the next
/// connection state, applying the disk-state override, the split-brain
/// policies, discard-my-data, rr-conflict and dry-run. `try_demote` is
/// called when call-pri-lost-after-sb wants us to give up the Primary role;
/// it returns whether the demotion succeeded.
pub fn sync_handshake(input: &HandshakeInput, try_demote: impl FnMut() -> bool) -> Handshake {
    let mut rec = Recovery {
        input,
        own_role: input.own_role,
        demoted: false,
        helpers: HelperCalls::default(),
        try_demote,
    };
    let done = |rec: &Recovery<'_, _>, hg: i32, result: HandshakeResult| Handshake {
        hg,
        result,
        helpers: rec.helpers,
        demoted: rec.demoted,
    };
    let abort = |rec: &Recovery<'_, _>, hg: i32, why| done(rec, hg, HandshakeResult::Abort(why));

    let mydisk = if input.own_disk == DiskState::Negotiating {
        input.pending_disk
    } else {
        input.own_disk
    };
    let decision = input.comparison.decision;
    let mut hg = decision.hg();
    match decision {
        SyncDecision::UnrelatedData => return abort(&rec, hg, HandshakeAbort::UnrelatedData),
        SyncDecision::NeedsFeatures { protocol, features } => {
            return abort(
                &rec,
                hg,
                HandshakeAbort::NeedsFeatures { protocol, features },
            )
        }
        SyncDecision::NeedsProtocol(v) => return abort(&rec, hg, HandshakeAbort::NeedsProtocol(v)),
        _ => {}
    }

    // Exactly one side Inconsistent: the disk states decide the direction;
    // a full sync if the UUIDs asked for one or could not decide (-100).
    let inconsistent = DiskState::Inconsistent;
    let (mine, peers) = (mydisk, input.peer_disk);
    if (mine == inconsistent && peers > inconsistent)
        || (peers == inconsistent && mine > inconsistent)
    {
        let full = hg == -100 || hg.abs() == 2;
        hg = if mine > inconsistent { 1 } else { -1 };
        if full {
            hg = hg.saturating_mul(2);
        }
    }

    if hg.abs() == 100 {
        rec.helpers.initial_split_brain = true;
    }

    if hg == 100 || (hg == -100 && input.config.always_asbp) {
        let primaries = [rec.own_role, input.peer_role]
            .iter()
            .filter(|&&r| r == Role::Primary)
            .count();
        let forced = hg == -100;
        hg = match primaries {
            0 => rec.zero_primaries(),
            1 => rec.one_primary(),
            _ => rec.two_primaries(),
        };
        // Auto-recovered from ambiguous UUIDs: full sync.
        if hg.abs() < 100 && forced {
            hg = hg.saturating_mul(2);
        }
    }

    // Manual recovery: exactly one side has discard-my-data.
    if hg == -100 {
        let peer_discards = input.peer_flags & uuid_flags::DISCARD_MY_DATA != 0;
        if input.discard_my_data && !peer_discards {
            hg = -1;
        }
        if !input.discard_my_data && peer_discards {
            hg = 1;
        }
    }

    if hg == -100 {
        rec.helpers.split_brain = true;
        return abort(&rec, hg, HandshakeAbort::SplitBrain);
    }

    if hg > 0 && mydisk <= inconsistent {
        return abort(&rec, hg, HandshakeAbort::InconsistentSyncSource);
    }

    // rr-conflict: the C looks at the current disk here, not mydisk.
    if hg < 0
        && rec.own_role == Role::Primary
        && input.own_disk >= DiskState::Consistent
    {
        match input.config.rr_conflict {
            AfterSbPolicy::CallHelper => {
                rec.helpers.pri_lost = true;
                return abort(&rec, hg, HandshakeAbort::PrimarySyncTarget);
            }
            AfterSbPolicy::Disconnect => return abort(&rec, hg, HandshakeAbort::PrimarySyncTarget),
            _ => {}
        }
    }

    if input.dry_run {
        return abort(&rec, hg, HandshakeAbort::DryRun);
    }

    let full_sync = hg.abs() >= 2;
    let result = match hg.signum() {
        1 => HandshakeResult::SyncSource { full_sync },
        -1 => HandshakeResult::SyncTarget { full_sync },
        _ => HandshakeResult::Connected,
    };
    done(&rec, hg, result)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    extern crate std;
    use super::*;
    use SyncDecision::*;

    const A: u64 = 0xaaaa_0000_0000_0010;
    const B: u64 = 0xbbbb_0000_0000_0020;
    const C: u64 = 0xcccc_0000_0000_0030;
    const D: u64 = 0xdddd_0000_0000_0040;
    const E: u64 = 0xeeee_0000_0000_0050;
    const OFS: u64 = UUID_NEW_BM_OFFSET;

    fn u(current: u64, bitmap: u64, h1: u64, h2: u64) -> Uuids {
        Uuids {
            current,
            bitmap,
            history: [h1, h2],
        }
    }

    fn ctx() -> CompareContext {
        CompareContext {
            own_role: Role::Secondary,
            peer_role: Role::Secondary,
            own_crashed_primary: false,
            peer_flags: 0,
            resolve_conflicts: false,
            link: Link {
                version: 101,
                features: feature::WSAME,
            },
        }
    }

    struct Case {
        name: &'static str,
        own: Uuids,
        peer: Uuids,
        ctx: CompareContext,
        rule: u32,
        decision: SyncDecision,
        own_after: Option<Uuids>,
        peer_after: Option<Uuids>,
    }

    fn case(
        name: &'static str,
        own: Uuids,
        peer: Uuids,
        rule: u32,
        decision: SyncDecision,
    ) -> Case {
        Case {
            name,
            own,
            peer,
            ctx: ctx(),
            rule,
            decision,
            own_after: None,
            peer_after: None,
        }
    }

    fn with(mut c: Case, f: impl FnOnce(&mut CompareContext)) -> Case {
        f(&mut c.ctx);
        c
    }

    fn apv(v: u32) -> impl FnOnce(&mut CompareContext) {
        move |c| c.link.version = v
    }

    #[test]
    fn every_uuid_compare_rule() {
        let primary_bit = 1;
        let cases = [
            case(
                "10 both fresh",
                Uuids::JUST_CREATED,
                Uuids::JUST_CREATED,
                10,
                NoSync,
            ),
            case(
                "10 ignores bit 0",
                u(4 | primary_bit, 0, 0, 0),
                Uuids::JUST_CREATED,
                10,
                NoSync,
            ),
            case(
                "20 fresh vs data",
                Uuids::JUST_CREATED,
                u(A, 4, 0, 0),
                20,
                FullSyncTarget,
            ),
            case(
                "20 zero vs data",
                u(0, 0, 0, 0),
                u(A, 0, 0, 0),
                20,
                FullSyncTarget,
            ),
            case(
                "30 data vs fresh",
                u(A, 0, 0, 0),
                Uuids::JUST_CREATED,
                30,
                FullSyncSource,
            ),
            case(
                "30 data vs zero",
                u(A, 0, 0, 0),
                u(0, 0, 0, 0),
                30,
                FullSyncSource,
            ),
            Case {
                own_after: Some(u(A, 0, B, C)),
                ..case(
                    "34 finish missed resync",
                    u(A, B, C, D),
                    u(A, 0, B, C),
                    34,
                    SyncSource,
                )
            },
            case(
                "36 peer lost sync uuid",
                u(A, B, C, D),
                u(A, 0, E, 0),
                36,
                SyncSource,
            ),
            with(
                case(
                    "34/36 need apv 91",
                    u(A, B, C, D),
                    u(A, 0, B, C),
                    30,
                    NeedsProtocol(91),
                ),
                apv(90),
            ),
            Case {
                peer_after: Some(u(A, 0, B, C)),
                ..case(
                    "35 correct peer",
                    u(A, 0, B, C),
                    u(A, B, C, D),
                    35,
                    SyncTarget,
                )
            },
            case(
                "37 we lost sync uuid",
                u(A, 0, E, 0),
                u(A, B, C, D),
                37,
                SyncTarget,
            ),
            with(
                case(
                    "35/37 need apv 91",
                    u(A, 0, B, C),
                    u(A, B, C, D),
                    30,
                    NeedsProtocol(91),
                ),
                apv(88),
            ),
            case("40 no crash", u(A, 0, B, 0), u(A | 1, 0, B, 0), 40, NoSync),
            case(
                "40 both bitmaps set",
                u(A, C, 0, 0),
                u(A, D, 0, 0),
                40,
                NoSync,
            ),
            with(
                case(
                    "40 we crashed",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    40,
                    SyncSource,
                ),
                |c| c.own_crashed_primary = true,
            ),
            with(
                case(
                    "40 peer crashed",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    40,
                    SyncTarget,
                ),
                |c| c.peer_flags = uuid_flags::CRASHED_PRIMARY,
            ),
            with(
                case(
                    "40 both crashed",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    40,
                    SyncSource,
                ),
                |c| {
                    c.own_crashed_primary = true;
                    c.peer_flags = 2;
                },
            ),
            with(
                case(
                    "40 both crashed, resolver",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    40,
                    SyncTarget,
                ),
                |c| {
                    c.own_crashed_primary = true;
                    c.peer_flags = 2;
                    c.resolve_conflicts = true;
                },
            ),
            with(
                case(
                    "41 we are primary",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    41,
                    SyncSource,
                ),
                |c| {
                    c.peer_flags = 2;
                    c.own_role = Role::Primary;
                },
            ),
            with(
                case(
                    "41 peer is primary",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    41,
                    SyncTarget,
                ),
                |c| {
                    c.own_crashed_primary = true;
                    c.peer_role = Role::Primary;
                },
            ),
            with(
                case(
                    "41 both primary",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    41,
                    SplitBrainDisconnect,
                ),
                |c| {
                    c.own_crashed_primary = true;
                    c.own_role = Role::Primary;
                    c.peer_role = Role::Primary;
                },
            ),
            with(
                case(
                    "41 without FF_WSAME",
                    u(A, 0, 0, 0),
                    u(A, 0, 0, 0),
                    41,
                    NeedsFeatures {
                        protocol: 101,
                        features: 4,
                    },
                ),
                |c| {
                    c.own_crashed_primary = true;
                    c.own_role = Role::Primary;
                    c.link.features = 0;
                },
            ),
            case(
                "50 peer bitmap is our current",
                u(A, 0, B, 0),
                u(C, A | 1, B, 0),
                50,
                SyncTarget,
            ),
            Case {
                peer_after: Some(u(C, A, D, D)),
                ..case(
                    "51 apv 96+: undo peer's sync uuid",
                    u(A, 0, B, 0),
                    u(C, A + OFS, A, D),
                    51,
                    SyncTarget,
                )
            },
            with(
                Case {
                    peer_after: Some(u(C, A, D, D)),
                    ..case("51 apv < 96", u(A, 0, D, 0), u(C, E, A, D), 51, SyncTarget)
                },
                apv(95),
            ),
            with(
                case(
                    "51 needs apv 91",
                    u(A, 0, D, 0),
                    u(C, E, A, D),
                    51,
                    NeedsProtocol(91),
                ),
                apv(90),
            ),
            case(
                "60 our current in peer history 1",
                u(A, 0, 0, 0),
                u(C, 0, A, 0),
                60,
                FullSyncTarget,
            ),
            case(
                "60 our current in peer history 2",
                u(A, 0, 0, 0),
                u(C, 0, D, A),
                60,
                FullSyncTarget,
            ),
            case(
                "70 our bitmap is peer current",
                u(A, B, 0, 0),
                u(B, 0, C, 0),
                70,
                SyncSource,
            ),
            Case {
                own_after: Some(u(A, B, D, D)),
                ..case(
                    "71 apv 96+: undo our sync uuid",
                    u(A, B + OFS, B, D),
                    u(B, 0, E, 0),
                    71,
                    SyncSource,
                )
            },
            with(
                Case {
                    own_after: Some(u(A, B, D, D)),
                    ..case("71 apv < 96", u(A, E, B, D), u(B, 0, D, 0), 71, SyncSource)
                },
                apv(91),
            ),
            with(
                case(
                    "71 needs apv 91",
                    u(A, E, B, D),
                    u(B, 0, D, 0),
                    71,
                    NeedsProtocol(91),
                ),
                apv(90),
            ),
            case(
                "80 peer current in our history",
                u(A, 0, B, 0),
                u(B | 1, 0, 0, 0),
                80,
                FullSyncSource,
            ),
            case(
                "90 same bitmap uuid",
                u(A, C, D, 0),
                u(B, C | 1, E, 0),
                90,
                SplitBrainAutoRecover,
            ),
            case(
                "100 common history",
                u(A, C, D, E),
                u(B, B + 2, 0x44, D),
                100,
                SplitBrainDisconnect,
            ),
            case(
                "100 zero history slots match",
                u(A, C, 0, 0),
                u(B, D, 0, 0),
                100,
                SplitBrainDisconnect,
            ),
            case(
                "-1000 unrelated",
                u(A, C, D, 0x77),
                u(B, E, 0x55, 0x66),
                100,
                UnrelatedData,
            ),
        ];
        for c in cases {
            let (mut own, mut peer) = (c.own, c.peer);
            let got = uuid_compare(&mut own, &mut peer, &c.ctx);
            assert_eq!(
                got,
                Comparison {
                    rule: c.rule,
                    decision: c.decision
                },
                "{}",
                c.name
            );
            assert_eq!(own, c.own_after.unwrap_or(c.own), "{} own", c.name);
            assert_eq!(peer, c.peer_after.unwrap_or(c.peer), "{} peer", c.name);
        }
    }

    #[test]
    fn hg_values_match_c() {
        assert_eq!(NeedsProtocol(91).hg(), -1091);
        assert_eq!(
            NeedsFeatures {
                protocol: 101,
                features: 4
            }
            .hg(),
            -(0x10000 | 101 | (4 << 8))
        );
        assert_eq!(SplitBrainAutoRecover.hg(), 100);
        assert_eq!(UnrelatedData.hg(), -1000);
        assert_eq!(FullSyncTarget.hg(), -2);
    }

    fn input(comparison: Comparison) -> HandshakeInput {
        HandshakeInput {
            comparison,
            own_uuids: u(A, C, 0, 0),
            peer_uuids: u(B, C, 0, 0),
            own_role: Role::Secondary,
            peer_role: Role::Secondary,
            own_disk: DiskState::UpToDate,
            pending_disk: DiskState::UpToDate,
            peer_disk: DiskState::UpToDate,
            own_changes: 10,
            peer_changes: 20,
            discard_my_data: false,
            peer_flags: 0,
            resolve_conflicts: false,
            dry_run: false,
            config: SplitBrainConfig::DEFAULT,
        }
    }

    fn cmp(rule: u32, decision: SyncDecision) -> Comparison {
        Comparison { rule, decision }
    }

    fn never_demote() -> bool {
        panic!("unexpected demotion")
    }

    #[test]
    fn handshake_plain_decisions() {
        let h = |d| sync_handshake(&input(cmp(1, d)), never_demote).result;
        assert_eq!(h(NoSync), HandshakeResult::Connected);
        assert_eq!(
            h(SyncSource),
            HandshakeResult::SyncSource { full_sync: false }
        );
        assert_eq!(
            h(FullSyncSource),
            HandshakeResult::SyncSource { full_sync: true }
        );
        assert_eq!(
            h(SyncTarget),
            HandshakeResult::SyncTarget { full_sync: false }
        );
        assert_eq!(
            h(FullSyncTarget),
            HandshakeResult::SyncTarget { full_sync: true }
        );
        assert_eq!(
            h(UnrelatedData),
            HandshakeResult::Abort(HandshakeAbort::UnrelatedData)
        );
        assert_eq!(
            h(NeedsProtocol(91)),
            HandshakeResult::Abort(HandshakeAbort::NeedsProtocol(91))
        );
        let hs = sync_handshake(&input(cmp(100, SplitBrainDisconnect)), never_demote);
        assert_eq!(
            hs.result,
            HandshakeResult::Abort(HandshakeAbort::SplitBrain)
        );
        assert!(hs.helpers.initial_split_brain && hs.helpers.split_brain);
    }

    #[test]
    fn handshake_disk_state_override() {
        // I am UpToDate, the peer Inconsistent; UUIDs said "no sync".
        let mut i = input(cmp(40, NoSync));
        i.peer_disk = DiskState::Inconsistent;
        assert_eq!(sync_handshake(&i, never_demote).hg, 1);
        // ... said full sync as target: reversed, still full.
        i.comparison = cmp(20, FullSyncTarget);
        assert_eq!(sync_handshake(&i, never_demote).hg, 2);
        // ... said -100: doubled; +100 is not (as in C).
        i.comparison = cmp(100, SplitBrainDisconnect);
        assert_eq!(sync_handshake(&i, never_demote).hg, 2);
        i.comparison = cmp(90, SplitBrainAutoRecover);
        assert_eq!(sync_handshake(&i, never_demote).hg, 1);
        // Attaching: the pending disk state counts.
        let mut i = input(cmp(40, NoSync));
        i.own_disk = DiskState::Negotiating;
        i.pending_disk = DiskState::Inconsistent;
        assert_eq!(
            sync_handshake(&i, never_demote).result,
            HandshakeResult::SyncTarget { full_sync: false }
        );
        // An inconsistent node never becomes SyncSource.
        let mut i = input(cmp(70, SyncSource));
        i.own_disk = DiskState::Inconsistent;
        i.peer_disk = DiskState::Inconsistent;
        assert_eq!(
            sync_handshake(&i, never_demote).result,
            HandshakeResult::Abort(HandshakeAbort::InconsistentSyncSource)
        );
    }

    fn after_sb_0p(
        policy: AfterSbPolicy,
        own_bm: u64,
        peer_bm: u64,
        mine: u64,
        peers: u64,
        rc: bool,
    ) -> i32 {
        let mut i = input(cmp(90, SplitBrainAutoRecover));
        i.config.after_sb_0p = policy;
        i.own_uuids.bitmap = own_bm;
        i.peer_uuids.bitmap = peer_bm;
        i.own_changes = mine;
        i.peer_changes = peers;
        i.resolve_conflicts = rc;
        sync_handshake(&i, never_demote).hg
    }

    #[test]
    fn after_sb_0pri_policies() {
        use AfterSbPolicy::*;
        let (young, old) = (C, C | 1);
        assert_eq!(after_sb_0p(Disconnect, young, old, 1, 2, false), -100);
        assert_eq!(
            after_sb_0p(DiscardYoungerPrimary, young, old, 1, 2, false),
            -1
        );
        assert_eq!(
            after_sb_0p(DiscardYoungerPrimary, old, young, 1, 2, false),
            1
        );
        // Undecided younger/older falls through to older, zero, least.
        assert_eq!(
            after_sb_0p(DiscardYoungerPrimary, old, old, 1, 2, false),
            -1
        );
        assert_eq!(after_sb_0p(DiscardOlderPrimary, young, old, 1, 2, false), 1);
        assert_eq!(
            after_sb_0p(DiscardOlderPrimary, old, young, 1, 2, false),
            -1
        );
        assert_eq!(
            after_sb_0p(DiscardOlderPrimary, young, young, 0, 5, false),
            -1
        );
        assert_eq!(
            after_sb_0p(DiscardZeroChanges, young, young, 0, 0, false),
            1
        );
        assert_eq!(
            after_sb_0p(DiscardZeroChanges, young, young, 0, 0, true),
            -1
        );
        assert_eq!(
            after_sb_0p(DiscardZeroChanges, young, young, 3, 0, false),
            1
        );
        assert_eq!(
            after_sb_0p(DiscardZeroChanges, young, young, 0, 3, false),
            -1
        );
        assert_eq!(
            after_sb_0p(DiscardZeroChanges, young, young, 3, 4, false),
            -100
        );
        assert_eq!(
            after_sb_0p(DiscardLeastChanges, young, young, 3, 4, false),
            -1
        );
        assert_eq!(
            after_sb_0p(DiscardLeastChanges, young, young, 5, 4, false),
            1
        );
        assert_eq!(
            after_sb_0p(DiscardLeastChanges, young, young, 4, 4, true),
            -1
        );
        assert_eq!(after_sb_0p(DiscardLocal, young, young, 4, 4, false), -1);
        assert_eq!(after_sb_0p(DiscardRemote, young, young, 4, 4, false), 1);
        for bad in [Consensus, DiscardSecondary, CallHelper, Violently] {
            assert_eq!(after_sb_0p(bad, young, old, 1, 2, false), -100);
        }
    }

    #[test]
    fn after_sb_1pri_and_2pri_policies() {
        use AfterSbPolicy::*;
        let base = |own_role, p1, p2| {
            let mut i = input(cmp(90, SplitBrainAutoRecover));
            i.own_role = own_role;
            i.peer_role = Role::Secondary;
            if own_role == Role::Secondary {
                i.peer_role = Role::Primary;
            }
            i.config.after_sb_0p = DiscardLocal; // 0pri result: -1 (discard me)
            i.config.after_sb_1p = p1;
            i.config.after_sb_2p = p2;
            i
        };
        // consensus: only if it discards the Secondary.
        let i = base(Role::Secondary, Consensus, Disconnect);
        assert_eq!(sync_handshake(&i, never_demote).hg, -1);
        let i = base(Role::Primary, Consensus, Disconnect);
        assert_eq!(sync_handshake(&i, never_demote).hg, -100);
        // discard-secondary: the Primary wins.
        let i = base(Role::Primary, DiscardSecondary, Disconnect);
        assert_eq!(sync_handshake(&i, never_demote).hg, 1);
        let i = base(Role::Secondary, DiscardSecondary, Disconnect);
        assert_eq!(sync_handshake(&i, never_demote).hg, -1);
        // violently-as0p.
        let i = base(Role::Primary, Violently, Disconnect);
        let mut i2 = i;
        i2.config.rr_conflict = Violently;
        assert_eq!(sync_handshake(&i, never_demote).hg, -1);
        assert_eq!(
            sync_handshake(&i, never_demote).result,
            HandshakeResult::Abort(HandshakeAbort::PrimarySyncTarget)
        );
        assert_eq!(
            sync_handshake(&i2, never_demote).result,
            HandshakeResult::SyncTarget { full_sync: false }
        );
        // call-pri-lost-after-sb: demote, or call the helper.
        let i = base(Role::Primary, CallHelper, Disconnect);
        let hs = sync_handshake(&i, || true);
        assert!(hs.demoted);
        assert_eq!(hs.result, HandshakeResult::SyncTarget { full_sync: false });
        let hs = sync_handshake(&i, || false);
        assert!(hs.helpers.pri_lost_after_sb && hs.helpers.split_brain);
        assert_eq!(
            hs.result,
            HandshakeResult::Abort(HandshakeAbort::SplitBrain)
        );
        // A 0pri value in 1pri is a configuration error.
        let i = base(Role::Primary, DiscardLocal, Disconnect);
        assert_eq!(sync_handshake(&i, never_demote).hg, -100);
        // Two primaries.
        let mut i = base(Role::Primary, Disconnect, Violently);
        i.peer_role = Role::Primary;
        i.config.rr_conflict = Violently;
        assert_eq!(sync_handshake(&i, never_demote).hg, -1);
        i.config.after_sb_2p = CallHelper;
        let hs = sync_handshake(&i, || true);
        assert!(hs.demoted);
        assert_eq!(hs.hg, -1);
        i.config.after_sb_2p = Consensus;
        assert_eq!(sync_handshake(&i, never_demote).hg, -100);
    }

    #[test]
    fn handshake_always_asbp_and_discard_my_data() {
        let mut i = input(cmp(100, SplitBrainDisconnect));
        i.config.after_sb_0p = AfterSbPolicy::DiscardRemote;
        assert_eq!(sync_handshake(&i, never_demote).hg, -100);
        // always-asbp resolves rule-100 split brains, with a full sync.
        i.config.always_asbp = true;
        assert_eq!(
            sync_handshake(&i, never_demote).result,
            HandshakeResult::SyncSource { full_sync: true }
        );
        // discard-my-data on exactly one side.
        let mut i = input(cmp(100, SplitBrainDisconnect));
        i.discard_my_data = true;
        assert_eq!(sync_handshake(&i, never_demote).hg, -1);
        i.peer_flags = uuid_flags::DISCARD_MY_DATA;
        assert_eq!(sync_handshake(&i, never_demote).hg, -100);
        i.discard_my_data = false;
        assert_eq!(sync_handshake(&i, never_demote).hg, 1);
    }

    #[test]
    fn handshake_rr_conflict_and_dry_run() {
        let mut i = input(cmp(50, SyncTarget));
        i.own_role = Role::Primary;
        assert_eq!(
            sync_handshake(&i, never_demote).result,
            HandshakeResult::Abort(HandshakeAbort::PrimarySyncTarget)
        );
        i.config.rr_conflict = AfterSbPolicy::CallHelper;
        let hs = sync_handshake(&i, never_demote);
        assert!(hs.helpers.pri_lost);
        i.config.rr_conflict = AfterSbPolicy::Violently;
        assert_eq!(
            sync_handshake(&i, never_demote).result,
            HandshakeResult::SyncTarget { full_sync: false }
        );
        // A diskless-ish primary (Inconsistent) is not protected.
        i.config.rr_conflict = AfterSbPolicy::Disconnect;
        i.own_disk = DiskState::Outdated;
        assert_eq!(sync_handshake(&i, never_demote).hg, -1);
        let mut i = input(cmp(70, SyncSource));
        i.dry_run = true;
        let hs = sync_handshake(&i, never_demote);
        assert_eq!(
            (hs.hg, hs.result),
            (1, HandshakeResult::Abort(HandshakeAbort::DryRun))
        );
    }

    #[test]
    fn uuid_updates() {
        let mut x = u(A, 0, B, C);
        x.new_current(D, true);
        assert_eq!(x, u(D | 1, A, B, C));
        x.set_rotating(Slot::Bitmap, E, false);
        assert_eq!(x, u(D | 1, E, A, B));
        x.set_bitmap_uuid(0);
        assert_eq!(x, u(D | 1, 0, E, A));
        x.set_bitmap_uuid(0);
        assert_eq!(x, u(D | 1, 0, E, A));
        x.set_bitmap_uuid(C | 1);
        assert_eq!(x, u(D | 1, C, E, A));
        x.set(Slot::Current, B | 1, false);
        assert_eq!(x.get(Slot::Current), B);
        x.demote();
        assert_eq!(x.current & 1, 0);
        // Rotating into an empty slot keeps the history.
        let mut y = u(A, 0, B, C);
        y.set_rotating(Slot::Bitmap, D, false);
        assert_eq!(y, u(A, D, B, C));
        // new-current-uuid: bitmap UUID to history, then new current.
        let mut z = u(A, B, C, D);
        z.new_current_uuid(E, false);
        assert_eq!(z, u(E, A, B, C));
        let mut f = Uuids::JUST_CREATED;
        f.skip_initial_sync(A | 1, false);
        assert_eq!(f, u(A, 0, 0, 0));
    }

    #[test]
    fn promotion_makes_new_current_only_when_needed() {
        let mut x = u(A, 0, 0, 0);
        assert!(!x.promote(B, ConnState::Connected, DiskState::UpToDate, false));
        assert_eq!(x, u(A | 1, 0, 0, 0));
        let mut x = u(A, 0, 0, 0);
        assert!(x.promote(B, ConnState::WfConnection, DiskState::DUnknown, false));
        assert_eq!(x, u(B | 1, A, 0, 0));
        let mut x = u(A, C, 0, 0);
        assert!(!x.promote(B, ConnState::StandAlone, DiskState::DUnknown, false));
        assert!(x.promote(B, ConnState::Connected, DiskState::Inconsistent, true));
        let mut x = u(A, 0, 0, 0);
        assert!(x.promote(B, ConnState::Connected, DiskState::Failed, false));
        assert!(!x.needs_new_current_on_lost_peer(
            Role::Secondary,
            Role::Primary,
            DiskState::UpToDate
        ));
        let y = u(A, 0, 0, 0);
        assert!(y.needs_new_current_on_lost_peer(
            Role::Secondary,
            Role::Primary,
            DiskState::UpToDate
        ));
        assert!(!y.needs_new_current_on_lost_peer(
            Role::Secondary,
            Role::Secondary,
            DiskState::UpToDate
        ));
        assert!(!y.needs_new_current_on_lost_peer(
            Role::Primary,
            Role::Unknown,
            DiskState::Consistent
        ));
        assert!(lost_contact_to_peer_data(
            DiskState::UpToDate,
            DiskState::DUnknown
        ));
        assert!(lost_contact_to_peer_data(
            DiskState::Inconsistent,
            DiskState::Outdated
        ));
        assert!(lost_contact_to_peer_data(
            DiskState::DUnknown,
            DiskState::Diskless
        ));
        assert!(!lost_contact_to_peer_data(
            DiskState::Outdated,
            DiskState::DUnknown
        ));
        assert!(!lost_contact_to_peer_data(
            DiskState::UpToDate,
            DiskState::Inconsistent
        ));
    }

    #[test]
    fn sync_uuid_generation() {
        let mut x = u(A, C, 0, 0);
        assert_eq!(x.gen_sync_uuid(0x1234), C + OFS);
        assert_eq!(x, u(A, C + OFS, C, 0));
        let mut x = u(A, 0, B, 0);
        assert_eq!(x.gen_sync_uuid(0x1234), 0x1234);
        assert_eq!(x, u(A, 0x1234, B, 0));
        let mut x = u(A, 4, B, 0);
        assert_eq!(x.gen_sync_uuid(0x5678), 0x5678);
        assert_eq!(x, u(A, 0x5678, 4, B));
        let mut x = u(A, u64::MAX, 0, 0);
        assert_eq!(x.gen_sync_uuid(0), u64::MAX.wrapping_add(OFS));
    }

    use crate::test_rng::XorShift;

    #[test]
    fn random_inputs_never_panic() {
        // Values from a small pool, so that the rules actually match.
        let pool = [
            0,
            1,
            4,
            5,
            A,
            A | 1,
            B,
            C,
            A + OFS,
            B + OFS,
            u64::MAX,
            u64::MAX - 1,
        ];
        let mut rng = XorShift(99);
        let roles = [Role::Unknown, Role::Primary, Role::Secondary];
        let disks = [
            DiskState::Diskless,
            DiskState::Negotiating,
            DiskState::Inconsistent,
            DiskState::Outdated,
            DiskState::DUnknown,
            DiskState::Consistent,
            DiskState::UpToDate,
        ];
        let mut pick = |n: usize| (rng.next() % n as u64) as usize;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200_000 {
            let mut uuids = [Uuids::default(); 2];
            for x in &mut uuids {
                *x = u(
                    pool[pick(pool.len())],
                    pool[pick(pool.len())],
                    pool[pick(pool.len())],
                    pool[pick(pool.len())],
                );
            }
            let [mut own, mut peer] = uuids;
            let c = CompareContext {
                own_role: roles[pick(3)],
                peer_role: roles[pick(3)],
                own_crashed_primary: pick(2) == 0,
                peer_flags: pick(16) as u64,
                resolve_conflicts: pick(2) == 0,
                link: Link {
                    version: [86, 90, 91, 95, 96, 101][pick(6)],
                    features: pick(16) as u32,
                },
            };
            let comparison = uuid_compare(&mut own, &mut peer, &c);
            seen.insert(comparison.rule);
            let policy = |n| AfterSbPolicy::from_raw(n as u32).unwrap();
            let i = HandshakeInput {
                comparison,
                own_uuids: own,
                peer_uuids: peer,
                own_role: c.own_role,
                peer_role: c.peer_role,
                own_disk: disks[pick(disks.len())],
                pending_disk: disks[pick(disks.len())],
                peer_disk: disks[pick(disks.len())],
                own_changes: pick(3) as u64,
                peer_changes: pick(3) as u64,
                discard_my_data: pick(2) == 0,
                peer_flags: c.peer_flags,
                resolve_conflicts: c.resolve_conflicts,
                dry_run: pick(8) == 0,
                config: SplitBrainConfig {
                    after_sb_0p: policy(pick(11)),
                    after_sb_1p: policy(pick(11)),
                    after_sb_2p: policy(pick(11)),
                    rr_conflict: policy(pick(11)),
                    always_asbp: pick(2) == 0,
                },
            };
            let demote_ok = pick(2) == 0;
            let hs = sync_handshake(&i, || demote_ok);
            assert!(hs.hg.abs() <= 100 || matches!(hs.result, HandshakeResult::Abort(_)));
        }
        let all: std::collections::BTreeSet<u32> = [
            10, 20, 30, 34, 35, 36, 37, 40, 41, 50, 51, 60, 70, 71, 80, 90, 100,
        ]
        .into();
        assert_eq!(seen, all);
    }

    /// Both nodes decide independently; the results must mirror.
    fn both_sides(
        a: &mut Uuids,
        b: &mut Uuids,
        a_ctx: CompareContext,
        b_ctx: CompareContext,
    ) -> (Comparison, Comparison) {
        let (mut a_peer, mut b_peer) = (*b, *a);
        (
            uuid_compare(a, &mut a_peer, &a_ctx),
            uuid_compare(b, &mut b_peer, &b_ctx),
        )
    }

    #[test]
    fn typical_sequences_mirror() {
        let c = ctx();
        // Fresh pair.
        let (mut a, mut b) = (Uuids::JUST_CREATED, Uuids::JUST_CREATED);
        let (ra, rb) = both_sides(&mut a, &mut b, c, c);
        assert_eq!((ra.rule, ra.decision, rb.decision), (10, NoSync, NoSync));
        // primary --force on A while connected.
        assert!(a.promote(A, ConnState::Connected, DiskState::Inconsistent, true));
        let a_ctx = CompareContext {
            own_role: Role::Primary,
            ..c
        };
        let b_ctx = CompareContext {
            peer_role: Role::Primary,
            ..c
        };
        let (ra, rb) = both_sides(&mut a, &mut b, a_ctx, b_ctx);
        assert_eq!((ra.rule, ra.decision), (30, FullSyncSource));
        assert_eq!((rb.rule, rb.decision), (20, FullSyncTarget));
        // Resync: A makes the sync UUID, B adopts it, both finish.
        // Each side's copy of the other is from the handshake's P_UUIDS.
        let mut a_copy_of_b = b;
        let mut b_copy_of_a = a;
        let sync = a.gen_sync_uuid(0x0bad_cafe_0000_0000);
        b.receive_sync_uuid(sync, false);
        b.resync_finished(&mut b_copy_of_a, true, false);
        a.resync_finished(&mut a_copy_of_b, false, true);
        assert_eq!(masked(a.current), masked(b.current));
        assert_eq!((a.bitmap, b.bitmap), (0, 0));
        assert_eq!(a.history, b.history);
        assert_eq!(a.history[0], sync);
        assert_eq!(a_copy_of_b, a);
        let (ra, rb) = both_sides(&mut a, &mut b, a_ctx, b_ctx);
        assert_eq!((ra.rule, ra.decision, rb.decision), (40, NoSync, NoSync));
        // A loses B and keeps writing: new current UUID.
        assert!(a.needs_new_current_on_lost_peer(
            Role::Primary,
            Role::Unknown,
            DiskState::UpToDate
        ));
        a.new_current(0x7777_0000_0000_0000, true);
        let (ra, rb) = both_sides(&mut a, &mut b, a_ctx, b_ctx);
        assert_eq!((ra.rule, ra.decision), (70, SyncSource));
        assert_eq!((rb.rule, rb.decision), (50, SyncTarget));
        // Bitmap resync; B never got P_SYNC_UUID: A's rule 71 undoes its
        // half, B's rule 50 still holds.
        let mut a2 = a;
        a2.gen_sync_uuid(0);
        let (ra, rb) = both_sides(&mut a2, &mut b, a_ctx, b_ctx);
        assert_eq!((ra.rule, ra.decision), (71, SyncSource));
        assert_eq!((a2.bitmap, a2.history[0]), (a.bitmap, a.history[0]));
        assert_eq!((rb.rule, rb.decision), (51, SyncTarget));
        // Split brain: both wrote while apart.
        let mut b3 = b;
        b3.new_current(0x3333_0000_0000_0000, true);
        let mut a3 = a;
        let (ra, rb) = both_sides(&mut a3, &mut b3, a_ctx, b_ctx);
        assert_eq!((ra.rule, ra.decision), (90, SplitBrainAutoRecover));
        assert_eq!((rb.rule, rb.decision), (90, SplitBrainAutoRecover));
    }
}
