//! The `--name=value` options of drbdsetup-84, as tables like drbd-utils'
//! `config_flags.c`: each option names a field of a DRBD struct and how its
//! value is written. The same tables build the clap arguments, turn the
//! given options into requests (in command line order, as drbdsetup-84
//! sends them), and print the options back in `show`.

use std::marker::PhantomData;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches};
use drbd_include::genl::{
    disk_conf as dc, net_conf as nc, resize_parms as rp, resource_opts as ro, DiskConf, Limits,
    NetConf, ResizeParms, ResourceOpts, StartOvParms,
};

use crate::args::{parse_scaled, Unit};

/// How an option's value is written and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One of the names; the field holds the position's number (u32).
    Enum {
        /// (name, value) pairs, in drbd-utils' map order.
        names: &'static [(&'static str, u32)],
        /// Whether names match case-insensitively (protocol).
        nocase: bool,
        /// The value `show` calls default.
        default: u32,
    },
    /// A number, with drbd-utils' unit suffixes.
    Number {
        /// Allowed range and default.
        limits: Limits<i64>,
        /// Unit of a bare number and of the field.
        unit: Unit,
        /// Field width: false u32 (or s32), true u64.
        wide: bool,
        /// Whether negative values are allowed (resync-after, s32).
        signed: bool,
    },
    /// yes/no, sent either way (`--opt` alone means yes).
    Bool {
        /// The value `show` calls default.
        default: bool,
    },
    /// yes/no, sent only for yes (one-shot flags like `--force`).
    Flag,
    /// A string for a C array of `size` bytes.
    Str {
        /// Array size, NUL included.
        size: usize,
    },
}

/// One option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptDef {
    /// Long option name.
    pub name: &'static str,
    /// Old name drbdsetup-84 still accepts.
    pub alias: Option<&'static str>,
    /// Field number in the option's struct.
    pub field: u16,
    /// Value type.
    pub kind: Kind,
    /// Unit text `show` prints as a comment.
    pub unit: Option<&'static str>,
}

/// A parsed option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// u32 field (numbers and enums).
    U32(u32),
    /// s32 field.
    S32(i32),
    /// u64 field.
    U64(u64),
    /// Flag field.
    Bool(bool),
    /// String field.
    Str(String),
}

impl Value {
    fn u32(&self) -> u32 {
        match self {
            Self::U32(v) => *v,
            Self::S32(v) => u32::from_ne_bytes(v.to_ne_bytes()),
            Self::U64(v) => u32::try_from(*v).unwrap_or(u32::MAX),
            Self::Bool(v) => u32::from(*v),
            Self::Str(_) => 0,
        }
    }

    fn s32(&self) -> i32 {
        i32::from_ne_bytes(self.u32().to_ne_bytes())
    }

    fn u64(&self) -> u64 {
        match self {
            Self::U64(v) => *v,
            other => u64::from(other.u32()),
        }
    }

    fn flag(&self) -> bool {
        matches!(self, Self::Bool(true))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Str(s) => s.as_bytes(),
            _ => &[],
        }
    }
}

const fn limits(min: i64, max: i64, default: i64) -> Limits<i64> {
    Limits { min, max, default }
}

const fn lim32(l: Limits<u32>) -> Limits<i64> {
    limits(l.min as i64, l.max as i64, l.default as i64)
}

const fn num(name: &'static str, field: u16, l: Limits<i64>, unit: Unit) -> OptDef {
    OptDef {
        name,
        alias: None,
        field,
        kind: Kind::Number {
            limits: l,
            unit,
            wide: false,
            signed: false,
        },
        unit: None,
    }
}

const fn with_unit(def: OptDef, unit: &'static str) -> OptDef {
    OptDef {
        unit: Some(unit),
        ..def
    }
}

const fn boolean(name: &'static str, field: u16, default: bool) -> OptDef {
    OptDef {
        name,
        alias: None,
        field,
        kind: Kind::Bool { default },
        unit: None,
    }
}

const fn flag(name: &'static str, field: u16) -> OptDef {
    OptDef {
        name,
        alias: None,
        field,
        kind: Kind::Flag,
        unit: None,
    }
}

const fn string(name: &'static str, field: u16, size: usize) -> OptDef {
    OptDef {
        name,
        alias: None,
        field,
        kind: Kind::Str { size },
        unit: None,
    }
}

const fn choice(
    name: &'static str,
    field: u16,
    names: &'static [(&'static str, u32)],
    default: u32,
) -> OptDef {
    OptDef {
        name,
        alias: None,
        field,
        kind: Kind::Enum {
            names,
            nocase: false,
            default,
        },
        unit: None,
    }
}

const SECONDS_10: &str = "1/10 seconds";

/// `--on-io-error`.
pub const ON_IO_ERROR_NAMES: &[(&str, u32)] =
    &[("pass_on", 0), ("call-local-io-error", 1), ("detach", 2)];
