//! drbdsetup for rdrbd: configures the DRBD 8.4 kernel module through its
//! generic netlink family "drbd", with drbdsetup-84's syntax, messages and
//! exit codes (0 success, 10 request refused, 11 state change failed, 20
//! usage errors, module not loaded and netlink errors).

mod args;
mod commands;
mod netlink;
mod status;
#[cfg(test)]
mod testutil;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use drbd_include::genl::{disk_conf, FAMILY_NAME, GENL_VERSION, USER_HEADER_SIZE};

use commands::{Attach, DiskOptions, Failure, Request};
use netlink::{GenlSocket, Transport};

/// The family's user header size as nlctrl reports it (8 fits any type).
const USER_HEADER_BYTES: u32 = USER_HEADER_SIZE as u32;

/// Exit code for usage errors, as drbdsetup-84.
const EXIT_USAGE: u8 = 20;

#[derive(Debug, Parser)]
#[command(
    name = "drbdsetup",
    version,
    about = "Configure DRBD 8.4 devices of the rdrbd kernel module",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a resource
    NewResource {
        #[arg(value_parser = args::resource_name)]
        resource: String,
    },
    /// Create a device (minor) as a volume of a resource
    NewMinor {
        #[arg(value_parser = args::resource_name)]
        resource: String,
        #[arg(value_parser = args::minor)]
        minor: u32,
        #[arg(value_parser = args::volume)]
        volume: u32,
    },
    /// Delete a device
    DelMinor {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Delete a resource without devices
    DelResource {
        #[arg(value_parser = args::resource_name)]
        resource: String,
    },
    /// Attach a backing device (meta data: internal by default)
    Attach(AttachArgs),
    /// Detach the backing device
    Detach {
        #[arg(value_parser = args::minor)]
        minor: u32,
        /// Detach immediately, failing pending IO
        #[arg(long)]
        force: bool,
    },
    /// Take a resource down: detach and delete its devices, then itself
    Down {
        #[arg(value_parser = args::resource_name)]
        resource: String,
    },
    /// Show the resources and their devices ("all" or none: every resource)
    Status {
        #[arg(value_parser = args::resource_name)]
        resource: Option<String>,
        /// Print a JSON array with one object per device
        #[arg(long)]
        json: bool,
    },
    /// Show one device
    ShowMinor {
        #[arg(value_parser = args::minor)]
        minor: u32,
        /// Print a JSON array with the device's object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct AttachArgs {
    #[arg(value_parser = args::minor)]
    minor: u32,
    #[arg(value_parser = args::device_path)]
    lower_dev: String,
    /// Meta data device (default: the lower device)
    #[arg(value_parser = args::device_path, requires = "meta_data_index")]
    meta_data_dev: Option<String>,
    /// internal, flexible or an index (default: internal)
    #[arg(value_parser = args::meta_index)]
    meta_data_index: Option<i32>,
    /// Device size: sectors, or a number with a K, M, G or s suffix
    #[arg(long, value_parser = args::size)]
    size: Option<u64>,
    /// pass_on, call-local-io-error or detach
    #[arg(long, value_parser = args::on_io_error)]
    on_io_error: Option<u32>,
    /// Activity log extents
    #[arg(long, value_parser = args::al_extents)]
    al_extents: Option<u32>,
    /// Resync rate: KiB/s, or a number with a K, M, G or s suffix
    #[arg(long, value_parser = args::resync_rate)]
    resync_rate: Option<u32>,
}

impl AttachArgs {
    fn spec(&self) -> Attach<'_> {
        Attach {
            backing_dev: &self.lower_dev,
            meta_dev: self.meta_data_dev.as_deref().unwrap_or(&self.lower_dev),
            meta_dev_idx: self
                .meta_data_index
                .unwrap_or(disk_conf::META_DEV_IDX_FLEX_INT),
            options: DiskOptions {
                size: self.size,
                on_io_error: self.on_io_error,
                al_extents: self.al_extents,
                resync_rate: self.resync_rate,
            },
        }
    }
}

/// What to do with the kernel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// A configuration request; `missing_ok` accepts an unknown resource.
    Config { missing_ok: bool },
    /// A status request, printed as text or JSON.
    Status { filter: Option<String>, json: bool },
}

/// A command turned into its request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// The object named on the command line, prefixed to error messages.
    obj: String,
    request: Request,
    action: Action,
}

const CONFIG: Action = Action::Config { missing_ok: false };

