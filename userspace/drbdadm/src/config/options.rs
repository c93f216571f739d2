//! The option keywords drbd.conf knows for DRBD 8.4 (the keyword table of
//! drbd-utils' 8.4 scanner), their range checks, and the drbdsetup field
//! descriptions (default values and units) `adjust` needs to compare a
//! configuration with what the kernel reports.

/// The sections that hold `name value;` options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Disk,
    Net,
    Startup,
    /// `options { }`: resource options.
    Res,
    Handlers,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Disk => "disk",
            Section::Net => "net",
            Section::Startup => "startup",
            Section::Res => "options",
            Section::Handlers => "handlers",
        }
    }
}

/// How an option keyword is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `name value;`
    Value,
    /// `name [yes|no];` (no value means yes)
    Flag,
    /// `no-name;` meaning `name no;` (old syntax)
    NoFlag,
    /// Parsed by the section itself (become-primary-on, stacked-timeouts,
    /// discard-my-data).
    Delegate,
    /// Accepted with a value and ignored.
    Deprecated,
}

/// A numeric range, in units of `scale` (see [`strtoll`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: i64,
    pub max: i64,
    pub scale: char,
}

const fn r(min: i64, max: i64, scale: char) -> Option<Range> {
    Some(Range { min, max, scale })
}

/// One keyword of an option section.
#[derive(Clone, Copy, Debug)]
pub struct Keyword {
    pub name: &'static str,
    /// None for deprecated keywords, which any option section accepts.
    pub section: Option<Section>,
    pub style: Style,
    pub range: Option<Range>,
    /// Also valid in the deprecated `syncer { }` section.
    pub syncer: bool,
    /// The name the option is stored under (deprecated aliases).
    pub canonical: &'static str,
}

const fn kw(name: &'static str, section: Section, style: Style) -> Keyword {
    Keyword {
        name,
        section: Some(section),
        style,
        range: None,
        syncer: false,
        canonical: name,
    }
}

const fn kwr(name: &'static str, section: Section, range: Option<Range>) -> Keyword {
    Keyword {
        name,
        section: Some(section),
        style: Style::Value,
        range,
        syncer: false,
        canonical: name,
    }
}

const fn sy(mut k: Keyword) -> Keyword {
    k.syncer = true;
    k
}

const fn alias(mut k: Keyword, canonical: &'static str) -> Keyword {
    k.canonical = canonical;
    k
}

const fn deprecated(name: &'static str) -> Keyword {
    Keyword {
        name,
        section: None,
        style: Style::Deprecated,
        range: None,
        syncer: false,
        canonical: name,
    }
}

use Section::{Disk, Handlers, Net, Res, Startup};
use Style::{Delegate, Flag, NoFlag, Value};

const RATE: Option<Range> = r(1, 4 << 20, 'k');

