//! drbdsetup for rdrbd: configures the DRBD 8.4 kernel module through its
//! generic netlink family "drbd", with drbdsetup-84's syntax, messages and
//! exit codes (0 success, 10 request refused, 11 state change failed, 20
//! usage errors, module not loaded and netlink errors; 5 when a wait times
//! out).

mod address;
mod args;
mod commands;
mod events;
#[cfg(test)]
mod golden;
mod netlink;
mod options;
mod show;
mod status;
#[cfg(test)]
mod testutil;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use drbd_include::genl::{cmd, disk_conf, FAMILY_NAME, GENL_VERSION, USER_HEADER_SIZE};

use commands::{Attach, Endpoints, Failure, Request, WaitTimeouts};
use netlink::{GenlSocket, Transport};
use options::{
    AttachSet, ConnectSet, DiskSet, ForceSet, Given, NetSet, NewResourceSet, NewUuidSet,
    PrimarySet, ResizeSet, ResourceSet, VerifySet,
};
use show::View;

/// The family's user header size as nlctrl reports it (8 fits any type).
const USER_HEADER_BYTES: u32 = USER_HEADER_SIZE as u32;

/// Exit code for usage errors, as drbdsetup-84.
const EXIT_USAGE: u8 = 20;

/// The name this tool calls itself in messages.
const PROGNAME: &str = "drbdsetup";