const FENCING_NAMES: &[(&str, u32)] = drbd_include::genl::Fencing::TEXTS;
const READ_BALANCING_NAMES: &[(&str, u32)] = &[
    ("prefer-local", 0),
    ("prefer-remote", 1),
    ("round-robin", 2),
    ("least-pending", 3),
    ("when-congested-remote", 4),
    ("32K-striping", 5),
    ("64K-striping", 6),
    ("128K-striping", 7),
    ("256K-striping", 8),
    ("512K-striping", 9),
    ("1M-striping", 10),
];
const PROTOCOL_NAMES: &[(&str, u32)] = drbd_include::genl::WireProtocol::TEXTS;
const AFTER_SB_0P_NAMES: &[(&str, u32)] = &[
    ("disconnect", nc::ASB_DISCONNECT),
    ("discard-younger-primary", nc::ASB_DISCARD_YOUNGER_PRI),
    ("discard-older-primary", nc::ASB_DISCARD_OLDER_PRI),
    ("discard-zero-changes", nc::ASB_DISCARD_ZERO_CHG),
    ("discard-least-changes", nc::ASB_DISCARD_LEAST_CHG),
    ("discard-local", nc::ASB_DISCARD_LOCAL),
    ("discard-remote", nc::ASB_DISCARD_REMOTE),
];
const AFTER_SB_1P_NAMES: &[(&str, u32)] = &[
    ("disconnect", nc::ASB_DISCONNECT),
    ("consensus", nc::ASB_CONSENSUS),
    ("discard-secondary", nc::ASB_DISCARD_SECONDARY),
    ("call-pri-lost-after-sb", nc::ASB_CALL_HELPER),
    ("violently-as0p", nc::ASB_VIOLENTLY),
];
const AFTER_SB_2P_NAMES: &[(&str, u32)] = &[
    ("disconnect", nc::ASB_DISCONNECT),
    ("call-pri-lost-after-sb", nc::ASB_CALL_HELPER),
    ("violently-as0p", nc::ASB_VIOLENTLY),
];
const RR_CONFLICT_NAMES: &[(&str, u32)] = &[
    ("disconnect", nc::ASB_DISCONNECT),
    ("call-pri-lost", nc::ASB_CALL_HELPER),
    ("violently", nc::ASB_VIOLENTLY),
];
const ON_CONGESTION_NAMES: &[(&str, u32)] = &[
    ("block", nc::OC_BLOCK),
    ("pull-ahead", nc::OC_PULL_AHEAD),
    ("disconnect", nc::OC_DISCONNECT),
];
const ON_NO_DATA_NAMES: &[(&str, u32)] = &[("io-error", 0), ("suspend-io", 1)];

/// Disk options disk-options can change (drbd-utils' CHANGEABLE_DISK_OPTIONS).
pub const DISK_OPTIONS: &[OptDef] = &[
    choice(
        "on-io-error",
        dc::ON_IO_ERROR,
        ON_IO_ERROR_NAMES,
        dc::ON_IO_ERROR_DEF,
    ),
    choice("fencing", dc::FENCING, FENCING_NAMES, dc::FENCING_DEF),
    boolean("disk-barrier", dc::DISK_BARRIER, dc::DISK_BARRIER_DEF),
    boolean("disk-flushes", dc::DISK_FLUSHES, dc::DISK_FLUSHES_DEF),
    boolean("disk-drain", dc::DISK_DRAIN, dc::DISK_DRAIN_DEF),
    boolean("md-flushes", dc::MD_FLUSHES, dc::MD_FLUSHES_DEF),
    with_unit(
        num(
            "resync-rate",
            dc::RESYNC_RATE,
            lim32(dc::RESYNC_RATE_LIMITS),
            Unit::KiB,
        ),
        "bytes/second",
    ),
    OptDef {
        kind: Kind::Number {
            limits: limits(-1, (1 << 20) - 1, -1),
            unit: Unit::One,
            wide: false,
            signed: true,
        },
        ..num("resync-after", dc::RESYNC_AFTER, limits(0, 0, 0), Unit::One)
    },
    num(
        "al-extents",
        dc::AL_EXTENTS,
        lim32(dc::AL_EXTENTS_LIMITS),
        Unit::One,
    ),
    boolean("al-updates", dc::AL_UPDATES, dc::AL_UPDATES_DEF),
    boolean(
        "discard-zeroes-if-aligned",
        dc::DISCARD_ZEROES_IF_ALIGNED,
        dc::DISCARD_ZEROES_IF_ALIGNED_DEF,
    ),
    boolean(
        "disable-write-same",
        dc::DISABLE_WRITE_SAME,
        dc::DISABLE_WRITE_SAME_DEF,
    ),
    with_unit(
        num(
            "c-plan-ahead",
            dc::C_PLAN_AHEAD,
            lim32(dc::C_PLAN_AHEAD_LIMITS),
            Unit::One,
        ),
        SECONDS_10,
    ),
    with_unit(
        num(
            "c-delay-target",
            dc::C_DELAY_TARGET,
            lim32(dc::C_DELAY_TARGET_LIMITS),
            Unit::One,
        ),
        SECONDS_10,
    ),
    with_unit(
        num(
            "c-fill-target",
            dc::C_FILL_TARGET,
            lim32(dc::C_FILL_TARGET_LIMITS),
            Unit::Sectors,
        ),
        "bytes",
    ),
    with_unit(
        num(
            "c-max-rate",
            dc::C_MAX_RATE,
            lim32(dc::C_MAX_RATE_LIMITS),
            Unit::KiB,
        ),
        "bytes/second",
    ),
    with_unit(
        num(
            "c-min-rate",
            dc::C_MIN_RATE,
            lim32(dc::C_MIN_RATE_LIMITS),
            Unit::KiB,
        ),
        "bytes/second",
    ),
    with_unit(
        num(
            "disk-timeout",
            dc::DISK_TIMEOUT,
            lim32(dc::DISK_TIMEOUT_LIMITS),
            Unit::One,
        ),
        SECONDS_10,
    ),
    choice(
        "read-balancing",
        dc::READ_BALANCING,
        READ_BALANCING_NAMES,
        dc::READ_BALANCING_DEF,
    ),
    num(
        "rs-discard-granularity",
        dc::RS_DISCARD_GRANULARITY,
        lim32(dc::RS_DISCARD_GRANULARITY_LIMITS),
        Unit::One,
    ),
];

