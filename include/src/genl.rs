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

/// Field flag of a struct table (`DRBD_GENLA_F_MANDATORY`): drbd-utils and
/// the kernel's hand-made messages send the field with the mandatory bit.
const F_MANDATORY: u8 = 1;
/// Field flag `DRBD_F_REQUIRED`: a request must carry the field.
const F_REQUIRED: u8 = 2;
/// Field flag `DRBD_F_INVARIANT`: only the request that creates the object
/// may give the field.
const F_INVARIANT: u8 = 4;
/// Field flag `DRBD_F_SENSITIVE`: left out of replies to unprivileged
/// readers and of broadcasts.
const F_SENSITIVE: u8 = 8;

/// The numbers of the fields whose flags include all of `flags` (every
/// field for 0), as a mask; `fields` holds (number, flags) pairs.
const fn fields_with(fields: &[(u16, u8)], flags: u8) -> u64 {
    let mut mask = 0;
    let mut rest = fields;
    while let [(number, field_flags), tail @ ..] = rest {
        if *field_flags & flags == flags {
            mask |= field_bit(*number);
        }
        rest = tail;
    }
    mask
}

/// The highest field number in `fields`.
const fn highest_field(fields: &[(u16, u8)]) -> u16 {
    let mut highest = 0;
    let mut rest = fields;
    while let [(number, _), tail @ ..] = rest {
        if *number > highest {
            highest = *number;
        }
        rest = tail;
    }
    highest
}

/// What a struct table defines beyond the public items: how the struct is
/// parsed and written field by field, so that one generic parser and one
/// generic writer serve every struct.
trait GenlStruct<'a>: Sized + Default {
    /// The top-level attribute (`DRBD_NLA_*`) that carries the struct.
    const TLA: u16;
    /// Fields flagged mandatory.
    const MANDATORY: u64;
    /// Highest field number, required and invariant fields.
    const RULES: FieldRules;
    /// Field numbers in declaration order, which is the order the kernel's
    /// generated `<struct>_to_skb` writes them in.
    const ORDER: &'static [u16];

    /// Stores field `a`; a number the table does not name is ignored.
    fn set_field(&mut self, a: Attr<'a>) -> Result<(), NlaError>;

    /// Writes field `number`; an absent optional value or a number the
    /// table does not name writes nothing.
    fn put_field(&self, f: &mut FieldWriter<'_, '_>, number: u16) -> Result<(), NlaError>;

    /// The defaults, with the invariant fields of `self` (the kernel's
    /// `set_<struct>_defaults`).
    fn defaults_keeping_invariant(&self) -> Self;
}

/// A field flag of a struct table by its name.
macro_rules! genl_flag {
    (mandatory) => {
        super::F_MANDATORY
    };
    (required) => {
        super::F_REQUIRED
    };
    (invariant) => {
        super::F_INVARIANT
    };
    (sensitive) => {
        super::F_SENSITIVE
    };
}

