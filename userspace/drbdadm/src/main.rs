//! drbdadm for rdrbd: DRBD 8.4's high-level administration tool. Reads
//! drbd.conf and runs drbdsetup and drbdmeta with the command lines
//! drbd-utils' drbdadm-84 uses (`-d` prints them instead).
//!
//! Exit codes as drbdadm-84: 0 success, 1 usage, 10 invalid configuration,
//! 20 a helper could not be run; otherwise the helper's exit code.

mod cli;
mod commands;
mod config;
mod dump;
mod exec;

use std::path::Path;
use std::process::ExitCode;

use cli::{Cli, UsageError};
use commands::{Deferred, Env};
use config::model::{Config, Resource, Volume};
use config::parser::Loader;
use exec::{shell_escape, Runner, Tools};

const E_USAGE: i32 = 1;
const E_CONFIG_INVALID: i32 = 10;
const E_EXEC_ERROR: i32 = 20;

const PROGNAME: &str = "drbdadm";

/// How a command uses resources and volumes (drbdadm-84's adm_cmd flags).
#[derive(Clone, Copy, Debug)]
struct Spec {
    name: &'static str,
    /// 1 normal, 2 shell helpers, 3 kernel callbacks, 4 experts.
    level: u8,
    res_required: bool,
    vol_required: bool,
    iterate: bool,
    verify_ips: bool,
    need_peer: bool,
}

const fn spec(name: &'static str, level: u8, flags: &str) -> Spec {
    let b = flags.as_bytes();
    let mut s = Spec {
        name,
        level,
        res_required: false,
        vol_required: false,
        iterate: false,
        verify_ips: false,
        need_peer: false,
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'r' => s.res_required = true,
            b'V' => s.vol_required = true,
            b'i' => s.iterate = true,
            b'a' => s.verify_ips = true,
            b'p' => s.need_peer = true,
            _ => {}
        }
        i += 1;
    }
    s
}

// r: resource name required, i: iterate volumes, V: volume required,
// a: verify my IP address, p: need the peer
const DEFAULT: &str = "ri";
const RESNAME: &str = "r";
const CONNECT: &str = "rap";
const UP: &str = "riap";
const DEFNET: &str = "ria";
const HANDLER: &str = "rV";
const SHELL: &str = "ri";

const COMMANDS: &[Spec] = &[
    spec("attach", 1, DEFAULT),
    spec("status", 1, RESNAME),
    spec("disk-options", 1, DEFAULT),
    spec("detach", 1, DEFAULT),
    spec("connect", 1, CONNECT),
    spec("net-options", 1, CONNECT),
    spec("disconnect", 1, RESNAME),
    spec("up", 1, UP),
    spec("resource-options", 1, RESNAME),
    spec("down", 1, RESNAME),
    spec("primary", 1, DEFAULT),
    spec("secondary", 1, DEFAULT),
    spec("invalidate", 1, DEFAULT),
    spec("invalidate-remote", 1, DEFNET),
    spec("outdate", 1, DEFAULT),
    spec("resize", 1, DEFNET),
    spec("verify", 1, DEFNET),
    spec("pause-sync", 1, DEFNET),
    spec("resume-sync", 1, DEFNET),
    spec("adjust", 1, CONNECT),
    spec("adjust-with-progress", 1, CONNECT),
    spec("wait-connect", 1, DEFNET),
    spec("role", 1, DEFAULT),
    spec("cstate", 1, DEFAULT),
    spec("dstate", 1, DEFAULT),
    spec("dump", 1, "ra"),
    spec("create-md", 1, DEFAULT),
    spec("show-gi", 1, DEFAULT),
    spec("get-gi", 1, DEFAULT),
    spec("dump-md", 1, DEFAULT),
    spec("wipe-md", 1, DEFAULT),
    spec("apply-al", 1, DEFAULT),
    spec("hidden-commands", 1, ""),
    spec("sh-nop", 2, ""),
    spec("sh-resources", 2, ""),
    spec("sh-resource", 2, RESNAME),
    spec("sh-mod-parms", 2, ""),
    spec("sh-dev", 2, SHELL),
    spec("sh-udev", 2, "rV"),
    spec("sh-minor", 2, SHELL),
    spec("sh-ll-dev", 2, SHELL),
    spec("sh-md-dev", 2, SHELL),
    spec("sh-md-idx", 2, SHELL),
    spec("sh-ip", 2, SHELL),
    spec("sh-lr-of", 2, SHELL),
    spec("sh-b-pri", 2, SHELL),
    spec("sh-status", 2, ""),
    spec("new-resource", 2, RESNAME),
    spec("sh-new-minor", 4, DEFAULT),
    spec("new-minor", 4, DEFAULT),
    spec("before-resync-target", 3, HANDLER),
    spec("after-resync-target", 3, HANDLER),
    spec("before-resync-source", 3, HANDLER),
    spec("pri-on-incon-degr", 3, HANDLER),
    spec("pri-lost-after-sb", 3, HANDLER),
    spec("fence-peer", 3, RESNAME),
    spec("unfence-peer", 3, RESNAME),
    spec("local-io-error", 3, HANDLER),
    spec("pri-lost", 3, HANDLER),
    spec("initial-split-brain", 3, HANDLER),
    spec("split-brain", 3, HANDLER),
    spec("out-of-sync", 3, HANDLER),
    spec("suspend-io", 4, DEFAULT),
    spec("resume-io", 4, DEFAULT),
    spec("set-gi", 4, "riV"),
    spec("new-current-uuid", 4, "riV"),
    spec("check-resize", 4, DEFAULT),
];