/// Options only attach takes, before the changeable ones.
pub const ATTACH_ONLY: &[OptDef] = &[
    OptDef {
        kind: Kind::Number {
            limits: limits(0, 2 << 40, 0),
            unit: Unit::Sectors,
            wide: true,
            signed: false,
        },
        ..with_unit(
            num("size", dc::DISK_SIZE, limits(0, 0, 0), Unit::Sectors),
            "bytes",
        )
    },
    num(
        "max-bio-bvecs",
        dc::MAX_BIO_BVECS,
        lim32(dc::MAX_BIO_BVECS_LIMITS),
        Unit::One,
    ),
];

/// Network options net-options can change (CHANGEABLE_NET_OPTIONS).
pub const NET_OPTIONS: &[OptDef] = &[
    OptDef {
        kind: Kind::Enum {
            names: PROTOCOL_NAMES,
            nocase: true,
            default: nc::WIRE_PROTOCOL_DEF,
        },
        ..choice("protocol", nc::WIRE_PROTOCOL, PROTOCOL_NAMES, 0)
    },
    with_unit(
        num("timeout", nc::TIMEOUT, lim32(nc::TIMEOUT_LIMITS), Unit::One),
        SECONDS_10,
    ),
    num(
        "max-epoch-size",
        nc::MAX_EPOCH_SIZE,
        lim32(nc::MAX_EPOCH_SIZE_LIMITS),
        Unit::One,
    ),
    num(
        "max-buffers",
        nc::MAX_BUFFERS,
        lim32(nc::MAX_BUFFERS_LIMITS),
        Unit::One,
    ),
    num(
        "unplug-watermark",
        nc::UNPLUG_WATERMARK,
        lim32(nc::UNPLUG_WATERMARK_LIMITS),
        Unit::One,
    ),
    with_unit(
        num(
            "connect-int",
            nc::CONNECT_INT,
            lim32(nc::CONNECT_INT_LIMITS),
            Unit::One,
        ),
        "seconds",
    ),
    with_unit(
        num(
            "ping-int",
            nc::PING_INT,
            lim32(nc::PING_INT_LIMITS),
            Unit::One,
        ),
        "seconds",
    ),
    with_unit(
        num(
            "sndbuf-size",
            nc::SNDBUF_SIZE,
            lim32(nc::SNDBUF_SIZE_LIMITS),
            Unit::One,
        ),
        "bytes",
    ),
    with_unit(
        num(
            "rcvbuf-size",
            nc::RCVBUF_SIZE,
            lim32(nc::RCVBUF_SIZE_LIMITS),
            Unit::One,
        ),
        "bytes",
    ),
    num(
        "ko-count",
        nc::KO_COUNT,
        lim32(nc::KO_COUNT_LIMITS),
        Unit::One,
    ),
    boolean(
        "allow-two-primaries",
        nc::TWO_PRIMARIES,
        nc::TWO_PRIMARIES_DEF,
    ),
    string("cram-hmac-alg", nc::CRAM_HMAC_ALG, nc::SECRET_SIZE),
    string("shared-secret", nc::SHARED_SECRET, nc::SECRET_SIZE),
    choice(
        "after-sb-0pri",
        nc::AFTER_SB_0P,
        AFTER_SB_0P_NAMES,
        nc::AFTER_SB_0P_DEF,
    ),
    choice(
        "after-sb-1pri",
        nc::AFTER_SB_1P,
        AFTER_SB_1P_NAMES,
        nc::AFTER_SB_1P_DEF,
    ),
    choice(
        "after-sb-2pri",
        nc::AFTER_SB_2P,
        AFTER_SB_2P_NAMES,
        nc::AFTER_SB_2P_DEF,
    ),
    boolean("always-asbp", nc::ALWAYS_ASBP, nc::ALWAYS_ASBP_DEF),
    choice(
        "rr-conflict",
        nc::RR_CONFLICT,
        RR_CONFLICT_NAMES,
        nc::RR_CONFLICT_DEF,
    ),
    with_unit(
        num(
            "ping-timeout",
            nc::PING_TIMEO,
            lim32(nc::PING_TIMEO_LIMITS),
            Unit::One,
        ),
        SECONDS_10,
    ),
    string("data-integrity-alg", nc::INTEGRITY_ALG, nc::SECRET_SIZE),
    boolean("tcp-cork", nc::TCP_CORK, nc::TCP_CORK_DEF),
    choice(
        "on-congestion",
        nc::ON_CONGESTION,
        ON_CONGESTION_NAMES,
        nc::ON_CONGESTION_DEF,
    ),
    with_unit(
        num(
            "congestion-fill",
            nc::CONG_FILL,
            lim32(nc::CONG_FILL_LIMITS),
            Unit::Sectors,
        ),
        "bytes",
    ),
    num(
        "congestion-extents",
        nc::CONG_EXTENTS,
        lim32(nc::CONG_EXTENTS_LIMITS),
        Unit::One,
    ),
    string("csums-alg", nc::CSUMS_ALG, nc::SECRET_SIZE),
    boolean(
        "csums-after-crash-only",
        nc::CSUMS_AFTER_CRASH_ONLY,
        nc::CSUMS_AFTER_CRASH_ONLY_DEF,
    ),
    string("verify-alg", nc::VERIFY_ALG, nc::SECRET_SIZE),
    boolean("use-rle", nc::USE_RLE, nc::USE_RLE_DEF),
    num(
        "socket-check-timeout",
        nc::SOCK_CHECK_TIMEO,
        lim32(nc::SOCK_CHECK_TIMEO_LIMITS),
        Unit::One,
    ),
];