#[derive(Debug, Parser)]
#[command(
    name = "drbdsetup",
    version,
    about = "Configure DRBD 8.4 devices of the rdrbd kernel module",
    disable_help_subcommand = true,
    infer_long_args = true,
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A sockaddr image parsed from `[af:]addr[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint(Vec<u8>);

fn endpoint(text: &str) -> Result<Endpoint, String> {
    address::parse(text).map(Endpoint)
}

/// What a status-like command is about: a minor, a resource or all.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Minor(u32),
    Resource(String),
    All,
}

fn target(text: &str) -> Result<Target, String> {
    if text == "all" {
        return Ok(Target::All);
    }
    match args::minor(text) {
        Ok(minor) => Ok(Target::Minor(minor)),
        Err(_) => args::resource_name(text).map(Target::Resource),
    }
}

/// A resource name, or `None` for "all".
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourceOrAll(Option<String>);

fn resource_or_all(text: &str) -> Result<ResourceOrAll, String> {
    if text == "all" {
        Ok(ResourceOrAll(None))
    } else {
        args::resource_name(text).map(|name| ResourceOrAll(Some(name)))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Become Primary
    Primary {
        #[arg(value_parser = args::minor)]
        minor: u32,
        #[command(flatten)]
        opts: Given<PrimarySet>,
    },
    /// Become Secondary
    Secondary {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Attach a backing device (meta data: internal by default)
    Attach(AttachArgs),
    /// Change the disk options of an attached device
    DiskOptions {
        #[arg(value_parser = args::minor)]
        minor: u32,
        #[command(flatten)]
        opts: Given<DiskSet>,
    },
    /// Detach the backing device
    Detach {
        #[arg(value_parser = args::minor)]
        minor: u32,
        #[command(flatten)]
        opts: Given<ForceSet>,
    },
    /// Configure the network of a resource and start connecting
    Connect {
        #[arg(value_parser = args::resource_name)]
        resource: String,
        /// [af:]local_addr[:port] (af: ipv4, ipv6, sdp, ssocks; port 7788)
        #[arg(value_parser = endpoint)]
        local_addr: Endpoint,
        /// [af:]remote_addr[:port]
        #[arg(value_parser = endpoint)]
        remote_addr: Endpoint,
        #[command(flatten)]
        opts: Given<ConnectSet>,
    },
    /// Change the network options of a connection
    NetOptions {
        #[arg(value_parser = endpoint)]
        local_addr: Endpoint,
        #[arg(value_parser = endpoint)]
        remote_addr: Endpoint,
        #[command(flatten)]
        opts: Given<NetSet>,
    },
    /// Disconnect a connection
    Disconnect {
        #[arg(value_parser = endpoint)]
        local_addr: Endpoint,
        #[arg(value_parser = endpoint)]
        remote_addr: Endpoint,
        #[command(flatten)]
        opts: Given<ForceSet>,
    },
    /// Resize a device
    Resize {
        #[arg(value_parser = args::minor)]
        minor: u32,
        #[command(flatten)]
        opts: Given<ResizeSet>,
    },
    /// Change the options of a resource
    ResourceOptions {
        #[arg(value_parser = args::resource_name)]
        resource: String,
        #[command(flatten)]
        opts: Given<ResourceSet>,
    },
    /// Generate a new current UUID
    NewCurrentUuid {
        #[arg(value_parser = args::minor)]
        minor: u32,
        #[command(flatten)]
        opts: Given<NewUuidSet>,
    },
    /// Start a full resync with this node as target
    Invalidate {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Start a full resync with this node as source
    InvalidateRemote {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Pause the resync
    PauseSync {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Resume the resync
    ResumeSync {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Suspend IO
    SuspendIo {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Resume IO
    ResumeIo {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Mark the data Outdated
    Outdate {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Start online verify
    Verify {
        #[arg(value_parser = args::minor)]
        minor: u32,
        #[command(flatten)]
        opts: Given<VerifySet>,
    },
    /// Take a resource down: detach and delete its devices, then itself
    Down {
        #[arg(value_parser = args::resource_name)]
        resource: String,
    },
    /// Show the roles (deprecated, use role)
    State {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Show the roles: Primary/Secondary
    Role {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Show the status as shell variables
    ShStatus {
        #[arg(value_parser = target)]
        target: Option<Target>,
    },
    /// Show the connection state
    Cstate {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Show the disk states: own/peer
    Dstate {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Show the generation identifiers (UUIDs), explained
    ShowGi {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Show the generation identifiers (UUIDs)
    GetGi {
        #[arg(value_parser = args::minor)]
        minor: u32,
    },
    /// Show the configuration
    Show {
        #[arg(value_parser = target)]
        target: Option<Target>,
        /// Also show options at their defaults
        #[arg(long)]
        show_defaults: bool,
    },
    /// Show the resources and their devices ("all" or none: every resource)
    Status {
        #[arg(value_parser = args::resource_name)]
        resource: Option<String>,
        /// Print a JSON array with one object per device
        #[arg(long)]
        json: bool,
    },
    /// Print state changes as they happen (DRBD 8.4 format)
    Events {
        #[arg(value_parser = target)]
        target: Option<Target>,
        /// Prefix each line with the time (UTC; an rdrbd extension)
        #[arg(long)]
        timestamps: bool,
    },
    /// Print the state, then its changes, as key:value lines
    Events2 {
        #[arg(value_parser = resource_or_all)]
        resource: Option<ResourceOrAll>,
        /// Prefix each line with the time (UTC)
        #[arg(long)]
        timestamps: bool,
        /// Also print statistics
        #[arg(long)]
        statistics: bool,
        /// Print the current state and exit
        #[arg(long)]
        now: bool,
    },
    /// Wait until the device is connected
    WaitConnect(WaitArgs),
    /// Wait until the device is connected and in sync
    WaitSync(WaitArgs),
    /// Create a resource
    NewResource {
        #[arg(value_parser = args::resource_name)]
        resource: String,
        #[command(flatten)]
        opts: Given<NewResourceSet>,
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
    /// Show one device (an rdrbd extension)
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
    #[command(flatten)]
    opts: Given<AttachSet>,
}

#[derive(Debug, Args)]
struct WaitArgs {
    #[arg(value_parser = args::minor)]
    minor: u32,
    /// Seconds to wait, 0 = forever
    #[arg(long, value_parser = args::wfc_timeout, default_value_t = 0)]
    wfc_timeout: u32,
    /// Seconds to wait if the node was degraded
    #[arg(long, value_parser = args::wfc_timeout, default_value_t = 0)]
    degr_wfc_timeout: u32,
    /// Seconds to wait if the peer is known Outdated
    #[arg(long, value_parser = args::wfc_timeout, default_value_t = 0)]
    outdated_wfc_timeout: u32,
    /// Keep waiting after a split brain (StandAlone)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "yes")]
    wait_after_sb: Option<String>,
}

impl WaitArgs {
    fn timeouts(&self) -> WaitTimeouts {
        WaitTimeouts {
            wfc: self.wfc_timeout,
            degr: self.degr_wfc_timeout,
            outdated: self.outdated_wfc_timeout,
        }
    }

    /// drbdsetup-84 takes `--wait-after-sb` and `--wait-after-sb=yes`;
    /// any other value means no.
    fn after_sb(&self) -> bool {
        self.wait_after_sb.as_deref() == Some("yes")
    }
}

/// What to do with the kernel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// A configuration request; `missing_ok` accepts an unknown resource.
    Config { missing_ok: bool },
    /// A status request, printed as text or JSON.
    Status { filter: Option<String>, json: bool },
    /// A GET_STATUS view (role, show, ...).
    View(View),
    /// `events`.
    Events {
        filter: events::Filter,
        timestamps: bool,
    },
    /// `events2`.
    Events2 {
        filter: events::Filter,
        timestamps: bool,
        statistics: bool,
        now: bool,
    },
    /// `wait-connect`, `wait-sync`.
    Wait {
        minor: u32,
        sync: bool,
        after_sb: bool,
        timeouts: WaitTimeouts,
    },
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

/// drbdsetup-84 names connection commands' object "??" in messages.
const CONNECTION_OBJ: &str = "??";

fn endpoints(local: &Endpoint, remote: &Endpoint) -> Endpoints {
    Endpoints {
        local: local.0.clone(),
        peer: remote.0.clone(),
    }
}

/// The object text, request and filter of a minor / resource / all target.
fn target_request(
    target: &Option<Target>,
    cmd: u8,
) -> Result<
    (
        String,
        Result<Request, drbd_include::nla::NlaError>,
        events::Filter,
    ),
    Failure,
> {
    Ok(match target.clone().unwrap_or(Target::All) {
        Target::Minor(minor) => (
            minor.to_string(),
            commands::minor_only(cmd, minor),
            events::Filter::Minor(minor),
        ),
        Target::Resource(name) => (
            name.clone(),
            commands::dump_of(cmd, Some(&name)),
            events::Filter::Resource(name),
        ),
        Target::All => (
            "all".to_owned(),
            commands::dump_of(cmd, None),
            events::Filter::All,
        ),
    })
}

fn minor_plan(
    minor: u32,
    request: Result<Request, drbd_include::nla::NlaError>,
    action: Action,
) -> (String, Result<Request, drbd_include::nla::NlaError>, Action) {
    (minor.to_string(), request, action)
}

fn plan(command: &Command) -> Result<Plan, Failure> {
    let simple = |cmd: u8, minor: u32| minor_plan(minor, commands::minor_only(cmd, minor), CONFIG);
    let view = |minor: u32, view: View| {
        minor_plan(minor, commands::status_of_minor(minor), Action::View(view))
    };
    let (obj, request, action) = match command {
        Command::Primary { minor, opts } => {
            minor_plan(*minor, commands::primary(*minor, opts), CONFIG)
        }
        Command::Secondary { minor } => simple(cmd::SECONDARY, *minor),
        Command::Attach(a) => {
            let spec = a.spec();
            minor_plan(a.minor, commands::attach(a.minor, &spec), CONFIG)
        }
        Command::DiskOptions { minor, opts } => {
            minor_plan(*minor, commands::disk_options(*minor, opts), CONFIG)
        }
        Command::Detach { minor, opts } => {
            minor_plan(*minor, commands::detach(*minor, opts), CONFIG)
        }
        Command::Connect {
            resource,
            local_addr,
            remote_addr,
            opts,
        } => (
            resource.clone(),
            commands::connect(resource, &endpoints(local_addr, remote_addr), opts),
            CONFIG,
        ),
        Command::NetOptions {
            local_addr,
            remote_addr,
            opts,
        } => (
            CONNECTION_OBJ.to_owned(),
            commands::net_options(&endpoints(local_addr, remote_addr), opts),
            CONFIG,
        ),
        Command::Disconnect {
            local_addr,
            remote_addr,
            opts,
        } => (
            CONNECTION_OBJ.to_owned(),
            commands::disconnect(&endpoints(local_addr, remote_addr), opts),
            CONFIG,
        ),
        Command::Resize { minor, opts } => {
            minor_plan(*minor, commands::resize(*minor, opts), CONFIG)
        }
        Command::ResourceOptions { resource, opts } => (
            resource.clone(),
            commands::resource_options(resource, opts),
            CONFIG,
        ),
        Command::NewCurrentUuid { minor, opts } => {
            minor_plan(*minor, commands::new_current_uuid(*minor, opts), CONFIG)
        }
        Command::Invalidate { minor } => simple(cmd::INVALIDATE, *minor),
        Command::InvalidateRemote { minor } => simple(cmd::INVAL_PEER, *minor),
        Command::PauseSync { minor } => simple(cmd::PAUSE_SYNC, *minor),
        Command::ResumeSync { minor } => simple(cmd::RESUME_SYNC, *minor),
        Command::SuspendIo { minor } => simple(cmd::SUSPEND_IO, *minor),
        Command::ResumeIo { minor } => simple(cmd::RESUME_IO, *minor),
        Command::Outdate { minor } => simple(cmd::OUTDATE, *minor),
        Command::Verify { minor, opts } => {
            minor_plan(*minor, commands::verify(*minor, opts), CONFIG)
        }
        Command::Down { resource } => (
            resource.clone(),
            commands::down(resource),
            Action::Config { missing_ok: true },
        ),
        Command::State { minor } => view(*minor, View::State),
        Command::Role { minor } => view(*minor, View::Role),
        Command::Cstate { minor } => view(*minor, View::Cstate),
        Command::Dstate { minor } => view(*minor, View::Dstate),
        Command::ShowGi { minor } => view(*minor, View::ShowGi),
        Command::GetGi { minor } => view(*minor, View::GetGi),
        Command::ShStatus { target } => {
            let (obj, request, _) = target_request(target, cmd::GET_STATUS)?;
            (obj, request, Action::View(View::ShStatus))
        }
        Command::Show {
            target,
            show_defaults,
        } => {
            let (obj, request, _) = target_request(target, cmd::GET_STATUS)?;
            let view = View::Show {
                defaults: *show_defaults,
            };
            (obj, request, Action::View(view))
        }
        Command::Status { resource, json } => {
            let filter = resource.clone().filter(|name| name != "all");
            let obj = filter.clone().unwrap_or_else(|| "all".to_owned());
            let request = commands::status_dump(filter.as_deref());
            let json = *json;
            (obj, request, Action::Status { filter, json })
        }
        Command::Events { target, timestamps } => {
            let (obj, request, filter) = target_request(target, cmd::GET_STATUS)?;
            let action = Action::Events {
                filter,
                timestamps: *timestamps,
            };
            (obj, request, action)
        }
        Command::Events2 {
            resource,
            timestamps,
            statistics,
            now,
        } => {
            let name = resource.clone().and_then(|r| r.0);
            let target = name.map_or(Target::All, Target::Resource);
            let (obj, request, filter) = target_request(&Some(target), cmd::GET_INITIAL_STATE)?;
            let action = Action::Events2 {
                filter,
                timestamps: *timestamps,
                statistics: *statistics,
                now: *now,
            };
            (obj, request, action)
        }
        Command::WaitConnect(w) | Command::WaitSync(w) => {
            let action = Action::Wait {
                minor: w.minor,
                sync: matches!(command, Command::WaitSync(_)),
                after_sb: w.after_sb(),
                timeouts: w.timeouts(),
            };
            minor_plan(w.minor, commands::status_of_minor(w.minor), action)
        }
        Command::NewResource { resource, opts } => (
            resource.clone(),
            commands::new_resource(resource, opts),
            CONFIG,
        ),
        Command::NewMinor {
            resource,
            minor,
            volume,
        } => (
            resource.clone(),
            commands::new_minor(resource, *minor, *volume),
            CONFIG,
        ),
        Command::DelMinor { minor } => minor_plan(*minor, commands::del_minor(*minor), CONFIG),
        Command::DelResource { resource } => {
            (resource.clone(), commands::del_resource(resource), CONFIG)
        }
        Command::ShowMinor { minor, json } => minor_plan(
            *minor,
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

impl AttachArgs {
    fn spec(&self) -> Attach<'_> {
        Attach {
            backing_dev: &self.lower_dev,
            meta_dev: self.meta_data_dev.as_deref().unwrap_or(&self.lower_dev),
            meta_dev_idx: self
                .meta_data_index
                .unwrap_or(disk_conf::META_DEV_IDX_FLEX_INT),
            options: &self.opts,
        }
    }
}

/// Where a command's output goes: stdout and stderr text, written (and
/// flushed) as it comes, so `events` streams.
trait Output {
    /// Writes text for stdout and stderr.
    fn emit(&mut self, out: &str, err: &str);
}

/// The process's stdout and stderr.
struct Terminal;

impl Output for Terminal {
    /// Stderr first: drbdsetup-84's stderr is unbuffered, its stdout is
    /// flushed after each message.
    fn emit(&mut self, out: &str, err: &str) {
        // Nothing sensible is left to do if the terminal is gone.
        if !err.is_empty() {
            let _ = std::io::stderr().lock().write_all(err.as_bytes());
        }
        if !out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
        }
    }
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// Runs a plan; returns the exit code, or the failure to report.
fn execute(
    plan: &Plan,
    transport: &mut impl Transport,
    output: &mut dyn Output,
    clock: fn() -> SystemTime,
) -> Result<u8, Failure> {
    match &plan.action {
        Action::Config { missing_ok } => {
            commands::run_config(transport, &plan.obj, &plan.request, *missing_ok)?;
            Ok(0)
        }
        Action::Status { filter, json } => {
            let resources =
                commands::run_status(transport, &plan.obj, &plan.request, filter.as_deref())?;
            let text = if *json {
                status::render_json(&resources).map_err(|_| Failure::Request {
                    obj: plan.obj.clone(),
                    reason: "could not encode JSON",
                })?
            } else {
                status::render_text(&resources)
            };
            output.emit(&text, "");
            Ok(0)
        }
        Action::View(view) => {
            let (mut out, mut err) = (String::new(), String::new());
            let result = commands::run_view(
                transport,
                &plan.obj,
                &plan.request,
                *view,
                PROGNAME,
                &mut out,
                &mut err,
            );
            output.emit(&out, &err);
            result
        }
        Action::Events { filter, timestamps } => {
            let mut listener = events::Events {
                timestamps: *timestamps,
                clock,
            };
            let mut emit = |out: &str, err: &str| output.emit(out, err);
            commands::run_listen(
                transport,
                &plan.obj,
                &plan.request,
                filter,
                &mut listener,
                None,
                &mut emit,
            )
        }
        Action::Events2 {
            filter,
            timestamps,
            statistics,
            now,
        } => {
            let mut listener = events::Events2::new(*timestamps, *statistics, *now, clock);
            let mut emit = |out: &str, err: &str| output.emit(out, err);
            commands::run_listen(
                transport,
                &plan.obj,
                &plan.request,
                filter,
                &mut listener,
                None,
                &mut emit,
            )
        }
        Action::Wait {
            minor,
            sync,
            after_sb,
            timeouts,
        } => {
            let mut notes = String::new();
            let chosen = commands::choose_timeout(transport, *minor, *timeouts, &mut notes);
            output.emit("", &notes);
            let seconds = chosen?;
            let timeout = (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)));
            let mut listener = events::Wait {
                sync: *sync,
                after_sb: *after_sb,
            };
            let mut emit = |out: &str, err: &str| output.emit(out, err);
            commands::run_listen(
                transport,
                &plan.obj,
                &plan.request,
                &events::Filter::Minor(*minor),
                &mut listener,
                timeout,
                &mut emit,
            )
        }
    }
}

fn run(command: &Command) -> Result<u8, Failure> {
    let plan = plan(command)?;
    let mut socket = GenlSocket::connect(FAMILY_NAME, GENL_VERSION, USER_HEADER_BYTES)
        .map_err(|e| Failure::transport(&plan.obj, e))?;
    execute(&plan, &mut socket, &mut Terminal, now)
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

/// drbdsetup-84 still accepts the old order `<device> <command> ...`: swaps
/// the first two arguments when only the second is a command.
fn legacy_order(mut argv: Vec<String>) -> Vec<String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let is_command = |arg: Option<&String>| {
        arg.is_some_and(|a| cli.get_subcommands().any(|c| c.get_name() == a))
    };
    if argv.len() >= 3 && !is_command(argv.get(1)) && is_command(argv.get(2)) {
        argv.swap(1, 2);
    }
    argv
}

fn main() -> ExitCode {
    let argv = legacy_order(std::env::args().collect());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    match run(&cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{message, reply_with, resource_only, state, status_reply, FakeKernel};
    use clap::error::ErrorKind;
    use drbd_include::genl::{cmd, parse_request, DiskState, Role, MINOR_ALL};

    /// Runs a plan, returning what it printed on stdout.
    fn execute(plan: &Plan, kernel: &mut impl Transport) -> Result<String, Failure> {
        #[derive(Default)]
        struct Stdout(String);
        impl Output for Stdout {
            fn emit(&mut self, out: &str, _err: &str) {
                self.0.push_str(out);
            }
        }
        let mut out = Stdout::default();
        super::execute(plan, kernel, &mut out, SystemTime::now).map(|_| out.0)
    }

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
        assert_eq!(ours, theirs, "options first, in command line order");
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

    fn request_of(line: &str) -> drbd_include::genl::Request<'static> {
        let body = Box::leak(plan_of(line).request.body.into_boxed_slice());
        parse_request(body).unwrap()
    }

    #[test]
    fn new_commands_and_their_requests() {
        use drbd_include::genl::{net_conf, NetConf, ResizeParms, StartOvParms};
        for (line, code) in [
            ("secondary 1", cmd::SECONDARY),
            ("invalidate 1", cmd::INVALIDATE),
            ("invalidate-remote 1", cmd::INVAL_PEER),
            ("pause-sync 1", cmd::PAUSE_SYNC),
            ("resume-sync 1", cmd::RESUME_SYNC),
            ("suspend-io 1", cmd::SUSPEND_IO),
            ("resume-io 1", cmd::RESUME_IO),
            ("outdate 1", cmd::OUTDATE),
            ("primary 1", cmd::PRIMARY),
            ("verify 1", cmd::START_OV),
            ("resize 1", cmd::RESIZE),
            ("new-current-uuid 1", cmd::NEW_C_UUID),
        ] {
            let p = plan_of(line);
            assert_eq!(
                (p.obj.as_str(), p.request.cmd, p.request.dump),
                ("1", code, false)
            );
            assert_eq!(p.request.body, [1, 0, 0, 0, 0, 0, 0, 0], "{line}");
            assert_eq!(p.action, CONFIG);
        }

        let p = plan_of("connect r0 10.0.0.1 ipv6:[::1]:7000 --protocol=a --shared-secret=s3");
        assert_eq!((p.obj.as_str(), p.request.cmd), ("r0", cmd::CONNECT));
        let req = parse_request(&p.request.body).unwrap();
        let ctx = req.cfg_context().unwrap().unwrap();
        assert_eq!(ctx.resource_name, Some(&b"r0"[..]));
        assert_eq!(
            (ctx.my_addr.map(<[u8]>::len), ctx.peer_addr.map(<[u8]>::len)),
            (Some(16), Some(28))
        );
        assert_eq!(
            req.net_conf().unwrap(),
            NetConf {
                wire_protocol: net_conf::PROT_A,
                shared_secret: b"s3",
                ..NetConf::default()
            }
        );

        let p = plan_of("net-options 10.0.0.1 10.0.0.2 --set-defaults --ping-int=3");
        assert_eq!((p.obj.as_str(), p.request.cmd), ("??", cmd::CHG_NET_OPTS));
        let req = parse_request(&p.request.body).unwrap();
        assert!(req.set_defaults());
        assert_eq!(req.cfg_context().unwrap().unwrap().resource_name, None);
        let changed = req.net_conf_change(NetConf::default()).unwrap();
        assert_eq!(changed.ping_int, 3);

        let p = plan_of("disconnect 10.0.0.1 10.0.0.2 --force");
        assert_eq!((p.obj.as_str(), p.request.cmd), ("??", cmd::DISCONNECT));
        let parms = parse_request(&p.request.body)
            .unwrap()
            .disconnect_parms()
            .unwrap();
        assert!(parms.unwrap().force_disconnect);

        let req = request_of("resize 2 --size=1G --assume-clean --al-stripes=2");
        assert_eq!(
            req.resize_parms(ResizeParms::default()).unwrap(),
            ResizeParms {
                resize_size: 1 << 21,
                no_resync: true,
                al_stripes: 2,
                ..ResizeParms::default()
            }
        );
        let req = request_of("verify 2 --stop=1M");
        assert_eq!(
            req.start_ov_parms(StartOvParms::default()).unwrap(),
            StartOvParms {
                ov_start_sector: 0,
                ov_stop_sector: 2048
            }
        );
        let req = request_of("new-current-uuid 2 --clear-bitmap");
        assert!(req.new_c_uuid_parms().unwrap().unwrap().clear_bm);
        let req = request_of("primary 2 --overwrite-data-of-peer");
        assert!(req.set_role_parms().unwrap().unwrap().assume_uptodate);

        let req = request_of("disk-options 3 --resync-after -1 --disk-barrier --al-updates=no");
        let conf = req
            .disk_conf_change(drbd_include::genl::DiskConf::default())
            .unwrap();
        assert_eq!(
            (conf.resync_after, conf.disk_barrier, conf.al_updates),
            (-1, true, false)
        );
        let p = plan_of("resource-options r0 --set-defaults --cpu-mask=ff");
        assert_eq!(p.request.cmd, cmd::RESOURCE_OPTS);
        let req = parse_request(&p.request.body).unwrap();
        assert!(req.set_defaults());
        let opts = req.resource_opts(Default::default()).unwrap();
        assert_eq!(opts.cpu_mask, b"ff");
        let req = request_of("new-resource r0 --on-no-data-accessible=suspend-io");
        assert_eq!(req.resource_opts(Default::default()).unwrap().on_no_data, 1);
    }

    #[test]
    fn status_like_commands() {
        for (line, view) in [
            ("role 4", View::Role),
            ("state 4", View::State),
            ("cstate 4", View::Cstate),
            ("dstate /dev/drbd4", View::Dstate),
            ("get-gi 4", View::GetGi),
            ("show-gi 4", View::ShowGi),
            ("sh-status 4", View::ShStatus),
            ("show 4", View::Show { defaults: false }),
            ("show --show-defaults 4", View::Show { defaults: true }),
        ] {
            let p = plan_of(line);
            assert_eq!(
                (p.obj.as_str(), p.action),
                ("4", Action::View(view)),
                "{line}"
            );
            assert_eq!((p.request.cmd, p.request.dump), (cmd::GET_STATUS, false));
        }
        for (line, obj, resource) in [
            ("show", "all", None),
            ("show all", "all", None),
            ("sh-status r0", "r0", Some(&b"r0"[..])),
        ] {
            let p = plan_of(line);
            assert_eq!((p.obj.as_str(), p.request.dump), (obj, true), "{line}");
            let ctx = parse_request(&p.request.body)
                .unwrap()
                .cfg_context()
                .unwrap();
            assert_eq!(ctx.and_then(|c| c.resource_name), resource);
        }
        let p = plan_of("events");
        assert_eq!(
            p.action,
            Action::Events {
                filter: events::Filter::All,
                timestamps: false
            }
        );
        let p = plan_of("events 3 --timestamps");
        assert_eq!((p.request.dump, p.obj.as_str()), (false, "3"));
        let p = plan_of("events2 --now --statistics --timestamps r0");
        assert_eq!(
            (p.request.cmd, p.request.dump),
            (cmd::GET_INITIAL_STATE, true)
        );
        assert_eq!(
            p.action,
            Action::Events2 {
                filter: events::Filter::Resource("r0".into()),
                timestamps: true,
                statistics: true,
                now: true
            }
        );
        let p = plan_of("wait-sync 2 --wfc-timeout=10 --wait-after-sb");
        assert_eq!(
            p.action,
            Action::Wait {
                minor: 2,
                sync: true,
                after_sb: true,
                timeouts: WaitTimeouts {
                    wfc: 10,
                    degr: 0,
                    outdated: 0
                }
            }
        );
        let p = plan_of("wait-connect 2 --wait-after-sb=no");
        assert!(matches!(
            p.action,
            Action::Wait {
                sync: false,
                after_sb: false,
                ..
            }
        ));
    }

    #[test]
    fn option_syntax_follows_getopt() {
        // Optional yes/no arguments need '=', as with getopt's optional_argument.
        assert!(parse("primary 0 --force=yes").is_ok());
        assert_eq!(kind("primary 0 --force yes"), ErrorKind::UnknownArgument);
        assert_eq!(kind("primary 0 --force=maybe"), ErrorKind::ValueValidation);
        // Required arguments take either form; unique prefixes are accepted.
        let a = plan_of("connect r0 1.2.3.4 5.6.7.8 --protocol B --proto=c");
        let b = plan_of("connect r0 1.2.3.4 5.6.7.8 --protocol=C");
        assert_eq!(a.request, b.request, "the last one wins");
        assert_eq!(
            kind("connect r0 1.2.3.4 5.6.7.8 --p=C"),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            plan_of("connect r0 1.2.3.4 5.6.7.8 --dry-run").request,
            plan_of("connect r0 1.2.3.4 5.6.7.8 --tentative").request
        );
        assert_eq!(
            plan_of("disk-options 0 --resync-after=-1").request,
            plan_of("disk-options 0 --resync-after -1").request
        );
    }

    #[test]
    fn bad_new_arguments() {
        let connect = "connect r0 10.0.0.1 10.0.0.2";
        assert_eq!(
            kind("connect r0 10.0.0.1"),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&format!("{connect} --protocol=D")),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&format!("{connect} --ping-int=0")),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&format!("{connect} --max-buffers=31")),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&format!("{connect} --sndbuf-size=11M")),
            ErrorKind::ValueValidation
        );
        let secret = format!("{connect} --shared-secret={}", "s".repeat(64));
        assert_eq!(kind(&secret), ErrorKind::ValueValidation);
        assert!(parse(&format!("{connect} --shared-secret={}", "s".repeat(63))).is_ok());
        assert_eq!(
            kind(&format!("{connect} --after-sb-1pri=discard-local")),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&format!("{connect} --alternate-address=1.2.3.4")),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind(&format!("{connect} --set-defaults")),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind("connect r0 10.0.0.1:0 10.0.0.2"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("connect r0 ipv6:[::1 10.0.0.2"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("disconnect 10.0.0.1"),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind("net-options 10.0.0.1 10.0.0.2 --tentative"),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind("disk-options 0 --resync-after=-2"),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind("disk-options 0 --size=1G"), ErrorKind::UnknownArgument);
        assert_eq!(
            kind("disk-options 0 --read-balancing=fastest"),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind("resize 0 --size=3T"), ErrorKind::ValueValidation);
        assert_eq!(
            kind("resize 0 --al-stripe-size-kB=3"),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind("verify 0 --start=x"), ErrorKind::ValueValidation);
        assert_eq!(
            kind("resource-options r0 --on-no-data-accessible=panic"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("new-resource r0 --set-defaults"),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind("wait-connect 0 --wfc-timeout=300001"),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind("role"), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind("role r0"), ErrorKind::ValueValidation);
        assert_eq!(kind("show 0 1"), ErrorKind::UnknownArgument);
        assert_eq!(kind("events2 --poll"), ErrorKind::UnknownArgument);
        assert_eq!(kind("outdate 0 --force"), ErrorKind::UnknownArgument);
    }

    #[test]
    fn legacy_argument_order() {
        let argv = |line: &str| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            legacy_order(argv("drbdsetup 0 primary --force")),
            argv("drbdsetup primary 0 --force")
        );
        assert_eq!(
            legacy_order(argv("drbdsetup /dev/drbd1 role")),
            argv("drbdsetup role /dev/drbd1")
        );
        assert_eq!(
            legacy_order(argv("drbdsetup role 1")),
            argv("drbdsetup role 1")
        );
        assert_eq!(legacy_order(argv("drbdsetup x")), argv("drbdsetup x"));
    }

    /// Collects stdout and stderr.
    #[derive(Default)]
    struct Both(String, String);

    impl Output for Both {
        fn emit(&mut self, out: &str, err: &str) {
            self.0.push_str(out);
            self.1.push_str(err);
        }
    }

    fn clock() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_000_042)
    }

    #[test]
    fn waits_time_out_and_listeners_stop_when_the_module_goes() {
        use crate::netlink::Incoming;
        let timeout = message(5, 101, |r| r.put_timeout_type(0).unwrap());
        let mut kernel = FakeKernel::answering(vec![timeout]);
        kernel.incoming = vec![].into();
        kernel.timeout_when_empty = true;
        let mut out = Both::default();
        let p = plan_of("wait-connect 5 --wfc-timeout=1");
        assert_eq!(super::execute(&p, &mut kernel, &mut out, clock).unwrap(), 5);
        assert!(kernel.subscribed);
        assert_eq!(
            kernel.sent.iter().map(|s| s.0).collect::<Vec<_>>(),
            [cmd::GET_TIMEOUT_TYPE, cmd::GET_STATUS]
        );

        let mut kernel = FakeKernel {
            incoming: vec![Incoming::Done { seq: 1 }, Incoming::FamilyGone].into(),
            ..FakeKernel::default()
        };
        let p = plan_of("events all");
        assert_eq!(super::execute(&p, &mut kernel, &mut out, clock).unwrap(), 0);

        let mut kernel = FakeKernel {
            error: Some(libc::ENOBUFS),
            ..FakeKernel::default()
        };
        let failure = super::execute(&p, &mut kernel, &mut out, clock).unwrap_err();
        assert_eq!(failure.exit_code(), 20);
        assert_eq!(
            failure.to_string(),
            "all: received netlink error reply: No buffer space available"
        );
    }

    #[test]
    fn event_timestamps() {
        use crate::netlink::Incoming;
        let body = status_reply(
            "r0",
            0,
            0,
            state(Role::Secondary, DiskState::UpToDate),
            None,
        );
        let mut kernel = FakeKernel {
            incoming: vec![Incoming::Message {
                seq: 3,
                cmd: cmd::GET_STATUS,
                body,
            }]
            .into(),
            ..FakeKernel::default()
        };
        let mut out = Both::default();
        let p = plan_of("events --timestamps");
        let failure = super::execute(&p, &mut kernel, &mut out, clock).unwrap_err();
        assert!(failure.to_string().contains("no more messages"));
        assert_eq!(
            out.0,
            "2023-11-14T22:13:20.000042+00:00 3 ST 0,r0[0] \
             { cs:StandAlone ro:Secondary/Unknown ds:UpToDate/DUnknown r--- }\n"
        );
        assert_eq!(
            events::timestamp(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000+00:00 "
        );
        assert_eq!(
            events::timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000+00:00 "
        );
    }

    #[test]
    fn events2_timestamps_keep_the_time_of_a_continued_event() {
        use crate::netlink::Incoming;
        use drbd_include::genl::{notification_header as nh, CfgContext, ResourceInfo};
        use std::sync::atomic::{AtomicU64, Ordering};
        static TICKS: AtomicU64 = AtomicU64::new(0);
        fn ticking() -> SystemTime {
            let tick = TICKS.fetch_add(1, Ordering::SeqCst);
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(tick)
        }
        let resource = |seq: u32, nh_type: u32| Incoming::Message {
            seq,
            cmd: cmd::RESOURCE_STATE,
            body: message(MINOR_ALL, 101, |r| {
                r.put_cfg_context(&CfgContext {
                    resource_name: Some(b"r0"),
                    ..CfgContext::default()
                })
                .unwrap();
                r.put_resource_info(&ResourceInfo::default()).unwrap();
                r.put_notification_header(nh_type).unwrap();
            }),
        };
        let mut kernel = FakeKernel {
            incoming: vec![
                resource(1, nh::NOTIFY_CHANGE | nh::NOTIFY_CONTINUES),
                resource(2, nh::NOTIFY_CHANGE),
                resource(3, nh::NOTIFY_CHANGE),
            ]
            .into(),
            ..FakeKernel::default()
        };
        let mut out = Both::default();
        let p = plan_of("events2 --timestamps");
        let _ = super::execute(&p, &mut kernel, &mut out, ticking);
        let stamps: Vec<&str> = out.0.lines().map(|l| &l[17..19]).collect();
        assert_eq!(stamps, ["00", "00", "01"], "{}", out.0);
        assert!(out
            .0
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("change resource name:r0"));
    }
}
