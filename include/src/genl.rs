//! DRBD 8.4's generic netlink API (`include/linux/drbd_genl.h`): family,
//! commands, attributes, return codes, the state word, and allocation-free
//! codecs for the messages the kernel module and drbdsetup exchange.
//!
//! A message body (after `nlmsghdr` and `genlmsghdr`) is the 8-byte
//! `DrbdGenlHeader` followed by top-level attributes, each a nest that
//! carries one struct whose fields are numbered from 1. A struct travels in
//! one of three encodings (kernel-generated, kernel hand-made, drbd-utils)
//! that differ only in type flag bits; the parsers accept all of them.

use super::nla::{Attr, Attrs, NlaError, NlaWriter, NLA_F_MANDATORY, NLA_F_NESTED, NLA_TYPE_MASK};

/// Generic netlink family name.
pub const FAMILY_NAME: &str = "drbd";
/// Family version (`GENL_MAGIC_VERSION`, printed as "api:1").
pub const GENL_VERSION: u8 = 1;
/// Oldest DRBD wire protocol version 8.4 speaks; with the API version in
/// /proc/drbd's first line ("api:1/proto:86-101").
pub const PRO_VERSION_MIN: u32 = 86;
/// Newest DRBD wire protocol version 8.4 speaks.
pub const PRO_VERSION_MAX: u32 = 101;
/// The one multicast group, carrying notifications.
pub const MCAST_GROUP_EVENTS: &str = "events";
/// Size of [`DrbdGenlHeader`], the family's user header.
pub const USER_HEADER_SIZE: usize = 8;
/// Header minor of requests that address a resource or connection.
pub const MINOR_ALL: u32 = u32::MAX;
/// Header flag: start from defaults instead of the current settings.
pub const FLAG_SET_DEFAULTS: u32 = 1;
/// Highest minor number a device may have (`MINORMASK`, 1048575).
pub const MINOR_MAX: u32 = (1 << 20) - 1;
/// Highest volume number (`DRBD_VOLUME_MAX`).
pub const VOLUME_MAX: u32 = 65534;
/// Size of the resource name array, NUL included (127 characters).
pub const RESOURCE_NAME_SIZE: usize = 128;
/// Size of the backing and meta device path arrays, NUL included.
pub const DEVICE_PATH_SIZE: usize = 128;
/// Highest top-level attribute number (the family's maxattr).
pub const MAX_TLA: u16 = 24;

/// `struct drbd_genlmsghdr`, in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrbdGenlHeader {
    /// Device minor, or [`MINOR_ALL`].
    pub minor: u32,
    /// Request flags ([`FLAG_SET_DEFAULTS`]), or in replies the s32 ret_code.
    pub flags_or_ret: u32,
}

impl DrbdGenlHeader {
    /// Reads the header from the start of `bytes`; returns it and the rest.
    pub fn decode(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let ([m0, m1, m2, m3, f0, f1, f2, f3], rest) =
            bytes.split_first_chunk::<USER_HEADER_SIZE>()?;
        let header = Self {
            minor: u32::from_ne_bytes([*m0, *m1, *m2, *m3]),
            flags_or_ret: u32::from_ne_bytes([*f0, *f1, *f2, *f3]),
        };
        Some((header, rest))
    }

    /// The header's wire image.
    pub fn encode(&self) -> [u8; USER_HEADER_SIZE] {
        let [m0, m1, m2, m3] = self.minor.to_ne_bytes();
        let [f0, f1, f2, f3] = self.flags_or_ret.to_ne_bytes();
        [m0, m1, m2, m3, f0, f1, f2, f3]
    }

    /// The reply's return code ([`RetCode`] or [`StateChangeResult`] value).
    pub fn ret_code(&self) -> i32 {
        i32::from_ne_bytes(self.flags_or_ret.to_ne_bytes())
    }
}

/// Command numbers (`genlmsghdr.cmd`).
pub mod cmd {
    /// Old-style state change notification (group "events").
    pub const EVENT: u8 = 1;
    /// Status of one minor (doit) or of all / one resource (dump).
    pub const GET_STATUS: u8 = 2;
    /// Add a minor as a volume to a resource.
    pub const NEW_MINOR: u8 = 5;
    /// Remove a minor.
    pub const DEL_MINOR: u8 = 6;
    /// Create a resource.
    pub const NEW_RESOURCE: u8 = 7;
    /// Delete a resource.
    pub const DEL_RESOURCE: u8 = 8;
    /// Change resource options.
    pub const RESOURCE_OPTS: u8 = 9;
    /// Configure the network and start connecting.
    pub const CONNECT: u8 = 10;
    /// Disconnect.
    pub const DISCONNECT: u8 = 11;
    /// Attach a backing device.
    pub const ATTACH: u8 = 12;
    /// Resize.
    pub const RESIZE: u8 = 13;
    /// Become Primary.
    pub const PRIMARY: u8 = 14;
    /// Become Secondary.
    pub const SECONDARY: u8 = 15;
    /// Generate a new current UUID.
    pub const NEW_C_UUID: u8 = 16;
    /// Start online verify.
    pub const START_OV: u8 = 17;
    /// Detach the backing device.
    pub const DETACH: u8 = 18;
    /// Full resync, this node as target.
    pub const INVALIDATE: u8 = 19;
    /// Full resync, this node as source.
    pub const INVAL_PEER: u8 = 20;
    /// Pause resync.
    pub const PAUSE_SYNC: u8 = 21;
    /// Resume resync.
    pub const RESUME_SYNC: u8 = 22;
    /// Suspend IO.
    pub const SUSPEND_IO: u8 = 23;
    /// Resume IO.
    pub const RESUME_IO: u8 = 24;
    /// Mark the data Outdated.
    pub const OUTDATE: u8 = 25;
    /// Which wait-for-connection timeout applies.
    pub const GET_TIMEOUT_TYPE: u8 = 26;
    /// Tear a resource down completely.
    pub const DOWN: u8 = 27;
    /// Change disk options.
    pub const CHG_DISK_OPTS: u8 = 28;
    /// Change network options.
    pub const CHG_NET_OPTS: u8 = 29;
    /// Dump resources.
    pub const GET_RESOURCES: u8 = 30;
    /// Dump devices.
    pub const GET_DEVICES: u8 = 31;
    /// Dump connections.
    pub const GET_CONNECTIONS: u8 = 32;
    /// Dump peer devices.
    pub const GET_PEER_DEVICES: u8 = 33;
    /// events2 notification: resource.
    pub const RESOURCE_STATE: u8 = 34;
    /// events2 notification: device.
    pub const DEVICE_STATE: u8 = 35;
    /// events2 notification: connection.
    pub const CONNECTION_STATE: u8 = 36;
    /// events2 notification: peer device.
    pub const PEER_DEVICE_STATE: u8 = 37;
    /// Dump the current state as events2 "exists" messages.
    pub const GET_INITIAL_STATE: u8 = 38;
    /// events2 notification: helper called / returned.
    pub const HELPER: u8 = 40;
    /// End marker of a GET_INITIAL_STATE dump.
    pub const INITIAL_STATE_DONE: u8 = 41;
}

/// Top-level attribute numbers (`DRBD_NLA_*`).
pub mod tla {
    /// Kernel's informational text.
    pub const CFG_REPLY: u16 = 1;
    /// Object addressing: volume, resource name, addresses.
    pub const CFG_CONTEXT: u16 = 2;
    /// Disk configuration.
    pub const DISK_CONF: u16 = 3;
    /// Resource options.
    pub const RESOURCE_OPTS: u16 = 4;
    /// Network configuration.
    pub const NET_CONF: u16 = 5;
    /// Primary / secondary parameters.
    pub const SET_ROLE_PARMS: u16 = 6;
    /// Resize parameters.
    pub const RESIZE_PARMS: u16 = 7;
    /// State and counters of a device.
    pub const STATE_INFO: u16 = 8;
    /// Online verify range.
    pub const START_OV_PARMS: u16 = 9;
    /// New current UUID parameters.
    pub const NEW_C_UUID_PARMS: u16 = 10;
    /// Reply of GET_TIMEOUT_TYPE.
    pub const TIMEOUT_PARMS: u16 = 11;
    /// Disconnect parameters.
    pub const DISCONNECT_PARMS: u16 = 12;
    /// Detach parameters.
    pub const DETACH_PARMS: u16 = 13;
    /// Resource info (events2).
    pub const RESOURCE_INFO: u16 = 15;
    /// Device info (events2).
    pub const DEVICE_INFO: u16 = 16;
    /// Connection info (events2).
    pub const CONNECTION_INFO: u16 = 17;
    /// Peer device info (events2).
    pub const PEER_DEVICE_INFO: u16 = 18;
    /// Resource statistics (events2).
    pub const RESOURCE_STATISTICS: u16 = 19;
    /// Device statistics (events2).
    pub const DEVICE_STATISTICS: u16 = 20;
    /// Connection statistics (events2).
    pub const CONNECTION_STATISTICS: u16 = 21;
    /// Peer device statistics (events2).
    pub const PEER_DEVICE_STATISTICS: u16 = 22;
    /// Notification type (events2).
    pub const NOTIFICATION_HEADER: u16 = 23;
    /// Helper name and status (events2).
    pub const HELPER: u16 = 24;
}

/// The bit of field `number` in a field set (0 for numbers above 63).
pub const fn field_bit(number: u16) -> u64 {
    match 1u64.checked_shl((number & NLA_TYPE_MASK) as u32) {
        Some(bit) => bit,
        None => 0,
    }
}

/// A set of field numbers as a bit mask (bit n = field n).
pub const fn field_mask(numbers: &[u16]) -> u64 {
    let mut mask = 0;
    let mut rest = numbers;
    while let [first, tail @ ..] = rest {
        mask |= field_bit(*first);
        rest = tail;
    }
    mask
}

/// Allowed range and default of a numeric option (`drbd_limits.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits<T> {
    /// Smallest allowed value.
    pub min: T,
    /// Largest allowed value.
    pub max: T,
    /// Value used when the option is not given.
    pub default: T,
}

impl<T: PartialOrd + Copy> Limits<T> {
    /// Whether `value` is within `min..=max`.
    pub fn contains(&self, value: T) -> bool {
        self.min <= value && value <= self.max
    }
}

/// Fields of `DRBD_NLA_CFG_REPLY`.
pub mod cfg_reply {
    use super::field_mask;
    /// Human-readable text (string, unlimited).
    pub const INFO_TEXT: u16 = 1;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 1;
    /// Fields flagged mandatory.
    pub const MANDATORY: u64 = field_mask(&[INFO_TEXT]);
}

/// Fields of `DRBD_NLA_CFG_CONTEXT`.
pub mod cfg_context {
    use super::field_mask;
    /// Volume number within the resource (u32).
    pub const VOLUME: u16 = 1;
    /// Resource name (string, [`super::RESOURCE_NAME_SIZE`]).
    pub const RESOURCE_NAME: u16 = 2;
    /// Local address: raw `sockaddr_in` / `sockaddr_in6` (binary, 128).
    pub const MY_ADDR: u16 = 3;
    /// Peer address, as `MY_ADDR`.
    pub const PEER_ADDR: u16 = 4;
    /// Maximum size of an address field.
    pub const ADDR_SIZE: usize = 128;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 4;
    /// Fields flagged mandatory.
    pub const MANDATORY: u64 = field_mask(&[VOLUME, RESOURCE_NAME, MY_ADDR, PEER_ADDR]);
}