/// Options only connect takes, before the changeable ones. (drbd-utils'
/// `--alternate-address`/`--alternate-peer-address` fill net_conf fields
/// 35 and 36, which the 8.4 kernel does not have; they are not offered.)
pub const CONNECT_ONLY: &[OptDef] = &[
    OptDef {
        alias: Some("dry-run"),
        ..flag("tentative", nc::TENTATIVE)
    },
    flag("discard-my-data", nc::DISCARD_MY_DATA),
];

/// resource-options and new-resource.
pub const RESOURCE_OPTIONS: &[OptDef] = &[
    string("cpu-mask", ro::CPU_MASK, ro::CPU_MASK_SIZE),
    choice(
        "on-no-data-accessible",
        ro::ON_NO_DATA,
        ON_NO_DATA_NAMES,
        ro::ON_NO_DATA_DEF,
    ),
];

/// resize.
pub const RESIZE_OPTIONS: &[OptDef] = &[
    OptDef {
        kind: Kind::Number {
            limits: limits(0, 2 << 40, 0),
            unit: Unit::Sectors,
            wide: true,
            signed: false,
        },
        ..with_unit(
            num("size", rp::RESIZE_SIZE, limits(0, 0, 0), Unit::Sectors),
            "bytes",
        )
    },
    flag("assume-peer-has-space", rp::RESIZE_FORCE),
    flag("assume-clean", rp::NO_RESYNC),
    num(
        "al-stripes",
        rp::AL_STRIPES,
        lim32(rp::AL_STRIPES_LIMITS),
        Unit::One,
    ),
    num(
        "al-stripe-size-kB",
        rp::AL_STRIPE_SIZE,
        lim32(rp::AL_STRIPE_SIZE_LIMITS),
        Unit::KiB,
    ),
];

const SECTOR_RANGE: Kind = Kind::Number {
    limits: limits(0, 2 << 40, 0),
    unit: Unit::Sectors,
    wide: true,
    signed: false,
};

/// verify.
pub const VERIFY_OPTIONS: &[OptDef] = &[
    OptDef {
        kind: SECTOR_RANGE,
        ..with_unit(num("start", 1, limits(0, 0, 0), Unit::Sectors), "bytes")
    },
    OptDef {
        kind: SECTOR_RANGE,
        ..with_unit(num("stop", 2, limits(0, 0, 0), Unit::Sectors), "bytes")
    },
];