fn canonical_command(name: &str) -> Option<&'static Spec> {
    let name = match name {
        "state" => {
            eprintln!("'{PROGNAME} state' is deprecated, use '{PROGNAME} role' instead.");
            "role"
        }
        "outdate-peer" => {
            eprintln!(
                "'{PROGNAME} outdate-peer' is deprecated, use '{PROGNAME} fence-peer' instead."
            );
            "fence-peer"
        }
        n => n,
    };
    COMMANDS.iter().find(|c| c.name == name)
}

fn print_cmds(level: u8) {
    let names: Vec<&str> = COMMANDS
        .iter()
        .filter(|c| c.level == level)
        .map(|c| c.name)
        .collect();
    for pair in names.chunks(2) {
        match pair {
            [a, b] => println!(" {a:<35}{b:<35}"),
            [a] => println!(" {a:<35}"),
            _ => {}
        }
    }
}

fn hidden_commands() {
    println!("\nThese additional commands might be useful for writing\nnifty shell scripts around drbdadm:\n");
    print_cmds(2);
    println!("\nThese commands are used by the kernel part of DRBD to\ninvoke user mode helper programs:\n");
    print_cmds(3);
    println!("\nThese commands ought to be used by experts and developers:\n");
    print_cmds(4);
    println!();
}

fn usage(cmd: Option<&str>, addinfo: Option<&str>) {
    println!(
        "\nUSAGE: {PROGNAME} {} [OPTION...] {{all|RESOURCE...}}\n\nGENERAL OPTIONS:",
        cmd.unwrap_or("COMMAND")
    );
    for (l, s, arg) in [
        ("stacked", 'S', false),
        ("dry-run", 'd', false),
        ("verbose", 'v', false),
        ("config-file", 'c', true),
        ("config-to-test", 't', true),
        ("drbdsetup", 's', true),
        ("drbdmeta", 'm', true),
        ("sh-varname", 'n', true),
        ("peer", 'P', true),
        ("version", 'V', false),
        ("setup-option", 'W', true),
        ("help", 'h', false),
    ] {
        if arg {
            println!("  --{l}=..., -{s} ...");
        } else {
            println!("  --{l}, -{s}");
        }
    }
    match cmd {
        Some(c) => {
            let opts = config::options::command_options(c);
            if !opts.is_empty() {
                println!("\nOPTIONS FOR {c}:");
                for o in opts {
                    if config::options::option_argument_optional(o) {
                        println!("  --{o}[=...]");
                    } else {
                        println!("  --{o}=...");
                    }
                }
            }
        }
        None => {
            println!("\nCOMMANDS:");
            print_cmds(1);
        }
    }
    println!(
        "\nVersion: {} (api:{})\n{}",
        commands::VERSION,
        commands::API_VERSION,
        buildtag()
    );
    if let Some(a) = addinfo {
        println!("\n{a}");
    }
}

fn buildtag() -> String {
    format!("rdrbd drbdadm {}", env!("CARGO_PKG_VERSION"))
}

/// The DRBD version of the loaded module (/proc/drbd), or the one rdrbd's
/// module implements.
fn kernel_version_code() -> u32 {
    let parse = |text: &str| -> Option<u32> {
        let v = text.lines().next()?.strip_prefix("version: ")?;
        let v = v.split_whitespace().next()?;
        let mut parts = v.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let (a, b, c) = (
            parts.next()??,
            parts.next()??,
            parts.next().flatten().unwrap_or(0),
        );
        Some((a << 16) | (b << 8) | c)
    };
    std::fs::read_to_string("/proc/drbd")
        .ok()
        .and_then(|t| parse(&t))
        .unwrap_or(0x08040b)
}