/// Fields of `DRBD_NLA_DISK_CONF`, with `drbd_limits.h` ranges and defaults.
pub mod disk_conf {
    use super::{field_mask, Limits};
    /// Backing device path (string, [`super::DEVICE_PATH_SIZE`]; required, invariant).
    pub const BACKING_DEV: u16 = 1;
    /// Meta data device path (string, 128; required, invariant).
    pub const META_DEV: u16 = 2;
    /// Meta data index (s32; required, invariant), see `META_DEV_IDX_*`.
    pub const META_DEV_IDX: u16 = 3;
    /// User-requested size in sectors, 0 = all (u64; invariant).
    pub const DISK_SIZE: u16 = 4;
    /// Obsolete bio limit (u32; invariant).
    pub const MAX_BIO_BVECS: u16 = 5;
    /// On IO error: 0 pass_on, 1 call-local-io-error, 2 detach (u32).
    pub const ON_IO_ERROR: u16 = 6;
    /// Fencing: 0 dont-care, 1 resource-only, 2 resource-and-stonith (u32).
    pub const FENCING: u16 = 7;
    /// Resync rate in KiB/s (u32).
    pub const RESYNC_RATE: u16 = 8;
    /// Minor to resync after, -1 = none (s32).
    pub const RESYNC_AFTER: u16 = 9;
    /// Activity log extents (u32).
    pub const AL_EXTENTS: u16 = 10;
    /// Resync controller plan-ahead in 0.1 s, 0 = fixed rate (u32).
    pub const C_PLAN_AHEAD: u16 = 11;
    /// Resync controller delay target in 0.1 s (u32).
    pub const C_DELAY_TARGET: u16 = 12;
    /// Resync controller fill target in sectors (u32).
    pub const C_FILL_TARGET: u16 = 13;
    /// Resync controller maximum rate in KiB/s (u32).
    pub const C_MAX_RATE: u16 = 14;
    /// Resync controller minimum rate in KiB/s (u32).
    pub const C_MIN_RATE: u16 = 15;
    /// Use barriers (flag).
    pub const DISK_BARRIER: u16 = 16;
    /// Use flushes (flag).
    pub const DISK_FLUSHES: u16 = 17;
    /// Drain (flag).
    pub const DISK_DRAIN: u16 = 18;
    /// Flush meta data writes (flag).
    pub const MD_FLUSHES: u16 = 19;
    /// Backing device timeout in 0.1 s, 0 = off (u32).
    pub const DISK_TIMEOUT: u16 = 20;
    /// Read balancing policy, 0 prefer-local (u32).
    pub const READ_BALANCING: u16 = 21;
    /// Activity log updates (flag).
    pub const AL_UPDATES: u16 = 23;
    /// Discard zeroes if aligned (flag).
    pub const DISCARD_ZEROES_IF_ALIGNED: u16 = 24;
    /// Resync discard granularity in bytes (u32).
    pub const RS_DISCARD_GRANULARITY: u16 = 25;
    /// Disable WRITE_SAME (flag).
    pub const DISABLE_WRITE_SAME: u16 = 26;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 26;
    /// Fields flagged mandatory (4..=20).
    pub const MANDATORY: u64 = field_mask(&[
        DISK_SIZE,
        MAX_BIO_BVECS,
        ON_IO_ERROR,
        FENCING,
        RESYNC_RATE,
        RESYNC_AFTER,
        AL_EXTENTS,
        C_PLAN_AHEAD,
        C_DELAY_TARGET,
        C_FILL_TARGET,
        C_MAX_RATE,
        C_MIN_RATE,
        DISK_BARRIER,
        DISK_FLUSHES,
        DISK_DRAIN,
        MD_FLUSHES,
        DISK_TIMEOUT,
    ]);
    /// Fields an attach must carry; also what drbdsetup attach always sends.
    pub const REQUIRED: u64 = field_mask(&[BACKING_DEV, META_DEV, META_DEV_IDX]);
    /// Fields fixed at attach time.
    pub const INVARIANT: u64 = field_mask(&[
        BACKING_DEV,
        META_DEV,
        META_DEV_IDX,
        DISK_SIZE,
        MAX_BIO_BVECS,
    ]);
    /// Every field.
    pub const ALL: u64 = field_mask(&[
        BACKING_DEV,
        META_DEV,
        META_DEV_IDX,
        DISK_SIZE,
        MAX_BIO_BVECS,
        ON_IO_ERROR,
        FENCING,
        RESYNC_RATE,
        RESYNC_AFTER,
        AL_EXTENTS,
        C_PLAN_AHEAD,
        C_DELAY_TARGET,
        C_FILL_TARGET,
        C_MAX_RATE,
        C_MIN_RATE,
        DISK_BARRIER,
        DISK_FLUSHES,
        DISK_DRAIN,
        MD_FLUSHES,
        DISK_TIMEOUT,
        READ_BALANCING,
        AL_UPDATES,
        DISCARD_ZEROES_IF_ALIGNED,
        RS_DISCARD_GRANULARITY,
        DISABLE_WRITE_SAME,
    ]);
    /// `meta_dev_idx` for the legacy fixed-size internal meta data.
    pub const META_DEV_IDX_INTERNAL: i32 = -1;
    /// `meta_dev_idx` for external meta data filling a whole device ("flexible").
    pub const META_DEV_IDX_FLEX_EXT: i32 = -2;
    /// `meta_dev_idx` for internal meta data ("internal" in drbdsetup).
    pub const META_DEV_IDX_FLEX_INT: i32 = -3;
    /// `disk_size`, sectors.
    pub const DISK_SIZE_LIMITS: Limits<u64> = Limits {
        min: 0,
        max: 1 << 41,
        default: 0,
    };
    /// `max_bio_bvecs`.
    pub const MAX_BIO_BVECS_LIMITS: Limits<u32> = Limits {
        min: 0,
        max: 128,
        default: 0,
    };
    /// `on_io_error` default: detach.
    pub const ON_IO_ERROR_DEF: u32 = 2;
    /// `fencing` default: dont-care.
    pub const FENCING_DEF: u32 = 0;
    /// `resync_rate`, KiB/s.
    pub const RESYNC_RATE_LIMITS: Limits<u32> = Limits {
        min: 1,
        max: 4 << 20,
        default: 250,
    };
    /// `resync_after`, a minor number or -1.
    pub const RESYNC_AFTER_LIMITS: Limits<i32> = Limits {
        min: -1,
        max: (1 << 20) - 1,
        default: -1,
    };
    /// `al_extents`.
    pub const AL_EXTENTS_LIMITS: Limits<u32> = Limits {
        min: 67,
        max: 65534,
        default: 1237,
    };
    /// `c_plan_ahead`, 0.1 s.
    pub const C_PLAN_AHEAD_LIMITS: Limits<u32> = Limits {
        min: 0,
        max: 300,
        default: 20,
    };
    /// `c_delay_target`, 0.1 s.
    pub const C_DELAY_TARGET_LIMITS: Limits<u32> = Limits {
        min: 1,
        max: 100,
        default: 10,
    };
    /// `c_fill_target`, sectors.
    pub const C_FILL_TARGET_LIMITS: Limits<u32> = Limits {
        min: 0,
        max: 1 << 20,
        default: 100,
    };
    /// `c_max_rate`, KiB/s.
    pub const C_MAX_RATE_LIMITS: Limits<u32> = Limits {
        min: 250,
        max: 4 << 20,
        default: 102_400,
    };
    /// `c_min_rate`, KiB/s.
    pub const C_MIN_RATE_LIMITS: Limits<u32> = Limits {
        min: 0,
        max: 4 << 20,
        default: 250,
    };
    /// `disk_timeout`, 0.1 s.
    pub const DISK_TIMEOUT_LIMITS: Limits<u32> = Limits {
        min: 0,
        max: 6000,
        default: 0,
    };
    /// `read_balancing` default: prefer-local.
    pub const READ_BALANCING_DEF: u32 = 0;
    /// `rs_discard_granularity`, bytes.
    pub const RS_DISCARD_GRANULARITY_LIMITS: Limits<u32> = Limits {
        min: 0,
        max: 1 << 20,
        default: 0,
    };
    /// `disk_barrier` default.
    pub const DISK_BARRIER_DEF: bool = false;
    /// `disk_flushes` default.
    pub const DISK_FLUSHES_DEF: bool = true;
    /// `disk_drain` default.
    pub const DISK_DRAIN_DEF: bool = true;
    /// `md_flushes` default.
    pub const MD_FLUSHES_DEF: bool = true;
    /// `al_updates` default.
    pub const AL_UPDATES_DEF: bool = true;
    /// `discard_zeroes_if_aligned` default.
    pub const DISCARD_ZEROES_IF_ALIGNED_DEF: bool = true;
    /// `disable_write_same` default.
    pub const DISABLE_WRITE_SAME_DEF: bool = false;
}

/// Fields of `DRBD_NLA_RESOURCE_OPTS`.
pub mod resource_opts {
    use super::field_mask;
    /// CPU mask in hex (string, 32).
    pub const CPU_MASK: u16 = 1;
    /// On no data: 0 io-error, 1 suspend-io (u32).
    pub const ON_NO_DATA: u16 = 2;
    /// Size of the cpu_mask array, NUL included.
    pub const CPU_MASK_SIZE: usize = 32;
    /// `on_no_data` default: io-error.
    pub const ON_NO_DATA_DEF: u32 = 0;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 2;
    /// Fields flagged mandatory.
    pub const MANDATORY: u64 = field_mask(&[CPU_MASK, ON_NO_DATA]);
    /// Every field.
    pub const ALL: u64 = MANDATORY;
}

/// Fields of `DRBD_NLA_SET_ROLE_PARMS`.
pub mod set_role_parms {
    /// Become Primary even without UpToDate data (flag; "--force").
    pub const ASSUME_UPTODATE: u16 = 1;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 1;
    /// Fields flagged mandatory.
    pub const MANDATORY: u64 = super::field_mask(&[ASSUME_UPTODATE]);
}

/// Fields of `DRBD_NLA_DISCONNECT_PARMS`.
pub mod disconnect_parms {
    /// Disconnect without the graceful state change (flag; "--force").
    pub const FORCE_DISCONNECT: u16 = 1;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 1;
    /// Fields flagged mandatory.
    pub const MANDATORY: u64 = super::field_mask(&[FORCE_DISCONNECT]);
}

/// Fields of `DRBD_NLA_DETACH_PARMS`.
pub mod detach_parms {
    /// Detach immediately, failing pending IO (flag; "--force").
    pub const FORCE_DETACH: u16 = 1;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 1;
    /// Fields flagged mandatory.
    pub const MANDATORY: u64 = super::field_mask(&[FORCE_DETACH]);
}

/// Fields of `DRBD_NLA_TIMEOUT_PARMS`.
pub mod timeout_parms {
    /// 0 default, 1 degraded, 2 peer outdated (u32; required).
    pub const TIMEOUT_TYPE: u16 = 1;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 1;
    /// Fields flagged mandatory (none).
    pub const MANDATORY: u64 = 0;
}

/// Fields of `DRBD_NLA_STATE_INFO` (kernel to user) and broadcast reasons.
pub mod state_info {
    use super::field_mask;
    /// Why the message was sent, `SIB_*` (u32).
    pub const SIB_REASON: u16 = 1;
    /// State word (u32; required).
    pub const CURRENT_STATE: u16 = 2;
    /// Device size in sectors (u64).
    pub const CAPACITY: u16 = 3;
    /// Exposed data UUID (u64).
    pub const ED_UUID: u16 = 4;
    /// State word before a change (u32).
    pub const PREV_STATE: u16 = 5;
    /// State word after a change (u32).
    pub const NEW_STATE: u16 = 6;
    /// Current, bitmap and two history UUIDs as host-order u64 (binary, 32).
    pub const UUIDS: u16 = 7;
    /// Meta data flags, `MDF_*` (u32).
    pub const DISK_FLAGS: u16 = 8;
    /// Bitmap bits (u64).
    pub const BITS_TOTAL: u16 = 9;
    /// Out-of-sync bits (u64).
    pub const BITS_OOS: u16 = 10;
    /// Bits to resync or verify (u64).
    pub const BITS_RS_TOTAL: u16 = 11;
    /// Bits that failed to resync (u64).
    pub const BITS_RS_FAILED: u16 = 12;
    /// Helper name (string, 32).
    pub const HELPER: u16 = 13;
    /// Helper exit code (u32).
    pub const HELPER_EXIT_CODE: u16 = 14;
    /// Sectors sent (u64).
    pub const SEND_CNT: u16 = 15;
    /// Sectors received (u64).
    pub const RECV_CNT: u16 = 16;
    /// Sectors read (u64).
    pub const READ_CNT: u16 = 17;
    /// Sectors written (u64).
    pub const WRIT_CNT: u16 = 18;
    /// Activity log writes (u64).
    pub const AL_WRIT_CNT: u16 = 19;
    /// Bitmap writes (u64).
    pub const BM_WRIT_CNT: u16 = 20;
    /// Application bios in flight (u32).
    pub const AP_BIO_CNT: u16 = 21;
    /// Application requests waiting for the peer (u32).
    pub const AP_PENDING_CNT: u16 = 22;
    /// Resync requests waiting for the peer (u32).
    pub const RS_PENDING_CNT: u16 = 23;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 23;
    /// Fields flagged mandatory (all of 1..=14 except CURRENT_STATE).
    pub const MANDATORY: u64 = field_mask(&[
        SIB_REASON,
        CAPACITY,
        ED_UUID,
        PREV_STATE,
        NEW_STATE,
        UUIDS,
        DISK_FLAGS,
        BITS_TOTAL,
        BITS_OOS,
        BITS_RS_TOTAL,
        BITS_RS_FAILED,
        HELPER,
        HELPER_EXIT_CODE,
    ]);
    /// Fields that must be present.
    pub const REQUIRED: u64 = field_mask(&[CURRENT_STATE]);
    /// Size of the uuids field.
    pub const UUIDS_SIZE: usize = 32;
    /// Size of the helper name array, NUL included.
    pub const HELPER_SIZE: usize = 32;
    /// `sib_reason`: reply to GET_STATUS.
    pub const SIB_GET_STATUS_REPLY: u32 = 1;
    /// `sib_reason`: state change broadcast.
    pub const SIB_STATE_CHANGE: u32 = 2;
    /// `sib_reason`: helper about to run.
    pub const SIB_HELPER_PRE: u32 = 3;
    /// `sib_reason`: helper returned.
    pub const SIB_HELPER_POST: u32 = 4;
    /// `sib_reason`: resync progress.
    pub const SIB_SYNC_PROGRESS: u32 = 5;
}

/// Fields of `DRBD_NLA_DEVICE_INFO`.
pub mod device_info {
    /// Own disk state (u32).
    pub const DEV_DISK_STATE: u16 = 1;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 1;
}

/// Fields of `DRBD_NLA_DEVICE_STATISTICS` (none mandatory).
pub mod device_statistics {
    /// Size in sectors (u64).
    pub const DEV_SIZE: u16 = 1;
    /// Sectors read (u64).
    pub const DEV_READ: u16 = 2;
    /// Sectors written (u64).
    pub const DEV_WRITE: u16 = 3;
    /// Activity log writes (u64).
    pub const DEV_AL_WRITES: u16 = 4;
    /// Bitmap writes (u64).
    pub const DEV_BM_WRITES: u16 = 5;
    /// Application requests in progress (u32).
    pub const DEV_UPPER_PENDING: u16 = 6;
    /// Backing device requests in progress (u32).
    pub const DEV_LOWER_PENDING: u16 = 7;
    /// Application IO blocked (flag).
    pub const DEV_UPPER_BLOCKED: u16 = 8;
    /// Backing device IO blocked (flag).
    pub const DEV_LOWER_BLOCKED: u16 = 9;
    /// Activity log suspended (flag).
    pub const DEV_AL_SUSPENDED: u16 = 10;
    /// Exposed data UUID (u64).
    pub const DEV_EXPOSED_DATA_UUID: u16 = 11;
    /// Current UUID (u64).
    pub const DEV_CURRENT_UUID: u16 = 12;
    /// Meta data flags (u32).
    pub const DEV_DISK_FLAGS: u16 = 13;
    /// History UUIDs as host-order u64 slots (binary, 256).
    pub const HISTORY_UUIDS: u16 = 14;
    /// Maximum size of the history_uuids field.
    pub const HISTORY_UUIDS_SIZE: usize = 256;
    /// Bytes of history_uuids the 8.4 kernel fills (4 slots, 2 used).
    pub const HISTORY_UUIDS_SENT: usize = 32;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 14;
}