/// primary.
pub const PRIMARY_OPTIONS: &[OptDef] = &[OptDef {
    alias: Some("overwrite-data-of-peer"),
    ..flag("force", 1)
}];

/// detach and disconnect.
pub const FORCE_OPTION: &[OptDef] = &[flag("force", 1)];

/// new-current-uuid.
pub const NEW_UUID_OPTIONS: &[OptDef] = &[flag("clear-bitmap", 1)];

/// Parses a number the way drbd-utils' `m_strtoll` does, for `def`.
fn parse_number(text: &str, lim: Limits<i64>, unit: Unit, signed: bool) -> Result<i64, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, text),
    };
    let magnitude = parse_scaled(digits, unit)?;
    let magnitude = i64::try_from(magnitude).map_err(|_| format!("{text}: out of range"))?;
    let value = if negative { -magnitude } else { magnitude };
    if lim.contains(value) {
        Ok(value)
    } else {
        Err(format!(
            "{text}: value {value} out of range [{}..{}]",
            lim.min, lim.max
        ))
    }
}

fn yes_no(text: &str) -> Result<bool, String> {
    match text {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("'{text}' is neither yes nor no")),
    }
}

impl OptDef {
    /// Parses a command line value for this option.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        match self.kind {
            Kind::Enum { names, nocase, .. } => names
                .iter()
                .find(|(name, _)| {
                    if nocase {
                        name.eq_ignore_ascii_case(text)
                    } else {
                        *name == text
                    }
                })
                .map(|(_, value)| Value::U32(*value))
                .ok_or_else(|| format!("invalid argument '{text}'")),
            Kind::Number {
                limits: lim,
                unit,
                wide,
                signed,
            } => {
                let value = parse_number(text, lim, unit, signed)?;
                let out_of_range = || format!("{text}: out of range");
                if wide {
                    u64::try_from(value)
                        .map(Value::U64)
                        .map_err(|_| out_of_range())
                } else if signed {
                    i32::try_from(value)
                        .map(Value::S32)
                        .map_err(|_| out_of_range())
                } else {
                    u32::try_from(value)
                        .map(Value::U32)
                        .map_err(|_| out_of_range())
                }
            }
            Kind::Bool { .. } | Kind::Flag => yes_no(text).map(Value::Bool),
            Kind::Str { size } => {
                if text.len() >= size {
                    Err(format!("longer than {} bytes", size.saturating_sub(1)))
                } else {
                    Ok(Value::Str(text.to_owned()))
                }
            }
        }
    }

    /// Whether this option writes its field for `value` (a Flag given as
    /// "no" only opens the struct's nest, like drbdsetup-84's `put_flag`).
    fn sends(&self, value: &Value) -> bool {
        !matches!((self.kind, value), (Kind::Flag, Value::Bool(false)))
    }

    fn value_name(&self) -> String {
        match self.kind {
            Kind::Enum { names, .. } => {
                let all: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                format!("{{{}}}", all.join("|"))
            }
            Kind::Number { limits: l, .. } => format!("({} ... {})", l.min, l.max),
            Kind::Bool { .. } | Kind::Flag => "yes|no".to_owned(),
            Kind::Str { size } => format!("<string of at most {} bytes>", size.saturating_sub(1)),
        }
    }

    fn arg(&'static self) -> Arg {
        let parser = move |text: &str| self.parse(text);
        let value_name = match self.kind {
            Kind::Bool { .. } | Kind::Flag => "yes|no",
            _ => "VALUE",
        };
        let mut arg = Arg::new(self.name)
            .long(self.name)
            .value_name(value_name)
            .action(ArgAction::Set)
            .value_parser(parser);
        if !matches!(self.kind, Kind::Bool { .. } | Kind::Flag) {
            arg = arg.help(self.value_name());
        }
        if let Some(alias) = self.alias {
            arg = arg.alias(alias);
        }
        match self.kind {
            Kind::Bool { .. } | Kind::Flag => arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("yes"),
            Kind::Number { signed: true, .. } => arg.allow_negative_numbers(true),
            _ => arg,
        }
    }
}

/// A set of option tables one command accepts.
pub trait OptionSet: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The tables, in drbd-utils' order.
    const TABLES: &'static [&'static [OptDef]];
    /// Whether the command takes `--set-defaults`.
    const SET_DEFAULTS: bool = false;
}

/// The options given on a command line, in command line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given<S> {
    /// (option, value) pairs in command line order; each option at most
    /// once (the last occurrence wins).
    pub values: Vec<(&'static OptDef, Value)>,
    /// `--set-defaults`.
    pub set_defaults: bool,
    set: PhantomData<S>,
}

impl<S> Default for Given<S> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            set_defaults: false,
            set: PhantomData,
        }
    }
}