/// Every option keyword, as drbd-utils 8.4's scanner classifies them.
pub const KEYWORDS: &[Keyword] = &[
    // disk
    kwr("size", Disk, r(0, 2 << 40, 's')),
    kw("on-io-error", Disk, Value),
    kw("fencing", Disk, Value),
    kw("max-bio-bvecs", Disk, Value),
    kw("disk-timeout", Disk, Value),
    kw("read-balancing", Disk, Value),
    kw("rs-discard-granularity", Disk, Value),
    kw("use-bmbv", Disk, Flag),
    kw("disk-barrier", Disk, Flag),
    kw("disk-flushes", Disk, Flag),
    kw("disk-drain", Disk, Flag),
    kw("md-flushes", Disk, Flag),
    kw("al-updates", Disk, Flag),
    kw("discard-zeroes-if-aligned", Disk, Flag),
    kw("disable-write-same", Disk, Flag),
    kw("no-disk-barrier", Disk, NoFlag),
    kw("no-disk-flushes", Disk, NoFlag),
    kw("no-disk-drain", Disk, NoFlag),
    kw("no-md-flushes", Disk, NoFlag),
    sy(alias(kwr("rate", Disk, RATE), "resync-rate")),
    kwr("resync-rate", Disk, RATE),
    sy(alias(kw("after", Disk, Value), "resync-after")),
    kw("resync-after", Disk, Value),
    // al-extents is clamped by the kernel, not range checked.
    sy(kw("al-extents", Disk, Value)),
    sy(kwr("c-plan-ahead", Disk, r(0, 300, '1'))),
    sy(kwr("c-delay-target", Disk, r(1, 100, '1'))),
    sy(kwr("c-fill-target", Disk, r(0, 1 << 20, 's'))),
    sy(kwr("c-max-rate", Disk, r(250, 4 << 20, 'k'))),
    sy(kwr("c-min-rate", Disk, r(0, 4 << 20, 'k'))),
    // net
    kwr("timeout", Net, r(1, 600, '1')),
    kw("protocol", Net, Value),
    kwr("ko-count", Net, r(0, 200, '1')),
    kwr("ping-int", Net, r(1, 120, '1')),
    kwr("max-buffers", Net, r(32, 131072, '1')),
    kwr("sndbuf-size", Net, r(0, 10 << 20, '1')),
    kwr("rcvbuf-size", Net, r(0, 10 << 20, '1')),
    kwr("connect-int", Net, r(1, 120, '1')),
    kw("cram-hmac-alg", Net, Value),
    kw("shared-secret", Net, Value),
    kwr("max-epoch-size", Net, r(1, 20000, '1')),
    kw("after-sb-0pri", Net, Value),
    kw("after-sb-1pri", Net, Value),
    kw("after-sb-2pri", Net, Value),
    kw("rr-conflict", Net, Value),
    kw("ping-timeout", Net, Value),
    kw("unplug-watermark", Net, Value),
    kw("data-integrity-alg", Net, Value),
    kw("on-congestion", Net, Value),
    kw("socket-check-timeout", Net, Value),
    kwr("congestion-fill", Net, r(0, 10 << 21, 's')),
    kwr("congestion-extents", Net, r(67, 0xfffe, '1')),
    kw("allow-two-primaries", Net, Flag),
    kw("always-asbp", Net, Flag),
    kw("tcp-cork", Net, Flag),
    kw("no-tcp-cork", Net, NoFlag),
    kw("discard-my-data", Net, Delegate),
    sy(kw("verify-alg", Net, Value)),
    sy(kw("csums-alg", Net, Value)),
    kw("csums-after-crash-only", Net, Flag),
    sy(kw("use-rle", Net, Flag)),
    // resource options
    sy(kw("cpu-mask", Res, Value)),
    sy(kw("on-no-data-accessible", Res, Value)),
    // startup
    kwr("wfc-timeout", Startup, r(0, 300000, '1')),
    kwr("degr-wfc-timeout", Startup, r(0, 300000, '1')),
    kwr("outdated-wfc-timeout", Startup, r(0, 300000, '1')),
    kw("wait-after-sb", Startup, Flag),
    kw("stacked-timeouts", Startup, Delegate),
    kw("become-primary-on", Startup, Delegate),
    // handlers
    kw("pri-on-incon-degr", Handlers, Value),
    kw("pri-lost-after-sb", Handlers, Value),
    kw("pri-lost", Handlers, Value),
    kw("initial-split-brain", Handlers, Value),
    kw("split-brain", Handlers, Value),
    alias(kw("outdate-peer", Handlers, Value), "fence-peer"),
    kw("fence-peer", Handlers, Value),
    kw("unfence-peer", Handlers, Value),
    kw("local-io-error", Handlers, Value),
    kw("before-resync-target", Handlers, Value),
    kw("after-resync-target", Handlers, Value),
    kw("before-resync-source", Handlers, Value),
    kw("out-of-sync", Handlers, Value),
    // ignored
    deprecated("delay-probe-volume"),
    deprecated("delay-probe-interval"),
    deprecated("throttle-threshold"),
    deprecated("hold-off-threshold"),
];

pub fn keyword(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name == name)
}

/// Port numbers.
pub const PORT_RANGE: Range = Range {
    min: 1,
    max: 0xffff,
    scale: '1',
};
pub const MINOR_COUNT_RANGE: Range = Range {
    min: 1,
    max: 255,
    scale: '1',
};
pub const DIALOG_REFRESH_RANGE: Range = Range {
    min: 0,
    max: 600,
    scale: '1',
};
pub const CMD_TIMEOUT_RANGE: Range = Range {
    min: 0,
    max: 900,
    scale: '1',
};

/// Bytes per unit letter.
fn unit_bytes(unit: char) -> Option<i128> {
    Some(match unit {
        '1' => 1,
        's' | 'S' => 512,
        'k' | 'K' => 1 << 10,
        'm' | 'M' => 1 << 20,
        'g' | 'G' => 1 << 30,
        't' | 'T' => 1 << 40,
        _ => return None,
    })
}

