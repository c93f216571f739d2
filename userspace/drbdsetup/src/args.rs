//! Value parsers for the command line, following drbdsetup-84: minors,
//! volumes, meta data indexes and numbers with unit suffixes.

use drbd_include::genl::{
    disk_conf, Limits, DEVICE_PATH_SIZE, MINOR_MAX, RESOURCE_NAME_SIZE, VOLUME_MAX,
};

/// The unit a bare number is in (drbd_limits.h's `*_SCALE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Plain count ('1').
    One,
    /// 512-byte sectors ('s').
    Sectors,
    /// KiB ('k').
    KiB,
}

impl Unit {
    /// Binary logarithm of the unit's size in bytes, for the shift.
    fn log2(self) -> i32 {
        match self {
            Self::One => 0,
            Self::Sectors => 9,
            Self::KiB => 10,
        }
    }
}

/// Parses drbdsetup's number syntax: decimal digits, optionally followed by
/// one suffix K, M, G (binary, either case) or s (sectors), converted to
/// `unit`. A bare number is already in `unit`; converting to a larger unit
/// rounds up, as drbdsetup's `new_strtoll` does.
pub fn parse_scaled(text: &str, unit: Unit) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text} is not a valid number"))?;
    let suffix_log2 = match suffix {
        "" => return Ok(value),
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "s" => 9,
        _ => return Err(format!("{text} is not a valid number")),
    };
    let shift = suffix_log2 - unit.log2();
    let out_of_range = || format!("{text}: out of range");
    if shift >= 0 {
        let factor = 1u64
            .checked_shl(shift.unsigned_abs())
            .ok_or_else(out_of_range)?;
        value.checked_mul(factor).ok_or_else(out_of_range)
    } else {
        let divisor = 1u64 << shift.unsigned_abs();
        Ok(value.div_ceil(divisor))
    }
}

fn in_range<T>(text: &str, value: T, limits: Limits<T>) -> Result<T, String>
where
    T: PartialOrd + Copy + std::fmt::Display,
{
    if limits.contains(value) {
        Ok(value)
    } else {
        Err(format!(
            "{text}: value {value} out of range [{}..{}]",
            limits.min, limits.max
        ))
    }
}

/// A device minor: a number, or `/dev/drbd<number>`, at most 1048575.
pub fn minor(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("/dev/drbd").unwrap_or(text);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let number = valid.then(|| digits.parse::<u32>().ok()).flatten();
    match number {
        Some(n) if n <= MINOR_MAX => Ok(n),
        Some(n) => Err(format!("minor {n} out of range [0..{MINOR_MAX}]")),
        None => Err(format!(
            "Cannot determine minor device number of device '{text}'"
        )),
    }
}

/// A volume number, at most 65534.
pub fn volume(text: &str) -> Result<u32, String> {
    let number: u32 = text
        .parse()
        .map_err(|_| format!("{text} is not a valid volume number"))?;
    in_range(
        text,
        number,
        Limits {
            min: 0,
            max: VOLUME_MAX,
            default: 0,
        },
    )
}

/// A resource name: 1 to 127 bytes.
pub fn resource_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("resource name must not be empty".into());
    }
    if text.len() >= RESOURCE_NAME_SIZE {
        return Err(format!(
            "resource name longer than {} bytes",
            RESOURCE_NAME_SIZE - 1
        ));
    }
    Ok(text.to_owned())
}

/// A device path: 1 to 127 bytes.
pub fn device_path(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("device path must not be empty".into());
    }
    if text.len() >= DEVICE_PATH_SIZE {
        return Err(format!(
            "device path longer than {} bytes",
            DEVICE_PATH_SIZE - 1
        ));
    }
    Ok(text.to_owned())
}

/// A meta data index: `internal` (-3, DRBD_MD_INDEX_FLEX_INT), `flexible`
/// (-2, DRBD_MD_INDEX_FLEX_EXT) or an index >= 0, as drbdsetup-84's
/// `conv_md_idx`.
pub fn meta_index(text: &str) -> Result<i32, String> {
    match text {
        "internal" => Ok(disk_conf::META_DEV_IDX_FLEX_INT),
        "flexible" => Ok(disk_conf::META_DEV_IDX_FLEX_EXT),
        _ => text
            .parse::<u32>()
            .ok()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                format!("unknown meta data index '{text}' (use internal, flexible or a number)")
            }),
    }
}