/// Defines a wire enum with `from_raw` and a text per variant.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident($repr:ty), $text_fn:ident, $text_doc:literal {
        $($variant:ident = $value:literal => $text:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr($repr)]
        pub enum $name {
            $(#[doc = $text] $variant = $value,)*
        }

        impl $name {
            /// The variant with this wire value; `None` if DRBD 8.4 has none.
            pub fn from_raw(raw: $repr) -> Option<Self> {
                match raw {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }

            #[doc = $text_doc]
            pub fn $text_fn(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }
    };
}

wire_enum! {
    /// `enum drbd_ret_code`: result of a configuration request.
    RetCode(u32), text, "The message drbdsetup prints for this code." {
        NoError = 101 => "No further information available",
        LocalAddr = 102 => "Local address(port) already in use",
        PeerAddr = 103 => "Remote address(port) already in use",
        OpenDisk = 104 => "Can not open backing device",
        OpenMdDisk = 105 => "Can not open meta device",
        DiskNotBdev = 107 => "Lower device is not a block device",
        MdNotBdev = 108 => "Meta device is not a block device",
        DiskTooSmall = 111 => "Lower device smaller than requested DRBD device size",
        MdDiskTooSmall = 112 => "Meta device too small",
        BdClaimDisk = 114 => "Lower device is already claimed (is it mounted?)",
        BdClaimMdDisk = 115 => "Meta device is already claimed (is it mounted?)",
        MdIdxInvalid = 116 => "Lower device / meta device / index combination invalid",
        IoMdDisk = 118 => "IO error(s) occurred during initial access to meta data",
        MdInvalid = 119 => "No valid meta data signature found (use 'drbdadm create-md')",
        AuthAlg = 120 => "The cram-hmac-alg is not known in the kernel",
        AuthAlgNd = 121 => "The cram-hmac-alg is not a digest",
        NoMem = 122 => "Out of memory",
        DiscardImpossible = 123 => "--discard-my-data not allowed when Primary",
        DiskConfigured = 124 => "Device is attached to a disk (use detach first)",
        NetConfigured = 125 => "Device has a net-config (use disconnect first)",
        MandatoryTag = 126 => "Unknown mandatory tag",
        MinorInvalid = 127 => "Device minor not allocated",
        Intr = 129 => "Interrupted by signal",
        ResizeResync = 130 => "Resize not allowed during resync",
        NoPrimary = 131 => "Need one Primary node to resize",
        ResyncAfter = 132 => "The resync-after minor number is invalid",
        ResyncAfterCycle = 133 => "This would cause a resync-after dependency cycle",
        PauseIsSet = 134 => "Sync-pause flag is already set",
        PauseIsClear = 135 => "Sync-pause flag is already cleared",
        PacketNr = 137 => "Kernel does not know how to handle this request",
        NoDisk = 138 => "Device does not have a disk-config",
        NotProtoC = 139 => "Protocol C required",
        NoMemBitmap = 140 => "Out of memory for the bitmap",
        IntegrityAlg = 141 => "The data-integrity-alg is not known in the kernel",
        IntegrityAlgNd = 142 => "The data-integrity-alg is not a digest",
        CpuMaskParse = 143 => "Invalid cpu-mask",
        CsumsAlg = 144 => "The csums-alg is not known in the kernel",
        CsumsAlgNd = 145 => "The csums-alg is not a digest",
        VerifyAlg = 146 => "The verify-alg is not known in the kernel",
        VerifyAlgNd = 147 => "The verify-alg is not a digest",
        CsumsResyncRunning = 148 => "Can not change csums-alg while resync is in progress",
        VerifyRunning = 149 => "Can not change verify-alg while online verify runs",
        DataNotCurrent = 150 => "Can only attach to the data we lost last (see kernel log)",
        Connected = 151 => "Need to be StandAlone",
        Perm = 152 => "Permission denied",
        NeedApv93 = 153 => "Protocol version 93 required",
        StonithAndProtA = 154 => "Fencing policy resource-and-stonith only with protocol B or C",
        CongNotProtoA = 155 => "On-congestion policy other than block only with protocol A",
        PicAfterDep = 156 => "Sync-pause flag is already cleared; a local resync-after dependency pauses the resync",
        PicPeerDep = 157 => "Sync-pause flag is already cleared; the peer pauses the resync",
        ResNotKnown = 158 => "Unknown resource",
        ResInUse = 159 => "Resource still in use (delete all minors first)",
        MinorConfigured = 160 => "Minor still configured (down it first)",
        MinorOrVolumeExists = 161 => "Minor or volume exists already (delete it first)",
        InvalidRequest = 162 => "Invalid configuration request",
        NeedApv100 = 163 => "Protocol version 100 required to change these network options while connected",
        NeedAllowTwoPri = 164 => "Can not clear allow-two-primaries while both nodes are Primary",
        MdUnclean = 165 => "Unclean meta data found (use 'drbdadm apply-al')",
        MdLayoutConnected = 166 => "Must be connected for an online meta data layout change",
        MdLayoutTooBig = 167 => "Resulting activity log area too big",
        MdLayoutTooSmall = 168 => "Resulting activity log area too small",
        MdLayoutNoFit = 169 => "Resulting activity log does not fit into the meta data area",
        ImplicitShrink = 170 => "Implicit device shrinking not allowed (see kernel log)",
    }
}

wire_enum! {
    /// `enum drbd_state_rv`: result of a state change, also a reply ret_code.
    StateChangeResult(i32), text, "The message drbdsetup prints for this result." {
        CwNoNeed = 4 => "Cluster-wide state change not needed",
        CwSuccess = 3 => "Cluster-wide state change succeeded",
        NothingToDo = 2 => "Nothing to do",
        Success = 1 => "Success",
        UnknownError = 0 => "Unknown error",
        TwoPrimaries = -1 => "Multiple primaries not allowed by config",
        NoUpToDateDisk = -2 => "Need access to UpToDate data",
        NoLocalDisk = -4 => "Can not resync without local disk",
        NoRemoteDisk = -5 => "Can not resync without remote disk",
        ConnectedOutdates = -6 => "Refusing to be Outdated while Connected",
        PrimaryNop = -7 => "Refusing to be Primary while peer is not outdated",
        ResyncRunning = -8 => "Can not start OV/resync since it is already active",
        AlreadyStandalone = -9 => "Can not disconnect a StandAlone device",
        CwFailedByPeer = -10 => "State change was refused by peer node",
        IsDiskless = -11 => "Device is diskless, the requested operation requires a disk",
        DeviceInUse = -12 => "Device is held open by someone",
        NoNetConfig = -13 => "Have no net/connection configuration",
        NoVerifyAlg = -14 => "Need a verify algorithm to start online verify",
        NeedConnection = -15 => "Need a connection to start verify or resync",
        LowerThanOutdated = -16 => "Disk state is lower than outdated",
        NotSupported = -17 => "Peer does not support protocol",
        InTransientState = -18 => "In transient state, retry after next state change",
        ConcurrentStChg = -19 => "Concurrent state changes detected and aborted",
        OVolPeerPri = -20 => "Other volume of this resource has a Primary peer",
        OutdateWoConn = -21 => "Need a connection for a graceful disconnect/outdate peer",
    }
}

impl From<RetCode> for i32 {
    fn from(code: RetCode) -> i32 {
        // All values are 101..=170, so the conversion is exact.
        code as i32
    }
}

impl From<StateChangeResult> for i32 {
    fn from(result: StateChangeResult) -> i32 {
        result as i32
    }
}

/// The text for a reply's raw ret_code, whichever enum it comes from.
pub fn ret_code_text(raw: i32) -> &'static str {
    let text = match u32::try_from(raw) {
        Ok(code) if code > 100 => RetCode::from_raw(code).map(RetCode::text),
        _ => StateChangeResult::from_raw(raw).map(StateChangeResult::text),
    };
    text.unwrap_or("Unknown error code")
}

/// Whether drbdsetup treats a reply's ret_code as success (NO_ERROR or a
/// state change result of 1..=4).
pub fn ret_code_is_success(raw: i32) -> bool {
    raw == i32::from(RetCode::NoError) || (1..=4).contains(&raw)
}

wire_enum! {
    /// Node role (`enum drbd_role`).
    Role(u32), name, "The 8.4 name, as in /proc/drbd." {
        Unknown = 0 => "Unknown",
        Primary = 1 => "Primary",
        Secondary = 2 => "Secondary",
    }
}

wire_enum! {
    /// Connection state (`enum drbd_conns`). Below `WfReportParams` there is
    /// no socket; `SyncSource..=PausedSyncT` are the sync states.
    ConnState(u32), name, "The 8.4 name, as in /proc/drbd." {
        StandAlone = 0 => "StandAlone",
        Disconnecting = 1 => "Disconnecting",
        Unconnected = 2 => "Unconnected",
        Timeout = 3 => "Timeout",
        BrokenPipe = 4 => "BrokenPipe",
        NetworkFailure = 5 => "NetworkFailure",
        ProtocolError = 6 => "ProtocolError",
        TearDown = 7 => "TearDown",
        WfConnection = 8 => "WFConnection",
        WfReportParams = 9 => "WFReportParams",
        Connected = 10 => "Connected",
        StartingSyncS = 11 => "StartingSyncS",
        StartingSyncT = 12 => "StartingSyncT",
        WfBitMapS = 13 => "WFBitMapS",
        WfBitMapT = 14 => "WFBitMapT",
        WfSyncUuid = 15 => "WFSyncUUID",
        SyncSource = 16 => "SyncSource",
        SyncTarget = 17 => "SyncTarget",
        VerifyS = 18 => "VerifyS",
        VerifyT = 19 => "VerifyT",
        PausedSyncS = 20 => "PausedSyncS",
        PausedSyncT = 21 => "PausedSyncT",
        Ahead = 22 => "Ahead",
        Behind = 23 => "Behind",
    }
}

wire_enum! {
    /// Disk state (`enum drbd_disk_state`).
    DiskState(u32), name, "The 8.4 name, as in /proc/drbd." {
        Diskless = 0 => "Diskless",
        Attaching = 1 => "Attaching",
        Failed = 2 => "Failed",
        Negotiating = 3 => "Negotiating",
        Inconsistent = 4 => "Inconsistent",
        Outdated = 5 => "Outdated",
        DUnknown = 6 => "DUnknown",
        Consistent = 7 => "Consistent",
        UpToDate = 8 => "UpToDate",
    }
}

/// The device state word (`union drbd_state`), as carried in P_STATE and
/// STATE_INFO: role bits 0-1, peer 2-3, conn 4-8, disk 9-12, pdsk 13-16,
/// then one bit each for susp, aftr_isp, peer_isp, user_isp, susp_nod,
/// susp_fen (17-22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Own role.
    pub role: Role,
    /// Peer's role.
    pub peer: Role,
    /// Connection state.
    pub conn: ConnState,
    /// Own disk state.
    pub disk: DiskState,
    /// Peer's disk state.
    pub pdsk: DiskState,
    /// IO suspended by the user.
    pub susp: bool,
    /// Sync paused by a resync-after dependency.
    pub aftr_isp: bool,
    /// Sync paused by the peer.
    pub peer_isp: bool,
    /// Sync paused by the user.
    pub user_isp: bool,
    /// IO suspended for lack of data.
    pub susp_nod: bool,
    /// IO suspended while fencing.
    pub susp_fen: bool,
}

impl State {
    /// Packs the state into its word.
    pub fn to_u32(&self) -> u32 {
        self.role as u32
            | (self.peer as u32) << 2
            | (self.conn as u32) << 4
            | (self.disk as u32) << 9
            | (self.pdsk as u32) << 13
            | u32::from(self.susp) << 17
            | u32::from(self.aftr_isp) << 18
            | u32::from(self.peer_isp) << 19
            | u32::from(self.user_isp) << 20
            | u32::from(self.susp_nod) << 21
            | u32::from(self.susp_fen) << 22
    }

    /// Unpacks a word; `None` if a field holds a value 8.4 does not define
    /// or the unused bits 23-31 are set.
    pub fn from_u32(word: u32) -> Option<Self> {
        if word >> 23 != 0 {
            return None;
        }
        let bit = |n: u32| (word >> n) & 1 != 0;
        Some(Self {
            role: Role::from_raw(word & 3)?,
            peer: Role::from_raw((word >> 2) & 3)?,
            conn: ConnState::from_raw((word >> 4) & 31)?,
            disk: DiskState::from_raw((word >> 9) & 15)?,
            pdsk: DiskState::from_raw((word >> 13) & 15)?,
            susp: bit(17),
            aftr_isp: bit(18),
            peer_isp: bit(19),
            user_isp: bit(20),
            susp_nod: bit(21),
            susp_fen: bit(22),
        })
    }
}

/// `struct drbd_cfg_context`: which object a request or reply is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CfgContext<'a> {
    /// Volume number within the resource.
    pub volume: Option<u32>,
    /// Resource name, without NUL.
    pub resource_name: Option<&'a [u8]>,
    /// Local address (raw sockaddr image).
    pub my_addr: Option<&'a [u8]>,
    /// Peer address (raw sockaddr image).
    pub peer_addr: Option<&'a [u8]>,
}

/// `struct disk_conf`; strings borrow from the message they came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConf<'a> {
    /// Backing device path, without NUL.
    pub backing_dev: &'a [u8],
    /// Meta data device path, without NUL (the backing device for internal).
    pub meta_dev: &'a [u8],
    /// Meta data index: `disk_conf::META_DEV_IDX_*` or an index >= 0.
    pub meta_dev_idx: i32,
    /// User-requested size in sectors, 0 = all.
    pub disk_size: u64,
    /// Obsolete bio limit.
    pub max_bio_bvecs: u32,
    /// 0 pass_on, 1 call-local-io-error, 2 detach.
    pub on_io_error: u32,
    /// 0 dont-care, 1 resource-only, 2 resource-and-stonith.
    pub fencing: u32,
    /// KiB/s.
    pub resync_rate: u32,
    /// Minor to resync after, -1 = none.
    pub resync_after: i32,
    /// Activity log extents.
    pub al_extents: u32,
    /// 0.1 s, 0 = fixed resync rate.
    pub c_plan_ahead: u32,
    /// 0.1 s.
    pub c_delay_target: u32,
    /// Sectors.
    pub c_fill_target: u32,
    /// KiB/s.
    pub c_max_rate: u32,
    /// KiB/s.
    pub c_min_rate: u32,
    /// Use barriers.
    pub disk_barrier: bool,
    /// Use flushes.
    pub disk_flushes: bool,
    /// Use drain.
    pub disk_drain: bool,
    /// Flush meta data writes.
    pub md_flushes: bool,
    /// 0.1 s, 0 = off.
    pub disk_timeout: u32,
    /// Read balancing policy, 0 prefer-local.
    pub read_balancing: u32,
    /// Activity log updates.
    pub al_updates: bool,
    /// Discard zeroes if aligned.
    pub discard_zeroes_if_aligned: bool,
    /// Bytes.
    pub rs_discard_granularity: u32,
    /// Disable WRITE_SAME.
    pub disable_write_same: bool,
}

impl Default for DiskConf<'_> {
    /// Empty paths, index 0, everything else at its `drbd_limits.h` default.
    fn default() -> Self {
        use disk_conf as d;
        Self {
            backing_dev: &[],
            meta_dev: &[],
            meta_dev_idx: 0,
            disk_size: d::DISK_SIZE_LIMITS.default,
            max_bio_bvecs: d::MAX_BIO_BVECS_LIMITS.default,
            on_io_error: d::ON_IO_ERROR_DEF,
            fencing: d::FENCING_DEF,
            resync_rate: d::RESYNC_RATE_LIMITS.default,
            resync_after: d::RESYNC_AFTER_LIMITS.default,
            al_extents: d::AL_EXTENTS_LIMITS.default,
            c_plan_ahead: d::C_PLAN_AHEAD_LIMITS.default,
            c_delay_target: d::C_DELAY_TARGET_LIMITS.default,
            c_fill_target: d::C_FILL_TARGET_LIMITS.default,
            c_max_rate: d::C_MAX_RATE_LIMITS.default,
            c_min_rate: d::C_MIN_RATE_LIMITS.default,
            disk_barrier: d::DISK_BARRIER_DEF,
            disk_flushes: d::DISK_FLUSHES_DEF,
            disk_drain: d::DISK_DRAIN_DEF,
            md_flushes: d::MD_FLUSHES_DEF,
            disk_timeout: d::DISK_TIMEOUT_LIMITS.default,
            read_balancing: d::READ_BALANCING_DEF,
            al_updates: d::AL_UPDATES_DEF,
            discard_zeroes_if_aligned: d::DISCARD_ZEROES_IF_ALIGNED_DEF,
            rs_discard_granularity: d::RS_DISCARD_GRANULARITY_LIMITS.default,
            disable_write_same: d::DISABLE_WRITE_SAME_DEF,
        }
    }
}