/// A field kind of a struct table: its Rust type (`@type`), how it is read
/// from an attribute (`@get`) and written (`@put`). The `opt_` kinds are an
/// `Option` that is left out of the message when `None`; `custom` names the
/// type and the two functions.
macro_rules! genl_kind {
    (@type u32) => { u32 };
    (@type s32) => { i32 };
    (@type u64) => { u64 };
    (@type flag) => { bool };
    (@type str($size:expr)) => { &'a [u8] };
    (@type bytes($size:expr)) => { &'a [u8] };
    (@type opt_u32) => { Option<u32> };
    (@type opt_u64) => { Option<u64> };
    (@type opt_str($size:expr)) => { Option<&'a [u8]> };
    (@type opt_bytes($size:expr)) => { Option<&'a [u8]> };
    (@type custom($ty:ty, $get:path, $put:path)) => { $ty };

    (@get $a:ident, u32) => { $a.get_u32()? };
    (@get $a:ident, s32) => { $a.get_s32()? };
    (@get $a:ident, u64) => { $a.get_u64()? };
    (@get $a:ident, flag) => { $a.get_flag()? };
    (@get $a:ident, str($size:expr)) => { $a.get_str($size)? };
    (@get $a:ident, bytes($size:expr)) => { $a.get_bytes($size)? };
    (@get $a:ident, opt_u32) => { Some($a.get_u32()?) };
    (@get $a:ident, opt_u64) => { Some($a.get_u64()?) };
    (@get $a:ident, opt_str($size:expr)) => { Some($a.get_str($size)?) };
    (@get $a:ident, opt_bytes($size:expr)) => { Some($a.get_bytes($size)?) };
    (@get $a:ident, custom($ty:ty, $get:path, $put:path)) => { $get($a)? };

    (@put $f:ident, $n:ident, $v:expr, u32) => { $f.u32($n, $v) };
    (@put $f:ident, $n:ident, $v:expr, s32) => { $f.s32($n, $v) };
    (@put $f:ident, $n:ident, $v:expr, u64) => { $f.u64($n, $v) };
    (@put $f:ident, $n:ident, $v:expr, flag) => { $f.flag($n, $v) };
    (@put $f:ident, $n:ident, $v:expr, str($size:expr)) => { $f.str($n, $v, $size) };
    (@put $f:ident, $n:ident, $v:expr, bytes($size:expr)) => { $f.bytes($n, $v, $size) };
    (@put $f:ident, $n:ident, $v:expr, opt_u32) => { $v.map_or(Ok(()), |v| $f.u32($n, v)) };
    (@put $f:ident, $n:ident, $v:expr, opt_u64) => { $v.map_or(Ok(()), |v| $f.u64($n, v)) };
    (@put $f:ident, $n:ident, $v:expr, opt_str($size:expr)) => {
        $v.map_or(Ok(()), |v| $f.str($n, v, $size))
    };
    (@put $f:ident, $n:ident, $v:expr, opt_bytes($size:expr)) => {
        $v.map_or(Ok(()), |v| $f.bytes($n, v, $size))
    };
    (@put $f:ident, $n:ident, $v:expr, custom($ty:ty, $get:path, $put:path)) => {
        $put($f, $n, $v)
    };
}

/// A field default of a struct table: the constant it defines in the
/// struct's module (`@const`) and the value `Default` gives (`@value`).
// rustfmt takes the macro in type position for an expression and shifts
// the `pub const` lines to the left margin.
#[rustfmt::skip]
macro_rules! genl_default {
    (@const $field:ident: $kind:ident; limits $name:ident($min:expr, $max:expr, $default:expr)) => {
        #[doc = concat!("Range and default of `", stringify!($field), "`.")]
        pub const $name: super::Limits<genl_kind!(@type $kind)> = super::Limits {
            min: $min,
            max: $max,
            default: $default,
        };
    };
    (@const $field:ident: $kind:ident; limits $name:ident = $same:path) => {
        #[doc = concat!("Range and default of `", stringify!($field), "`.")]
        pub const $name: super::Limits<genl_kind!(@type $kind)> = $same;
    };
    (@const $field:ident: $kind:ident; def $name:ident = $default:expr) => {
        #[doc = concat!("Default of `", stringify!($field), "`.")]
        pub const $name: genl_kind!(@type $kind) = $default;
    };
    (@const $field:ident: $kind:ident; init $default:expr) => {};

    (@value $module:ident;) => { Default::default() };
    (@value $module:ident; limits $name:ident $($rest:tt)*) => { $module::$name.default };
    (@value $module:ident; def $name:ident = $default:expr) => { $module::$name };
    (@value $module:ident; init $default:expr) => { $default };
}

/// Defines one struct of the family from its table, as the C side expands
/// `drbd_genl.h` through `genl_magic_struct.h` and `genl_magic_func.h`: the
/// module of field numbers (with the masks of mandatory, required,
/// invariant and sensitive fields, every field, the highest number, and the
/// `drbd_limits.h` ranges and defaults), the struct, its `Default`, and its
/// `GenlStruct` (field parser, field writer, declaration order).
///
/// A row, in declaration order after the field's doc, is
/// `number CONST field: kind [flags] { default }`:
/// - kind: `u32`, `s32`, `u64`, `flag`, `str(size)`, `bytes(size)`, the
///   `opt_` forms, or `custom(Type, get_fn, put_fn)` (see `genl_kind!`);
///   sizes are read beside the table.
/// - flags: `mandatory`, `required`, `invariant`, `sensitive`.
/// - default, optional: `limits NAME(min, max, default)` or
///   `limits NAME = path` (a `Limits` constant), `def NAME = value` (a
///   constant), `init value` (no constant); otherwise the type's `Default`.
///   Constant values are read in the module.
///
/// Items in a last `{ ... }` go into the module as they are.
macro_rules! genl_struct {
    (
        $(#[$mod_meta:meta])*
        mod $module:ident;
        $(#[$struct_meta:meta])*
        struct $name:ident $(<$lt:lifetime>)? = $tla:path {
            $(
                $(#[doc = $doc:literal])*
                $number:literal $const:ident $field:ident: $kind:ident $(($($arg:tt)*))?
                    [$($flag:ident)*] $({ $($default:tt)* })?,
            )*
        }
        $({ $($extra:item)* })?
    ) => {
        $(#[$mod_meta])*
        pub mod $module {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!(
                    "Field ", stringify!($number), ": `", stringify!($kind $(($($arg)*))?), "`"
                    $(, ", ", stringify!($flag))*, "."
                )]
                pub const $const: u16 = $number;
            )*
            /// Each field's number and flags, in declaration order.
            const FIELDS: &[(u16, u8)] = &[$(($number, 0 $(| genl_flag!($flag))*)),*];
            /// Highest field number.
            pub const MAX_FIELD: u16 = super::highest_field(FIELDS);
            /// Fields flagged mandatory.
            pub const MANDATORY: u64 = super::fields_with(FIELDS, super::F_MANDATORY);
            /// Fields a request must carry.
            pub const REQUIRED: u64 = super::fields_with(FIELDS, super::F_REQUIRED);
            /// Fields only the request that creates the object may give.
            pub const INVARIANT: u64 = super::fields_with(FIELDS, super::F_INVARIANT);
            /// Fields left out of replies to unprivileged readers and of broadcasts.
            pub const SENSITIVE: u64 = super::fields_with(FIELDS, super::F_SENSITIVE);
            /// Every field.
            pub const ALL: u64 = super::fields_with(FIELDS, 0);
            $($(genl_default!(@const $field: $kind; $($default)*);)?)*
            $($($extra)*)?
        }

        $(#[$struct_meta])*
        pub struct $name $(<$lt>)? {
            $(
                $(#[doc = $doc])*
                pub $field: genl_kind!(@type $kind $(($($arg)*))?),
            )*
        }

        impl $(<$lt>)? Default for $name $(<$lt>)? {
            /// Every field at its default (`drbd_limits.h`, or 0, false,
            /// empty, absent).
            fn default() -> Self {
                Self {
                    $($field: genl_default!(@value $module; $($($default)*)?),)*
                }
            }
        }

        impl<'a> GenlStruct<'a> for $name $(<$lt>)? {
            const TLA: u16 = $tla;
            const MANDATORY: u64 = $module::MANDATORY;
            const RULES: FieldRules = FieldRules {
                max_field: $module::MAX_FIELD,
                required: $module::REQUIRED,
                invariant: $module::INVARIANT,
            };
            const ORDER: &'static [u16] = &[$($module::$const),*];

            fn set_field(&mut self, a: Attr<'a>) -> Result<(), NlaError> {
                match a.number {
                    $($module::$const => self.$field = genl_kind!(@get a, $kind $(($($arg)*))?),)*
                    _ => {}
                }
                Ok(())
            }

            fn put_field(
                &self,
                f: &mut FieldWriter<'_, '_>,
                number: u16,
            ) -> Result<(), NlaError> {
                match number {
                    $($module::$const => {
                        genl_kind!(@put f, number, self.$field, $kind $(($($arg)*))?)
                    })*
                    _ => Ok(()),
                }
            }

            fn defaults_keeping_invariant(&self) -> Self {
                let defaults = Self::default();
                let keep = |number: u16| $module::INVARIANT & field_bit(number) != 0;
                Self {
                    $($field: if keep($module::$const) { self.$field } else { defaults.$field },)*
                }
            }
        }
    };
}

genl_struct! {
    /// Fields of `DRBD_NLA_CFG_CONTEXT`.
    mod cfg_context;
    /// `struct drbd_cfg_context`: which object a request or reply is about.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct CfgContext<'a> = tla::CFG_CONTEXT {
        /// Volume number within the resource.
        1 VOLUME volume: opt_u32 [mandatory],
        /// Resource name, without NUL.
        2 RESOURCE_NAME resource_name: opt_str(RESOURCE_NAME_SIZE) [mandatory],
        /// Local address: a raw `sockaddr_in` / `sockaddr_in6` image.
        3 MY_ADDR my_addr: opt_bytes(cfg_context::ADDR_SIZE) [mandatory],
        /// Peer address, as `my_addr`.
        4 PEER_ADDR peer_addr: opt_bytes(cfg_context::ADDR_SIZE) [mandatory],
    }
    {
        /// Maximum size of an address field.
        pub const ADDR_SIZE: usize = 128;
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_DISK_CONF`, with `drbd_limits.h` ranges and defaults.
    mod disk_conf;
    /// `struct disk_conf`; strings borrow from the message they came from.
    /// The fields stand in `drbd_genl.h`'s order (the order of
    /// `disk_conf_to_skb`), which is not that of their numbers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct DiskConf<'a> = tla::DISK_CONF {
        /// Backing device path, without NUL.
        1 BACKING_DEV backing_dev: str(DEVICE_PATH_SIZE) [required invariant],
        /// Meta data device path, without NUL (the backing device for internal).
        2 META_DEV meta_dev: str(DEVICE_PATH_SIZE) [required invariant],
        /// Meta data index: `disk_conf::META_DEV_IDX_*` or an index >= 0.
        3 META_DEV_IDX meta_dev_idx: s32 [required invariant],
        /// User-requested size in sectors, 0 = all.
        4 DISK_SIZE disk_size: u64 [mandatory invariant]
            { limits DISK_SIZE_LIMITS(0, 1 << 41, 0) },
        /// Obsolete bio limit.
        5 MAX_BIO_BVECS max_bio_bvecs: u32 [mandatory invariant]
            { limits MAX_BIO_BVECS_LIMITS(0, 128, 0) },
        /// On IO error: 0 pass_on, 1 call-local-io-error, 2 detach (default).
        6 ON_IO_ERROR on_io_error: u32 [mandatory] { def ON_IO_ERROR_DEF = 2 },
        /// Fencing: 0 dont-care (default), 1 resource-only, 2 resource-and-stonith.
        7 FENCING fencing: u32 [mandatory]
            { def FENCING_DEF = super::Fencing::DontCare as u32 },
        /// Resync rate in KiB/s.
        8 RESYNC_RATE resync_rate: u32 [mandatory]
            { limits RESYNC_RATE_LIMITS(1, 4 << 20, 250) },
        /// Minor to resync after, -1 = none.
        9 RESYNC_AFTER resync_after: s32 [mandatory]
            { limits RESYNC_AFTER_LIMITS(-1, (1 << 20) - 1, -1) },
        /// Activity log extents.
        10 AL_EXTENTS al_extents: u32 [mandatory]
            { limits AL_EXTENTS_LIMITS(67, 65534, 1237) },
        /// Resync controller plan-ahead in 0.1 s, 0 = fixed resync rate.
        11 C_PLAN_AHEAD c_plan_ahead: u32 [mandatory]
            { limits C_PLAN_AHEAD_LIMITS(0, 300, 20) },
        /// Resync controller delay target in 0.1 s.
        12 C_DELAY_TARGET c_delay_target: u32 [mandatory]
            { limits C_DELAY_TARGET_LIMITS(1, 100, 10) },
        /// Resync controller fill target in sectors.
        13 C_FILL_TARGET c_fill_target: u32 [mandatory]
            { limits C_FILL_TARGET_LIMITS(0, 1 << 20, 100) },
        /// Resync controller maximum rate in KiB/s.
        14 C_MAX_RATE c_max_rate: u32 [mandatory]
            { limits C_MAX_RATE_LIMITS(250, 4 << 20, 102_400) },
        /// Resync controller minimum rate in KiB/s.
        15 C_MIN_RATE c_min_rate: u32 [mandatory]
            { limits C_MIN_RATE_LIMITS(0, 4 << 20, 250) },
        /// Backing device timeout in 0.1 s, 0 = off.
        20 DISK_TIMEOUT disk_timeout: u32 [mandatory]
            { limits DISK_TIMEOUT_LIMITS(0, 6000, 0) },
        /// Read balancing policy, 0 prefer-local (default).
        21 READ_BALANCING read_balancing: u32 [] { def READ_BALANCING_DEF = 0 },
        /// Resync discard granularity in bytes.
        25 RS_DISCARD_GRANULARITY rs_discard_granularity: u32 []
            { limits RS_DISCARD_GRANULARITY_LIMITS(0, 1 << 20, 0) },
        /// Use barriers.
        16 DISK_BARRIER disk_barrier: flag [mandatory] { def DISK_BARRIER_DEF = false },
        /// Use flushes.
        17 DISK_FLUSHES disk_flushes: flag [mandatory] { def DISK_FLUSHES_DEF = true },
        /// Use drain.
        18 DISK_DRAIN disk_drain: flag [mandatory] { def DISK_DRAIN_DEF = true },
        /// Flush meta data writes.
        19 MD_FLUSHES md_flushes: flag [mandatory] { def MD_FLUSHES_DEF = true },
        /// Activity log updates.
        23 AL_UPDATES al_updates: flag [] { def AL_UPDATES_DEF = true },
        /// Discard zeroes if aligned.
        24 DISCARD_ZEROES_IF_ALIGNED discard_zeroes_if_aligned: flag []
            { def DISCARD_ZEROES_IF_ALIGNED_DEF = true },
        /// Disable WRITE_SAME.
        26 DISABLE_WRITE_SAME disable_write_same: flag [] { def DISABLE_WRITE_SAME_DEF = false },
    }
    {
        /// `meta_dev_idx` for the legacy fixed-size internal meta data.
        pub const META_DEV_IDX_INTERNAL: i32 = -1;
        /// `meta_dev_idx` for external meta data filling a whole device ("flexible").
        pub const META_DEV_IDX_FLEX_EXT: i32 = -2;
        /// `meta_dev_idx` for internal meta data ("internal" in drbdsetup).
        pub const META_DEV_IDX_FLEX_INT: i32 = -3;
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_RESOURCE_OPTS`.
    mod resource_opts;
    /// `struct res_opts`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct ResourceOpts<'a> = tla::RESOURCE_OPTS {
        /// CPU mask in hex, without NUL; empty = all CPUs.
        1 CPU_MASK cpu_mask: str(resource_opts::CPU_MASK_SIZE) [mandatory],
        /// On no data: 0 io-error (default), 1 suspend-io.
        2 ON_NO_DATA on_no_data: u32 [mandatory] { def ON_NO_DATA_DEF = 0 },
    }
    {
        /// Size of the cpu_mask array, NUL included.
        pub const CPU_MASK_SIZE: usize = 32;
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_SET_ROLE_PARMS`.
    mod set_role_parms;
    /// `struct set_role_parms`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct SetRoleParms = tla::SET_ROLE_PARMS {
        /// "--force": become Primary even without UpToDate data.
        1 ASSUME_UPTODATE assume_uptodate: flag [mandatory],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_DISCONNECT_PARMS`.
    mod disconnect_parms;
    /// `struct disconnect_parms`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct DisconnectParms = tla::DISCONNECT_PARMS {
        /// "--force": disconnect without the graceful state change.
        1 FORCE_DISCONNECT force_disconnect: flag [mandatory],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_DETACH_PARMS`.
    mod detach_parms;
    /// `struct detach_parms`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct DetachParms = tla::DETACH_PARMS {
        /// "--force": detach immediately, failing pending IO.
        1 FORCE_DETACH force_detach: flag [mandatory],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_TIMEOUT_PARMS`.
    mod timeout_parms;
    /// `struct timeout_parms`, the reply of GET_TIMEOUT_TYPE.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct TimeoutParms = tla::TIMEOUT_PARMS {
        /// `timeout_parms::UT_*`.
        1 TIMEOUT_TYPE timeout_type: u32 [required],
    }
    {
        /// `timeout_type`: the normal wait-for-connection timeout (`UT_DEFAULT`).
        pub const UT_DEFAULT: u32 = 0;
        /// `timeout_type`: the node was degraded (`UT_DEGRADED`).
        pub const UT_DEGRADED: u32 = 1;
        /// `timeout_type`: the peer is known Outdated (`UT_PEER_OUTDATED`).
        pub const UT_PEER_OUTDATED: u32 = 2;
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_NET_CONF`, with `drbd_limits.h` ranges and defaults.
    mod net_conf;
    /// `struct net_conf`; strings borrow from the message they came from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct NetConf<'a> = tla::NET_CONF {
        /// Shared secret for cram-hmac, without NUL.
        1 SHARED_SECRET shared_secret: str(net_conf::SECRET_SIZE) [mandatory sensitive],
        /// Peer authentication digest, without NUL; empty = none.
        2 CRAM_HMAC_ALG cram_hmac_alg: str(net_conf::SECRET_SIZE) [mandatory],
        /// Data integrity digest; empty = none.
        3 INTEGRITY_ALG integrity_alg: str(net_conf::SECRET_SIZE) [mandatory],
        /// Online verify digest; empty = none.
        4 VERIFY_ALG verify_alg: str(net_conf::SECRET_SIZE) [mandatory],
        /// Checksum-based resync digest; empty = none.
        5 CSUMS_ALG csums_alg: str(net_conf::SECRET_SIZE) [mandatory],
        /// Replication protocol, `net_conf::PROT_A`..=`PROT_C`.
        6 WIRE_PROTOCOL wire_protocol: u32 [mandatory] { def WIRE_PROTOCOL_DEF = PROT_C },
        /// Seconds between connection attempts.
        7 CONNECT_INT connect_int: u32 [mandatory] { limits CONNECT_INT_LIMITS(1, 120, 10) },
        /// Network timeout in 0.1 s.
        8 TIMEOUT timeout: u32 [mandatory] { limits TIMEOUT_LIMITS(1, 600, 60) },
        /// Seconds between keep-alive pings.
        9 PING_INT ping_int: u32 [mandatory] { limits PING_INT_LIMITS(1, 120, 10) },
        /// Ping answer timeout in 0.1 s.
        10 PING_TIMEO ping_timeo: u32 [mandatory] { limits PING_TIMEO_LIMITS(1, 300, 5) },
        /// Socket send buffer in bytes, 0 = auto.
        11 SNDBUF_SIZE sndbuf_size: u32 [mandatory]
            { limits SNDBUF_SIZE_LIMITS(0, 10 << 20, 0) },
        /// Socket receive buffer in bytes, 0 = auto.
        12 RCVBUF_SIZE rcvbuf_size: u32 [mandatory]
            { limits RCVBUF_SIZE_LIMITS(0, 10 << 20, 0) },
        /// Timeouts before the peer is dropped, 0 = never.
        13 KO_COUNT ko_count: u32 [mandatory] { limits KO_COUNT_LIMITS(0, 200, 7) },
        /// Receive buffers in pages.
        14 MAX_BUFFERS max_buffers: u32 [mandatory]
            { limits MAX_BUFFERS_LIMITS(32, 131_072, 2048) },
        /// Writes per epoch.
        15 MAX_EPOCH_SIZE max_epoch_size: u32 [mandatory]
            { limits MAX_EPOCH_SIZE_LIMITS(1, 20000, 2048) },
        /// Obsolete unplug watermark.
        16 UNPLUG_WATERMARK unplug_watermark: u32 [mandatory]
            { limits UNPLUG_WATERMARK_LIMITS(1, 131_072, 2048 / 16) },
        /// Split-brain policy with no Primary, `net_conf::ASB_*`.
        17 AFTER_SB_0P after_sb_0p: u32 [mandatory] { def AFTER_SB_0P_DEF = ASB_DISCONNECT },
        /// Split-brain policy with one Primary, `net_conf::ASB_*`.
        18 AFTER_SB_1P after_sb_1p: u32 [mandatory] { def AFTER_SB_1P_DEF = ASB_DISCONNECT },
        /// Split-brain policy with two Primaries, `net_conf::ASB_*`.
        19 AFTER_SB_2P after_sb_2p: u32 [mandatory] { def AFTER_SB_2P_DEF = ASB_DISCONNECT },
        /// Resync-target-is-Primary policy, `net_conf::ASB_*`.
        20 RR_CONFLICT rr_conflict: u32 [mandatory] { def RR_CONFLICT_DEF = ASB_DISCONNECT },
        /// Congestion policy, `net_conf::OC_*`.
        21 ON_CONGESTION on_congestion: u32 [mandatory] { def ON_CONGESTION_DEF = OC_BLOCK },
        /// Congestion fill level in sectors, 0 = off.
        22 CONG_FILL cong_fill: u32 [mandatory] { limits CONG_FILL_LIMITS(0, 10 << 21, 0) },
        /// Congestion activity log extents.
        23 CONG_EXTENTS cong_extents: u32 [mandatory]
            { limits CONG_EXTENTS_LIMITS(67, 65534, 1237) },
        /// Allow two Primaries.
        24 TWO_PRIMARIES two_primaries: flag [mandatory] { def TWO_PRIMARIES_DEF = false },
        /// Discard local data on connect (one-shot).
        25 DISCARD_MY_DATA discard_my_data: flag [mandatory invariant],
        /// Cork the data socket.
        26 TCP_CORK tcp_cork: flag [mandatory] { def TCP_CORK_DEF = true },
        /// Apply the split-brain policies even without a resync decision.
        27 ALWAYS_ASBP always_asbp: flag [mandatory] { def ALWAYS_ASBP_DEF = false },
        /// Dry-run connect.
        28 TENTATIVE tentative: flag [mandatory invariant],
        /// Run-length encode the bitmap.
        29 USE_RLE use_rle: flag [mandatory] { def USE_RLE_DEF = true },
        /// Use csums-alg only after a Primary crash.
        33 CSUMS_AFTER_CRASH_ONLY csums_after_crash_only: flag []
            { def CSUMS_AFTER_CRASH_ONLY_DEF = false },
        /// Socket check timeout in 0.1 s, 0 = use the ping timeout.
        34 SOCK_CHECK_TIMEO sock_check_timeo: u32 []
            { limits SOCK_CHECK_TIMEO_LIMITS(0, 300, 0) },
    }
    {
        /// Size of the secret and algorithm name arrays (`SHARED_SECRET_MAX`),
        /// NUL included.
        pub const SECRET_SIZE: usize = 64;
        /// `wire_protocol`: asynchronous.
        pub const PROT_A: u32 = super::WireProtocol::A as u32;
        /// `wire_protocol`: memory synchronous.
        pub const PROT_B: u32 = super::WireProtocol::B as u32;
        /// `wire_protocol`: synchronous.
        pub const PROT_C: u32 = super::WireProtocol::C as u32;
        /// `after_sb_*p`, `rr_conflict`: disconnect.
        pub const ASB_DISCONNECT: u32 = super::AfterSbPolicy::Disconnect as u32;
        /// `after_sb_0p`: discard the younger Primary.
        pub const ASB_DISCARD_YOUNGER_PRI: u32 = super::AfterSbPolicy::DiscardYoungerPrimary as u32;
        /// `after_sb_0p`: discard the older Primary.
        pub const ASB_DISCARD_OLDER_PRI: u32 = super::AfterSbPolicy::DiscardOlderPrimary as u32;
        /// `after_sb_0p`: discard the side without changes.
        pub const ASB_DISCARD_ZERO_CHG: u32 = super::AfterSbPolicy::DiscardZeroChanges as u32;
        /// `after_sb_0p`: discard the side with fewer changes.
        pub const ASB_DISCARD_LEAST_CHG: u32 = super::AfterSbPolicy::DiscardLeastChanges as u32;
        /// `after_sb_0p`: discard the local data.
        pub const ASB_DISCARD_LOCAL: u32 = super::AfterSbPolicy::DiscardLocal as u32;
        /// `after_sb_0p`: discard the peer's data.
        pub const ASB_DISCARD_REMOTE: u32 = super::AfterSbPolicy::DiscardRemote as u32;
        /// `after_sb_1p`: follow the 0p decision if it discards the Secondary.
        pub const ASB_CONSENSUS: u32 = super::AfterSbPolicy::Consensus as u32;
        /// `after_sb_1p`: discard the Secondary.
        pub const ASB_DISCARD_SECONDARY: u32 = super::AfterSbPolicy::DiscardSecondary as u32;
        /// `after_sb_1p`, `after_sb_2p`, `rr_conflict`: call the pri-lost helper.
        pub const ASB_CALL_HELPER: u32 = super::AfterSbPolicy::CallHelper as u32;
        /// `after_sb_1p`, `after_sb_2p`, `rr_conflict`: follow the 0p decision
        /// even on the Primary.
        pub const ASB_VIOLENTLY: u32 = super::AfterSbPolicy::Violently as u32;
        /// `on_congestion`: block.
        pub const OC_BLOCK: u32 = 0;
        /// `on_congestion`: pull ahead (protocol A only).
        pub const OC_PULL_AHEAD: u32 = 1;
        /// `on_congestion`: disconnect.
        pub const OC_DISCONNECT: u32 = 2;
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_RESIZE_PARMS`.
    mod resize_parms;
    /// `struct resize_parms`; the default is size 0, no flags and the
    /// default activity log layout (1 stripe of 32 KiB).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct ResizeParms = tla::RESIZE_PARMS {
        /// New size in sectors, 0 = as large as possible.
        1 RESIZE_SIZE resize_size: u64 [mandatory]
            { limits RESIZE_SIZE_LIMITS = super::disk_conf::DISK_SIZE_LIMITS },
        /// "--assume-peer-has-space": grow even if the peer may lack the space.
        2 RESIZE_FORCE resize_force: flag [mandatory],
        /// "--assume-clean": do not resync the new area.
        3 NO_RESYNC no_resync: flag [mandatory],
        /// Activity log stripes.
        4 AL_STRIPES al_stripes: u32 [] { limits AL_STRIPES_LIMITS(1, 1024, 1) },
        /// Activity log stripe size in KiB.
        5 AL_STRIPE_SIZE al_stripe_size: u32 []
            { limits AL_STRIPE_SIZE_LIMITS(4, 16_777_216, 32) },
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_START_OV_PARMS`.
    mod start_ov_parms;
    /// `struct start_ov_parms`; the default is the whole device.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct StartOvParms = tla::START_OV_PARMS {
        /// First sector to verify.
        1 OV_START_SECTOR ov_start_sector: u64 [mandatory],
        /// Sector to stop at; `u64::MAX` = the end of the device.
        2 OV_STOP_SECTOR ov_stop_sector: u64 [mandatory] { init u64::MAX },
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_NEW_C_UUID_PARMS`.
    mod new_c_uuid_parms;
    /// `struct new_c_uuid_parms`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct NewCUuidParms = tla::NEW_C_UUID_PARMS {
        /// "--clear-bitmap": skip the initial full sync.
        1 CLEAR_BM clear_bm: flag [mandatory],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_STATE_INFO` (kernel to user) and broadcast reasons.
    mod state_info;
    /// `struct state_info`; `None` fields are left out of the message.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct StateInfo<'a> = tla::STATE_INFO {
        /// Why the message was sent, `state_info::SIB_*`.
        1 SIB_REASON sib_reason: u32 [mandatory],
        /// State word, see `State`.
        2 CURRENT_STATE current_state: u32 [required],
        /// Device size in sectors.
        3 CAPACITY capacity: u64 [mandatory],
        /// Exposed data UUID.
        4 ED_UUID ed_uuid: u64 [mandatory],
        /// State word before the change (state change broadcasts).
        5 PREV_STATE prev_state: opt_u32 [mandatory],
        /// State word after the change (state change broadcasts).
        6 NEW_STATE new_state: opt_u32 [mandatory],
        /// Current, bitmap, history 1 and 2 UUIDs (with a disk), sent as
        /// host-order u64.
        7 UUIDS uuids: custom(Option<[u64; 4]>, get_uuids, put_uuids) [mandatory],
        /// Meta data flags `MDF_*` (with a disk).
        8 DISK_FLAGS disk_flags: opt_u32 [mandatory],
        /// Bitmap bits (with a disk).
        9 BITS_TOTAL bits_total: opt_u64 [mandatory],
        /// Out-of-sync bits (with a disk).
        10 BITS_OOS bits_oos: opt_u64 [mandatory],
        /// Bits to resync or verify (while syncing).
        11 BITS_RS_TOTAL bits_rs_total: opt_u64 [mandatory],
        /// Bits that failed to resync (while syncing).
        12 BITS_RS_FAILED bits_rs_failed: opt_u64 [mandatory],
        /// Helper name, without NUL (helper broadcasts).
        13 HELPER helper: opt_str(state_info::HELPER_SIZE) [mandatory],
        /// Helper exit code (after the helper ran).
        14 HELPER_EXIT_CODE helper_exit_code: opt_u32 [mandatory],
        /// Sectors sent to the peer.
        15 SEND_CNT send_cnt: u64 [],
        /// Sectors received from the peer.
        16 RECV_CNT recv_cnt: u64 [],
        /// Sectors read from the backing device.
        17 READ_CNT read_cnt: u64 [],
        /// Sectors written to the backing device.
        18 WRIT_CNT writ_cnt: u64 [],
        /// Activity log writes.
        19 AL_WRIT_CNT al_writ_cnt: u64 [],
        /// Bitmap writes.
        20 BM_WRIT_CNT bm_writ_cnt: u64 [],
        /// Application bios in flight.
        21 AP_BIO_CNT ap_bio_cnt: u32 [],
        /// Application requests waiting for the peer.
        22 AP_PENDING_CNT ap_pending_cnt: u32 [],
        /// Resync requests waiting for the peer.
        23 RS_PENDING_CNT rs_pending_cnt: u32 [],
    }
    {
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
}

genl_struct! {
    /// Fields of `DRBD_NLA_DEVICE_INFO`.
    mod device_info;
    /// `struct device_info`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct DeviceInfo = tla::DEVICE_INFO {
        /// Own disk state (`DiskState` value).
        1 DEV_DISK_STATE disk_state: u32 [],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_DEVICE_STATISTICS` (none mandatory).
    mod device_statistics;
    /// `struct device_statistics` (field names without the `dev_` prefix).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct DeviceStatistics = tla::DEVICE_STATISTICS {
        /// Size in sectors.
        1 DEV_SIZE size: u64 [],
        /// Sectors read.
        2 DEV_READ read: u64 [],
        /// Sectors written.
        3 DEV_WRITE write: u64 [],
        /// Activity log writes.
        4 DEV_AL_WRITES al_writes: u64 [],
        /// Bitmap writes.
        5 DEV_BM_WRITES bm_writes: u64 [],
        /// Application requests in progress.
        6 DEV_UPPER_PENDING upper_pending: u32 [],
        /// Backing device requests in progress.
        7 DEV_LOWER_PENDING lower_pending: u32 [],
        /// Application IO blocked.
        8 DEV_UPPER_BLOCKED upper_blocked: flag [],
        /// Backing device IO blocked.
        9 DEV_LOWER_BLOCKED lower_blocked: flag [],
        /// Activity log suspended.
        10 DEV_AL_SUSPENDED al_suspended: flag [],
        /// Exposed data UUID.
        11 DEV_EXPOSED_DATA_UUID exposed_data_uuid: u64 [],
        /// Current UUID.
        12 DEV_CURRENT_UUID current_uuid: u64 [],
        /// Meta data flags `MDF_*`.
        13 DEV_DISK_FLAGS disk_flags: u32 [],
        /// The two history UUIDs; `None` without a disk (sent empty). Sent as
        /// host-order u64 slots, as the 8.4 kernel fills them.
        14 HISTORY_UUIDS history_uuids:
            custom(Option<[u64; 2]>, get_history_uuids, put_history_uuids) [],
    }
    {
        /// Maximum size of the history_uuids field.
        pub const HISTORY_UUIDS_SIZE: usize = 256;
        /// Bytes of history_uuids the 8.4 kernel fills (4 slots, 2 used).
        pub const HISTORY_UUIDS_SENT: usize = 32;
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_RESOURCE_INFO` (none mandatory).
    mod resource_info;
    /// `struct resource_info`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct ResourceInfo = tla::RESOURCE_INFO {
        /// Highest role of the volumes (`Role` value).
        1 RES_ROLE role: u32 [],
        /// IO suspended by the user.
        2 RES_SUSP susp: flag [],
        /// IO suspended for lack of data.
        3 RES_SUSP_NOD susp_nod: flag [],
        /// IO suspended while fencing.
        4 RES_SUSP_FEN susp_fen: flag [],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_CONNECTION_INFO` (none mandatory).
    mod connection_info;
    /// `struct connection_info`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct ConnectionInfo = tla::CONNECTION_INFO {
        /// Connection state (`ConnState` value).
        1 CONN_CONNECTION_STATE connection_state: u32 [],
        /// Peer's role (`Role` value).
        2 CONN_ROLE role: u32 [],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_PEER_DEVICE_INFO` (none mandatory).
    mod peer_device_info;
    /// `struct peer_device_info`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct PeerDeviceInfo = tla::PEER_DEVICE_INFO {
        /// Replication state: the connection state, at least WFReportParams
        /// (`ConnState` value).
        1 PEER_REPL_STATE repl_state: u32 [],
        /// Peer's disk state (`DiskState` value).
        2 PEER_DISK_STATE disk_state: u32 [],
        /// Resync paused by the user.
        3 PEER_RESYNC_SUSP_USER resync_susp_user: u32 [],
        /// Resync paused by the peer.
        4 PEER_RESYNC_SUSP_PEER resync_susp_peer: u32 [],
        /// Resync paused by a resync-after dependency.
        5 PEER_RESYNC_SUSP_DEPENDENCY resync_susp_dependency: u32 [],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_RESOURCE_STATISTICS` (none mandatory).
    mod resource_statistics;
    /// `struct resource_statistics`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct ResourceStatistics = tla::RESOURCE_STATISTICS {
        /// Write ordering, `resource_statistics::WO_*`.
        1 RES_STAT_WRITE_ORDERING write_ordering: u32 [],
    }
    {
        /// `write_ordering`: none.
        pub const WO_NONE: u32 = 0;
        /// `write_ordering`: drain.
        pub const WO_DRAIN_IO: u32 = 1;
        /// `write_ordering`: flush.
        pub const WO_BDEV_FLUSH: u32 = 2;
        /// `write_ordering`: barrier (no longer used by 8.4 on Linux 6.12).
        pub const WO_BIO_BARRIER: u32 = 3;
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_CONNECTION_STATISTICS` (none mandatory).
    mod connection_statistics;
    /// `struct connection_statistics`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct ConnectionStatistics = tla::CONNECTION_STATISTICS {
        /// The data socket is congested.
        1 CONN_CONGESTED congested: flag [],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_PEER_DEVICE_STATISTICS` (none mandatory; 8 unused).
    mod peer_device_statistics;
    /// `struct peer_device_statistics` (field names without `peer_dev_`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct PeerDeviceStatistics = tla::PEER_DEVICE_STATISTICS {
        /// Sectors received from the peer.
        1 PEER_DEV_RECEIVED received: u64 [],
        /// Sectors sent to the peer.
        2 PEER_DEV_SENT sent: u64 [],
        /// Requests waiting for the peer.
        3 PEER_DEV_PENDING pending: u32 [],
        /// Peer requests not yet acknowledged.
        4 PEER_DEV_UNACKED unacked: u32 [],
        /// Out-of-sync sectors.
        5 PEER_DEV_OUT_OF_SYNC out_of_sync: u64 [],
        /// Sectors that failed to resync.
        6 PEER_DEV_RESYNC_FAILED resync_failed: u64 [],
        /// Bitmap UUID.
        7 PEER_DEV_BITMAP_UUID bitmap_uuid: u64 [],
        /// Peer flags, `PEER_FLAG_*`.
        9 PEER_DEV_FLAGS flags: u32 [],
    }
}

genl_struct! {
    /// Fields of `DRBD_NLA_HELPER`.
    mod helper_info;
    /// `struct drbd_helper_info`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct HelperInfo<'a> = tla::HELPER {
        /// Helper name, without NUL.
        1 HELPER_NAME name: str(helper_info::HELPER_NAME_SIZE) [mandatory],
        /// Exit status (responses only).
        2 HELPER_STATUS status: u32 [mandatory],
    }
    {
        /// Size of the helper name array, NUL included.
        pub const HELPER_NAME_SIZE: usize = 32;
    }
}

/// Fields of `DRBD_NLA_NOTIFICATION_HEADER`, and the notification types.
pub mod notification_header {
    /// Notification type `NOTIFY_*`, maybe with [`NOTIFY_CONTINUES`] (u32).
    pub const NH_TYPE: u16 = 1;
    /// Highest field number.
    pub const MAX_FIELD: u16 = 1;
    /// Fields flagged mandatory.
    pub const MANDATORY: u64 = super::field_mask(&[NH_TYPE]);
    /// The object exists (initial state dump).
    pub const NOTIFY_EXISTS: u32 = 0;
    /// The object was created.
    pub const NOTIFY_CREATE: u32 = 1;
    /// The object changed.
    pub const NOTIFY_CHANGE: u32 = 2;
    /// The object was destroyed.
    pub const NOTIFY_DESTROY: u32 = 3;
    /// A helper is called.
    pub const NOTIFY_CALL: u32 = 4;
    /// A helper returned.
    pub const NOTIFY_RESPONSE: u32 = 5;
    /// Flag: more messages of the same event follow.
    pub const NOTIFY_CONTINUES: u32 = 0x8000;
}

/// Defines a wire enum with `from_raw` and a text per variant.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident($repr:ty), $text_fn:ident, $text_doc:literal {
        $($variant:ident = $value:literal => $text:literal,)*
    }) => {
        $(#[$meta])*
        // Ordered by wire value, as the C code compares its enums.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        #[repr($repr)]
        pub enum $name {
            $(#[doc = $text] $variant = $value,)*
        }

        impl $name {
            /// Each variant's text with its wire value, in wire order (the
            /// choices drbdsetup offers for an option of this type).
            pub const TEXTS: &'static [(&'static str, $repr)] = &[$(($text, $value),)*];

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
    /// An after-sb-*pri or rr-conflict policy (`enum drbd_after_sb_p`);
    /// which of them each option allows is drbdsetup's to check.
    AfterSbPolicy(u32), name, "The name drbd.conf uses (rr-conflict says call-pri-lost and violently)." {
        Disconnect = 0 => "disconnect",
        DiscardYoungerPrimary = 1 => "discard-younger-primary",
        DiscardOlderPrimary = 2 => "discard-older-primary",
        DiscardZeroChanges = 3 => "discard-zero-changes",
        DiscardLeastChanges = 4 => "discard-least-changes",
        DiscardLocal = 5 => "discard-local",
        DiscardRemote = 6 => "discard-remote",
        Consensus = 7 => "consensus",
        DiscardSecondary = 8 => "discard-secondary",
        CallHelper = 9 => "call-pri-lost-after-sb",
        Violently = 10 => "violently-as0p",
    }
}

impl AfterSbPolicy {
    /// The peer's policy as the receiver compares it with its own
    /// (`convert_after_sb`): what discards the peer's data for it
    /// discards ours for us.
    pub fn seen_from_peer(self) -> Self {
        match self {
            Self::DiscardRemote => Self::DiscardLocal,
            Self::DiscardLocal => Self::DiscardRemote,
            other => other,
        }
    }
}

wire_enum! {
    /// The `fencing` disk option (`enum drbd_fencing_p`).
    Fencing(u32), name, "The name drbdsetup and drbd.conf use." {
        DontCare = 0 => "dont-care",
        ResourceOnly = 1 => "resource-only",
        ResourceAndStonith = 2 => "resource-and-stonith",
    }
}

wire_enum! {
    /// The replication protocol (`wire_protocol`).
    WireProtocol(u32), name, "The protocol's letter." {
        A = 1 => "A",
        B = 2 => "B",
        C = 3 => "C",
    }
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

impl DiskConf<'_> {
    /// Resets the options that have defaults, keeping the invariant fields
    /// (what the kernel's `set_disk_conf_defaults` does).
    pub fn reset_to_defaults(&mut self) {
        *self = self.defaults_keeping_invariant();
    }
}

impl NetConf<'_> {
    /// Resets the options that have defaults, strings included, keeping the
    /// two invariant flags (what the kernel's `set_net_conf_defaults` does).
    pub fn reset_to_defaults(&mut self) {
        *self = self.defaults_keeping_invariant();
    }
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

/// `uuids` as host-order u64 in the first slots of B bytes, the rest zero.
fn u64_slot_bytes<const B: usize>(uuids: &[u64]) -> [u8; B] {
    let mut raw = [0u8; B];
    for (chunk, uuid) in raw.chunks_exact_mut(8).zip(uuids) {
        chunk.copy_from_slice(&uuid.to_ne_bytes());
    }
    raw
}

/// Reads STATE_INFO.uuids (the kernel sends all four slots).
fn get_uuids(a: Attr<'_>) -> Result<Option<[u64; 4]>, NlaError> {
    Ok(Some(u64_slots(a.get_bytes(state_info::UUIDS_SIZE)?)))
}

/// Writes STATE_INFO.uuids, nothing without them.
fn put_uuids(
    f: &mut FieldWriter<'_, '_>,
    number: u16,
    uuids: Option<[u64; 4]>,
) -> Result<(), NlaError> {
    uuids.map_or(Ok(()), |uuids| {
        let raw: [u8; state_info::UUIDS_SIZE] = u64_slot_bytes(&uuids);
        f.bytes(number, &raw, state_info::UUIDS_SIZE)
    })
}

/// Reads DEVICE_STATISTICS.history_uuids: empty means no disk.
fn get_history_uuids(a: Attr<'_>) -> Result<Option<[u64; 2]>, NlaError> {
    let bytes = a.get_bytes(device_statistics::HISTORY_UUIDS_SIZE)?;
    Ok((!bytes.is_empty()).then(|| u64_slots(bytes)))
}

/// Writes DEVICE_STATISTICS.history_uuids as the 8.4 kernel does: always
/// present, empty without a disk, else four slots with two filled.
fn put_history_uuids(
    f: &mut FieldWriter<'_, '_>,
    number: u16,
    uuids: Option<[u64; 2]>,
) -> Result<(), NlaError> {
    use device_statistics as d;
    let raw: [u8; d::HISTORY_UUIDS_SENT] = u64_slot_bytes(&uuids.unwrap_or_default());
    let len = if uuids.is_some() {
        d::HISTORY_UUIDS_SENT
    } else {
        0
    };
    f.bytes(
        number,
        raw.get(..len).unwrap_or_default(),
        d::HISTORY_UUIDS_SIZE,
    )
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

/// Parses one struct nest over `base` (`change`: a change request, which
/// may not give invariant fields and need not repeat required ones).
fn parse_struct<'a, S: GenlStruct<'a>>(
    nest: &'a [u8],
    base: S,
    change: bool,
) -> Result<S, RequestError> {
    let mut s = base;
    parse_fields(nest, S::RULES, change, |a| s.set_field(a))?;
    Ok(s)
}

/// NOTIFICATION_HEADER.nh_type; `None` if the struct leaves it out.
fn parse_notification_header(nest: &[u8]) -> Result<Option<u32>, RequestError> {
    use notification_header as f;
    let mut nh_type = None;
    parse_fields(nest, FieldRules::optional(f::MAX_FIELD), false, |a| {
        if a.number == f::NH_TYPE {
            nh_type = Some(a.get_u32()?);
        }
        Ok(())
    })?;
    Ok(nh_type)
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

/// Defines `Request` accessors that return one struct over its defaults,
/// `None` if the request does not carry it.
macro_rules! given_structs {
    ($($(#[$meta:meta])* fn $name:ident() -> $ty:ty;)*) => {$(
        $(#[$meta])*
        pub fn $name(&self) -> Result<Option<$ty>, RequestError> {
            self.given()
        }
    )*};
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

    /// Struct S over its defaults, `None` if the request does not carry it.
    fn given<S: GenlStruct<'a>>(&self) -> Result<Option<S>, RequestError> {
        self.tla(S::TLA)
            .map(|a| parse_struct(a.payload, S::default(), false))
            .transpose()
    }

    /// Struct S's fields applied to `base`; `base` if the request does not
    /// carry it.
    fn over<S: GenlStruct<'a>>(&self, base: S, change: bool) -> Result<S, RequestError> {
        match self.tla(S::TLA) {
            Some(a) => parse_struct(a.payload, base, change),
            None => Ok(base),
        }
    }

    /// The CFG_CONTEXT attribute as sent (header included), for a reply to
    /// copy verbatim; validate it with `cfg_context` first.
    pub fn cfg_context_raw(&self) -> Option<&'a [u8]> {
        self.tla(tla::CFG_CONTEXT).map(|a| a.raw)
    }

    given_structs! {
        /// The CFG_CONTEXT struct, if present. (The C kernel answers a
        /// malformed CFG_CONTEXT with a netlink error, -EINVAL, instead of a
        /// reply.)
        fn cfg_context() -> CfgContext<'a>;
        /// DISK_CONF for ATTACH: defaults for absent options, the three
        /// device fields required. `None` if absent; ATTACH should then fail
        /// with [`RequestError::REQUIRED_MISSING`].
        fn disk_conf() -> DiskConf<'a>;
        /// DETACH_PARMS, if present.
        fn detach_parms() -> DetachParms;
        /// SET_ROLE_PARMS, if present.
        fn set_role_parms() -> SetRoleParms;
        /// DISCONNECT_PARMS, if present.
        fn disconnect_parms() -> DisconnectParms;
        /// NEW_C_UUID_PARMS, if present.
        fn new_c_uuid_parms() -> NewCUuidParms;
        /// TIMEOUT_PARMS, if present (the kernel only sends it; for symmetry).
        fn timeout_parms() -> TimeoutParms;
    }

    /// DISK_CONF for CHG_DISK_OPTS: the given options applied to `current`
    /// (reset to defaults first with SET_DEFAULTS); invariant fields refused.
    pub fn disk_conf_change(&self, current: DiskConf<'a>) -> Result<DiskConf<'a>, RequestError> {
        let mut base = current;
        if self.set_defaults() {
            base.reset_to_defaults();
        }
        self.over(base, true)
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
        self.over(base, false)
    }

    /// NET_CONF for CONNECT: the given options over the defaults (an absent
    /// NET_CONF means all defaults, as in the kernel). Invariant fields are
    /// allowed here.
    pub fn net_conf(&self) -> Result<NetConf<'a>, RequestError> {
        self.over(NetConf::default(), false)
    }

    /// NET_CONF for CHG_NET_OPTS: the given options applied to `current`
    /// (reset to defaults first with SET_DEFAULTS, keeping the invariant
    /// flags); `discard_my_data` and `tentative` are refused with
    /// [`RequestError::INVARIANT_CHANGE`].
    pub fn net_conf_change(&self, current: NetConf<'a>) -> Result<NetConf<'a>, RequestError> {
        let mut base = current;
        if self.set_defaults() {
            base.reset_to_defaults();
        }
        self.over(base, true)
    }

    /// RESIZE_PARMS over `base`: the kernel starts from size 0, no flags and
    /// the device's current activity log layout (`al_stripes`,
    /// `al_stripe_size`).
    pub fn resize_parms(&self, base: ResizeParms) -> Result<ResizeParms, RequestError> {
        self.over(base, false)
    }

    /// START_OV_PARMS over `base`: the kernel starts from the last verify
    /// position and `u64::MAX` as stop sector.
    pub fn start_ov_parms(&self, base: StartOvParms) -> Result<StartOvParms, RequestError> {
        self.over(base, false)
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

/// Writes the fields of one struct, choosing their types by flavor.
struct FieldWriter<'w, 'b> {
    w: &'w mut NlaWriter<'b>,
    mandatory: u64,
    flagged: bool,
}

impl FieldWriter<'_, '_> {
    fn ty(&self, number: u16) -> u16 {
        if self.flagged && self.mandatory & field_bit(number) != 0 {
            number | NLA_F_MANDATORY
        } else {
            number
        }
    }

    fn u32(&mut self, number: u16, value: u32) -> Result<(), NlaError> {
        self.w.put_u32(self.ty(number), value)
    }

    fn s32(&mut self, number: u16, value: i32) -> Result<(), NlaError> {
        self.w.put_s32(self.ty(number), value)
    }

    fn u64(&mut self, number: u16, value: u64) -> Result<(), NlaError> {
        self.w.put_u64(self.ty(number), value)
    }

    fn flag(&mut self, number: u16, value: bool) -> Result<(), NlaError> {
        self.w.put_flag(self.ty(number), value)
    }

    /// A string for a C array of `size` bytes; refused rather than cut.
    fn str(&mut self, number: u16, value: &[u8], size: usize) -> Result<(), NlaError> {
        if value.len() >= size {
            return Err(NlaError::TooLong);
        }
        self.w.put_str(self.ty(number), value)
    }

    fn bytes(&mut self, number: u16, value: &[u8], size: usize) -> Result<(), NlaError> {
        if value.len() > size {
            return Err(NlaError::TooLong);
        }
        self.w.put_bytes(self.ty(number), value)
    }
}

/// Writes one top-level struct nest; on failure nothing of it remains.
fn put_struct(
    w: &mut NlaWriter<'_>,
    tla_number: u16,
    flavor: Flavor,
    mandatory: u64,
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
    });
    match result {
        Ok(()) => w.end_nest(nest),
        Err(e) => {
            w.cancel_nest(nest);
            Err(e)
        }
    }
}

/// Writes struct `s` as one nest: the fields `fields` selects, in its order.
fn put_fields<'a, S: GenlStruct<'a>>(
    w: &mut NlaWriter<'_>,
    flavor: Flavor,
    s: &S,
    fields: impl FieldSelection,
) -> Result<(), NlaError> {
    put_struct(w, S::TLA, flavor, S::MANDATORY, |f| {
        fields.each_field(S::RULES.max_field, |n| s.put_field(f, n))
    })
}

/// Writes struct `s` whole, in declaration order (`<struct>_to_skb`).
fn put_declared<'a, S: GenlStruct<'a>>(
    w: &mut NlaWriter<'_>,
    flavor: Flavor,
    s: &S,
) -> Result<(), NlaError> {
    put_fields(w, flavor, s, S::ORDER)
}

/// CFG_CONTEXT fields as drbd-utils sends them: the volume last, where the
/// kernel puts it first (declaration order); keeping each order makes the
/// bytes match.
const CFG_CONTEXT_USER_ORDER: [u16; 4] = {
    use cfg_context as c;
    [c::RESOURCE_NAME, c::MY_ADDR, c::PEER_ADDR, c::VOLUME]
};

/// STATE_INFO fields in the order of the kernel's hand-made
/// `nla_put_status_info`; absent optional fields write nothing.
const STATE_INFO_KERNEL_ORDER: [u16; 23] = {
    use state_info as i;
    [
        i::SIB_REASON,
        i::CURRENT_STATE,
        i::ED_UUID,
        i::CAPACITY,
        i::SEND_CNT,
        i::RECV_CNT,
        i::READ_CNT,
        i::WRIT_CNT,
        i::AL_WRIT_CNT,
        i::BM_WRIT_CNT,
        i::AP_BIO_CNT,
        i::AP_PENDING_CNT,
        i::RS_PENDING_CNT,
        i::UUIDS,
        i::DISK_FLAGS,
        i::PREV_STATE,
        i::NEW_STATE,
        i::HELPER_EXIT_CODE,
        i::BITS_TOTAL,
        i::BITS_OOS,
        i::BITS_RS_TOTAL,
        i::BITS_RS_FAILED,
        i::HELPER,
    ]
};

/// Which fields a request carries, and in which order: a [`field_mask`]
/// (`u64`, ascending field numbers) or an explicit list of field numbers
/// (`&[u16]`, in that order; drbdsetup sends options in command line order).
pub trait FieldSelection {
    /// Calls `put` for each selected field number up to `max_field`.
    fn each_field(
        &self,
        max_field: u16,
        put: impl FnMut(u16) -> Result<(), NlaError>,
    ) -> Result<(), NlaError>;
}

impl FieldSelection for u64 {
    fn each_field(
        &self,
        max_field: u16,
        put: impl FnMut(u16) -> Result<(), NlaError>,
    ) -> Result<(), NlaError> {
        (1..=max_field)
            .filter(|n| self & field_bit(*n) != 0)
            .try_for_each(put)
    }
}

impl FieldSelection for &[u16] {
    fn each_field(
        &self,
        max_field: u16,
        put: impl FnMut(u16) -> Result<(), NlaError>,
    ) -> Result<(), NlaError> {
        self.iter()
            .copied()
            .filter(|n| (1..=max_field).contains(n))
            .try_for_each(put)
    }
}

/// Builds a reply or notification body in a caller-provided buffer (kernel
/// side): the user header first, then top-level attributes.
#[derive(Debug)]
pub struct ReplyBuilder<'a> {
    w: NlaWriter<'a>,
}

/// Defines `ReplyBuilder` methods that add one struct whole, as the
/// kernel's generated `<struct>_to_skb` writes it.
macro_rules! kernel_writers {
    ($($(#[$meta:meta])* fn $name:ident($arg:ident: &$ty:ty);)*) => {$(
        $(#[$meta])*
        pub fn $name(&mut self, $arg: &$ty) -> Result<(), NlaError> {
            put_declared(&mut self.w, Flavor::Kernel, $arg)
        }
    )*};
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
            |f| f.str(cfg_reply::INFO_TEXT, text, usize::MAX),
        )
    }

    /// Adds CFG_CONTEXT as the kernel builds it for status and events.
    pub fn put_cfg_context(&mut self, ctx: &CfgContext<'_>) -> Result<(), NlaError> {
        put_declared(&mut self.w, Flavor::HandMade, ctx)
    }

    kernel_writers! {
        /// Adds RESOURCE_OPTS (all fields).
        fn put_resource_opts(opts: &ResourceOpts<'_>);
        /// Adds DISK_CONF (all fields, in `drbd_genl.h` order).
        fn put_disk_conf(conf: &DiskConf<'_>);
        /// Adds DEVICE_INFO.
        fn put_device_info(info: &DeviceInfo);
        /// Adds DEVICE_STATISTICS (history_uuids as the 8.4 kernel
        /// sends them).
        fn put_device_statistics(s: &DeviceStatistics);
        /// Adds RESOURCE_INFO.
        fn put_resource_info(i: &ResourceInfo);
        /// Adds RESOURCE_STATISTICS.
        fn put_resource_statistics(s: &ResourceStatistics);
        /// Adds CONNECTION_INFO.
        fn put_connection_info(i: &ConnectionInfo);
        /// Adds CONNECTION_STATISTICS.
        fn put_connection_statistics(s: &ConnectionStatistics);
        /// Adds PEER_DEVICE_INFO.
        fn put_peer_device_info(i: &PeerDeviceInfo);
        /// Adds PEER_DEVICE_STATISTICS.
        fn put_peer_device_statistics(s: &PeerDeviceStatistics);
        /// Adds HELPER.
        fn put_helper_info(h: &HelperInfo<'_>);
    }

    /// Adds NET_CONF (all fields); the shared secret only with
    /// `include_secret`, which the kernel grants to CAP_SYS_ADMIN readers of
    /// GET_STATUS and never in broadcasts.
    pub fn put_net_conf(
        &mut self,
        conf: &NetConf<'_>,
        include_secret: bool,
    ) -> Result<(), NlaError> {
        let fields = if include_secret {
            net_conf::ALL
        } else {
            net_conf::ALL & !net_conf::SENSITIVE
        };
        put_fields(&mut self.w, Flavor::Kernel, conf, fields)
    }

    /// Adds STATE_INFO; `None` fields are left out.
    pub fn put_state_info(&mut self, s: &StateInfo<'_>) -> Result<(), NlaError> {
        let order = STATE_INFO_KERNEL_ORDER.as_slice();
        put_fields(&mut self.w, Flavor::HandMade, s, order)
    }

    /// Adds TIMEOUT_PARMS, the reply of GET_TIMEOUT_TYPE.
    pub fn put_timeout_type(&mut self, timeout_type: u32) -> Result<(), NlaError> {
        put_declared(&mut self.w, Flavor::Kernel, &TimeoutParms { timeout_type })
    }

    /// Adds NOTIFICATION_HEADER (`notification_header::NOTIFY_*`).
    pub fn put_notification_header(&mut self, nh_type: u32) -> Result<(), NlaError> {
        put_struct(
            &mut self.w,
            tla::NOTIFICATION_HEADER,
            Flavor::Kernel,
            0,
            |f| f.u32(notification_header::NH_TYPE, nh_type),
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
    put_fields(w, Flavor::User, ctx, CFG_CONTEXT_USER_ORDER.as_slice())
}

/// Defines request writers (userspace side): each adds one struct as
/// drbd-utils sends it, with only the fields a [`FieldSelection`] names, in
/// its order, or (without `fields`) whole.
macro_rules! request_writers {
    (@fields $fields:ident) => { $fields };
    (@fields) => { u64::MAX };
    ($($(#[$meta:meta])* fn $name:ident($arg:ident: &$ty:ty $(, $fields:ident)?);)*) => {$(
        $(#[$meta])*
        pub fn $name(
            w: &mut NlaWriter<'_>,
            $arg: &$ty,
            $($fields: impl FieldSelection,)?
        ) -> Result<(), NlaError> {
            put_fields(w, Flavor::User, $arg, request_writers!(@fields $($fields)?))
        }
    )*};
}

request_writers! {
    /// Adds DISK_CONF to a request with only the fields in `fields` (a
    /// [`field_mask`] or a list in send order); drbdsetup sends
    /// [`disk_conf::REQUIRED`] plus the options given on attach, and only
    /// the given options on disk-options. An empty selection sends an empty
    /// nest.
    fn put_disk_conf_request(conf: &DiskConf<'_>, fields);
    /// Adds RESOURCE_OPTS to a request with only the fields in `fields`.
    fn put_resource_opts_request(opts: &ResourceOpts<'_>, fields);
    /// Adds NET_CONF to a request with only the fields in `fields` (connect
    /// and net-options send the options given on the command line).
    fn put_net_conf_request(conf: &NetConf<'_>, fields);
    /// Adds RESIZE_PARMS to a request with only the fields in `fields`.
    fn put_resize_parms_request(parms: &ResizeParms, fields);
    /// Adds START_OV_PARMS to a request with only the fields in `fields`.
    fn put_start_ov_parms_request(parms: &StartOvParms, fields);
    /// Adds TIMEOUT_PARMS to a request (drbd-utils never sends it; for tests
    /// and symmetry).
    fn put_timeout_parms_request(parms: &TimeoutParms);
    /// Adds DETACH_PARMS to a request.
    fn put_detach_parms_request(parms: &DetachParms);
    /// Adds SET_ROLE_PARMS to a request.
    fn put_set_role_parms_request(parms: &SetRoleParms);
    /// Adds DISCONNECT_PARMS to a request.
    fn put_disconnect_parms_request(parms: &DisconnectParms);
    /// Adds NEW_C_UUID_PARMS to a request.
    fn put_new_c_uuid_parms_request(parms: &NewCUuidParms);
}

/// Adds an empty nest `tla_number`, as drbdsetup sends for a struct whose
/// only options were given as "no" (`primary --force=no`).
pub fn put_empty_request(w: &mut NlaWriter<'_>, tla_number: u16) -> Result<(), NlaError> {
    put_struct(w, tla_number, Flavor::User, 0, |_| Ok(()))
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
    /// NET_CONF (absent fields at their defaults; the shared secret is
    /// empty when the kernel left it out).
    pub net_conf: Option<NetConf<'a>>,
    /// RESOURCE_INFO.
    pub resource_info: Option<ResourceInfo>,
    /// RESOURCE_STATISTICS.
    pub resource_statistics: Option<ResourceStatistics>,
    /// CONNECTION_INFO.
    pub connection_info: Option<ConnectionInfo>,
    /// CONNECTION_STATISTICS.
    pub connection_statistics: Option<ConnectionStatistics>,
    /// PEER_DEVICE_INFO.
    pub peer_device_info: Option<PeerDeviceInfo>,
    /// PEER_DEVICE_STATISTICS.
    pub peer_device_statistics: Option<PeerDeviceStatistics>,
    /// NOTIFICATION_HEADER.nh_type (`notification_header::NOTIFY_*`).
    pub notification_type: Option<u32>,
    /// HELPER.
    pub helper_info: Option<HelperInfo<'a>>,
}

/// Struct S over its defaults, as a reply carries it.
fn parse_whole<'a, S: GenlStruct<'a>>(nest: &'a [u8]) -> Result<S, RequestError> {
    parse_struct(nest, S::default(), false)
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
            tla::CFG_CONTEXT => reply.cfg_context = Some(parse_whole(nest)?),
            tla::RESOURCE_OPTS => reply.resource_opts = Some(parse_whole(nest)?),
            tla::DISK_CONF => reply.disk_conf = Some(parse_whole(nest)?),
            tla::STATE_INFO => reply.state_info = Some(parse_whole(nest)?),
            tla::DEVICE_INFO => reply.device_info = Some(parse_whole(nest)?),
            tla::DEVICE_STATISTICS => reply.device_statistics = Some(parse_whole(nest)?),
            tla::TIMEOUT_PARMS => {
                let parms: TimeoutParms = parse_whole(nest)?;
                reply.timeout_type = Some(parms.timeout_type);
            }
            tla::NET_CONF => reply.net_conf = Some(parse_whole(nest)?),
            tla::RESOURCE_INFO => reply.resource_info = Some(parse_whole(nest)?),
            tla::RESOURCE_STATISTICS => reply.resource_statistics = Some(parse_whole(nest)?),
            tla::CONNECTION_INFO => reply.connection_info = Some(parse_whole(nest)?),
            tla::CONNECTION_STATISTICS => reply.connection_statistics = Some(parse_whole(nest)?),
            tla::PEER_DEVICE_INFO => reply.peer_device_info = Some(parse_whole(nest)?),
            tla::PEER_DEVICE_STATISTICS => reply.peer_device_statistics = Some(parse_whole(nest)?),
            tla::NOTIFICATION_HEADER => reply.notification_type = parse_notification_header(nest)?,
            tla::HELPER => reply.helper_info = Some(parse_whole(nest)?),
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

    fn odd_net_conf() -> NetConf<'static> {
        NetConf {
            shared_secret: b"secret",
            cram_hmac_alg: b"sha1",
            integrity_alg: b"crc32c",
            verify_alg: b"md5",
            csums_alg: b"sha256",
            wire_protocol: net_conf::PROT_A,
            connect_int: 1,
            timeout: 600,
            ping_int: 120,
            ping_timeo: 300,
            sndbuf_size: 10 << 20,
            rcvbuf_size: 1,
            ko_count: 0,
            max_buffers: 32,
            max_epoch_size: 20000,
            unplug_watermark: 1,
            after_sb_0p: net_conf::ASB_DISCARD_ZERO_CHG,
            after_sb_1p: net_conf::ASB_CONSENSUS,
            after_sb_2p: net_conf::ASB_CALL_HELPER,
            rr_conflict: net_conf::ASB_VIOLENTLY,
            on_congestion: net_conf::OC_PULL_AHEAD,
            cong_fill: 7,
            cong_extents: 67,
            two_primaries: true,
            discard_my_data: true,
            tcp_cork: false,
            always_asbp: true,
            tentative: true,
            use_rle: false,
            csums_after_crash_only: true,
            sock_check_timeo: 9,
        }
    }

    /// The numbers (and mandatory bits) of the fields in the first nest.
    fn field_types(body: &[u8]) -> Vec<(u16, bool)> {
        let nest = Attrs::new(&body[8..]).next().unwrap().unwrap();
        nest.nested_attrs()
            .map(|a| a.unwrap())
            .map(|a| (a.number, a.mandatory))
            .collect()
    }

    #[test]
    fn net_conf_defaults_follow_drbd_limits() {
        let d = NetConf::default();
        assert_eq!(d.wire_protocol, 3);
        assert_eq!(
            (d.connect_int, d.timeout, d.ping_int, d.ping_timeo),
            (10, 60, 10, 5)
        );
        assert_eq!(
            (d.max_buffers, d.max_epoch_size, d.unplug_watermark),
            (2048, 2048, 128)
        );
        assert_eq!((d.ko_count, d.cong_extents, d.cong_fill), (7, 1237, 0));
        assert!(d.tcp_cork && d.use_rle && !d.two_primaries && !d.always_asbp);
        assert!(d.shared_secret.is_empty() && d.cram_hmac_alg.is_empty());
        assert_eq!(net_conf::MANDATORY, 0x3fff_fffe);
        assert_eq!(net_conf::ALL, 0x6_3fff_fffe);
        for n in 1..=net_conf::MAX_FIELD {
            let known = !(30..=32).contains(&n);
            assert_eq!(net_conf::ALL & field_bit(n) != 0, known, "{n}");
        }
        let mut odd = odd_net_conf();
        odd.reset_to_defaults();
        assert_eq!(
            odd,
            NetConf {
                discard_my_data: true,
                tentative: true,
                ..NetConf::default()
            }
        );
    }

    #[test]
    fn net_conf_round_trips_in_every_flavor() {
        let conf = odd_net_conf();
        let body = request(MINOR_ALL, 0, |w| {
            put_net_conf_request(w, &conf, net_conf::ALL).unwrap()
        });
        let req = parse_request(&body).unwrap();
        assert_eq!(req.net_conf(), Ok(conf));
        let types = field_types(&body);
        assert_eq!(types.len(), 31);
        assert!(types.iter().all(|&(n, m)| m == (n <= 29)), "{types:?}");

        let mut buf = [0u8; 2048];
        let mut reply = ReplyBuilder::new(&mut buf, MINOR_ALL).unwrap();
        reply.put_net_conf(&conf, true).unwrap();
        let bytes = reply.bytes().to_vec();
        assert_eq!(parse_reply(&bytes).unwrap().net_conf, Some(conf));
        let nest = Attrs::new(&bytes[8..]).next().unwrap().unwrap();
        assert!(nest.nested && nest.number == tla::NET_CONF);
        assert!(nest.nested_attrs().all(|a| !a.unwrap().mandatory));

        // Broadcasts and unprivileged readers do not get the secret.
        let mut buf = [0u8; 2048];
        let mut reply = ReplyBuilder::new(&mut buf, MINOR_ALL).unwrap();
        reply.put_net_conf(&conf, false).unwrap();
        let bytes = reply.bytes().to_vec();
        assert!(!bytes.windows(6).any(|w| w == b"secret"));
        let parsed = parse_reply(&bytes).unwrap().net_conf.unwrap();
        assert_eq!(
            parsed,
            NetConf {
                shared_secret: b"",
                ..conf
            }
        );
        let nest = Attrs::new(&bytes[8..]).next().unwrap().unwrap();
        assert!(nest
            .nested_attrs()
            .all(|a| a.unwrap().number != net_conf::SHARED_SECRET));
    }

    #[test]
    fn connect_takes_defaults_and_invariants() {
        let no_conf = request(MINOR_ALL, 0, |_| {});
        assert_eq!(
            parse_request(&no_conf).unwrap().net_conf(),
            Ok(NetConf::default())
        );

        let conf = NetConf {
            wire_protocol: net_conf::PROT_B,
            discard_my_data: true,
            max_buffers: 8000,
            ..NetConf::default()
        };
        let order: &[u16] = &[
            net_conf::MAX_BUFFERS,
            net_conf::DISCARD_MY_DATA,
            net_conf::WIRE_PROTOCOL,
        ];
        let body = request(MINOR_ALL, 0, |w| {
            put_net_conf_request(w, &conf, order).unwrap()
        });
        assert_eq!(field_types(&body), [(14, true), (25, true), (6, true)]);
        let req = parse_request(&body).unwrap();
        assert_eq!(req.net_conf(), Ok(conf), "connect may set invariant fields");
        assert_eq!(
            req.net_conf_change(odd_net_conf()),
            Err(RequestError::INVARIANT_CHANGE),
            "net-options may not"
        );
        let tentative = request(MINOR_ALL, 0, |w| {
            put_net_conf_request(w, &conf, field_mask(&[net_conf::TENTATIVE])).unwrap()
        });
        assert_eq!(
            parse_request(&tentative).unwrap().net_conf_change(conf),
            Err(RequestError::INVARIANT_CHANGE)
        );
    }

    #[test]
    fn net_options_change_current_settings() {
        let current = odd_net_conf();
        let change = NetConf {
            ping_int: 3,
            verify_alg: b"crc32c",
            ..current
        };
        let fields = field_mask(&[net_conf::PING_INT, net_conf::VERIFY_ALG]);
        let body = request(MINOR_ALL, 0, |w| {
            put_net_conf_request(w, &change, fields).unwrap()
        });
        let req = parse_request(&body).unwrap();
        assert_eq!(req.net_conf_change(current), Ok(change));

        let reset = request(MINOR_ALL, FLAG_SET_DEFAULTS, |w| {
            put_net_conf_request(w, &change, fields).unwrap()
        });
        let changed = parse_request(&reset)
            .unwrap()
            .net_conf_change(current)
            .unwrap();
        assert_eq!(
            changed,
            NetConf {
                ping_int: 3,
                verify_alg: b"crc32c",
                discard_my_data: true,
                tentative: true,
                ..NetConf::default()
            },
            "strings reset too, invariant flags kept"
        );
        let nothing = request(MINOR_ALL, FLAG_SET_DEFAULTS, |_| {});
        let mut expected = current;
        expected.reset_to_defaults();
        assert_eq!(
            parse_request(&nothing).unwrap().net_conf_change(current),
            Ok(expected)
        );
        let empty_nest = request(MINOR_ALL, 0, |w| {
            put_empty_request(w, tla::NET_CONF).unwrap()
        });
        assert_eq!(
            parse_request(&empty_nest).unwrap().net_conf_change(current),
            Ok(current)
        );
    }

    #[test]
    fn net_conf_field_checks() {
        let with = |f: &dyn Fn(&mut NlaWriter<'_>)| {
            let body = request(MINOR_ALL, 0, |w| {
                let nest = w.begin_nest(NLA_F_NESTED | tla::NET_CONF).unwrap();
                f(w);
                w.end_nest(nest).unwrap();
            });
            // (secret length, everything else at its default)
            parse_request(&body).unwrap().net_conf().map(|c| {
                let len = c.shared_secret.len();
                (
                    len,
                    NetConf {
                        shared_secret: b"",
                        ..c
                    } == NetConf::default(),
                )
            })
        };
        // drbd-utils' my_addr2/peer_addr2 (35, 36) carry no mandatory flag.
        let addr = with(&|w| w.put_bytes(35, &[2, 0, 0x1e, 0x6d, 1, 2, 3, 4]).unwrap());
        assert_eq!(addr, Ok((0, true)));
        assert_eq!(
            with(&|w| w.put_u32(35 | NLA_F_MANDATORY, 1).unwrap()),
            Err(RequestError::UNKNOWN_MANDATORY)
        );
        // 30..=32 are DRBD 9 fields: known numbers, ignored by 8.4.
        assert_eq!(
            with(&|w| w.put_u32(30 | NLA_F_MANDATORY, 2).unwrap()),
            Ok((0, true))
        );
        let secret = |len: usize| std::vec![b's'; len];
        let ok = secret(63);
        assert_eq!(
            with(&|w| w
                .put_str(net_conf::SHARED_SECRET | NLA_F_MANDATORY, &ok)
                .unwrap()),
            Ok((63, true))
        );
        let long = secret(64);
        assert_eq!(
            with(&|w| w
                .put_str(net_conf::SHARED_SECRET | NLA_F_MANDATORY, &long)
                .unwrap()),
            Err(RequestError::INVALID_VALUE)
        );
        assert_eq!(
            with(&|w| w.put_u8(net_conf::PING_INT, 1).unwrap()),
            Err(RequestError::INVALID_VALUE)
        );
        let conf = NetConf {
            shared_secret: &long,
            ..NetConf::default()
        };
        let mut buf = [0u8; 256];
        let mut w = NlaWriter::new(&mut buf);
        assert_eq!(
            put_net_conf_request(&mut w, &conf, net_conf::ALL),
            Err(NlaError::TooLong)
        );
        assert!(w.is_empty());
        // Unselected fields are not checked.
        put_net_conf_request(&mut w, &conf, field_mask(&[net_conf::TIMEOUT])).unwrap();
    }

    /// `drbdsetup-84 connect r0 10.0.0.1:7789 10.0.0.2 --protocol=B`, by hand.
    #[test]
    #[cfg(target_endian = "little")]
    fn connect_request_bytes() {
        let me = [2u8, 0, 0x1e, 0x6d, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let peer = [2u8, 0, 0x1e, 0x6c, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        let ctx = CfgContext {
            resource_name: Some(b"r0"),
            my_addr: Some(&me),
            peer_addr: Some(&peer),
            volume: None,
        };
        let conf = NetConf {
            wire_protocol: net_conf::PROT_B,
            ..NetConf::default()
        };
        let body = request(MINOR_ALL, 0, |w| {
            put_cfg_context_request(w, &ctx).unwrap();
            put_net_conf_request(w, &conf, field_mask(&[net_conf::WIRE_PROTOCOL])).unwrap();
        });
        let expected = [
            &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0][..],
            &[52, 0, 0x02, 0x80],
            &[7, 0, 0x02, 0x40],
            b"r0\0\0",
            &[20, 0, 0x03, 0x40],
            &me,
            &[20, 0, 0x04, 0x40],
            &peer,
            &[12, 0, 0x05, 0x80],
            &[8, 0, 0x06, 0x40, 2, 0, 0, 0],
        ]
        .concat();
        assert_eq!(body, expected);
        let req = parse_request(&body).unwrap();
        assert_eq!(req.cfg_context(), Ok(Some(ctx)));
        assert_eq!(req.net_conf(), Ok(conf));
    }

    #[test]
    fn field_selection_orders_and_filters() {
        let conf = odd_disk_conf();
        let order: &[u16] = &[8, 0, 1, 99, 3, 2, 22, 16];
        let body = request(0, 0, |w| put_disk_conf_request(w, &conf, order).unwrap());
        assert_eq!(
            field_types(&body),
            [(8, true), (1, false), (3, false), (2, false), (16, true)],
            "0, 99 and the undefined 22 write nothing"
        );
        assert_eq!(
            parse_request(&body)
                .unwrap()
                .disk_conf()
                .unwrap()
                .unwrap()
                .resync_rate,
            conf.resync_rate
        );
        let empty = request(0, 0, |w| put_disk_conf_request(w, &conf, 0u64).unwrap());
        assert_eq!(&empty[8..], &[4, 0, 0x03, 0x80]);
        let ordered_opts: &[u16] = &[2, 1];
        let opts = ResourceOpts {
            cpu_mask: b"f",
            on_no_data: 1,
        };
        let body = request(MINOR_ALL, 0, |w| {
            put_resource_opts_request(w, &opts, ordered_opts).unwrap()
        });
        assert_eq!(field_types(&body), [(2, true), (1, true)]);
        assert_eq!(
            parse_request(&body)
                .unwrap()
                .resource_opts(ResourceOpts::default()),
            Ok(opts)
        );
    }

    #[test]
    fn resize_parms_both_ways() {
        let current_layout = ResizeParms {
            al_stripes: 4,
            al_stripe_size: 64,
            ..ResizeParms::default()
        };
        let none = request(0, 0, |_| {});
        assert_eq!(
            parse_request(&none).unwrap().resize_parms(current_layout),
            Ok(current_layout)
        );
        let parms = ResizeParms {
            resize_size: 1 << 21,
            resize_force: true,
            no_resync: true,
            al_stripes: 2,
            al_stripe_size: 1024,
        };
        let body = request(5, 0, |w| {
            put_resize_parms_request(w, &parms, resize_parms::ALL).unwrap()
        });
        assert_eq!(
            field_types(&body),
            [(1, true), (2, true), (3, true), (4, false), (5, false)]
        );
        assert_eq!(
            parse_request(&body).unwrap().resize_parms(current_layout),
            Ok(parms)
        );
        let size_only = request(5, 0, |w| {
            put_resize_parms_request(w, &parms, field_mask(&[resize_parms::RESIZE_SIZE])).unwrap()
        });
        assert_eq!(
            parse_request(&size_only)
                .unwrap()
                .resize_parms(current_layout),
            Ok(ResizeParms {
                resize_size: 1 << 21,
                ..current_layout
            })
        );
        let unknown = request(5, 0, |w| {
            let nest = w.begin_nest(NLA_F_NESTED | tla::RESIZE_PARMS).unwrap();
            w.put_u32(6 | NLA_F_MANDATORY, 1).unwrap();
            w.end_nest(nest).unwrap();
        });
        assert_eq!(
            parse_request(&unknown)
                .unwrap()
                .resize_parms(current_layout),
            Err(RequestError::UNKNOWN_MANDATORY)
        );
        assert_eq!(resize_parms::AL_STRIPE_SIZE_LIMITS.default, 32);
        assert!(!resize_parms::AL_STRIPES_LIMITS.contains(0));
    }

    #[test]
    fn verify_uuid_and_timeout_parms_both_ways() {
        let resume = StartOvParms {
            ov_start_sector: 4096,
            ov_stop_sector: u64::MAX,
        };
        let none = request(0, 0, |_| {});
        let req = parse_request(&none).unwrap();
        assert_eq!(req.start_ov_parms(resume), Ok(resume));
        assert_eq!(req.new_c_uuid_parms(), Ok(None));
        assert_eq!(req.timeout_parms(), Ok(None));
        assert_eq!(StartOvParms::default().ov_stop_sector, u64::MAX);

        let range = StartOvParms {
            ov_start_sector: 8,
            ov_stop_sector: 1024,
        };
        let start_only: &[u16] = &[start_ov_parms::OV_START_SECTOR];
        let body = request(0, 0, |w| {
            put_start_ov_parms_request(w, &range, start_only).unwrap();
            put_new_c_uuid_parms_request(w, &NewCUuidParms { clear_bm: true }).unwrap();
            put_timeout_parms_request(
                w,
                &TimeoutParms {
                    timeout_type: timeout_parms::UT_PEER_OUTDATED,
                },
            )
            .unwrap();
        });
        let req = parse_request(&body).unwrap();
        assert_eq!(
            req.start_ov_parms(resume),
            Ok(StartOvParms {
                ov_start_sector: 8,
                ..resume
            })
        );
        assert_eq!(
            req.new_c_uuid_parms(),
            Ok(Some(NewCUuidParms { clear_bm: true }))
        );
        assert_eq!(
            req.timeout_parms(),
            Ok(Some(TimeoutParms { timeout_type: 2 }))
        );
        let types = field_types(&body);
        assert_eq!(types, [(1, true)]);

        let no_type = request(0, 0, |w| put_empty_request(w, tla::TIMEOUT_PARMS).unwrap());
        assert_eq!(
            parse_request(&no_type).unwrap().timeout_parms(),
            Err(RequestError::REQUIRED_MISSING)
        );
        assert_eq!(
            parse_reply(&no_type).unwrap_err(),
            RequestError::REQUIRED_MISSING
        );
        let empty_role = request(0, 0, |w| put_empty_request(w, tla::SET_ROLE_PARMS).unwrap());
        assert_eq!(
            parse_request(&empty_role).unwrap().set_role_parms(),
            Ok(Some(SetRoleParms::default()))
        );
    }

    /// An events2-style message with every info and statistics struct.
    fn info_reply() -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let mut reply = ReplyBuilder::new(&mut buf, 7).unwrap();
        reply
            .put_notification_header(
                notification_header::NOTIFY_CHANGE | notification_header::NOTIFY_CONTINUES,
            )
            .unwrap();
        reply
            .put_resource_info(&ResourceInfo {
                role: Role::Primary as u32,
                susp: true,
                susp_nod: false,
                susp_fen: true,
            })
            .unwrap();
        reply
            .put_resource_statistics(&ResourceStatistics {
                write_ordering: resource_statistics::WO_BDEV_FLUSH,
            })
            .unwrap();
        reply
            .put_connection_info(&ConnectionInfo {
                connection_state: ConnState::Connected as u32,
                role: Role::Secondary as u32,
            })
            .unwrap();
        reply
            .put_connection_statistics(&ConnectionStatistics { congested: true })
            .unwrap();
        reply
            .put_peer_device_info(&PeerDeviceInfo {
                repl_state: ConnState::SyncSource as u32,
                disk_state: DiskState::Inconsistent as u32,
                resync_susp_user: 1,
                resync_susp_peer: 0,
                resync_susp_dependency: 1,
            })
            .unwrap();
        reply
            .put_peer_device_statistics(&PeerDeviceStatistics {
                received: 1,
                sent: 2,
                pending: 3,
                unacked: 4,
                out_of_sync: 5,
                resync_failed: 6,
                bitmap_uuid: 7,
                flags: 8,
            })
            .unwrap();
        reply
            .put_helper_info(&HelperInfo {
                name: b"fence-peer",
                status: 4,
            })
            .unwrap();
        reply.bytes().to_vec()
    }

    #[test]
    fn info_and_statistics_round_trip() {
        let bytes = info_reply();
        let r = parse_reply(&bytes).unwrap();
        assert_eq!(r.header.minor, 7);
        assert_eq!(r.notification_type, Some(0x8002));
        let res = r.resource_info.unwrap();
        assert_eq!(
            (res.role, res.susp, res.susp_nod, res.susp_fen),
            (1, true, false, true)
        );
        assert_eq!(r.resource_statistics.unwrap().write_ordering, 2);
        assert_eq!(
            r.connection_info,
            Some(ConnectionInfo {
                connection_state: 10,
                role: 2
            })
        );
        assert_eq!(
            r.connection_statistics,
            Some(ConnectionStatistics { congested: true })
        );
        let pd = r.peer_device_info.unwrap();
        assert_eq!((pd.repl_state, pd.disk_state), (16, 4));
        assert_eq!((pd.resync_susp_user, pd.resync_susp_dependency), (1, 1));
        let st = r.peer_device_statistics.unwrap();
        assert_eq!((st.received, st.sent, st.pending, st.unacked), (1, 2, 3, 4));
        assert_eq!(
            (st.out_of_sync, st.resync_failed, st.bitmap_uuid, st.flags),
            (5, 6, 7, 8)
        );
        assert_eq!(
            r.helper_info,
            Some(HelperInfo {
                name: b"fence-peer",
                status: 4
            })
        );
        assert_eq!((r.net_conf, r.state_info), (None, None));
        // Generated structs: NLA_F_NESTED, plain field numbers.
        for tla_attr in Attrs::new(&bytes[8..]) {
            let tla_attr = tla_attr.unwrap();
            assert!(tla_attr.nested, "{}", tla_attr.number);
            assert!(tla_attr.nested_attrs().all(|f| !f.unwrap().mandatory));
        }
        // Peer device statistics skip field 8.
        let pds = Attrs::new(&bytes[8..])
            .map(|a| a.unwrap())
            .find(|a| a.number == tla::PEER_DEVICE_STATISTICS)
            .unwrap();
        let numbers: Vec<u16> = pds.nested_attrs().map(|a| a.unwrap().number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 9]);

        let mut long_helper = [0u8; 256];
        let mut reply = ReplyBuilder::new(&mut long_helper, 0).unwrap();
        assert_eq!(
            reply.put_helper_info(&HelperInfo {
                name: &[b'h'; 32],
                status: 0
            }),
            Err(NlaError::TooLong)
        );
        let bad = request(0, 0, |w| {
            let nest = w.begin_nest(NLA_F_NESTED | tla::CONNECTION_INFO).unwrap();
            w.put_u64(connection_info::CONN_ROLE, 1).unwrap();
            w.end_nest(nest).unwrap();
        });
        assert_eq!(parse_reply(&bad).unwrap_err(), RequestError::INVALID_VALUE);
        let no_type = request(0, 0, |w| {
            put_empty_request(w, tla::NOTIFICATION_HEADER).unwrap()
        });
        assert_eq!(parse_reply(&no_type).unwrap().notification_type, None);
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
            let _ = req.net_conf();
            let _ = req.net_conf_change(odd_net_conf());
            let _ = req.resize_parms(ResizeParms::default());
            let _ = req.start_ov_parms(StartOvParms::default());
            let _ = req.new_c_uuid_parms();
            let _ = req.timeout_parms();
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
        samples.push(request(MINOR_ALL, FLAG_SET_DEFAULTS, |w| {
            put_net_conf_request(w, &odd_net_conf(), net_conf::ALL).unwrap();
            put_resize_parms_request(w, &ResizeParms::default(), resize_parms::ALL).unwrap();
            put_start_ov_parms_request(w, &StartOvParms::default(), start_ov_parms::ALL).unwrap();
            put_new_c_uuid_parms_request(w, &NewCUuidParms { clear_bm: true }).unwrap();
        }));
        samples.push(info_reply());
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