fn print_version() {
    println!("DRBDADM_BUILDTAG={}", shell_escape(&buildtag()));
    println!("DRBDADM_API_VERSION={}", commands::API_VERSION);
    println!("DRBD_KERNEL_VERSION_CODE=0x{:06x}", kernel_version_code());
    println!("DRBDADM_VERSION_CODE=0x{:06x}", 0x08040b);
    println!("DRBDADM_VERSION={}", shell_escape(commands::VERSION));
}

fn nodename() -> String {
    if let Some(n) = std::env::var("__DRBD_NODE__")
        .ok()
        .filter(|n| !n.is_empty())
    {
        eprintln!("\n   found __DRBD_NODE__ in environment\n   PRETENDING that I am >>{n}<<\n");
        return n;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Whether `addr` is configured on this machine (binding to it works).
fn have_ip(af: &str, addr: &str) -> bool {
    let plain = addr.split('%').next().unwrap_or(addr);
    let target = match af {
        "ipv4" => format!("{plain}:0"),
        "ipv6" => format!("[{plain}]:0"),
        _ => return true,
    };
    match std::net::TcpListener::bind(target.as_str()) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrNotAvailable,
    }
}

/// IP verification; false (after an error message) if my address is not
/// on this host.
fn verify_ips(config: &Config, res: &Resource, enabled: bool) -> bool {
    if !enabled || config.global.disable_ip_verification || res.ignore {
        return true;
    }
    let Some(me) = res.me() else { return true };
    let Some(a) = &me.address else { return true };
    if have_ip(&a.af, &a.addr) {
        return true;
    }
    eprintln!(
        "{}:{}: in resource {}, on {}:\n\tIP {} not found on this host.",
        res.display_file,
        me.address_line,
        res.name,
        me.names_str(),
        a.addr
    );
    false
}

struct Run<'a> {
    env: Env<'a>,
    spec: &'static Spec,
    config_file: String,
    deferred: Vec<Deferred>,
}