fn plan(command: &Command) -> Result<Plan, Failure> {
    let (obj, request, action) = match command {
        Command::NewResource { resource } => {
            (resource.clone(), commands::new_resource(resource), CONFIG)
        }
        Command::NewMinor {
            resource,
            minor,
            volume,
        } => (
            resource.clone(),
            commands::new_minor(resource, *minor, *volume),
            CONFIG,
        ),
        Command::DelMinor { minor } => (minor.to_string(), commands::del_minor(*minor), CONFIG),
        Command::DelResource { resource } => {
            (resource.clone(), commands::del_resource(resource), CONFIG)
        }
        Command::Attach(a) => (
            a.minor.to_string(),
            commands::attach(a.minor, &a.spec()),
            CONFIG,
        ),
        Command::Detach { minor, force } => {
            (minor.to_string(), commands::detach(*minor, *force), CONFIG)
        }
        Command::Down { resource } => (
            resource.clone(),
            commands::down(resource),
            Action::Config { missing_ok: true },
        ),
        Command::Status { resource, json } => {
            let filter = resource.clone().filter(|name| name != "all");
            let obj = filter.clone().unwrap_or_else(|| "all".to_owned());
            let request = commands::status_dump(filter.as_deref());
            let json = *json;
            (obj, request, Action::Status { filter, json })
        }
        Command::ShowMinor { minor, json } => (
            minor.to_string(),
            commands::status_of_minor(*minor),
            Action::Status {
                filter: None,
                json: *json,
            },
        ),
    };
    let request = request.map_err(|e| commands::encoding_failure(&obj, e))?;
    Ok(Plan {
        obj,
        request,
        action,
    })
}

/// Runs a plan; returns what to print on stdout.
fn execute(plan: &Plan, transport: &mut impl Transport) -> Result<String, Failure> {
    match &plan.action {
        Action::Config { missing_ok } => {
            commands::run_config(transport, &plan.obj, &plan.request, *missing_ok)?;
            Ok(String::new())
        }
        Action::Status { filter, json } => {
            let resources =
                commands::run_status(transport, &plan.obj, &plan.request, filter.as_deref())?;
            if !json {
                return Ok(status::render_text(&resources));
            }
            status::render_json(&resources).map_err(|_| Failure::Request {
                obj: plan.obj.clone(),
                reason: "could not encode JSON",
            })
        }
    }
}

fn run(command: &Command) -> Result<String, Failure> {
    let plan = plan(command)?;
    let mut socket = GenlSocket::connect(FAMILY_NAME, GENL_VERSION, USER_HEADER_BYTES)
        .map_err(|e| Failure::transport(&plan.obj, e))?;
    execute(&plan, &mut socket)
}