/// `--wfc-timeout` and friends of wait-connect / wait-sync: seconds,
/// 0..=300000 (`DRBD_WFC_TIMEOUT_*`).
pub fn wfc_timeout(text: &str) -> Result<u32, String> {
    let value = parse_scaled(text, Unit::One)?;
    match u32::try_from(value) {
        Ok(v) if v <= WFC_TIMEOUT_MAX => Ok(v),
        _ => Err(format!(
            "{text} => {value} out of range [0..{WFC_TIMEOUT_MAX}]"
        )),
    }
}

/// Largest wait-for-connection timeout, seconds.
const WFC_TIMEOUT_MAX: u32 = 300_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_numbers() {
        assert_eq!(parse_scaled("100", Unit::KiB), Ok(100));
        assert_eq!(parse_scaled("100M", Unit::KiB), Ok(102_400));
        assert_eq!(parse_scaled("1G", Unit::KiB), Ok(1 << 20));
        assert_eq!(parse_scaled("1k", Unit::KiB), Ok(1));
        assert_eq!(parse_scaled("3s", Unit::KiB), Ok(2), "rounds up");
        assert_eq!(parse_scaled("1G", Unit::Sectors), Ok(1 << 21));
        assert_eq!(parse_scaled("1K", Unit::Sectors), Ok(2));
        assert_eq!(parse_scaled("7", Unit::Sectors), Ok(7));
        assert_eq!(parse_scaled("2K", Unit::One), Ok(2048));
        assert_eq!(parse_scaled("1s", Unit::One), Ok(512));
        assert!(parse_scaled("", Unit::One).is_err());
        assert!(parse_scaled("K", Unit::One).is_err());
        assert!(parse_scaled("-1", Unit::One).is_err());
        assert!(parse_scaled("1T", Unit::One).is_err());
        assert!(parse_scaled("1KK", Unit::One).is_err());
        assert!(parse_scaled("99999999999999999999", Unit::One).is_err());
        assert_eq!(
            parse_scaled("18446744073709551615G", Unit::One),
            Err("18446744073709551615G: out of range".into())
        );
    }

    #[test]
    fn minors_and_volumes() {
        assert_eq!(minor("0"), Ok(0));
        assert_eq!(minor("/dev/drbd12"), Ok(12));
        assert_eq!(minor("1048575"), Ok(MINOR_MAX));
        assert!(minor("1048576").is_err());
        assert!(minor("-1").is_err());
        assert!(minor("+1").is_err());
        assert!(minor("r0").is_err());
        assert!(minor("/dev/drbd").is_err());
        assert!(minor("99999999999").is_err());
        assert_eq!(volume("65534"), Ok(65534));
        assert!(volume("65535").is_err());
        assert!(volume("x").is_err());
    }

    #[test]
    fn meta_indexes() {
        assert_eq!(meta_index("internal"), Ok(-3));
        assert_eq!(meta_index("flexible"), Ok(-2));
        assert_eq!(meta_index("0"), Ok(0));
        assert_eq!(meta_index("7"), Ok(7));
        assert!(meta_index("-1").is_err());
        assert!(meta_index("external").is_err());
        assert!(meta_index("2147483648").is_err());
    }

    #[test]
    fn wait_timeouts() {
        assert_eq!(wfc_timeout("0"), Ok(0));
        assert_eq!(wfc_timeout("300000"), Ok(300_000));
        assert_eq!(wfc_timeout("1K"), Ok(1024));
        assert!(wfc_timeout("300001").is_err());
        assert!(wfc_timeout("-1").is_err());
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(resource_name("r0"), Ok("r0".into()));
        assert!(resource_name("").is_err());
        assert!(resource_name(&"r".repeat(128)).is_err());
        assert!(resource_name(&"r".repeat(127)).is_ok());
        assert!(device_path("").is_err());
        assert!(device_path(&"d".repeat(128)).is_err());
    }
}