impl Run<'_> {
    /// Runs the command for one resource (and volume); the exit code.
    fn one(&mut self, res: &Resource, vol: Option<&Volume>) -> i32 {
        let e = &self.env;
        let name = self.spec.name;
        let need_vol = |f: &dyn Fn(&Volume) -> i32| -> i32 {
            match vol {
                Some(v) => f(v),
                None => 0,
            }
        };
        match name {
            "attach" => need_vol(&|v| e.attach(res, v)),
            "disk-options" => need_vol(&|v| e.disk_options(res, v, false)),
            "connect" => e.connect(res),
            "net-options" => e.net_options(res, false),
            "disconnect" => e.disconnect(res),
            "resource-options" => e.resource_options(res, false),
            "up" => {
                if let Some(v) = vol {
                    let first = !self.deferred.iter().any(|d| d.res == res.name);
                    self.deferred.extend(commands::schedule_up(res, v, first));
                }
                0
            }
            "adjust" | "adjust-with-progress" => match e.adjust(res) {
                Ok(d) => {
                    self.deferred.extend(d);
                    0
                }
                Err(msg) => {
                    eprintln!("{msg}");
                    E_CONFIG_INVALID
                }
            },
            "invalidate" | "dstate" | "show-gi" | "get-gi" => {
                need_vol(&|v| e.generic_then_meta(name, res, v))
            }
            "outdate" => need_vol(&|v| e.outdate(res, v)),
            "resize" => need_vol(&|v| e.resize(res, v, false)),
            "check-resize" => need_vol(&|v| e.check_resize(res, v)),
            "wait-connect" => need_vol(&|v| e.wait_connect(res, v)),
            "create-md" | "dump-md" | "wipe-md" | "apply-al" | "set-gi" => {
                need_vol(&|v| e.meta(name, res, v))
            }
            "new-resource" => e.new_resource(res),
            "new-minor" | "sh-new-minor" => need_vol(&|v| e.new_minor(res, v)),
            "dump" => {
                print!("{}", dump::resource(res, &e.nodename));
                0
            }
            "sh-resource" => {
                println!("{}", res.name);
                0
            }
            "sh-dev" => need_vol(&|v| {
                println!("/dev/drbd{}", v.minor());
                0
            }),
            "sh-minor" => need_vol(&|v| {
                println!("{}", v.minor());
                0
            }),
            "sh-ll-dev" => need_vol(&|v| {
                println!("{}", v.disk());
                0
            }),
            "sh-md-dev" => need_vol(&|v| {
                println!("{}", v.md_device());
                0
            }),
            "sh-md-idx" => need_vol(&|v| {
                println!("{}", v.meta_index());
                0
            }),
            "sh-ip" => {
                println!(
                    "{}",
                    res.me()
                        .and_then(|h| h.address.as_ref())
                        .map_or("", |a| a.addr.as_str())
                );
                0
            }
            "sh-lr-of" => {
                eprintln!("sh-lower-resource only available in stacked mode");
                E_USAGE
            }
            "sh-udev" => need_vol(&|v| {
                if v.implicit && !e.config.global.udev_always_use_vnr {
                    println!("RESOURCE={}", res.name);
                } else {
                    println!("RESOURCE={}/{}", res.name, v.vnr);
                }
                let dev = v.device.clone().unwrap_or_default();
                match dev.strip_prefix("/dev/") {
                    Some(d) if dev.starts_with("/dev/drbd") => println!("DEVICE={d}"),
                    _ => println!("DEVICE=drbd{}", v.minor()),
                }
                let disk = v.disk();
                println!("DISK={}", disk.strip_prefix("/dev/").unwrap_or(disk));
                0
            }),
            "sh-b-pri" => need_vol(&|v| e.sh_b_pri(res, v)),
            n if COMMANDS.iter().any(|c| c.name == n && c.level == 3) => {
                e.khelper(n, res, vol, &self.config_file)
            }
            // status, down, primary, secondary, detach, verify, role, ...
            n => e.generic(n, res, vol),
        }
    }

    /// drbdadm-84's call_cmd: once per volume for iterating commands.
    fn call(&mut self, res: &Resource, vol: Option<&Volume>) -> i32 {
        if self.spec.iterate && vol.is_none() {
            for v in res.my_volumes() {
                let rv = self.one(res, Some(v));
                if rv >= 20 {
                    std::process::exit(rv);
                }
                if rv != 0 {
                    return rv;
                }
            }
            return 0;
        }
        let rv = self.one(res, vol);
        if rv >= 20 {
            std::process::exit(rv);
        }
        rv
    }

    /// Commands that do not take resource names.
    fn general(&self, config: &Config) -> i32 {
        match self.spec.name {
            "sh-resources" => {
                let names: Vec<String> = config
                    .resources
                    .iter()
                    .filter(|r| !r.ignore)
                    .map(|r| crate::dump::esc(&r.name))
                    .collect();
                if !names.is_empty() {
                    println!("{}", names.join(" "));
                }
                0
            }
            "sh-mod-parms" => {
                let mut mc = config.global.minor_count;
                if mc == 0 {
                    let minors: usize = config
                        .resources
                        .iter()
                        .filter(|r| !r.ignore)
                        .map(|r| r.my_volumes().len())
                        .sum();
                    mc = u32::try_from(minors + 3).unwrap_or(255).clamp(32, 255);
                }
                println!("minor_count={mc}");
                0
            }
            "sh-status" => self.env.sh_status(&self.config_file),
            "hidden-commands" => {
                hidden_commands();
                0
            }
            _ => 0,
        }
    }
}

fn fail_usage(e: &UsageError) -> ExitCode {
    eprintln!("{PROGNAME}: {}", e.msg);
    if e.show_try {
        match &e.help_for {
            Some(c) => eprintln!("try '{PROGNAME} help {c}'"),
            None => eprintln!("try '{PROGNAME} help'"),
        }
    }
    code(E_USAGE)
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c.clamp(0, 255)).unwrap_or(1))
}

const DEFAULT_CONFIG_FILES: &[&str] = &[
    "/etc/drbd-84.conf",
    "/etc/drbd-83.conf",
    "/etc/drbd-82.conf",
    "/etc/drbd-08.conf",
    "/etc/drbd.conf",
];