impl DiskConf<'_> {
    /// Resets the options that have defaults, keeping the invariant fields
    /// (what the kernel's `set_disk_conf_defaults` does).
    pub fn reset_to_defaults(&mut self) {
        *self = Self {
            backing_dev: self.backing_dev,
            meta_dev: self.meta_dev,
            meta_dev_idx: self.meta_dev_idx,
            disk_size: self.disk_size,
            max_bio_bvecs: self.max_bio_bvecs,
            ..Self::default()
        };
    }
}

/// `struct res_opts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceOpts<'a> {
    /// CPU mask in hex, without NUL; empty = all CPUs.
    pub cpu_mask: &'a [u8],
    /// On no data: 0 io-error, 1 suspend-io.
    pub on_no_data: u32,
}

/// `struct detach_parms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DetachParms {
    /// "--force": detach immediately.
    pub force_detach: bool,
}

/// `struct set_role_parms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetRoleParms {
    /// "--force": become Primary without UpToDate data.
    pub assume_uptodate: bool,
}

/// `struct disconnect_parms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisconnectParms {
    /// "--force": skip the graceful disconnect.
    pub force_disconnect: bool,
}

/// `struct state_info`; `None` fields are left out of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateInfo<'a> {
    /// Why the message was sent, `state_info::SIB_*`.
    pub sib_reason: u32,
    /// State word, see [`State`].
    pub current_state: u32,
    /// Device size in sectors.
    pub capacity: u64,
    /// Exposed data UUID.
    pub ed_uuid: u64,
    /// State word before the change (state change broadcasts).
    pub prev_state: Option<u32>,
    /// State word after the change (state change broadcasts).
    pub new_state: Option<u32>,
    /// Current, bitmap, history 1 and 2 UUIDs (with a disk).
    pub uuids: Option<[u64; 4]>,
    /// Meta data flags `MDF_*` (with a disk).
    pub disk_flags: Option<u32>,
    /// Bitmap bits (with a disk).
    pub bits_total: Option<u64>,
    /// Out-of-sync bits (with a disk).
    pub bits_oos: Option<u64>,
    /// Bits to resync or verify (while syncing).
    pub bits_rs_total: Option<u64>,
    /// Bits that failed (while syncing).
    pub bits_rs_failed: Option<u64>,
    /// Helper name, without NUL (helper broadcasts).
    pub helper: Option<&'a [u8]>,
    /// Helper exit code (after the helper ran).
    pub helper_exit_code: Option<u32>,
    /// Sectors sent to the peer.
    pub send_cnt: u64,
    /// Sectors received from the peer.
    pub recv_cnt: u64,
    /// Sectors read from the backing device.
    pub read_cnt: u64,
    /// Sectors written to the backing device.
    pub writ_cnt: u64,
    /// Activity log writes.
    pub al_writ_cnt: u64,
    /// Bitmap writes.
    pub bm_writ_cnt: u64,
    /// Application bios in flight.
    pub ap_bio_cnt: u32,
    /// Application requests waiting for the peer.
    pub ap_pending_cnt: u32,
    /// Resync requests waiting for the peer.
    pub rs_pending_cnt: u32,
}

/// `struct device_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceInfo {
    /// Own disk state ([`DiskState`] value).
    pub disk_state: u32,
}

/// `struct device_statistics` (field names without the `dev_` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStatistics {
    /// Size in sectors.
    pub size: u64,
    /// Sectors read.
    pub read: u64,
    /// Sectors written.
    pub write: u64,
    /// Activity log writes.
    pub al_writes: u64,
    /// Bitmap writes.
    pub bm_writes: u64,
    /// Application requests in progress.
    pub upper_pending: u32,
    /// Backing device requests in progress.
    pub lower_pending: u32,
    /// Application IO blocked.
    pub upper_blocked: bool,
    /// Backing device IO blocked.
    pub lower_blocked: bool,
    /// Activity log suspended.
    pub al_suspended: bool,
    /// Exposed data UUID.
    pub exposed_data_uuid: u64,
    /// Current UUID.
    pub current_uuid: u64,
    /// Meta data flags `MDF_*`.
    pub disk_flags: u32,
    /// The two history UUIDs; `None` without a disk (sent empty).
    pub history_uuids: Option<[u64; 2]>,
}

/// Why a message was refused: the ret_code to reply with and the text for
/// CFG_REPLY. Field-level errors use the kernel's codes and texts
/// (`from_attrs_err_to_txt`); framing errors use `InvalidRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestError {
    code: RetCode,
    reason: &'static str,
}

impl RequestError {
    /// A required field (or the struct an operation needs) is missing.
    pub const REQUIRED_MISSING: Self = Self::field("required attribute missing");
    /// A field unknown to 8.4 carries the mandatory flag.
    pub const UNKNOWN_MANDATORY: Self = Self::field("unknown mandatory attribute");
    /// A change request gives an invariant field.
    pub const INVARIANT_CHANGE: Self = Self::field("can not change invariant setting");
    /// A field has the wrong size, a string is too long or not terminated.
    pub const INVALID_VALUE: Self = Self::field("invalid attribute value");
    const SHORT_MESSAGE: Self = Self {
        code: RetCode::InvalidRequest,
        reason: "message shorter than the DRBD header",
    };

    const fn field(reason: &'static str) -> Self {
        Self {
            code: RetCode::MandatoryTag,
            reason,
        }
    }

    fn malformed(error: NlaError) -> Self {
        Self {
            code: RetCode::InvalidRequest,
            reason: error.reason(),
        }
    }

    /// The ret_code to put in the reply header.
    pub fn ret_code(&self) -> RetCode {
        self.code
    }