impl<S> Given<S> {
    /// Options given as (option name, value text), as if on a command line,
    /// for tests; looks the names up in `tables`.
    #[cfg(test)]
    pub fn parsed(tables: &[&'static [OptDef]], given: &[(&str, &str)]) -> Self {
        let values = given
            .iter()
            .map(|(name, text)| {
                let def = tables
                    .iter()
                    .flat_map(|t| t.iter())
                    .find(|d| d.name == *name)
                    .unwrap();
                (def, def.parse(text).unwrap())
            })
            .collect();
        Self {
            values,
            ..Self::default()
        }
    }

    /// Whether any option of the struct was given (then its nest is sent,
    /// even if only "no" flags were given).
    pub fn any(&self) -> bool {
        !self.values.is_empty()
    }

    /// The fields to send, in command line order.
    pub fn fields(&self) -> Vec<u16> {
        self.values
            .iter()
            .filter(|(def, value)| def.sends(value))
            .map(|(def, _)| def.field)
            .collect()
    }

    /// The value given for field `field`.
    pub fn get(&self, field: u16) -> Option<&Value> {
        self.values
            .iter()
            .rev()
            .find(|(def, _)| def.field == field)
            .map(|(_, value)| value)
    }
}

/// The clap argument id of `--set-defaults`.
const SET_DEFAULTS: &str = "set-defaults";

impl<S: OptionSet> Args for Given<S> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let mut cmd = cmd;
        for table in S::TABLES {
            for def in *table {
                cmd = cmd.arg(def.arg());
            }
        }
        if S::SET_DEFAULTS {
            cmd = cmd.arg(
                Arg::new(SET_DEFAULTS)
                    .long(SET_DEFAULTS)
                    .action(ArgAction::SetTrue)
                    .help("Start from the defaults instead of the current settings"),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<S: OptionSet> FromArgMatches for Given<S> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut indexed: Vec<(usize, &'static OptDef, Value)> = Vec::new();
        for table in S::TABLES {
            for def in *table {
                if let (Some(value), Some(index)) = (
                    matches.get_one::<Value>(def.name),
                    matches.index_of(def.name),
                ) {
                    indexed.push((index, def, value.clone()));
                }
            }
        }
        indexed.sort_by_key(|(index, _, _)| *index);
        let set_defaults = S::SET_DEFAULTS && matches.get_flag(SET_DEFAULTS);
        Ok(Self {
            values: indexed.into_iter().map(|(_, d, v)| (d, v)).collect(),
            set_defaults,
            set: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

macro_rules! option_set {
    ($(#[$meta:meta])* $name:ident, [$($table:expr),*], $defaults:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name;
        impl OptionSet for $name {
            const TABLES: &'static [&'static [OptDef]] = &[$($table),*];
            const SET_DEFAULTS: bool = $defaults;
        }
    };
}

option_set!(
    /// attach: attach-only and changeable disk options.
    AttachSet,
    [ATTACH_ONLY, DISK_OPTIONS],
    false
);
option_set!(
    /// disk-options.
    DiskSet,
    [DISK_OPTIONS],
    true
);
option_set!(
    /// connect: connect-only and changeable network options.
    ConnectSet,
    [CONNECT_ONLY, NET_OPTIONS],
    false
);
option_set!(
    /// net-options.
    NetSet,
    [NET_OPTIONS],
    true
);
option_set!(
    /// new-resource.
    NewResourceSet,
    [RESOURCE_OPTIONS],
    false
);
option_set!(
    /// resource-options.
    ResourceSet,
    [RESOURCE_OPTIONS],
    true
);
option_set!(
    /// resize.
    ResizeSet,
    [RESIZE_OPTIONS],
    false
);
option_set!(
    /// verify.
    VerifySet,
    [VERIFY_OPTIONS],
    false
);
option_set!(
    /// primary.
    PrimarySet,
    [PRIMARY_OPTIONS],
    false
);
option_set!(
    /// detach, disconnect.
    ForceSet,
    [FORCE_OPTION],
    false
);
option_set!(
    /// new-current-uuid.
    NewUuidSet,
    [NEW_UUID_OPTIONS],
    false
);

/// DISK_CONF with the given options applied (strings borrow from `given`).
pub fn disk_conf<'a, S>(base: DiskConf<'a>, given: &'a Given<S>) -> DiskConf<'a> {
    let mut c = base;
    for (def, v) in &given.values {
        match def.field {
            dc::DISK_SIZE => c.disk_size = v.u64(),
            dc::MAX_BIO_BVECS => c.max_bio_bvecs = v.u32(),
            dc::ON_IO_ERROR => c.on_io_error = v.u32(),
            dc::FENCING => c.fencing = v.u32(),
            dc::RESYNC_RATE => c.resync_rate = v.u32(),
            dc::RESYNC_AFTER => c.resync_after = v.s32(),
            dc::AL_EXTENTS => c.al_extents = v.u32(),
            dc::C_PLAN_AHEAD => c.c_plan_ahead = v.u32(),
            dc::C_DELAY_TARGET => c.c_delay_target = v.u32(),
            dc::C_FILL_TARGET => c.c_fill_target = v.u32(),
            dc::C_MAX_RATE => c.c_max_rate = v.u32(),
            dc::C_MIN_RATE => c.c_min_rate = v.u32(),
            dc::DISK_BARRIER => c.disk_barrier = v.flag(),
            dc::DISK_FLUSHES => c.disk_flushes = v.flag(),
            dc::DISK_DRAIN => c.disk_drain = v.flag(),
            dc::MD_FLUSHES => c.md_flushes = v.flag(),
            dc::DISK_TIMEOUT => c.disk_timeout = v.u32(),
            dc::READ_BALANCING => c.read_balancing = v.u32(),
            dc::AL_UPDATES => c.al_updates = v.flag(),
            dc::DISCARD_ZEROES_IF_ALIGNED => c.discard_zeroes_if_aligned = v.flag(),
            dc::RS_DISCARD_GRANULARITY => c.rs_discard_granularity = v.u32(),
            dc::DISABLE_WRITE_SAME => c.disable_write_same = v.flag(),
            _ => {}
        }
    }
    c
}

/// NET_CONF with the given options applied over the defaults.
pub fn net_conf<S>(given: &Given<S>) -> NetConf<'_> {
    let mut c = NetConf::default();
    for (def, v) in &given.values {
        match def.field {
            nc::SHARED_SECRET => c.shared_secret = v.bytes(),
            nc::CRAM_HMAC_ALG => c.cram_hmac_alg = v.bytes(),
            nc::INTEGRITY_ALG => c.integrity_alg = v.bytes(),
            nc::VERIFY_ALG => c.verify_alg = v.bytes(),
            nc::CSUMS_ALG => c.csums_alg = v.bytes(),
            nc::WIRE_PROTOCOL => c.wire_protocol = v.u32(),
            nc::CONNECT_INT => c.connect_int = v.u32(),
            nc::TIMEOUT => c.timeout = v.u32(),
            nc::PING_INT => c.ping_int = v.u32(),
            nc::PING_TIMEO => c.ping_timeo = v.u32(),
            nc::SNDBUF_SIZE => c.sndbuf_size = v.u32(),
            nc::RCVBUF_SIZE => c.rcvbuf_size = v.u32(),
            nc::KO_COUNT => c.ko_count = v.u32(),
            nc::MAX_BUFFERS => c.max_buffers = v.u32(),
            nc::MAX_EPOCH_SIZE => c.max_epoch_size = v.u32(),
            nc::UNPLUG_WATERMARK => c.unplug_watermark = v.u32(),
            nc::AFTER_SB_0P => c.after_sb_0p = v.u32(),
            nc::AFTER_SB_1P => c.after_sb_1p = v.u32(),
            nc::AFTER_SB_2P => c.after_sb_2p = v.u32(),
            nc::RR_CONFLICT => c.rr_conflict = v.u32(),
            nc::ON_CONGESTION => c.on_congestion = v.u32(),
            nc::CONG_FILL => c.cong_fill = v.u32(),
            nc::CONG_EXTENTS => c.cong_extents = v.u32(),
            nc::TWO_PRIMARIES => c.two_primaries = v.flag(),
            nc::DISCARD_MY_DATA => c.discard_my_data = v.flag(),
            nc::TCP_CORK => c.tcp_cork = v.flag(),
            nc::ALWAYS_ASBP => c.always_asbp = v.flag(),
            nc::TENTATIVE => c.tentative = v.flag(),
            nc::USE_RLE => c.use_rle = v.flag(),
            nc::CSUMS_AFTER_CRASH_ONLY => c.csums_after_crash_only = v.flag(),
            nc::SOCK_CHECK_TIMEO => c.sock_check_timeo = v.u32(),
            _ => {}
        }
    }
    c
}

/// RESOURCE_OPTS with the given options applied over the defaults.
pub fn resource_opts<S>(given: &Given<S>) -> ResourceOpts<'_> {
    let mut o = ResourceOpts::default();
    for (def, v) in &given.values {
        match def.field {
            ro::CPU_MASK => o.cpu_mask = v.bytes(),
            ro::ON_NO_DATA => o.on_no_data = v.u32(),
            _ => {}
        }
    }
    o
}

/// RESIZE_PARMS with the given options applied over the defaults.
pub fn resize_parms<S>(given: &Given<S>) -> ResizeParms {
    let mut p = ResizeParms::default();
    for (def, v) in &given.values {
        match def.field {
            rp::RESIZE_SIZE => p.resize_size = v.u64(),
            rp::RESIZE_FORCE => p.resize_force = v.flag(),
            rp::NO_RESYNC => p.no_resync = v.flag(),
            rp::AL_STRIPES => p.al_stripes = v.u32(),
            rp::AL_STRIPE_SIZE => p.al_stripe_size = v.u32(),
            _ => {}
        }
    }
    p
}

/// START_OV_PARMS with the given options applied over the defaults.
pub fn start_ov_parms<S>(given: &Given<S>) -> StartOvParms {
    let mut p = StartOvParms::default();
    for (def, v) in &given.values {
        match def.field {
            1 => p.ov_start_sector = v.u64(),
            2 => p.ov_stop_sector = v.u64(),
            _ => {}
        }
    }
    p
}

/// Whether the flag option with field 1 (`--force`, `--clear-bitmap`) was
/// given as yes.
pub fn flag_given<S>(given: &Given<S>) -> bool {
    given.get(1).is_some_and(Value::flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> &'static OptDef {
        [
            ATTACH_ONLY,
            DISK_OPTIONS,
            CONNECT_ONLY,
            NET_OPTIONS,
            RESIZE_OPTIONS,
        ]
        .iter()
        .flat_map(|t| t.iter())
        .find(|d| d.name == name)
        .unwrap()
    }

    #[test]
    fn values() {
        assert_eq!(def("protocol").parse("b"), Ok(Value::U32(2)));
        assert!(def("on-io-error").parse("Detach").is_err(), "case matters");
        assert_eq!(def("resync-rate").parse("100M"), Ok(Value::U32(102_400)));
        assert_eq!(def("c-fill-target").parse("1M"), Ok(Value::U32(2048)));
        assert_eq!(def("congestion-fill").parse("1G"), Ok(Value::U32(1 << 21)));
        assert_eq!(def("sndbuf-size").parse("1M"), Ok(Value::U32(1 << 20)));
        assert_eq!(def("size").parse("1T").ok(), None);
        assert_eq!(def("size").parse("4096"), Ok(Value::U64(4096)));
        assert_eq!(def("resync-after").parse("-1"), Ok(Value::S32(-1)));
        assert!(def("al-extents").parse("-1").is_err());
        assert_eq!(def("tcp-cork").parse("no"), Ok(Value::Bool(false)));
        assert!(def("tcp-cork").parse("off").is_err());
        assert_eq!(def("verify-alg").parse("md5"), Ok(Value::Str("md5".into())));
        assert!(def("verify-alg").parse(&"x".repeat(64)).is_err());
        assert_eq!(def("al-stripe-size-kB").parse("1M"), Ok(Value::U32(1024)));
    }

    #[test]
    fn flags_given_as_no_open_the_nest_only() {
        let given: Given<ForceSet> = Given::parsed(&[FORCE_OPTION], &[("force", "no")]);
        assert!(given.any());
        assert!(given.fields().is_empty());
        assert!(!flag_given(&given));
        let given: Given<ConnectSet> = Given::parsed(
            &[CONNECT_ONLY, NET_OPTIONS],
            &[
                ("tentative", "no"),
                ("ping-int", "3"),
                ("allow-two-primaries", "no"),
            ],
        );
        assert_eq!(given.fields(), [nc::PING_INT, nc::TWO_PRIMARIES]);
        let conf = net_conf(&given);
        assert_eq!(
            (conf.ping_int, conf.two_primaries, conf.tentative),
            (3, false, false)
        );
    }

    #[test]
    fn every_option_names_a_field_of_its_struct() {
        for def in DISK_OPTIONS.iter().chain(ATTACH_ONLY) {
            assert!(
                dc::ALL & drbd_include::genl::field_bit(def.field) != 0,
                "{}",
                def.name
            );
        }
        for def in NET_OPTIONS.iter().chain(CONNECT_ONLY) {
            assert!(
                nc::ALL & drbd_include::genl::field_bit(def.field) != 0,
                "{}",
                def.name
            );
        }
        for def in RESIZE_OPTIONS {
            assert!(
                rp::ALL & drbd_include::genl::field_bit(def.field) != 0,
                "{}",
                def.name
            );
        }
        // Every field of the changeable structs has an option.
        let covered = |defs: &[&[OptDef]]| {
            defs.iter()
                .flat_map(|t| t.iter())
                .fold(0u64, |m, d| m | drbd_include::genl::field_bit(d.field))
        };
        assert_eq!(
            covered(&[NET_OPTIONS, CONNECT_ONLY]),
            nc::ALL,
            "all of net_conf"
        );
        assert_eq!(
            covered(&[DISK_OPTIONS, ATTACH_ONLY]),
            dc::ALL & !dc::REQUIRED,
            "all of disk_conf but the device fields"
        );
    }
}