/// drbd-utils' `m_strtoll`: a number with an optional unit suffix (s, K, M,
/// G, T), converted to `def_unit`; a number without suffix is already in
/// `def_unit`. None if it is not a number or the unit is unknown.
pub fn strtoll(s: &str, def_unit: char) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let value: i128 = digits[..end].parse().ok()?;
    let suffix = &digits[end..];
    let mut chars = suffix.chars();
    let result = match (chars.next(), chars.next()) {
        (None, _) => value,
        (Some(u), None) => value * unit_bytes(u)? / unit_bytes(def_unit)?,
        _ => return None,
    };
    let result = if neg { -result } else { result };
    i64::try_from(result).ok()
}

/// Checks a value against a range; returns the parsed value on failure for
/// the error message.
pub fn check_range(value: &str, range: &Range) -> Result<(), Option<i64>> {
    match strtoll(value, range.scale) {
        Some(v) if v >= range.min && v <= range.max => Ok(()),
        Some(v) => Err(Some(v)),
        None => Err(None),
    }
}

/// The type of a drbdsetup option field (drbd-utils' config_flags.c).
#[derive(Clone, Copy, Debug)]
pub enum FieldKind {
    Numeric { scale: char, def: i64 },
    Boolean { def: bool },
    Enum { def: &'static str, nocase: bool },
    Str,
}

/// A drbdsetup option field.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
}

const fn num(name: &'static str, scale: char, def: i64) -> Field {
    Field {
        name,
        kind: FieldKind::Numeric { scale, def },
    }
}
const fn boolean(name: &'static str, def: bool) -> Field {
    Field {
        name,
        kind: FieldKind::Boolean { def },
    }
}
const fn en(name: &'static str, def: &'static str) -> Field {
    Field {
        name,
        kind: FieldKind::Enum { def, nocase: false },
    }
}
const fn string(name: &'static str) -> Field {
    Field {
        name,
        kind: FieldKind::Str,
    }
}

/// `drbdsetup disk-options` fields.
pub const DISK_FIELDS: &[Field] = &[
    en("on-io-error", "detach"),
    en("fencing", "dont-care"),
    boolean("disk-barrier", false),
    boolean("disk-flushes", true),
    boolean("disk-drain", true),
    boolean("md-flushes", true),
    num("resync-rate", 'k', 250),
    num("resync-after", '1', -1),
    num("al-extents", '1', 1237),
    boolean("al-updates", true),
    boolean("discard-zeroes-if-aligned", true),
    boolean("disable-write-same", false),
    num("c-plan-ahead", '1', 20),
    num("c-delay-target", '1', 10),
    num("c-fill-target", 's', 100),
    num("c-max-rate", 'k', 102400),
    num("c-min-rate", 'k', 250),
    num("disk-timeout", '1', 0),
    en("read-balancing", "prefer-local"),
    num("rs-discard-granularity", '1', 0),
];

/// The attach-only fields (`drbdsetup attach` has these plus DISK_FIELDS).
pub const ATTACH_ONLY_FIELDS: &[Field] = &[num("size", 's', 0), num("max-bio-bvecs", '1', 0)];

/// `drbdsetup net-options` fields.
pub const NET_FIELDS: &[Field] = &[
    Field {
        name: "protocol",
        kind: FieldKind::Enum {
            def: "C",
            nocase: true,
        },
    },
    num("timeout", '1', 60),
    num("max-epoch-size", '1', 2048),
    num("max-buffers", '1', 2048),
    num("unplug-watermark", '1', 128),
    num("connect-int", '1', 10),
    num("ping-int", '1', 10),
    num("sndbuf-size", '1', 0),
    num("rcvbuf-size", '1', 0),
    num("ko-count", '1', 7),
    boolean("allow-two-primaries", false),
    string("cram-hmac-alg"),
    string("shared-secret"),
    en("after-sb-0pri", "disconnect"),
    en("after-sb-1pri", "disconnect"),
    en("after-sb-2pri", "disconnect"),
    boolean("always-asbp", false),
    en("rr-conflict", "disconnect"),
    num("ping-timeout", '1', 5),
    string("data-integrity-alg"),
    boolean("tcp-cork", true),
    en("on-congestion", "block"),
    num("congestion-fill", 's', 0),
    num("congestion-extents", '1', 1237),
    string("csums-alg"),
    boolean("csums-after-crash-only", false),
    string("verify-alg"),
    boolean("use-rle", true),
    num("socket-check-timeout", '1', 0),
];

/// `drbdsetup resource-options` fields.
pub const RES_FIELDS: &[Field] = &[string("cpu-mask"), en("on-no-data-accessible", "io-error")];

