//! drbdmeta for rdrbd: DRBD 8.4's metadata tool, format v08 only.
//!
//!     drbdmeta [--force] <minor|/dev/drbdN|-|/dev/null> v08 <device>
//!              <internal|flex-external|flex-internal|index> <command> [args]
//!
//! Command line, messages, exit codes and the dump format follow
//! drbd-utils' drbdmeta, so drbdadm-84 can drive it; the on-disk work is
//! done by `drbd_include::{md, al, bitmap}`.

mod commands;
mod device;
mod dump;
mod existing_data;

use clap::Parser;
use drbd_include::md::MetaIndex;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "drbdmeta",
    about = "Create, dump, restore and repair DRBD 8.4 (v08) meta data",
    override_usage = "drbdmeta [--force] DEVICE v08 META_DEVICE INDEX COMMAND [CMD ARGS...]",
    after_help = "DEVICE is the DRBD minor (number or /dev/drbdN) the meta data belongs to, or - or \
                  /dev/null for none.\nINDEX is internal, flex-external, flex-internal or 0..255.\n\n\
                  COMMANDS:\n  get-gi\n  show-gi\n  dump-md\n  restore-md file\n  apply-al\n  wipe-md\n  \
                  outdate\n  invalidate\n  dstate\n  check-resize\n  set-gi ::::VAL:VAL:...\n  \
                  create-md [--peer-max-bio-size {val}] [--al-stripes {val}] [--al-stripe-size-kB {val}]"
)]
struct Cli {
    /// Answer every confirmation with yes; allow regular files.
    #[arg(short = 'f', long)]
    force: bool,
    /// More output (accepted for compatibility).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Write even outside the meta data area / over file systems.
    #[arg(long)]
    ignore_sanity_checks: bool,
    /// Do not write anything.
    #[arg(long)]
    dry_run: bool,
    /// create-md: the peer's max bio size to record (0..1M).
    #[arg(short = 'p', long, value_name = "val")]
    peer_max_bio_size: Option<String>,
    /// Accepted for compatibility; v08 has no node ids.
    #[arg(short = 'i', long, value_name = "val")]
    node_id: Option<String>,
    /// create-md, restore-md: number of activity log stripes.
    #[arg(short = 's', long, value_name = "val")]
    al_stripes: Option<String>,
    /// create-md, restore-md: size of one stripe (default unit kB).
    #[arg(short = 'z', long = "al-stripe-size-kB", value_name = "val")]
    al_stripe_size_kb: Option<String>,
    /// DRBD minor the meta data belongs to.
    minor: String,
    /// Meta data format: v08.
    format: String,
    /// Meta data device (the backing device for internal meta data).
    device: String,
    /// internal, flex-external, flex-internal, or an index.
    index: String,
    /// The command.
    command: String,
    /// Command arguments.
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Settings every command sees.
#[derive(Debug, Clone)]
pub struct Options {
    pub force: bool,
    pub ignore_sanity_checks: bool,
    pub dry_run: bool,
    pub peer_max_bio_size: u32,
    /// (stripes, stripe size in 4 KiB blocks) and whether given on the command line.
    pub al_stripes: u32,
    pub al_stripe_size_4k: u32,
    pub al_options_used: bool,
    /// The command line, for the dump header.
    pub argv: Vec<String>,
}

/// Ends the program like drbdmeta's `exit(code)`, after printing `message`
/// (if any) to stderr.
pub fn fail(code: u8, message: &str) -> ! {
    if !message.is_empty() {
        eprintln!("{message}");
    }
    let _ = std::io::stdout().flush();
    std::process::exit(i32::from(code));
}

/// drbdmeta's `confirmed()`: --force says yes; otherwise the user must type
/// "yes" on a terminal. Without a terminal on stdin we never guess.
pub fn confirm(force: bool, text: &str) -> bool {
    let _ = std::io::stdout().flush();
    eprintln!("\n{text}");
    if force {
        eprintln!("*** confirmation forced via --force option ***");
        return true;
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!(
            "stdin is not a terminal, cannot ask for confirmation: not confirmed (use --force)"
        );
        return false;
    }
    eprint!("[need to type 'yes' to confirm] ");
    let mut answer = String::new();
    let ok = stdin.lock().read_line(&mut answer).is_ok() && answer == "yes\n";
    eprintln!();
    ok
}

/// drbd-utils' `m_strtoll`: a number with an optional unit suffix (K, M, G
/// or s for sectors), expressed in `default_unit_shift` (10 for kB, 0 for
/// bytes).
fn parse_size(text: &str, default_unit_shift: i32) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().ok()?;
    let unit_shift = match unit {
        "" => return Some(value),
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "s" => 9,
        _ => return None,
    };
    let shift = unit_shift - default_unit_shift;
    if shift < 0 {
        let s = shift.unsigned_abs();
        return Some((value + (1 << s) - 1) >> s);
    }
    value.checked_mul(1u64.checked_shl(shift as u32)?)
}