/// Prints clap's message; `--help` and `--version` succeed, errors exit 20.
fn usage(error: &clap::Error) -> ExitCode {
    // Nothing sensible is left to do if the terminal is gone.
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    match run(&cli.command) {
        Ok(output) => match std::io::stdout().lock().write_all(output.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("drbdsetup: writing output: {error}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{reply_with, resource_only, state, status_reply, FakeKernel};
    use clap::error::ErrorKind;
    use drbd_include::genl::{cmd, parse_request, DiskState, Role, MINOR_ALL};

    fn parse(line: &str) -> Result<Command, clap::Error> {
        let argv = std::iter::once("drbdsetup").chain(line.split_whitespace());
        Cli::try_parse_from(argv).map(|cli| cli.command)
    }

    fn plan_of(line: &str) -> Plan {
        plan(&parse(line).unwrap()).unwrap()
    }

    fn kind(line: &str) -> ErrorKind {
        parse(line).unwrap_err().kind()
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn config_commands_and_their_requests() {
        let p = plan_of("new-resource r0");
        assert_eq!((p.obj.as_str(), p.request.cmd), ("r0", cmd::NEW_RESOURCE));
        assert_eq!(p.action, CONFIG);
        let req = parse_request(&p.request.body).unwrap();
        assert_eq!(req.minor(), MINOR_ALL);
        let ctx = req.cfg_context().unwrap().unwrap();
        assert_eq!((ctx.resource_name, ctx.volume), (Some(&b"r0"[..]), None));

        let p = plan_of("new-minor r0 1 2");
        assert_eq!((p.obj.as_str(), p.request.cmd), ("r0", cmd::NEW_MINOR));
        let req = parse_request(&p.request.body).unwrap();
        let ctx = req.cfg_context().unwrap().unwrap();
        assert_eq!((req.minor(), ctx.volume), (1, Some(2)));
        assert_eq!(ctx.resource_name, Some(&b"r0"[..]));

        let p = plan_of("del-minor /dev/drbd3");
        assert_eq!((p.obj.as_str(), p.request.cmd), ("3", cmd::DEL_MINOR));
        assert_eq!(parse_request(&p.request.body).unwrap().minor(), 3);

        let p = plan_of("del-resource r0");
        assert_eq!(p.request.cmd, cmd::DEL_RESOURCE);
        let req = parse_request(&p.request.body).unwrap();
        assert_eq!(req.minor(), MINOR_ALL);
        assert!(req.cfg_context().unwrap().is_some());

        let p = plan_of("down r0");
        assert_eq!(p.request.cmd, cmd::DOWN);
        assert_eq!(p.action, Action::Config { missing_ok: true });
        let req = parse_request(&p.request.body).unwrap();
        assert_eq!(req.minor(), MINOR_ALL);

        let p = plan_of("detach 0");
        assert_eq!(p.request.cmd, cmd::DETACH);
        assert_eq!(
            parse_request(&p.request.body).unwrap().detach_parms(),
            Ok(None)
        );
        let p = plan_of("detach 0 --force");
        let parms = parse_request(&p.request.body)
            .unwrap()
            .detach_parms()
            .unwrap();
        assert!(parms.is_some_and(|p| p.force_detach));
    }

    #[test]
    fn attach_forms() {
        let p = plan_of("attach 0 /dev/vdb");
        assert_eq!((p.obj.as_str(), p.request.cmd), ("0", cmd::ATTACH));
        let req = parse_request(&p.request.body).unwrap();
        let conf = req.disk_conf().unwrap().unwrap();
        assert_eq!(conf.backing_dev, b"/dev/vdb");
        assert_eq!(conf.meta_dev, b"/dev/vdb");
        assert_eq!(conf.meta_dev_idx, disk_conf::META_DEV_IDX_FLEX_INT);
        assert_eq!(
            plan_of("attach 0 /dev/vdb /dev/vdb internal").request,
            p.request,
            "the explicit internal form sends the same bytes"
        );

        let p = plan_of(
            "attach 2 /dev/vdb /dev/vdc flexible --size 1G --on-io-error pass_on \
             --al-extents=3389 --resync-rate=100M",
        );
        let req = parse_request(&p.request.body).unwrap();
        assert_eq!(req.minor(), 2);
        let conf = req.disk_conf().unwrap().unwrap();
        assert_eq!(conf.meta_dev, b"/dev/vdc");
        assert_eq!(conf.meta_dev_idx, disk_conf::META_DEV_IDX_FLEX_EXT);
        assert_eq!(conf.disk_size, 1 << 21);
        assert_eq!(conf.on_io_error, 0);
        assert_eq!(conf.al_extents, 3389);
        assert_eq!(conf.resync_rate, 102_400);

        let p = plan_of("attach 0 /dev/vdb /dev/vdc 4");
        let conf = parse_request(&p.request.body)
            .unwrap()
            .disk_conf()
            .unwrap()
            .unwrap();
        assert_eq!(conf.meta_dev_idx, 4);
    }

    #[test]
    fn status_commands() {
        let p = plan_of("status");
        assert_eq!(p.obj, "all");
        assert_eq!((p.request.cmd, p.request.dump), (cmd::GET_STATUS, true));
        assert_eq!(
            p.action,
            Action::Status {
                filter: None,
                json: false
            }
        );
        assert_eq!(plan_of("status all").request, p.request);
        let req = parse_request(&p.request.body).unwrap();
        assert_eq!((req.minor(), req.cfg_context()), (MINOR_ALL, Ok(None)));

        let p = plan_of("status r0 --json");
        assert_eq!(
            p.action,
            Action::Status {
                filter: Some("r0".into()),
                json: true
            }
        );
        let ctx = parse_request(&p.request.body)
            .unwrap()
            .cfg_context()
            .unwrap();
        assert_eq!(ctx.and_then(|c| c.resource_name), Some(&b"r0"[..]));

        let p = plan_of("show-minor 4");
        assert_eq!((p.request.cmd, p.request.dump), (cmd::GET_STATUS, false));
        assert_eq!(parse_request(&p.request.body).unwrap().minor(), 4);
    }

    /// Requests drbdsetup-84 of drbd-utils 9.22 sent (genlmsghdr, then
    /// the DRBD body), captured from the NLMSG_ERROR echo of a stand-in
    /// family; with our equivalent command line.
    const DRBDSETUP_84: &[(&str, &str)] = &[
        (
            "attach 0 /dev/loop0 /dev/loop0 internal",
            "0c010000 00000000 00000000 2c000380 0f000100 2f646576 2f6c6f6f 70300000 \
             0f000200 2f646576 2f6c6f6f 70300000 08000300 fdffffff",
        ),
        (
            "attach 1 /dev/loop0 /dev/loop1 4",
            "0c010000 01000000 00000000 2c000380 0f000100 2f646576 2f6c6f6f 70300000 \
             0f000200 2f646576 2f6c6f6f 70310000 08000300 04000000",
        ),
        (
            "new-minor r0 3 1",
            "05010000 03000000 00000000 14000280 07000240 72300000 08000140 01000000",
        ),
        (
            "new-resource r0",
            "07010000 ffffffff 00000000 0c000280 07000240 72300000",
        ),
        ("detach 0", "12010000 00000000 00000000"),
        (
            "detach 0 --force",
            "12010000 00000000 00000000 0c000d80 05000140 01000000",
        ),
        (
            "down r0",
            "1b010000 ffffffff 00000000 0c000280 07000240 72300000",
        ),
        ("del-minor 7", "06010000 07000000 00000000"),
        (
            "del-resource r0",
            "08010000 ffffffff 00000000 0c000280 07000240 72300000",
        ),
        // drbdsetup-84 sh-status 5 / sh-status r0 (the latter as a dump).
        ("show-minor 5", "02010000 05000000 00000000"),
        (
            "status r0",
            "02010000 ffffffff 00000000 0c000280 07000240 72300000",
        ),
    ];

    /// drbdsetup-84 attach 2 /dev/loop0 /dev/loop1 flexible --size=1G
    /// --on-io-error=pass_on --al-extents=3389 --resync-rate=100M: the
    /// options come first there, in command line order.
    const DRBDSETUP_84_ATTACH_OPTIONS: &str =
        "0c010000 02000000 00000000 50000380 0c000440 00002000 00000000 08000640 00000000 \
         08000a40 3d0d0000 08000840 00900100 0f000100 2f646576 2f6c6f6f 70300000 0f000200 \
         2f646576 2f6c6f6f 70310000 08000300 feffffff";

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// genlmsghdr (version 1) plus body, as captured.
    fn genl_bytes(request: &Request) -> Vec<u8> {
        [&[request.cmd, 1, 0, 0][..], &request.body].concat()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn requests_match_drbdsetup_84_bytes() {
        for (line, captured) in DRBDSETUP_84 {
            assert_eq!(genl_bytes(&plan_of(line).request), hex(captured), "{line}");
        }
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn attach_options_match_drbdsetup_84_up_to_order() {
        use drbd_include::nla::Attrs;
        let line = "attach 2 /dev/loop0 /dev/loop1 flexible --size=1G --on-io-error=pass_on \
                    --al-extents=3389 --resync-rate=100M";
        let ours = plan_of(line).request.body;
        let theirs = hex(DRBDSETUP_84_ATTACH_OPTIONS).split_off(4);
        let fields = |body: &[u8]| {
            let nest = Attrs::new(&body[8..]).next().unwrap().unwrap();
            assert_eq!(nest.raw[..4], [0x50, 0, 0x03, 0x80]);
            let mut raw: Vec<Vec<u8>> = nest
                .nested_attrs()
                .map(|a| a.unwrap().raw.to_vec())
                .collect();
            raw.sort();
            raw
        };
        assert_eq!(ours[..8], theirs[..8]);
        assert_eq!(fields(&ours), fields(&theirs));
        let conf = |body: &[u8]| {
            let req = parse_request(body).unwrap();
            format!("{:?}", req.disk_conf().unwrap().unwrap())
        };
        assert_eq!(conf(&ours), conf(&theirs));
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(kind("del-minor -1"), ErrorKind::UnknownArgument);
        assert_eq!(kind("del-minor 1048576"), ErrorKind::ValueValidation);
        assert_eq!(kind("del-minor r0"), ErrorKind::ValueValidation);
        assert_eq!(kind("new-minor r0 x 0"), ErrorKind::ValueValidation);
        assert_eq!(kind("new-minor r0 0 65535"), ErrorKind::ValueValidation);
        assert_eq!(kind("new-minor r0 0"), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind("new-resource"), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind("attach 0"), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            kind("attach 0 /dev/vdb /dev/vdc"),
            ErrorKind::MissingRequiredArgument,
            "a meta data device needs its index"
        );
        assert_eq!(
            kind("attach 0 /dev/vdb /dev/vdb external"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("attach 0 /dev/vdb /dev/vdb -1"),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind("attach 0 /dev/vdb --on-io-error=panic"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("attach 0 /dev/vdb --resync-rate=0"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("attach 0 /dev/vdb --al-extents 10"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("attach 0 /dev/vdb --size 1T"),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind("attach 0 /dev/vdb a b c"), ErrorKind::UnknownArgument);
        assert_eq!(kind("detach 0 --hard"), ErrorKind::UnknownArgument);
        assert_eq!(kind("del-resource r0 r1"), ErrorKind::UnknownArgument);
        assert_eq!(kind("frobnicate"), ErrorKind::InvalidSubcommand);
        assert_eq!(
            kind(""),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        let long = format!("new-resource {}", "r".repeat(128));
        assert_eq!(kind(&long), ErrorKind::ValueValidation);
        let message = parse("del-minor r0").unwrap_err().to_string();
        assert!(message.contains("Cannot determine minor device number of device 'r0'"));
        let error = parse("attach 0 /dev/vdb /dev/vdb external").unwrap_err();
        assert!(error.use_stderr());
        assert!(!parse("--help").unwrap_err().use_stderr());
    }

    #[test]
    fn executes_config_plans() {
        let mut kernel = FakeKernel::answering(vec![reply_with(0, 101, b"")]);
        let p = plan_of("attach 0 /dev/vdb");
        assert_eq!(execute(&p, &mut kernel).unwrap(), "");
        assert_eq!(kernel.sent, [(cmd::ATTACH, false, p.request.body.clone())]);

        let mut kernel = FakeKernel::answering(vec![reply_with(0, 104, b"open failed: -2")]);
        let failure = execute(&p, &mut kernel).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "0: Failure: (104) Can not open backing device\n\
             additional info from kernel:\nopen failed: -2"
        );
        assert_eq!(failure.exit_code(), 10);

        let mut kernel = FakeKernel::answering(vec![reply_with(MINOR_ALL, 158, b"")]);
        assert!(
            execute(&plan_of("down r9"), &mut kernel).is_ok(),
            "down is missing_ok"
        );
        let failure = execute(&plan_of("del-resource r9"), &mut kernel).unwrap_err();
        assert_eq!(failure.to_string(), "r9: Failure: (158) Unknown resource");

        let mut kernel = FakeKernel {
            error: Some(1),
            ..FakeKernel::default()
        };
        let failure = execute(&plan_of("new-resource r0"), &mut kernel).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "r0: received netlink error reply: Operation not permitted"
        );
        assert_eq!(failure.exit_code(), 20);
    }

    #[test]
    fn executes_status_plans() {
        let messages = vec![
            status_reply(
                "r0",
                0,
                0,
                state(Role::Secondary, DiskState::UpToDate),
                Some("/dev/vdb"),
            ),
            status_reply(
                "r1",
                1,
                0,
                state(Role::Secondary, DiskState::Diskless),
                None,
            ),
            resource_only("r2"),
        ];
        let mut kernel = FakeKernel::answering(messages.clone());
        let text = execute(&plan_of("status"), &mut kernel).unwrap();
        assert_eq!(
            text,
            "r0 role:Secondary\n  volume:0 minor:0 disk:UpToDate backing:/dev/vdb\n\n\
             r1 role:Secondary\n  volume:0 minor:1 disk:Diskless\n\n\
             r2 role:Unknown\n\n"
        );
        assert!(kernel.sent[0].1, "status is a dump");

        // A kernel that ignores the filter still shows only the resource asked for.
        let text = execute(&plan_of("status r1"), &mut kernel).unwrap();
        assert_eq!(
            text,
            "r1 role:Secondary\n  volume:0 minor:1 disk:Diskless\n\n"
        );

        let json = execute(&plan_of("status --json"), &mut kernel).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let devices = value.as_array().unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0]["backing_dev"], "/dev/vdb");
        assert_eq!(devices[0]["capacity_sectors"], 204_800);
        assert_eq!(devices[1]["disk"], "Diskless");
        assert_eq!(devices[1]["backing_dev"], serde_json::Value::Null);

        let mut empty = FakeKernel::default();
        assert_eq!(execute(&plan_of("status"), &mut empty).unwrap(), "");
        assert_eq!(
            execute(&plan_of("status --json"), &mut empty).unwrap(),
            "[]\n"
        );

        let mut one = FakeKernel::answering(vec![messages[0].clone()]);
        let text = execute(&plan_of("show-minor 0"), &mut one).unwrap();
        assert_eq!(
            text,
            "r0 role:Secondary\n  volume:0 minor:0 disk:UpToDate backing:/dev/vdb\n\n"
        );
        assert!(!one.sent[0].1, "show-minor is a doit");
    }
}