    /// The text to put in the reply's CFG_REPLY info_text.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Which fields a struct parser knows and checks.
struct FieldRules {
    max_field: u16,
    required: u64,
    invariant: u64,
}

impl FieldRules {
    /// A struct without required or invariant fields.
    const fn optional(max_field: u16) -> Self {
        Self {
            max_field,
            required: 0,
            invariant: 0,
        }
    }
}

/// Parses the fields of one struct nest the way the kernel's
/// `drbd_nla_parse_nested` + `__<struct>_from_attrs` do: first reject
/// unknown fields flagged mandatory (unknown unflagged ones are ignored for
/// compatibility), then hand each known field to `apply`, then check
/// required and (for changes) invariant fields.
fn parse_fields<'a>(
    nest: &'a [u8],
    rules: FieldRules,
    change: bool,
    mut apply: impl FnMut(Attr<'a>) -> Result<(), NlaError>,
) -> Result<(), RequestError> {
    for attr in Attrs::new(nest) {
        let attr = attr.map_err(RequestError::malformed)?;
        if attr.mandatory && attr.number > rules.max_field {
            return Err(RequestError::UNKNOWN_MANDATORY);
        }
    }
    let mut seen = 0;
    for attr in Attrs::new(nest).flatten() {
        if attr.number <= rules.max_field {
            seen |= field_bit(attr.number);
            apply(attr).map_err(|_| RequestError::INVALID_VALUE)?;
        }
    }
    if change && seen & rules.invariant != 0 {
        return Err(RequestError::INVARIANT_CHANGE);
    }
    // A change may leave out invariant fields even if they are required.
    let required = if change {
        rules.required & !rules.invariant
    } else {
        rules.required
    };
    if seen & required != required {
        return Err(RequestError::REQUIRED_MISSING);
    }
    Ok(())
}

fn parse_cfg_context(nest: &[u8]) -> Result<CfgContext<'_>, RequestError> {
    use cfg_context as f;
    let mut ctx = CfgContext::default();
    let rules = FieldRules::optional(f::MAX_FIELD);
    parse_fields(nest, rules, false, |a| {
        match a.number {
            f::VOLUME => ctx.volume = Some(a.get_u32()?),
            f::RESOURCE_NAME => ctx.resource_name = Some(a.get_str(RESOURCE_NAME_SIZE)?),
            f::MY_ADDR => ctx.my_addr = Some(a.get_bytes(f::ADDR_SIZE)?),
            f::PEER_ADDR => ctx.peer_addr = Some(a.get_bytes(f::ADDR_SIZE)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(ctx)
}

fn parse_disk_conf<'a>(
    nest: &'a [u8],
    base: DiskConf<'a>,
    change: bool,
) -> Result<DiskConf<'a>, RequestError> {
    use disk_conf as f;
    let mut c = base;
    let rules = FieldRules {
        max_field: f::MAX_FIELD,
        required: f::REQUIRED,
        invariant: f::INVARIANT,
    };
    parse_fields(nest, rules, change, |a| {
        match a.number {
            f::BACKING_DEV => c.backing_dev = a.get_str(DEVICE_PATH_SIZE)?,
            f::META_DEV => c.meta_dev = a.get_str(DEVICE_PATH_SIZE)?,
            f::META_DEV_IDX => c.meta_dev_idx = a.get_s32()?,
            f::DISK_SIZE => c.disk_size = a.get_u64()?,
            f::MAX_BIO_BVECS => c.max_bio_bvecs = a.get_u32()?,
            f::ON_IO_ERROR => c.on_io_error = a.get_u32()?,
            f::FENCING => c.fencing = a.get_u32()?,
            f::RESYNC_RATE => c.resync_rate = a.get_u32()?,
            f::RESYNC_AFTER => c.resync_after = a.get_s32()?,
            f::AL_EXTENTS => c.al_extents = a.get_u32()?,
            f::C_PLAN_AHEAD => c.c_plan_ahead = a.get_u32()?,
            f::C_DELAY_TARGET => c.c_delay_target = a.get_u32()?,
            f::C_FILL_TARGET => c.c_fill_target = a.get_u32()?,
            f::C_MAX_RATE => c.c_max_rate = a.get_u32()?,
            f::C_MIN_RATE => c.c_min_rate = a.get_u32()?,
            f::DISK_BARRIER => c.disk_barrier = a.get_flag()?,
            f::DISK_FLUSHES => c.disk_flushes = a.get_flag()?,
            f::DISK_DRAIN => c.disk_drain = a.get_flag()?,
            f::MD_FLUSHES => c.md_flushes = a.get_flag()?,
            f::DISK_TIMEOUT => c.disk_timeout = a.get_u32()?,
            f::READ_BALANCING => c.read_balancing = a.get_u32()?,
            f::AL_UPDATES => c.al_updates = a.get_flag()?,
            f::DISCARD_ZEROES_IF_ALIGNED => c.discard_zeroes_if_aligned = a.get_flag()?,
            f::RS_DISCARD_GRANULARITY => c.rs_discard_granularity = a.get_u32()?,
            f::DISABLE_WRITE_SAME => c.disable_write_same = a.get_flag()?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(c)
}

fn parse_resource_opts<'a>(
    nest: &'a [u8],
    base: ResourceOpts<'a>,
) -> Result<ResourceOpts<'a>, RequestError> {
    use resource_opts as f;
    let mut opts = base;
    let rules = FieldRules::optional(f::MAX_FIELD);
    parse_fields(nest, rules, false, |a| {
        match a.number {
            f::CPU_MASK => opts.cpu_mask = a.get_str(f::CPU_MASK_SIZE)?,
            f::ON_NO_DATA => opts.on_no_data = a.get_u32()?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(opts)
}

/// Parses a struct whose only field is flag number 1 (the *_PARMS structs).
fn parse_single_flag(nest: &[u8]) -> Result<bool, RequestError> {
    let mut value = false;
    let rules = FieldRules::optional(1);
    parse_fields(nest, rules, false, |a| {
        value = a.get_flag()?;
        Ok(())
    })?;
    Ok(value)
}

/// Reads as many host-order u64 as `bytes` fully holds, up to N.
fn u64_slots<const N: usize>(bytes: &[u8]) -> [u64; N] {
    let mut slots = [0; N];
    for (slot, chunk) in slots.iter_mut().zip(bytes.chunks_exact(8)) {
        if let Ok(raw) = chunk.try_into() {
            *slot = u64::from_ne_bytes(raw);
        }
    }
    slots
}

fn parse_state_info(nest: &[u8]) -> Result<StateInfo<'_>, RequestError> {
    use state_info as f;
    let mut s = StateInfo::default();
    let rules = FieldRules {
        max_field: f::MAX_FIELD,
        required: f::REQUIRED,
        invariant: 0,
    };
    parse_fields(nest, rules, false, |a| {
        match a.number {
            f::SIB_REASON => s.sib_reason = a.get_u32()?,
            f::CURRENT_STATE => s.current_state = a.get_u32()?,
            f::CAPACITY => s.capacity = a.get_u64()?,
            f::ED_UUID => s.ed_uuid = a.get_u64()?,
            f::PREV_STATE => s.prev_state = Some(a.get_u32()?),
            f::NEW_STATE => s.new_state = Some(a.get_u32()?),
            f::UUIDS => s.uuids = Some(u64_slots(a.get_bytes(f::UUIDS_SIZE)?)),
            f::DISK_FLAGS => s.disk_flags = Some(a.get_u32()?),
            f::BITS_TOTAL => s.bits_total = Some(a.get_u64()?),
            f::BITS_OOS => s.bits_oos = Some(a.get_u64()?),
            f::BITS_RS_TOTAL => s.bits_rs_total = Some(a.get_u64()?),
            f::BITS_RS_FAILED => s.bits_rs_failed = Some(a.get_u64()?),
            f::HELPER => s.helper = Some(a.get_str(f::HELPER_SIZE)?),
            f::HELPER_EXIT_CODE => s.helper_exit_code = Some(a.get_u32()?),
            f::SEND_CNT => s.send_cnt = a.get_u64()?,
            f::RECV_CNT => s.recv_cnt = a.get_u64()?,
            f::READ_CNT => s.read_cnt = a.get_u64()?,
            f::WRIT_CNT => s.writ_cnt = a.get_u64()?,
            f::AL_WRIT_CNT => s.al_writ_cnt = a.get_u64()?,
            f::BM_WRIT_CNT => s.bm_writ_cnt = a.get_u64()?,
            f::AP_BIO_CNT => s.ap_bio_cnt = a.get_u32()?,
            f::AP_PENDING_CNT => s.ap_pending_cnt = a.get_u32()?,
            f::RS_PENDING_CNT => s.rs_pending_cnt = a.get_u32()?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

fn parse_device_info(nest: &[u8]) -> Result<DeviceInfo, RequestError> {
    let mut info = DeviceInfo::default();
    let rules = FieldRules::optional(device_info::MAX_FIELD);
    parse_fields(nest, rules, false, |a| {
        if a.number == device_info::DEV_DISK_STATE {
            info.disk_state = a.get_u32()?;
        }
        Ok(())
    })?;
    Ok(info)
}

fn parse_device_statistics(nest: &[u8]) -> Result<DeviceStatistics, RequestError> {
    use device_statistics as f;
    let mut s = DeviceStatistics::default();
    let rules = FieldRules::optional(f::MAX_FIELD);
    parse_fields(nest, rules, false, |a| {
        match a.number {
            f::DEV_SIZE => s.size = a.get_u64()?,
            f::DEV_READ => s.read = a.get_u64()?,
            f::DEV_WRITE => s.write = a.get_u64()?,
            f::DEV_AL_WRITES => s.al_writes = a.get_u64()?,
            f::DEV_BM_WRITES => s.bm_writes = a.get_u64()?,
            f::DEV_UPPER_PENDING => s.upper_pending = a.get_u32()?,
            f::DEV_LOWER_PENDING => s.lower_pending = a.get_u32()?,
            f::DEV_UPPER_BLOCKED => s.upper_blocked = a.get_flag()?,
            f::DEV_LOWER_BLOCKED => s.lower_blocked = a.get_flag()?,
            f::DEV_AL_SUSPENDED => s.al_suspended = a.get_flag()?,
            f::DEV_EXPOSED_DATA_UUID => s.exposed_data_uuid = a.get_u64()?,
            f::DEV_CURRENT_UUID => s.current_uuid = a.get_u64()?,
            f::DEV_DISK_FLAGS => s.disk_flags = a.get_u32()?,
            f::HISTORY_UUIDS => {
                let bytes = a.get_bytes(f::HISTORY_UUIDS_SIZE)?;
                s.history_uuids = (!bytes.is_empty()).then(|| u64_slots(bytes));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

/// A validated request, borrowing from the message (kernel side).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The user header: minor and flags.
    pub header: DrbdGenlHeader,
    attrs: &'a [u8],
}

/// Parses a request body that starts at the DRBD user header (right after
/// the genlmsghdr). Checks the header and the framing of the top-level
/// attributes; each struct is checked when asked for.
pub fn parse_request(payload: &[u8]) -> Result<Request<'_>, RequestError> {
    let (header, attrs) = DrbdGenlHeader::decode(payload).ok_or(RequestError::SHORT_MESSAGE)?;
    for attr in Attrs::new(attrs) {
        attr.map_err(RequestError::malformed)?;
    }
    Ok(Request { header, attrs })
}

impl<'a> Request<'a> {
    /// The header's minor.
    pub fn minor(&self) -> u32 {
        self.header.minor
    }

    /// Whether the request asks to start from defaults ("--set-defaults").
    pub fn set_defaults(&self) -> bool {
        self.header.flags_or_ret & FLAG_SET_DEFAULTS != 0
    }

    /// The top-level attribute `number`; the last one wins, as in the kernel.
    fn tla(&self, number: u16) -> Option<Attr<'a>> {
        Attrs::new(self.attrs)
            .flatten()
            .filter(|a| a.number == number)
            .last()
    }

    /// The CFG_CONTEXT attribute as sent (header included), for a reply to
    /// copy verbatim; validate it with `cfg_context` first.
    pub fn cfg_context_raw(&self) -> Option<&'a [u8]> {
        self.tla(tla::CFG_CONTEXT).map(|a| a.raw)
    }

    /// The CFG_CONTEXT struct, if present. (The C kernel answers a malformed
    /// CFG_CONTEXT with a netlink error, -EINVAL, instead of a reply.)
    pub fn cfg_context(&self) -> Result<Option<CfgContext<'a>>, RequestError> {
        self.tla(tla::CFG_CONTEXT)
            .map(|a| parse_cfg_context(a.payload))
            .transpose()
    }

    /// DISK_CONF for ATTACH: defaults for absent options, the three device
    /// fields required. `None` if absent; ATTACH should then fail with
    /// [`RequestError::REQUIRED_MISSING`].
    pub fn disk_conf(&self) -> Result<Option<DiskConf<'a>>, RequestError> {
        self.tla(tla::DISK_CONF)
            .map(|a| parse_disk_conf(a.payload, DiskConf::default(), false))
            .transpose()
    }

    /// DISK_CONF for CHG_DISK_OPTS: the given options applied to `current`
    /// (reset to defaults first with SET_DEFAULTS); invariant fields refused.
    pub fn disk_conf_change(&self, current: DiskConf<'a>) -> Result<DiskConf<'a>, RequestError> {
        let mut base = current;
        if self.set_defaults() {
            base.reset_to_defaults();
        }
        match self.tla(tla::DISK_CONF) {
            Some(a) => parse_disk_conf(a.payload, base, true),
            None => Ok(base),
        }
    }

    /// RESOURCE_OPTS applied to `current` (reset to defaults first with
    /// SET_DEFAULTS); pass `ResourceOpts::default()` for NEW_RESOURCE.
    pub fn resource_opts(
        &self,
        current: ResourceOpts<'a>,
    ) -> Result<ResourceOpts<'a>, RequestError> {
        let base = if self.set_defaults() {
            ResourceOpts::default()
        } else {
            current
        };
        match self.tla(tla::RESOURCE_OPTS) {
            Some(a) => parse_resource_opts(a.payload, base),
            None => Ok(base),
        }
    }

    /// DETACH_PARMS, if present.
    pub fn detach_parms(&self) -> Result<Option<DetachParms>, RequestError> {
        let parms = self
            .tla(tla::DETACH_PARMS)
            .map(|a| parse_single_flag(a.payload))
            .transpose()?;
        Ok(parms.map(|force_detach| DetachParms { force_detach }))
    }

    /// SET_ROLE_PARMS, if present.
    pub fn set_role_parms(&self) -> Result<Option<SetRoleParms>, RequestError> {
        let parms = self
            .tla(tla::SET_ROLE_PARMS)
            .map(|a| parse_single_flag(a.payload))
            .transpose()?;
        Ok(parms.map(|assume_uptodate| SetRoleParms { assume_uptodate }))
    }

    /// DISCONNECT_PARMS, if present.
    pub fn disconnect_parms(&self) -> Result<Option<DisconnectParms>, RequestError> {
        let parms = self
            .tla(tla::DISCONNECT_PARMS)
            .map(|a| parse_single_flag(a.payload))
            .transpose()?;
        Ok(parms.map(|force_disconnect| DisconnectParms { force_disconnect }))
    }
}

/// The three ways a struct travels, which differ only in the type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Kernel `*_to_skb`: nest flagged NLA_F_NESTED, plain field numbers.
    Kernel,
    /// Kernel's hand-made CFG_CONTEXT, CFG_REPLY and STATE_INFO: nest
    /// without NLA_F_NESTED, fields with the mandatory flag where declared.
    HandMade,
    /// drbd-utils requests: nest flagged NLA_F_NESTED, fields with the
    /// mandatory flag where declared.
    User,
}

/// Writes the fields of one struct, choosing their types by flavor and
/// skipping fields outside `selected`.
struct FieldWriter<'w, 'b> {
    w: &'w mut NlaWriter<'b>,
    mandatory: u64,
    flagged: bool,
    selected: u64,
}

impl FieldWriter<'_, '_> {
    fn ty(&self, number: u16) -> Option<u16> {
        if self.selected & field_bit(number) == 0 {
            None
        } else if self.flagged && self.mandatory & field_bit(number) != 0 {
            Some(number | NLA_F_MANDATORY)
        } else {
            Some(number)
        }
    }

    fn u32(&mut self, number: u16, value: u32) -> Result<(), NlaError> {
        self.ty(number).map_or(Ok(()), |t| self.w.put_u32(t, value))
    }

    fn s32(&mut self, number: u16, value: i32) -> Result<(), NlaError> {
        self.ty(number).map_or(Ok(()), |t| self.w.put_s32(t, value))
    }

    fn u64(&mut self, number: u16, value: u64) -> Result<(), NlaError> {
        self.ty(number).map_or(Ok(()), |t| self.w.put_u64(t, value))
    }

    fn flag(&mut self, number: u16, value: bool) -> Result<(), NlaError> {
        self.ty(number)
            .map_or(Ok(()), |t| self.w.put_flag(t, value))
    }

    /// A string for a C array of `size` bytes; refused rather than cut.
    fn str(&mut self, number: u16, value: &[u8], size: usize) -> Result<(), NlaError> {
        if value.len() >= size {
            return Err(NlaError::TooLong);
        }
        self.ty(number).map_or(Ok(()), |t| self.w.put_str(t, value))
    }

    fn bytes(&mut self, number: u16, value: &[u8], size: usize) -> Result<(), NlaError> {
        if value.len() > size {
            return Err(NlaError::TooLong);
        }
        self.ty(number)
            .map_or(Ok(()), |t| self.w.put_bytes(t, value))
    }
}

/// Writes one top-level struct nest; on failure nothing of it remains.
fn put_struct(
    w: &mut NlaWriter<'_>,
    tla_number: u16,
    flavor: Flavor,
    mandatory: u64,
    selected: u64,
    body: impl FnOnce(&mut FieldWriter<'_, '_>) -> Result<(), NlaError>,
) -> Result<(), NlaError> {
    let nest_type = match flavor {
        Flavor::HandMade => tla_number,
        Flavor::Kernel | Flavor::User => tla_number | NLA_F_NESTED,
    };
    let nest = w.begin_nest(nest_type)?;
    let flagged = flavor != Flavor::Kernel;
    let result = body(&mut FieldWriter {
        w: &mut *w,
        mandatory,
        flagged,
        selected,
    });
    match result {
        Ok(()) => w.end_nest(nest),
        Err(e) => {
            w.cancel_nest(nest);
            Err(e)
        }
    }
}

/// CFG_CONTEXT fields: the kernel puts the volume first, drbd-utils last
/// (after name and addresses); keeping each order makes the bytes match.
fn put_cfg_context_fields(
    f: &mut FieldWriter<'_, '_>,
    ctx: &CfgContext<'_>,
    volume_first: bool,
) -> Result<(), NlaError> {
    use cfg_context as c;
    if let (true, Some(volume)) = (volume_first, ctx.volume) {
        f.u32(c::VOLUME, volume)?;
    }
    if let Some(name) = ctx.resource_name {
        f.str(c::RESOURCE_NAME, name, RESOURCE_NAME_SIZE)?;
    }
    if let Some(addr) = ctx.my_addr {
        f.bytes(c::MY_ADDR, addr, c::ADDR_SIZE)?;
    }
    if let Some(addr) = ctx.peer_addr {
        f.bytes(c::PEER_ADDR, addr, c::ADDR_SIZE)?;
    }
    if let (false, Some(volume)) = (volume_first, ctx.volume) {
        f.u32(c::VOLUME, volume)?;
    }
    Ok(())
}

fn put_disk_conf_fields(f: &mut FieldWriter<'_, '_>, c: &DiskConf<'_>) -> Result<(), NlaError> {
    use disk_conf as d;
    f.str(d::BACKING_DEV, c.backing_dev, DEVICE_PATH_SIZE)?;
    f.str(d::META_DEV, c.meta_dev, DEVICE_PATH_SIZE)?;
    f.s32(d::META_DEV_IDX, c.meta_dev_idx)?;
    f.u64(d::DISK_SIZE, c.disk_size)?;
    f.u32(d::MAX_BIO_BVECS, c.max_bio_bvecs)?;
    f.u32(d::ON_IO_ERROR, c.on_io_error)?;
    f.u32(d::FENCING, c.fencing)?;
    f.u32(d::RESYNC_RATE, c.resync_rate)?;
    f.s32(d::RESYNC_AFTER, c.resync_after)?;
    f.u32(d::AL_EXTENTS, c.al_extents)?;
    f.u32(d::C_PLAN_AHEAD, c.c_plan_ahead)?;
    f.u32(d::C_DELAY_TARGET, c.c_delay_target)?;
    f.u32(d::C_FILL_TARGET, c.c_fill_target)?;
    f.u32(d::C_MAX_RATE, c.c_max_rate)?;
    f.u32(d::C_MIN_RATE, c.c_min_rate)?;
    f.u32(d::DISK_TIMEOUT, c.disk_timeout)?;
    f.u32(d::READ_BALANCING, c.read_balancing)?;
    f.u32(d::RS_DISCARD_GRANULARITY, c.rs_discard_granularity)?;
    f.flag(d::DISK_BARRIER, c.disk_barrier)?;
    f.flag(d::DISK_FLUSHES, c.disk_flushes)?;
    f.flag(d::DISK_DRAIN, c.disk_drain)?;
    f.flag(d::MD_FLUSHES, c.md_flushes)?;
    f.flag(d::AL_UPDATES, c.al_updates)?;
    f.flag(d::DISCARD_ZEROES_IF_ALIGNED, c.discard_zeroes_if_aligned)?;
    f.flag(d::DISABLE_WRITE_SAME, c.disable_write_same)
}

fn put_resource_opts_fields(
    f: &mut FieldWriter<'_, '_>,
    opts: &ResourceOpts<'_>,
) -> Result<(), NlaError> {
    f.str(
        resource_opts::CPU_MASK,
        opts.cpu_mask,
        resource_opts::CPU_MASK_SIZE,
    )?;
    f.u32(resource_opts::ON_NO_DATA, opts.on_no_data)
}

/// Builds a reply or notification body in a caller-provided buffer (kernel
/// side): the user header first, then top-level attributes.
#[derive(Debug)]
pub struct ReplyBuilder<'a> {
    w: NlaWriter<'a>,
}

impl<'a> ReplyBuilder<'a> {
    /// Starts a reply about `minor` with ret_code NO_ERROR.
    pub fn new(buf: &'a mut [u8], minor: u32) -> Result<Self, NlaError> {
        let header = DrbdGenlHeader {
            minor,
            flags_or_ret: RetCode::NoError as u32,
        };
        let mut w = NlaWriter::new(buf);
        w.put_raw(&header.encode())?;
        Ok(Self { w })
    }

    /// Sets the header's ret_code ([`RetCode`], [`StateChangeResult`] or raw).
    pub fn set_ret_code(&mut self, code: impl Into<i32>) -> Result<(), NlaError> {
        // The ret_code is the second u32 of the header written by `new`.
        self.w.patch(4, &code.into().to_ne_bytes())
    }

    /// Copies the request's CFG_CONTEXT ([`Request::cfg_context_raw`]).
    pub fn copy_cfg_context(&mut self, raw: &[u8]) -> Result<(), NlaError> {
        self.w.put_raw(raw)
    }

    /// Adds CFG_REPLY{info_text}; nothing for an empty text, as the kernel.
    pub fn put_info_text(&mut self, text: &[u8]) -> Result<(), NlaError> {
        if text.is_empty() {
            return Ok(());
        }
        put_struct(
            &mut self.w,
            tla::CFG_REPLY,
            Flavor::HandMade,
            cfg_reply::MANDATORY,
            u64::MAX,
            |f| f.str(cfg_reply::INFO_TEXT, text, usize::MAX),
        )
    }

    /// Adds CFG_CONTEXT as the kernel builds it for status and events.
    pub fn put_cfg_context(&mut self, ctx: &CfgContext<'_>) -> Result<(), NlaError> {
        put_struct(
            &mut self.w,
            tla::CFG_CONTEXT,
            Flavor::HandMade,
            cfg_context::MANDATORY,
            u64::MAX,
            |f| put_cfg_context_fields(f, ctx, true),
        )
    }

    /// Adds RESOURCE_OPTS (all fields).
    pub fn put_resource_opts(&mut self, opts: &ResourceOpts<'_>) -> Result<(), NlaError> {
        put_struct(
            &mut self.w,
            tla::RESOURCE_OPTS,
            Flavor::Kernel,
            0,
            u64::MAX,
            |f| put_resource_opts_fields(f, opts),
        )
    }

    /// Adds DISK_CONF (all fields).
    pub fn put_disk_conf(&mut self, conf: &DiskConf<'_>) -> Result<(), NlaError> {
        put_struct(
            &mut self.w,
            tla::DISK_CONF,
            Flavor::Kernel,
            0,
            u64::MAX,
            |f| put_disk_conf_fields(f, conf),
        )
    }

    /// Adds STATE_INFO; `None` fields are left out.
    pub fn put_state_info(&mut self, s: &StateInfo<'_>) -> Result<(), NlaError> {
        use state_info as i;
        put_struct(
            &mut self.w,
            tla::STATE_INFO,
            Flavor::HandMade,
            i::MANDATORY,
            u64::MAX,
            |f| {
                f.u32(i::SIB_REASON, s.sib_reason)?;
                f.u32(i::CURRENT_STATE, s.current_state)?;
                f.u64(i::ED_UUID, s.ed_uuid)?;
                f.u64(i::CAPACITY, s.capacity)?;
                f.u64(i::SEND_CNT, s.send_cnt)?;
                f.u64(i::RECV_CNT, s.recv_cnt)?;
                f.u64(i::READ_CNT, s.read_cnt)?;
                f.u64(i::WRIT_CNT, s.writ_cnt)?;
                f.u64(i::AL_WRIT_CNT, s.al_writ_cnt)?;
                f.u64(i::BM_WRIT_CNT, s.bm_writ_cnt)?;
                f.u32(i::AP_BIO_CNT, s.ap_bio_cnt)?;
                f.u32(i::AP_PENDING_CNT, s.ap_pending_cnt)?;
                f.u32(i::RS_PENDING_CNT, s.rs_pending_cnt)?;
                if let Some(uuids) = s.uuids {
                    let mut raw = [0u8; i::UUIDS_SIZE];
                    for (chunk, uuid) in raw.chunks_exact_mut(8).zip(uuids) {
                        chunk.copy_from_slice(&uuid.to_ne_bytes());
                    }
                    f.bytes(i::UUIDS, &raw, i::UUIDS_SIZE)?;
                }
                let optional_u32 = [
                    (i::DISK_FLAGS, s.disk_flags),
                    (i::PREV_STATE, s.prev_state),
                    (i::NEW_STATE, s.new_state),
                    (i::HELPER_EXIT_CODE, s.helper_exit_code),
                ];
                for (number, value) in optional_u32 {
                    value.map_or(Ok(()), |v| f.u32(number, v))?;
                }
                let optional_u64 = [
                    (i::BITS_TOTAL, s.bits_total),
                    (i::BITS_OOS, s.bits_oos),
                    (i::BITS_RS_TOTAL, s.bits_rs_total),
                    (i::BITS_RS_FAILED, s.bits_rs_failed),
                ];
                for (number, value) in optional_u64 {
                    value.map_or(Ok(()), |v| f.u64(number, v))?;
                }
                s.helper
                    .map_or(Ok(()), |h| f.str(i::HELPER, h, i::HELPER_SIZE))
            },
        )
    }

    /// Adds DEVICE_INFO.
    pub fn put_device_info(&mut self, info: &DeviceInfo) -> Result<(), NlaError> {
        put_struct(
            &mut self.w,
            tla::DEVICE_INFO,
            Flavor::Kernel,
            0,
            u64::MAX,
            |f| f.u32(device_info::DEV_DISK_STATE, info.disk_state),
        )
    }

    /// Adds DEVICE_STATISTICS (history_uuids as the 8.4 kernel sends them).
    pub fn put_device_statistics(&mut self, s: &DeviceStatistics) -> Result<(), NlaError> {
        use device_statistics as d;
        put_struct(
            &mut self.w,
            tla::DEVICE_STATISTICS,
            Flavor::Kernel,
            0,
            u64::MAX,
            |f| {
                f.u64(d::DEV_SIZE, s.size)?;
                f.u64(d::DEV_READ, s.read)?;
                f.u64(d::DEV_WRITE, s.write)?;
                f.u64(d::DEV_AL_WRITES, s.al_writes)?;
                f.u64(d::DEV_BM_WRITES, s.bm_writes)?;
                f.u32(d::DEV_UPPER_PENDING, s.upper_pending)?;
                f.u32(d::DEV_LOWER_PENDING, s.lower_pending)?;
                f.flag(d::DEV_UPPER_BLOCKED, s.upper_blocked)?;
                f.flag(d::DEV_LOWER_BLOCKED, s.lower_blocked)?;
                f.flag(d::DEV_AL_SUSPENDED, s.al_suspended)?;
                f.u64(d::DEV_EXPOSED_DATA_UUID, s.exposed_data_uuid)?;
                f.u64(d::DEV_CURRENT_UUID, s.current_uuid)?;
                f.u32(d::DEV_DISK_FLAGS, s.disk_flags)?;
                let mut raw = [0u8; d::HISTORY_UUIDS_SENT];
                let len = match s.history_uuids {
                    Some(uuids) => {
                        for (chunk, uuid) in raw.chunks_exact_mut(8).zip(uuids) {
                            chunk.copy_from_slice(&uuid.to_ne_bytes());
                        }
                        d::HISTORY_UUIDS_SENT
                    }
                    None => 0,
                };
                f.bytes(
                    d::HISTORY_UUIDS,
                    raw.get(..len).unwrap_or_default(),
                    d::HISTORY_UUIDS_SIZE,
                )
            },
        )
    }

    /// Adds TIMEOUT_PARMS, the reply of GET_TIMEOUT_TYPE.
    pub fn put_timeout_type(&mut self, timeout_type: u32) -> Result<(), NlaError> {
        put_struct(
            &mut self.w,
            tla::TIMEOUT_PARMS,
            Flavor::Kernel,
            0,
            u64::MAX,
            |f| f.u32(timeout_parms::TIMEOUT_TYPE, timeout_type),
        )
    }

    /// The writer, for attributes this builder has no method for.
    pub fn writer(&mut self) -> &mut NlaWriter<'a> {
        &mut self.w
    }

    /// The message body written so far.
    pub fn bytes(&self) -> &[u8] {
        self.w.written()
    }
}

/// Adds CFG_CONTEXT to a request as drbd-utils does (userspace side).
pub fn put_cfg_context_request(
    w: &mut NlaWriter<'_>,
    ctx: &CfgContext<'_>,
) -> Result<(), NlaError> {
    put_struct(
        w,
        tla::CFG_CONTEXT,
        Flavor::User,
        cfg_context::MANDATORY,
        u64::MAX,
        |f| put_cfg_context_fields(f, ctx, false),
    )
}

/// Adds DISK_CONF to a request with only the fields in `fields` (a
/// [`field_mask`]); drbdsetup sends [`disk_conf::REQUIRED`] plus the
/// options given on attach, and only the given options on disk-options.
pub fn put_disk_conf_request(
    w: &mut NlaWriter<'_>,
    conf: &DiskConf<'_>,
    fields: u64,
) -> Result<(), NlaError> {
    put_struct(
        w,
        tla::DISK_CONF,
        Flavor::User,
        disk_conf::MANDATORY,
        fields,
        |f| put_disk_conf_fields(f, conf),
    )
}

/// Adds RESOURCE_OPTS to a request with only the fields in `fields`.
pub fn put_resource_opts_request(
    w: &mut NlaWriter<'_>,
    opts: &ResourceOpts<'_>,
    fields: u64,
) -> Result<(), NlaError> {
    put_struct(
        w,
        tla::RESOURCE_OPTS,
        Flavor::User,
        resource_opts::MANDATORY,
        fields,
        |f| put_resource_opts_fields(f, opts),
    )
}

/// Adds a single-flag *_PARMS struct, as drbdsetup does for "--force".
fn put_flag_request(w: &mut NlaWriter<'_>, tla_number: u16, value: bool) -> Result<(), NlaError> {
    // Every single-flag struct has its flag as mandatory field 1.
    put_struct(w, tla_number, Flavor::User, field_bit(1), u64::MAX, |f| {
        f.flag(1, value)
    })
}

/// Adds DETACH_PARMS to a request.
pub fn put_detach_parms_request(
    w: &mut NlaWriter<'_>,
    parms: &DetachParms,
) -> Result<(), NlaError> {
    put_flag_request(w, tla::DETACH_PARMS, parms.force_detach)
}

/// Adds SET_ROLE_PARMS to a request.
pub fn put_set_role_parms_request(
    w: &mut NlaWriter<'_>,
    parms: &SetRoleParms,
) -> Result<(), NlaError> {
    put_flag_request(w, tla::SET_ROLE_PARMS, parms.assume_uptodate)
}

/// Adds DISCONNECT_PARMS to a request.
pub fn put_disconnect_parms_request(
    w: &mut NlaWriter<'_>,
    parms: &DisconnectParms,
) -> Result<(), NlaError> {
    put_flag_request(w, tla::DISCONNECT_PARMS, parms.force_disconnect)
}

/// A parsed reply or notification (userspace side); absent structs are `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reply<'a> {
    /// The user header.
    pub header: DrbdGenlHeader,
    /// The header's ret_code; see [`ret_code_text`] and [`ret_code_is_success`].
    pub ret_code: i32,
    /// The first CFG_REPLY info_text, without NUL.
    pub info_text: Option<&'a [u8]>,
    /// CFG_CONTEXT.
    pub cfg_context: Option<CfgContext<'a>>,
    /// RESOURCE_OPTS.
    pub resource_opts: Option<ResourceOpts<'a>>,
    /// DISK_CONF.
    pub disk_conf: Option<DiskConf<'a>>,
    /// STATE_INFO.
    pub state_info: Option<StateInfo<'a>>,
    /// DEVICE_INFO.
    pub device_info: Option<DeviceInfo>,
    /// DEVICE_STATISTICS.
    pub device_statistics: Option<DeviceStatistics>,
    /// TIMEOUT_PARMS.timeout_type.
    pub timeout_type: Option<u32>,
}

/// Parses a reply or notification body that starts at the DRBD user header.
/// Unknown top-level attributes are skipped; known structs are validated
/// with the same rules as requests.
pub fn parse_reply(payload: &[u8]) -> Result<Reply<'_>, RequestError> {
    let (header, attrs) = DrbdGenlHeader::decode(payload).ok_or(RequestError::SHORT_MESSAGE)?;
    let mut reply = Reply {
        header,
        ret_code: header.ret_code(),
        ..Reply::default()
    };
    for attr in Attrs::new(attrs) {
        let attr = attr.map_err(RequestError::malformed)?;
        let nest = attr.payload;
        match attr.number {
            tla::CFG_REPLY => {
                let mut text = None;
                let rules = FieldRules::optional(cfg_reply::MAX_FIELD);
                parse_fields(nest, rules, false, |a| {
                    let value = a.get_str(usize::MAX)?;
                    text = text.or(Some(value));
                    Ok(())
                })?;
                reply.info_text = reply.info_text.or(text);
            }
            tla::CFG_CONTEXT => reply.cfg_context = Some(parse_cfg_context(nest)?),
            tla::RESOURCE_OPTS => {
                reply.resource_opts = Some(parse_resource_opts(nest, ResourceOpts::default())?)
            }
            tla::DISK_CONF => {
                reply.disk_conf = Some(parse_disk_conf(nest, DiskConf::default(), false)?)
            }
            tla::STATE_INFO => reply.state_info = Some(parse_state_info(nest)?),
            tla::DEVICE_INFO => reply.device_info = Some(parse_device_info(nest)?),
            tla::DEVICE_STATISTICS => {
                reply.device_statistics = Some(parse_device_statistics(nest)?)
            }
            tla::TIMEOUT_PARMS => {
                let mut timeout_type = None;
                let rules = FieldRules {
                    max_field: timeout_parms::MAX_FIELD,
                    required: field_bit(1),
                    invariant: 0,
                };
                parse_fields(nest, rules, false, |a| {
                    timeout_type = Some(a.get_u32()?);
                    Ok(())
                })?;
                reply.timeout_type = timeout_type;
            }
            _ => {}
        }
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )]
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Encodes a request body: header, then whatever `body` adds.
    fn request(minor: u32, flags: u32, body: impl FnOnce(&mut NlaWriter<'_>)) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let mut w = NlaWriter::new(&mut buf);
        w.put_raw(
            &DrbdGenlHeader {
                minor,
                flags_or_ret: flags,
            }
            .encode(),
        )
        .unwrap();
        body(&mut w);
        w.written().to_vec()
    }

    /// A request carrying one hand-written DISK_CONF nest.
    fn disk_conf_request(fields: impl FnOnce(&mut NlaWriter<'_>)) -> Vec<u8> {
        request(0, 0, |w| {
            let nest = w.begin_nest(NLA_F_NESTED | tla::DISK_CONF).unwrap();
            fields(w);
            w.end_nest(nest).unwrap();
        })
    }

    fn attach_conf() -> DiskConf<'static> {
        DiskConf {
            backing_dev: b"/dev/loop0",
            meta_dev: b"/dev/loop0",
            meta_dev_idx: disk_conf::META_DEV_IDX_FLEX_INT,
            ..DiskConf::default()
        }
    }

    fn odd_disk_conf() -> DiskConf<'static> {
        DiskConf {
            backing_dev: b"/dev/sdb1",
            meta_dev: b"/dev/sdc",
            meta_dev_idx: 3,
            disk_size: 1 << 40,
            max_bio_bvecs: 7,
            on_io_error: 1,
            fencing: 2,
            resync_rate: 102_400,
            resync_after: 4,
            al_extents: 3833,
            c_plan_ahead: 0,
            c_delay_target: 99,
            c_fill_target: 5,
            c_max_rate: 300,
            c_min_rate: 0,
            disk_barrier: true,
            disk_flushes: false,
            disk_drain: false,
            md_flushes: false,
            disk_timeout: 600,
            read_balancing: 10,
            al_updates: false,
            discard_zeroes_if_aligned: false,
            rs_discard_granularity: 4096,
            disable_write_same: true,
        }
    }

    #[test]
    fn header_round_trip() {
        let header = DrbdGenlHeader {
            minor: 7,
            flags_or_ret: (-5i32) as u32,
        };
        let bytes = header.encode();
        let (decoded, rest) = DrbdGenlHeader::decode(&bytes).unwrap();
        assert_eq!(decoded, header);
        assert!(rest.is_empty());
        assert_eq!(decoded.ret_code(), -5);
        assert!(DrbdGenlHeader::decode(&bytes[..7]).is_none());
    }

    /// `drbdsetup-84 attach 0 /dev/loop0 /dev/loop0 internal`, derived by
    /// hand from drbd_genl.h and libgenl's nla_put / nla_nest_start.
    #[test]
    #[cfg(target_endian = "little")]
    fn attach_request_matches_drbdsetup_bytes() {
        let body = request(0, 0, |w| {
            put_disk_conf_request(w, &attach_conf(), disk_conf::REQUIRED).unwrap()
        });
        let expected = [
            &[0, 0, 0, 0, 0, 0, 0, 0][..], // minor 0, flags 0
            &[44, 0, 0x03, 0x80],          // DISK_CONF | NLA_F_NESTED, 44 bytes
            &[15, 0, 0x01, 0x00],          // T_backing_dev (no mandatory flag), 11 bytes + pad
            b"/dev/loop0\0\0",
            &[15, 0, 0x02, 0x00], // T_meta_dev
            b"/dev/loop0\0\0",
            &[8, 0, 0x03, 0x00],       // T_meta_dev_idx
            &[0xfd, 0xff, 0xff, 0xff], // -3, DRBD_MD_INDEX_FLEX_INT
        ]
        .concat();
        assert_eq!(body, expected);

        let req = parse_request(&body).unwrap();
        assert_eq!(req.minor(), 0);
        assert_eq!(req.disk_conf().unwrap(), Some(attach_conf()));
        assert_eq!(req.cfg_context().unwrap(), None);
    }

    /// `drbdsetup-84 new-minor r0 0 0`: name, then volume, in one CFG_CONTEXT.
    #[test]
    #[cfg(target_endian = "little")]
    fn new_minor_request_matches_drbdsetup_bytes() {
        let ctx = CfgContext {
            volume: Some(0),
            resource_name: Some(b"r0"),
            ..CfgContext::default()
        };
        let body = request(0, 0, |w| put_cfg_context_request(w, &ctx).unwrap());
        let expected = [
            &[0, 0, 0, 0, 0, 0, 0, 0][..],
            &[20, 0, 0x02, 0x80], // CFG_CONTEXT | NLA_F_NESTED
            &[7, 0, 0x02, 0x40],  // T_ctx_resource_name (mandatory)
            b"r0\0\0",
            &[8, 0, 0x01, 0x40], // T_ctx_volume (mandatory)
            &[0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(body, expected);
        assert_eq!(
            parse_request(&body).unwrap().cfg_context().unwrap(),
            Some(ctx)
        );
    }

    #[test]
    fn disk_conf_round_trips_in_every_flavor() {
        let conf = odd_disk_conf();
        let body = request(3, 0, |w| {
            put_disk_conf_request(w, &conf, disk_conf::ALL).unwrap()
        });
        assert_eq!(
            parse_request(&body).unwrap().disk_conf().unwrap(),
            Some(conf)
        );

        let mut buf = [0u8; 1024];
        let mut reply = ReplyBuilder::new(&mut buf, 3).unwrap();
        reply.put_disk_conf(&conf).unwrap();
        let parsed = parse_reply(reply.bytes()).unwrap();
        assert_eq!(parsed.disk_conf, Some(conf));
        assert_eq!(parsed.header.minor, 3);
    }

    #[test]
    fn attach_fills_in_defaults_and_only_sends_selected_fields() {
        let mut conf = attach_conf();
        conf.resync_rate = 100 * 1024;
        conf.al_extents = 9; // not selected: must not be sent
        let fields = disk_conf::REQUIRED | field_mask(&[disk_conf::RESYNC_RATE]);
        let body = request(0, 0, |w| put_disk_conf_request(w, &conf, fields).unwrap());
        let parsed = parse_request(&body).unwrap().disk_conf().unwrap().unwrap();
        assert_eq!(parsed.resync_rate, 100 * 1024);
        assert_eq!(parsed.al_extents, disk_conf::AL_EXTENTS_LIMITS.default);
        assert_eq!(
            DiskConf {
                resync_rate: 250,
                ..parsed
            },
            DiskConf {
                resync_rate: 250,
                al_extents: 1237,
                ..conf
            }
        );
        // The option went out with its mandatory flag, the paths without.
        let nest = Attrs::new(&body[8..]).next().unwrap().unwrap();
        let types: Vec<(u16, bool)> = nest
            .nested_attrs()
            .map(|a| a.unwrap())
            .map(|a| (a.number, a.mandatory))
            .collect();
        assert_eq!(types, [(1, false), (2, false), (3, false), (8, true)]);
    }

    #[test]
    fn disk_options_change_current_settings() {
        let current = odd_disk_conf();
        let body = disk_conf_request(|w| {
            w.put_u32(disk_conf::C_MAX_RATE | NLA_F_MANDATORY, 500)
                .unwrap()
        });
        let req = parse_request(&body).unwrap();
        assert_eq!(
            req.disk_conf_change(current).unwrap(),
            DiskConf {
                c_max_rate: 500,
                ..current
            }
        );
        // The same without required fields is not an attach.
        assert_eq!(req.disk_conf(), Err(RequestError::REQUIRED_MISSING));

        let with_defaults = request(0, FLAG_SET_DEFAULTS, |w| {
            let nest = w.begin_nest(NLA_F_NESTED | tla::DISK_CONF).unwrap();
            w.put_u32(disk_conf::C_MAX_RATE | NLA_F_MANDATORY, 500)
                .unwrap();
            w.end_nest(nest).unwrap();
        });
        let changed = parse_request(&with_defaults)
            .unwrap()
            .disk_conf_change(current)
            .unwrap();
        let expected = DiskConf {
            backing_dev: current.backing_dev,
            meta_dev: current.meta_dev,
            meta_dev_idx: current.meta_dev_idx,
            disk_size: current.disk_size,
            max_bio_bvecs: current.max_bio_bvecs,
            c_max_rate: 500,
            ..DiskConf::default()
        };
        assert_eq!(changed, expected);

        let no_conf = request(0, 0, |_| {});
        assert_eq!(
            parse_request(&no_conf).unwrap().disk_conf_change(current),
            Ok(current)
        );
        assert_eq!(parse_request(&no_conf).unwrap().disk_conf(), Ok(None));

        let invariant =
            disk_conf_request(|w| w.put_str(disk_conf::BACKING_DEV, b"/dev/sdx").unwrap());
        let err = parse_request(&invariant)
            .unwrap()
            .disk_conf_change(current)
            .unwrap_err();
        assert_eq!(err, RequestError::INVARIANT_CHANGE);
        assert_eq!(err.ret_code(), RetCode::MandatoryTag);
        assert_eq!(err.reason(), "can not change invariant setting");
    }

    #[test]
    fn resource_opts_and_flag_parms() {
        let opts = ResourceOpts {
            cpu_mask: b"ff",
            on_no_data: 1,
        };
        let body = request(MINOR_ALL, 0, |w| {
            put_cfg_context_request(
                w,
                &CfgContext {
                    resource_name: Some(b"r0"),
                    ..CfgContext::default()
                },
            )
            .unwrap();
            put_resource_opts_request(w, &opts, resource_opts::ALL).unwrap();
            put_detach_parms_request(w, &DetachParms { force_detach: true }).unwrap();
            put_set_role_parms_request(
                w,
                &SetRoleParms {
                    assume_uptodate: true,
                },
            )
            .unwrap();
            put_disconnect_parms_request(
                w,
                &DisconnectParms {
                    force_disconnect: false,
                },
            )
            .unwrap();
        });
        let req = parse_request(&body).unwrap();
        assert_eq!(req.minor(), MINOR_ALL);
        assert_eq!(req.resource_opts(ResourceOpts::default()), Ok(opts));
        assert_eq!(
            req.detach_parms(),
            Ok(Some(DetachParms { force_detach: true }))
        );
        assert_eq!(
            req.set_role_parms(),
            Ok(Some(SetRoleParms {
                assume_uptodate: true
            }))
        );
        assert_eq!(
            req.disconnect_parms(),
            Ok(Some(DisconnectParms {
                force_disconnect: false
            }))
        );

        let partial = request(MINOR_ALL, 0, |w| {
            put_resource_opts_request(w, &opts, field_mask(&[resource_opts::ON_NO_DATA])).unwrap();
        });
        let current = ResourceOpts {
            cpu_mask: b"3",
            on_no_data: 0,
        };
        let req = parse_request(&partial).unwrap();
        assert_eq!(
            req.resource_opts(current),
            Ok(ResourceOpts {
                cpu_mask: b"3",
                on_no_data: 1
            })
        );
        assert_eq!(req.detach_parms(), Ok(None));
        let reset = request(MINOR_ALL, FLAG_SET_DEFAULTS, |_| {});
        assert_eq!(
            parse_request(&reset).unwrap().resource_opts(current),
            Ok(ResourceOpts::default())
        );
    }

    #[test]
    fn cfg_context_is_copied_verbatim_into_the_reply() {
        let v4 = [2u8, 0, 0x1e, 0x6d, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let v6 = [10u8; 28];
        let ctx = CfgContext {
            volume: None,
            resource_name: Some(b"r0"),
            my_addr: Some(&v4),
            peer_addr: Some(&v6),
        };
        let body = request(MINOR_ALL, 0, |w| put_cfg_context_request(w, &ctx).unwrap());
        let req = parse_request(&body).unwrap();
        assert_eq!(req.cfg_context(), Ok(Some(ctx)));
        let raw = req.cfg_context_raw().unwrap();
        assert_eq!(raw, &body[8..]);

        let mut buf = [0u8; 512];
        let mut reply = ReplyBuilder::new(&mut buf, MINOR_ALL).unwrap();
        reply.copy_cfg_context(raw).unwrap();
        reply.set_ret_code(StateChangeResult::Success).unwrap();
        assert_eq!(&reply.bytes()[8..], raw);
        let parsed = parse_reply(reply.bytes()).unwrap();
        assert_eq!(parsed.cfg_context, Some(ctx));
        assert_eq!(parsed.ret_code, 1);
        assert!(ret_code_is_success(parsed.ret_code));
        assert_eq!(parsed.info_text, None);
    }

    #[test]
    fn status_reply_round_trip_and_wire_flags() {
        let state = State {
            role: Role::Primary,
            peer: Role::Secondary,
            conn: ConnState::SyncSource,
            disk: DiskState::UpToDate,
            pdsk: DiskState::Inconsistent,
            susp: false,
            aftr_isp: false,
            peer_isp: true,
            user_isp: false,
            susp_nod: false,
            susp_fen: false,
        };
        let info = StateInfo {
            sib_reason: state_info::SIB_GET_STATUS_REPLY,
            current_state: state.to_u32(),
            capacity: 2048,
            ed_uuid: 0x1234,
            uuids: Some([1, 2, 3, 4]),
            disk_flags: Some(0x21),
            bits_total: Some(256),
            bits_oos: Some(10),
            bits_rs_total: Some(10),
            bits_rs_failed: Some(0),
            helper: Some(b"before-resync-target"),
            helper_exit_code: Some(0),
            prev_state: Some(5),
            new_state: Some(6),
            send_cnt: 11,
            writ_cnt: 12,
            ap_bio_cnt: 3,
            ..StateInfo::default()
        };
        let stats = DeviceStatistics {
            size: 2048,
            read: 1,
            write: 2,
            upper_blocked: true,
            current_uuid: 0xabcd,
            history_uuids: Some([5, 6]),
            ..DeviceStatistics::default()
        };
        let ctx = CfgContext {
            volume: Some(0),
            resource_name: Some(b"r0"),
            ..CfgContext::default()
        };
        let mut buf = [0u8; 2048];
        let mut reply = ReplyBuilder::new(&mut buf, 1).unwrap();
        reply.put_cfg_context(&ctx).unwrap();
        reply.put_resource_opts(&ResourceOpts::default()).unwrap();
        reply.put_state_info(&info).unwrap();
        reply
            .put_device_info(&DeviceInfo {
                disk_state: DiskState::UpToDate as u32,
            })
            .unwrap();
        reply.put_device_statistics(&stats).unwrap();
        reply
            .put_device_statistics(&DeviceStatistics::default())
            .unwrap();
        reply.put_timeout_type(1).unwrap();
        reply.put_info_text(b"").unwrap();
        let bytes = reply.bytes().to_vec();

        let parsed = parse_reply(&bytes).unwrap();
        assert_eq!(parsed.ret_code, i32::from(RetCode::NoError));
        assert_eq!(parsed.cfg_context, Some(ctx));
        assert_eq!(parsed.resource_opts, Some(ResourceOpts::default()));
        assert_eq!(parsed.state_info, Some(info));
        assert_eq!(
            State::from_u32(parsed.state_info.unwrap().current_state),
            Some(state)
        );
        assert_eq!(parsed.device_info, Some(DeviceInfo { disk_state: 8 }));
        assert_eq!(
            parsed.device_statistics,
            Some(DeviceStatistics::default()),
            "last one wins"
        );
        assert_eq!(parsed.timeout_type, Some(1));
        assert_eq!(parsed.info_text, None, "empty info text is not sent");

        // Hand-made nests: no NLA_F_NESTED, T_ values; generated ones: the reverse.
        let tlas: Vec<Attr<'_>> = Attrs::new(&bytes[8..]).map(|a| a.unwrap()).collect();
        let kinds: Vec<(u16, bool)> = tlas.iter().map(|a| (a.number, a.nested)).collect();
        assert_eq!(
            kinds,
            [
                (2, false),
                (4, true),
                (8, false),
                (16, true),
                (20, true),
                (20, true),
                (11, true)
            ]
        );
        fn first<'a>(a: &Attr<'a>, n: u16) -> Attr<'a> {
            a.nested_attrs()
                .map(|f| f.unwrap())
                .find(|f| f.number == n)
                .unwrap()
        }
        assert!(first(&tlas[0], cfg_context::RESOURCE_NAME).mandatory);
        assert!(first(&tlas[2], state_info::SIB_REASON).mandatory);
        assert!(!first(&tlas[2], state_info::CURRENT_STATE).mandatory);
        assert!(!first(&tlas[1], resource_opts::ON_NO_DATA).mandatory);
        assert_eq!(
            first(&tlas[4], device_statistics::HISTORY_UUIDS)
                .payload
                .len(),
            32
        );
        assert!(first(&tlas[5], device_statistics::HISTORY_UUIDS)
            .payload
            .is_empty());
    }

    #[test]
    fn error_reply_carries_code_and_text() {
        let mut buf = [0u8; 256];
        let mut reply = ReplyBuilder::new(&mut buf, 0).unwrap();
        let err = RequestError::REQUIRED_MISSING;
        reply.set_ret_code(err.ret_code()).unwrap();
        reply.put_info_text(err.reason().as_bytes()).unwrap();
        let parsed = parse_reply(reply.bytes()).unwrap();
        assert_eq!(parsed.ret_code, 126);
        assert!(!ret_code_is_success(parsed.ret_code));
        assert_eq!(parsed.info_text, Some(&b"required attribute missing"[..]));
        assert_eq!(ret_code_text(parsed.ret_code), "Unknown mandatory tag");
        let nest = Attrs::new(&reply.bytes()[8..]).next().unwrap().unwrap();
        assert!(!nest.nested && nest.number == tla::CFG_REPLY);
        assert!(nest.nested_attrs().next().unwrap().unwrap().mandatory);
    }

    #[test]
    fn framing_errors_are_invalid_requests() {
        let invalid = |body: &[u8]| parse_request(body).unwrap_err();
        let short = invalid(&[0; 7]);
        assert_eq!(short.ret_code(), RetCode::InvalidRequest);
        assert_eq!(short.reason(), "message shorter than the DRBD header");

        let mut truncated = request(0, 0, |w| w.put_u32(1, 0).unwrap());
        truncated.extend_from_slice(&[8, 0]);
        assert_eq!(
            invalid(&truncated).reason(),
            NlaError::TruncatedHeader.reason()
        );

        let mut bad_len = request(0, 0, |_| {});
        bad_len.extend_from_slice(&[40, 0, 3, 0x80, 0, 0, 0, 0]);
        assert_eq!(invalid(&bad_len).reason(), NlaError::BadLength.reason());

        let mut bad_align = request(0, 0, |_| {});
        bad_align.extend_from_slice(&[5, 0, 3, 0x80, 0, 0, 0]);
        assert_eq!(
            invalid(&bad_align).reason(),
            NlaError::BadAlignment.reason()
        );
        assert_eq!(invalid(&bad_align).ret_code(), RetCode::InvalidRequest);

        // Bad framing inside a struct shows when the struct is asked for.
        let inner = disk_conf_request(|w| w.put_raw(&[9, 0, 1, 0]).unwrap());
        let err = parse_request(&inner).unwrap().disk_conf().unwrap_err();
        assert_eq!(
            (err.ret_code(), err.reason()),
            (RetCode::InvalidRequest, NlaError::BadLength.reason())
        );
        assert!(parse_reply(&inner).is_err());
        assert!(parse_reply(&bad_align).is_err());
        assert!(parse_reply(&[1, 2, 3]).is_err());
    }

    #[test]
    fn field_errors_follow_the_kernel() {
        let attach = |extra: &dyn Fn(&mut NlaWriter<'_>)| {
            let body = disk_conf_request(|w| {
                w.put_str(disk_conf::BACKING_DEV, b"/dev/a").unwrap();
                w.put_str(disk_conf::META_DEV, b"/dev/a").unwrap();
                w.put_s32(disk_conf::META_DEV_IDX, -3).unwrap();
                extra(w);
            });
            parse_request(&body)
                .unwrap()
                .disk_conf()
                .map(|c| c.map(|c| c.resync_rate))
        };
        assert_eq!(attach(&|_| {}), Ok(Some(250)));
        // Unknown fields: ignored without the mandatory flag, refused with it
        // when above the struct's highest number (like drbd_nla_check_mandatory).
        assert_eq!(attach(&|w| w.put_u32(27, 1).unwrap()), Ok(Some(250)));
        assert_eq!(
            attach(&|w| w.put_u32(22 | NLA_F_MANDATORY, 1).unwrap()),
            Ok(Some(250))
        );
        assert_eq!(
            attach(&|w| w.put_u32(27 | NLA_F_MANDATORY, 1).unwrap()),
            Err(RequestError::UNKNOWN_MANDATORY)
        );
        // The mandatory check runs before value checks.
        let both = |w: &mut NlaWriter<'_>| {
            w.put_u8(disk_conf::RESYNC_RATE, 1).unwrap();
            w.put_u32(40 | NLA_F_MANDATORY, 1).unwrap();
        };
        assert_eq!(attach(&both), Err(RequestError::UNKNOWN_MANDATORY));
        assert_eq!(
            attach(&|w| w.put_u8(disk_conf::RESYNC_RATE, 1).unwrap()),
            Err(RequestError::INVALID_VALUE)
        );
        assert_eq!(
            attach(&|w| w.put_u32(disk_conf::RESYNC_RATE, 77).unwrap()),
            Ok(Some(77)),
            "last one wins"
        );

        let path_of = |len: usize| std::vec![b'x'; len];
        let long = path_of(127);
        let ok = disk_conf_request(|w| {
            w.put_str(disk_conf::BACKING_DEV, &long).unwrap();
            w.put_str(disk_conf::META_DEV, b"m").unwrap();
            w.put_s32(disk_conf::META_DEV_IDX, 0).unwrap();
        });
        assert_eq!(
            parse_request(&ok)
                .unwrap()
                .disk_conf()
                .unwrap()
                .unwrap()
                .backing_dev
                .len(),
            127
        );
        let too_long = path_of(128);
        let oversized = disk_conf_request(|w| {
            w.put_str(disk_conf::BACKING_DEV, &too_long).unwrap();
            w.put_str(disk_conf::META_DEV, b"m").unwrap();
            w.put_s32(disk_conf::META_DEV_IDX, 0).unwrap();
        });
        let err = parse_request(&oversized).unwrap().disk_conf().unwrap_err();
        assert_eq!(err, RequestError::INVALID_VALUE);
        assert_eq!(
            (err.ret_code(), err.reason()),
            (RetCode::MandatoryTag, "invalid attribute value")
        );

        let no_nul = disk_conf_request(|w| {
            w.put_bytes(disk_conf::BACKING_DEV, b"/dev/a").unwrap();
            w.put_str(disk_conf::META_DEV, b"m").unwrap();
            w.put_s32(disk_conf::META_DEV_IDX, 0).unwrap();
        });
        assert_eq!(
            parse_request(&no_nul).unwrap().disk_conf(),
            Err(RequestError::INVALID_VALUE)
        );

        let missing = disk_conf_request(|w| {
            w.put_str(disk_conf::BACKING_DEV, b"/dev/a").unwrap();
            w.put_str(disk_conf::META_DEV, b"/dev/a").unwrap();
        });
        let err = parse_request(&missing).unwrap().disk_conf().unwrap_err();
        assert_eq!(
            (err.ret_code(), err.reason()),
            (RetCode::MandatoryTag, "required attribute missing")
        );

        let bad_ctx = request(MINOR_ALL, 0, |w| {
            let nest = w.begin_nest(tla::CFG_CONTEXT).unwrap();
            w.put_bytes(cfg_context::MY_ADDR | NLA_F_MANDATORY, &[0; 129])
                .unwrap();
            w.end_nest(nest).unwrap();
        });
        assert_eq!(
            parse_request(&bad_ctx).unwrap().cfg_context(),
            Err(RequestError::INVALID_VALUE)
        );
        assert!(parse_reply(&bad_ctx).is_err());

        let no_state = request(0, 0, |w| {
            let nest = w.begin_nest(tla::STATE_INFO).unwrap();
            w.put_u32(state_info::SIB_REASON | NLA_F_MANDATORY, 1)
                .unwrap();
            w.end_nest(nest).unwrap();
        });
        assert_eq!(
            parse_reply(&no_state).unwrap_err(),
            RequestError::REQUIRED_MISSING
        );
    }

    #[test]
    fn encoders_report_overflow_and_leave_nothing_behind() {
        let mut tiny = [0u8; 4];
        assert_eq!(
            ReplyBuilder::new(&mut tiny, 0).err(),
            Some(NlaError::Overflow)
        );

        let mut buf = [0u8; 40];
        let mut w = NlaWriter::new(&mut buf);
        w.put_raw(&DrbdGenlHeader::default().encode()).unwrap();
        assert_eq!(
            put_disk_conf_request(&mut w, &attach_conf(), disk_conf::REQUIRED),
            Err(NlaError::Overflow)
        );
        assert_eq!(w.len(), 8, "the partial nest was removed");
        put_detach_parms_request(&mut w, &DetachParms { force_detach: true }).unwrap();
        assert!(
            parse_request(w.written())
                .unwrap()
                .detach_parms()
                .unwrap()
                .unwrap()
                .force_detach
        );

        let mut buf = [0u8; 64];
        let mut reply = ReplyBuilder::new(&mut buf, 0).unwrap();
        assert_eq!(
            reply.put_state_info(&StateInfo::default()),
            Err(NlaError::Overflow)
        );
        assert_eq!(reply.put_info_text(&[b'a'; 60]), Err(NlaError::Overflow));
        assert_eq!(reply.bytes().len(), 8);

        let mut big = [0u8; 512];
        let mut w = NlaWriter::new(&mut big);
        let long_name = [b'n'; RESOURCE_NAME_SIZE];
        let ctx = CfgContext {
            resource_name: Some(&long_name),
            ..CfgContext::default()
        };
        assert_eq!(
            put_cfg_context_request(&mut w, &ctx),
            Err(NlaError::TooLong)
        );
        assert!(w.is_empty());
    }

    #[test]
    fn state_word() {
        // Section 1.8's example: connected Secondary/Primary, both UpToDate.
        let s = State::from_u32(0x0001_10a6).unwrap();
        assert_eq!(
            (s.role, s.peer, s.conn),
            (Role::Secondary, Role::Primary, ConnState::Connected)
        );
        assert_eq!((s.disk, s.pdsk), (DiskState::UpToDate, DiskState::UpToDate));
        assert!(!s.susp && !s.user_isp);
        assert_eq!(s.to_u32(), 0x0001_10a6);
        assert_eq!(
            (s.role.name(), s.conn.name(), s.disk.name()),
            ("Secondary", "Connected", "UpToDate")
        );
        assert_eq!(ConnState::WfConnection.name(), "WFConnection");
        assert_eq!(ConnState::StandAlone.name(), "StandAlone");
        assert_eq!(DiskState::Diskless.name(), "Diskless");
        assert_eq!(DiskState::DUnknown.name(), "DUnknown");

        for word in [
            0x0040_0000u32,
            0x007f_ffff & !(1 << 8 | 1 << 12 | 1 << 16),
            0x0012_3456,
        ] {
            if let Some(state) = State::from_u32(word) {
                assert_eq!(state.to_u32(), word);
            }
        }
        let all_flags = State::from_u32(0x007e_0000).unwrap();
        assert!(all_flags.susp && all_flags.aftr_isp && all_flags.peer_isp);
        assert!(all_flags.user_isp && all_flags.susp_nod && all_flags.susp_fen);
        assert_eq!(State::from_u32(3), None, "role 3");
        assert_eq!(State::from_u32(24 << 4), None, "conn 24");
        assert_eq!(State::from_u32(9 << 9), None, "disk 9");
        assert_eq!(State::from_u32(1 << 23), None, "reserved bits");
    }

    #[test]
    fn return_codes_and_texts() {
        let mut known = 0;
        for raw in 100..=171u32 {
            if let Some(code) = RetCode::from_raw(raw) {
                known += 1;
                assert_eq!(code as u32, raw);
                assert!(!code.text().is_empty());
                assert_eq!(ret_code_text(i32::from(code)), code.text());
            }
        }
        assert_eq!(known, 63);
        assert_eq!(RetCode::OpenDisk.text(), "Can not open backing device");
        for raw in -22..=5 {
            let result = StateChangeResult::from_raw(raw);
            assert_eq!(
                result.is_some(),
                raw != -3 && (-21..=4).contains(&raw),
                "{raw}"
            );
        }
        assert_eq!(
            ret_code_text(-1),
            "Multiple primaries not allowed by config"
        );
        assert_eq!(ret_code_text(999), "Unknown error code");
        assert_eq!(ret_code_text(100), "Unknown error code");
        assert!(ret_code_is_success(101) && ret_code_is_success(2) && !ret_code_is_success(0));
        assert!(!ret_code_is_success(-2) && !ret_code_is_success(162));
        assert!(
            disk_conf::RESYNC_RATE_LIMITS.contains(1) && !disk_conf::RESYNC_RATE_LIMITS.contains(0)
        );
        assert_eq!(disk_conf::MANDATORY, 0x001f_fff0);
        assert_eq!(state_info::MANDATORY | state_info::REQUIRED, 0x7ffe);
    }

    /// Deterministic xorshift64 so failures reproduce.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn exercise(bytes: &[u8]) {
        if let Ok(req) = parse_request(bytes) {
            let _ = req.cfg_context();
            let _ = req.cfg_context_raw();
            let _ = req.disk_conf();
            let _ = req.disk_conf_change(odd_disk_conf());
            let _ = req.resource_opts(ResourceOpts::default());
            let _ = req.detach_parms();
            let _ = req.set_role_parms();
            let _ = req.disconnect_parms();
        }
        if let Ok(reply) = parse_reply(bytes) {
            let _ = reply.state_info.map(|s| State::from_u32(s.current_state));
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut samples: Vec<Vec<u8>> = Vec::new();
        samples.push(request(0, 0, |w| {
            put_disk_conf_request(w, &odd_disk_conf(), disk_conf::ALL).unwrap()
        }));
        let mut buf = [0u8; 1024];
        let mut reply = ReplyBuilder::new(&mut buf, 0).unwrap();
        reply
            .put_cfg_context(&CfgContext {
                volume: Some(1),
                resource_name: Some(b"r"),
                ..CfgContext::default()
            })
            .unwrap();
        reply
            .put_state_info(&StateInfo {
                uuids: Some([1; 4]),
                helper: Some(b"h"),
                ..StateInfo::default()
            })
            .unwrap();
        reply
            .put_device_statistics(&DeviceStatistics::default())
            .unwrap();
        reply.put_info_text(b"text").unwrap();
        samples.push(reply.bytes().to_vec());

        for _ in 0..20_000 {
            let len = rng.below(160);
            let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            exercise(&noise);

            let mut mutated = samples[rng.below(samples.len())].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(mutated.len());
                mutated[at] = rng.next() as u8;
            }
            mutated.truncate(rng.below(mutated.len() + 1).max(mutated.len() / 2));
            exercise(&mutated);
        }
    }
}