/// drbdmeta's `dt_minor_of_dev`: a number, /dev/drbdN, or a block device
/// of major 147; anything else (such as /dev/null or "-") names no minor.
fn minor_of(device: &str) -> Option<u32> {
    if let Ok(n) = device.parse() {
        return Some(n);
    }
    if let Some(n) = device
        .strip_prefix("/dev/drbd")
        .and_then(|n| n.parse().ok())
    {
        return Some(n);
    }
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(device).ok()?;
    let rdev = meta.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (meta.file_type().is_block_device() && major == 147).then_some(minor as u32)
}

/// Whether the kernel has a disk attached to `minor`, from /proc/drbd
/// (8.4 format: " 0: cs:... ro:... ds:UpToDate/...").
fn is_attached(minor: u32) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/drbd") else {
        return false;
    };
    let prefix = format!("{minor}:");
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("ds:")))
        .any(|ds| !ds.starts_with("Diskless") && !ds.starts_with("Unconfigured"))
}

fn parse_index(text: &str) -> Option<MetaIndex> {
    match text {
        "internal" | "flex-internal" => Some(MetaIndex::FlexInternal),
        "flex-external" => Some(MetaIndex::FlexExternal),
        n => {
            let n: u32 = if let Some(hex) = n.strip_prefix("0x") {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                n.parse().ok()?
            };
            (n <= 255).then_some(MetaIndex::Indexed(n))
        }
    }
}