/// The drbdsetup options drbdadm accepts on its own command line, per
/// command (the fields of the command's drbdsetup context).
pub fn command_options(cmd: &str) -> Vec<&'static str> {
    let disk = DISK_FIELDS.iter().map(|f| f.name);
    let net = NET_FIELDS.iter().map(|f| f.name);
    match cmd {
        "attach" => ATTACH_ONLY_FIELDS
            .iter()
            .map(|f| f.name)
            .chain(disk)
            .collect(),
        "disk-options" => disk.collect(),
        "detach" | "primary" | "disconnect" => vec!["force"],
        "connect" => [
            "tentative",
            "discard-my-data",
            "alternate-address",
            "alternate-peer-address",
        ]
        .into_iter()
        .chain(net)
        .collect(),
        "net-options" => net.collect(),
        "resource-options" => RES_FIELDS.iter().map(|f| f.name).collect(),
        "new-current-uuid" => vec!["clear-bitmap"],
        _ => Vec::new(),
    }
}

/// Every drbdsetup option drbdadm recognises on its command line (the
/// union over all commands; each command then accepts only its own).
pub fn all_command_option_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for cmd in [
        "attach",
        "disk-options",
        "detach",
        "connect",
        "net-options",
        "disconnect",
        "resource-options",
        "primary",
        "new-current-uuid",
    ] {
        for n in command_options(cmd) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

/// Whether the command-line option's argument is optional (boolean/flag).
pub fn option_argument_optional(name: &str) -> bool {
    matches!(
        name,
        "force" | "tentative" | "discard-my-data" | "clear-bitmap"
    ) || DISK_FIELDS
        .iter()
        .chain(NET_FIELDS)
        .any(|f| f.name == name && matches!(f.kind, FieldKind::Boolean { .. }))
}

fn boolean_value(v: Option<&str>) -> Option<bool> {
    match v {
        None | Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

impl Field {
    pub fn is_default(&self, value: Option<&str>) -> bool {
        match self.kind {
            FieldKind::Numeric { scale, def } => value.and_then(|v| strtoll(v, scale)) == Some(def),
            FieldKind::Boolean { def } => boolean_value(value) == Some(def),
            FieldKind::Enum { def, nocase } => match value {
                Some(v) if nocase => v.eq_ignore_ascii_case(def),
                Some(v) => v == def,
                None => false,
            },
            FieldKind::Str => value == Some(""),
        }
    }

    pub fn is_equal(&self, a: Option<&str>, b: Option<&str>) -> bool {
        match self.kind {
            FieldKind::Numeric { scale, .. } => {
                let pa = a.and_then(|v| strtoll(v, scale));
                let pb = b.and_then(|v| strtoll(v, scale));
                pa.is_some() && pa == pb
            }
            FieldKind::Boolean { .. } => boolean_value(a) == boolean_value(b),
            FieldKind::Enum { nocase: true, .. } => match (a, b) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => a == b,
            },
            FieldKind::Enum { .. } | FieldKind::Str => a == b,
        }
    }
}

pub fn find_field(fields: &[Field], name: &str) -> Option<Field> {
    fields.iter().copied().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoll_converts_units() {
        assert_eq!(strtoll("100M", 'k'), Some(102400));
        assert_eq!(strtoll("102400k", 'k'), Some(102400));
        assert_eq!(strtoll("250", 'k'), Some(250));
        assert_eq!(strtoll("1G", 's'), Some(2 << 20));
        assert_eq!(strtoll("-1", '1'), Some(-1));
        assert_eq!(strtoll("12x", '1'), None);
        assert_eq!(strtoll("abc", '1'), None);
        assert_eq!(strtoll("10MM", '1'), None);
    }

    #[test]
    fn fields_compare_like_drbdsetup() {
        let rate = find_field(DISK_FIELDS, "resync-rate").unwrap();
        assert!(rate.is_equal(Some("100M"), Some("102400k")));
        assert!(rate.is_default(Some("250k")));
        let proto = find_field(NET_FIELDS, "protocol").unwrap();
        assert!(proto.is_default(Some("c")));
        let cork = find_field(NET_FIELDS, "tcp-cork").unwrap();
        assert!(cork.is_default(Some("yes")));
        assert!(!cork.is_equal(Some("yes"), Some("no")));
        let alg = find_field(NET_FIELDS, "cram-hmac-alg").unwrap();
        assert!(!alg.is_default(Some("sha1")));
    }

    #[test]
    fn every_keyword_is_unique() {
        for (i, k) in KEYWORDS.iter().enumerate() {
            assert!(
                KEYWORDS[i + 1..].iter().all(|o| o.name != k.name),
                "{}",
                k.name
            );
        }
    }
}