fn load_config(path: &str) -> Result<Config, i32> {
    if path == "-" {
        let mut text = String::new();
        if std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).is_err() {
            eprintln!("Can not read the configuration from stdin.");
            return Err(E_EXEC_ERROR);
        }
        return Loader::load_text(&text, "STDIN").map_err(|e| {
            eprintln!("{e}");
            E_CONFIG_INVALID
        });
    }
    Loader::load(Path::new(path), path).map_err(|e| {
        eprintln!("{e}");
        E_CONFIG_INVALID
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match Cli::parse(&args, |w| {
        canonical_command(w).is_some() || w == "state" || w == "outdate-peer"
    }) {
        Ok(c) => c,
        Err(e) => return fail_usage(&e),
    };
    if cli.version {
        print_version();
        return ExitCode::SUCCESS;
    }
    let spec = cli.command.as_deref().and_then(canonical_command);
    if cli.help {
        usage(spec.map(|s| s.name), None);
        return ExitCode::SUCCESS;
    }
    let Some(spec) = spec else {
        if let Some(w) = cli
            .setup_options
            .iter()
            .find(|o| o.explicit && !o.option.starts_with('-'))
        {
            eprintln!("{PROGNAME}: Unknown command '{}'", w.option);
            return code(E_USAGE);
        }
        usage(None, Some("No command specified"));
        return code(E_USAGE);
    };
    if spec.name == "hidden-commands" {
        hidden_commands();
        return ExitCode::SUCCESS;
    }
    if let Err(e) = cli.check_setup_options(spec.name) {
        return fail_usage(&e);
    }
    let is_dump = spec.name == "dump";
    if cli.config_test.is_some() && !(is_dump || spec.name == "sh-nop") {
        eprintln!(
            "The --config-to-test (-t) option is only allowed with the dump and sh-nop commands"
        );
        return code(E_USAGE);
    }
    let mut names = cli.args.clone();
    if names.is_empty() {
        if is_dump || spec.name == "status" {
            names.push("all".into());
        } else if spec.res_required {
            usage(Some(spec.name), Some("No resource names specified"));
            return code(E_USAGE);
        }
    } else if !spec.res_required {
        eprintln!("This command will ignore resource names!");
    }

    // the configuration
    let path = match &cli.config_file {
        Some(p) => {
            if p != "-" && std::fs::metadata(p).is_err() {
                eprintln!("Can not open '{p}'.");
                return code(E_EXEC_ERROR);
            }
            p.clone()
        }
        None => match DEFAULT_CONFIG_FILES.iter().find(|f| Path::new(f).exists()) {
            Some(f) => (*f).to_owned(),
            None => {
                eprintln!("Can not open '/etc/drbd.conf': No such file or directory");
                return code(E_CONFIG_INVALID);
            }
        },
    };
    let mut config = match load_config(&path) {
        Ok(c) => c,
        Err(rv) => return code(rv),
    };
    if let Some(t) = &cli.config_test {
        match load_config(t) {
            Ok(extra) => config.resources.extend(extra.resources),
            Err(rv) => return code(rv),
        }
    }
    let node = nodename();
    let dry_run = cli.dry_run > 0;
    let verbose = cli.verbose > 0;
    if let Err(e) = config::set_me(&mut config, &node) {
        eprintln!("{e}");
        return code(E_CONFIG_INVALID);
    }
    if !is_dump || dry_run || verbose {
        config::expand_common(&mut config);
    }

    let verify = spec.verify_ips && !dry_run;
    let mut targets: Vec<(usize, Option<u32>)> = Vec::new();
    let mut rv = 0;
    let mut header = None;
    if spec.res_required {
        if config.resources.is_empty() && !is_dump {
            eprintln!("no resources defined!");
            return code(E_USAGE);
        }
        if let Err(e) = config::validate(&mut config, &node, !is_dump, cli.peer.as_deref()) {
            eprintln!("{e}");
            return code(E_CONFIG_INVALID);
        }
        if names.first().map(String::as_str) == Some("all") {
            let normal = config.resources.iter().filter(|r| !r.ignore).count();
            if !is_dump {
                if cli.stacked {
                    eprintln!("WARN: nothing stacked for this host ({node}), nothing to do in stacked mode!");
                    return code(E_USAGE);
                }
                if normal == 0 {
                    if config.resources.iter().any(|r| r.ignore) {
                        eprintln!("WARN: no normal resources defined for this host ({node})!?\nMisspelled name of the local machine with the 'on' keyword ?");
                    } else {
                        eprintln!("WARN: no normal resources defined for this host ({node})!?");
                    }
                    return code(E_USAGE);
                }
            }
            if !config
                .resources
                .iter()
                .all(|r| verify_ips(&config, r, verify))
            {
                return code(E_CONFIG_INVALID);
            }
            if is_dump {
                header = Some(dump::header(&config, verbose));
            }
            for (i, r) in config.resources.iter().enumerate() {
                if is_dump || !r.ignore {
                    targets.push((i, None));
                }
            }
        } else {
            for n in &names {
                let (rname, vnr) = match n.split_once('/') {
                    Some((r, v)) => (r, v.parse::<u32>().ok().or(Some(u32::MAX))),
                    None => (n.as_str(), None),
                };
                let mut found: Option<(usize, Option<u32>)> = None;
                if let Some(i) = config
                    .resources
                    .iter()
                    .position(|r| r.name == rname && !r.ignore)
                {
                    match vnr {
                        None => found = Some((i, None)),
                        Some(v) if config.resources[i].my_volumes().iter().any(|x| x.vnr == v) => {
                            found = Some((i, Some(v)))
                        }
                        Some(_) => {}
                    }
                }
                if found.is_none() {
                    if let Some(m) = n.strip_prefix("minor-").and_then(|m| m.parse::<u32>().ok()) {
                        for (i, r) in config
                            .resources
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| !r.ignore)
                        {
                            if let Some(v) = r.my_volumes().iter().find(|v| v.minor == Some(m)) {
                                found = Some((i, Some(v.vnr)));
                                break;
                            }
                        }
                    }
                }
                if found.is_none() && is_dump {
                    found = config
                        .resources
                        .iter()
                        .position(|r| r.name == rname)
                        .map(|i| (i, None));
                }
                let Some((i, mut vnr)) = found else {
                    eprintln!("'{n}' not defined in your config (for this host).");
                    return code(E_USAGE);
                };
                let res = &config.resources[i];
                let vol = |vnr: u32| res.my_volumes().iter().find(|v| v.vnr == vnr);
                if !spec.vol_required && !spec.iterate {
                    if let Some(v) = vnr.and_then(vol) {
                        if v.implicit {
                            vnr = None;
                        } else {
                            eprintln!("{} operates on whole resources, but you specified a specific volume!", spec.name);
                            return code(E_USAGE);
                        }
                    }
                }
                if spec.vol_required && vnr.is_none() {
                    if let Some(v) = res.my_volumes().first().filter(|v| v.implicit) {
                        vnr = Some(v.vnr);
                    }
                }
                if spec.vol_required && vnr.is_none() {
                    eprintln!(
                        "{c} requires a specific volume id, but none is specified.\nTry '{c} minor-<minor_number>' or '{c} {n}/<vnr>'",
                        c = spec.name
                    );
                    return code(E_USAGE);
                }
                if res.ignore && !is_dump {
                    eprintln!("'{}' ignored, since this host ({node}) is not mentioned with an 'on' keyword.", res.name);
                    rv = E_USAGE;
                    continue;
                }
                if cli.stacked && !is_dump {
                    eprintln!(
                        "'{}' is a normal resource, and not available in stacked mode.",
                        res.name
                    );
                    rv = E_USAGE;
                    continue;
                }
                if !verify_ips(&config, res, verify) && !is_dump {
                    return code(E_CONFIG_INVALID);
                }
                targets.push((i, vnr));
            }
        }
        // the peer, for commands that talk to it
        for (i, _) in &targets {
            let r = &mut config.resources[*i];
            if r.peer.is_none() && !r.ignore {
                // reported; the command then fails without a peer
                if let Err(e) = config::set_peer(r, spec.need_peer, cli.peer.as_deref()) {
                    eprintln!("{e}");
                }
            }
        }
    }

    let tools = Tools::locate(cli.drbdsetup.clone(), cli.drbdmeta.clone());
    let runner = Runner {
        dry_run,
        verbose,
        sh_varname: cli.sh_varname.clone(),
    };
    let mut run = Run {
        env: Env {
            config: &config,
            runner: &runner,
            tools: &tools,
            setup_options: cli.setup_option_strings(),
            nodename: node.clone(),
            dry_run,
        },
        spec,
        config_file: config.config_file.clone(),
        deferred: Vec::new(),
    };
    if let Some(h) = header {
        print!("{h}");
    }
    if spec.res_required {
        for (i, vnr) in targets {
            let res = &config.resources[i];
            let vol = vnr.and_then(|n| res.my_volumes().iter().find(|v| v.vnr == n));
            let r = run.call(res, vol);
            rv = rv.max(r);
        }
    } else {
        let r = run.general(&config);
        if r >= 10 {
            eprintln!("command {} exited with code {r}", spec.name);
            return code(r);
        }
        rv = r;
    }
    let deferred = std::mem::take(&mut run.deferred);
    let r = run.env.run_deferred(deferred);
    code(rv.max(r))
}