const MODIFYING: &[&str] = &[
    "restore-md",
    "apply-al",
    "wipe-md",
    "outdate",
    "invalidate",
    "set-gi",
    "check-resize",
    "create-md",
];
const COMMANDS: &[&str] = &[
    "get-gi",
    "show-gi",
    "dump-md",
    "restore-md",
    "verify-dump",
    "apply-al",
    "wipe-md",
    "outdate",
    "invalidate",
    "dstate",
    "set-gi",
    "check-resize",
    "create-md",
];

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().collect();
    if let Some(first) = argv.first_mut() {
        // The dump header shows the program name without its path.
        *first = first.rsplit('/').next().unwrap_or("drbdmeta").to_owned();
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(20);
        }
    };
    if cli.format != "v08" {
        fail(
            20,
            &format!(
                "Unknown or unsupported format '{}' (this drbdmeta speaks v08 only).",
                cli.format
            ),
        );
    }
    let Some(index) = parse_index(&cli.index) else {
        fail(20, &format!("'{}' is not a valid index number.", cli.index));
    };
    if !COMMANDS.contains(&cli.command.as_str()) {
        fail(20, &format!("Unknown command '{}'.", cli.command));
    }
    let command = cli.command.as_str();

    let peer_max_bio_size = match &cli.peer_max_bio_size {
        None => 0,
        Some(text) => match parse_size(text, 0) {
            Some(n) if n <= 1 << 20 => n as u32,
            _ => fail(10, "peer-max-bio-size out of range (0...1M)"),
        },
    };
    let al_stripes = match &cli.al_stripes {
        None => 1,
        Some(t) => parse_size(t, 0)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or_else(|| fail(20, &format!("invalid value '{t}'"))),
    };
    let al_stripe_size_4k = match &cli.al_stripe_size_kb {
        None => 8,
        Some(t) => parse_size(t, 10)
            .and_then(|kb| u32::try_from(kb / 4).ok())
            .unwrap_or_else(|| fail(20, &format!("invalid value '{t}'"))),
    };
    let al_options_used = cli.al_stripes.is_some() || cli.al_stripe_size_kb.is_some();
    if cli.peer_max_bio_size.is_some() && command != "create-md" {
        fail(
            10,
            "The --peer-max-bio-size option is only allowed with create-md",
        );
    }
    if al_options_used && command != "create-md" && command != "restore-md" {
        fail(
            10,
            "The --al-stripe* options are only allowed with create-md and restore-md",
        );
    }
    // drbdmeta reads the whole activity log into its 32 MiB buffer.
    let al_blocks = u64::from(al_stripes) * u64::from(al_stripe_size_4k);
    if al_blocks > (dump::WINDOW_BYTES / 4096) as u64 {
        fail(10, "invalid (too large) al-stripe* settings");
    }
    if al_blocks < 8 {
        fail(10, "invalid (too small) al-stripe* settings");
    }
    if let Some(node_id) = &cli.node_id {
        if !matches!(command, "get-gi" | "show-gi" | "set-gi") {
            fail(
                10,
                &format!("The {command} command does not accept the --node-id option"),
            );
        }
        if node_id != "0" {
            eprintln!("Not v09, implicitly set --node-id = 0");
        }
    }

    let minor = minor_of(&cli.minor);
    let attached = minor.is_some_and(is_attached);
    if attached && MODIFYING.contains(&command) {
        fail(20, &format!("Device '{}' is configured!", cli.minor));
    }
    let _ = cli.verbose;
    let opts = Options {
        force: cli.force,
        ignore_sanity_checks: cli.ignore_sanity_checks,
        dry_run: cli.dry_run,
        peer_max_bio_size,
        al_stripes,
        al_stripe_size_4k,
        al_options_used,
        argv,
    };
    let code = match commands::run(&opts, minor, &cli.device, index, command, &cli.args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            10
        }
    };
    if let Some(minor) = minor.filter(|_| attached) {
        eprintln!("# Output might be stale, since minor {minor} is attached");
    }
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_m_strtoll() {
        assert_eq!(parse_size("32", 10), Some(32));
        assert_eq!(parse_size("1M", 10), Some(1024));
        assert_eq!(parse_size("64k", 10), Some(64));
        assert_eq!(parse_size("9s", 10), Some(5));
        assert_eq!(parse_size("1M", 0), Some(1 << 20));
        assert_eq!(parse_size("12x", 0), None);
        assert_eq!(parse_size("", 0), None);
    }

    #[test]
    fn index_and_minor_words() {
        assert_eq!(parse_index("internal"), Some(MetaIndex::FlexInternal));
        assert_eq!(parse_index("flex-external"), Some(MetaIndex::FlexExternal));
        assert_eq!(parse_index("7"), Some(MetaIndex::Indexed(7)));
        assert_eq!(parse_index("256"), None);
        assert_eq!(parse_index("-1"), None);
        assert_eq!(minor_of("3"), Some(3));
        assert_eq!(minor_of("/dev/drbd12"), Some(12));
        assert_eq!(minor_of("/dev/null"), None);
        assert_eq!(minor_of("-"), None);
    }

    #[test]
    fn command_line_takes_options_anywhere() {
        let cli = Cli::try_parse_from([
            "drbdmeta",
            "0",
            "v08",
            "/dev/loop0",
            "internal",
            "create-md",
            "--al-stripes",
            "2",
            "--force",
        ])
        .unwrap();
        assert!(cli.force);
        assert_eq!(cli.al_stripes.as_deref(), Some("2"));
        assert_eq!(cli.command, "create-md");
        let cli =
            Cli::try_parse_from(["drbdmeta", "-", "v08", "/x", "1", "set-gi", "4:::"]).unwrap();
        assert_eq!(cli.args, ["4:::"]);
    }
}
