//! The DRBD request of each command, and what the kernel's replies mean:
//! success, or a failure printed and exited with like drbdsetup-84 does.

use drbd_include::genl::{
    cmd, disk_conf, parse_reply, put_cfg_context_request, put_detach_parms_request,
    put_disconnect_parms_request, put_disk_conf_request, put_empty_request, put_net_conf_request,
    put_new_c_uuid_parms_request, put_resize_parms_request, put_resource_opts_request,
    put_set_role_parms_request, put_start_ov_parms_request, ret_code_is_success, ret_code_text,
    timeout_parms, tla, CfgContext, DetachParms, DisconnectParms, DiskConf, DrbdGenlHeader,
    NewCUuidParms, RetCode, SetRoleParms, StateChangeResult, FLAG_SET_DEFAULTS, MINOR_ALL,
};
use drbd_include::nla::{NlaError, NlaWriter};

use crate::events;
use crate::netlink::Incoming;
use crate::netlink::{Transport, TransportError};
use crate::options::{self, Given};
use crate::show;
use crate::status::{self, ResourceStatus};

/// Room for the largest request we build (an attach with all options is
/// about 300 bytes).
const MAX_REQUEST: usize = 4096;

/// One DRBD generic netlink request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// genlmsghdr.cmd, a `drbd_include::genl::cmd` value.
    pub cmd: u8,
    /// Whether it is a dump (NLM_F_DUMP) rather than a doit.
    pub dump: bool,
    /// DRBD user header plus top-level attributes.
    pub body: Vec<u8>,
}

/// What attach sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attach<'a> {
    /// Backing device path.
    pub backing_dev: &'a str,
    /// Meta data device path (the backing device for internal meta data).
    pub meta_dev: &'a str,
    /// `disk_conf::META_DEV_IDX_*` or an index.
    pub meta_dev_idx: i32,
    /// Options given on the command line.
    pub options: &'a Given<options::AttachSet>,
}

/// Why a command failed; `Display` is what drbdsetup prints on stderr.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The kernel answered with a failure ret_code.
    #[error("{}", kernel_text(.obj, *.code, .info.as_deref()))]
    Kernel {
        /// The object named on the command line.
        obj: String,
        /// The reply's ret_code.
        code: i32,
        /// CFG_REPLY info_text, if the kernel sent one.
        info: Option<String>,
    },
    /// `status <resource>` for a resource the kernel does not know.
    #[error("{obj}: No such resource")]
    NoSuchResource {
        /// The resource named on the command line.
        obj: String,
    },
    /// The exchange with the kernel failed.
    #[error("{}", transport_text(.obj, .source))]
    Transport {
        /// The object named on the command line.
        obj: String,
        /// What went wrong.
        source: TransportError,
    },
    /// The request could not be encoded.
    #[error("{obj}: {reason}")]
    Request {
        /// The object named on the command line.
        obj: String,
        /// Why.
        reason: &'static str,
    },
    /// A message printed as it is, with its exit code.
    #[error("{text}")]
    Message {
        /// The text.
        text: String,
        /// The exit code.
        code: u8,
    },
}

impl Failure {
    /// drbdsetup-84's exit code: 10 for a refused request, 11 (or 5, 16,
    /// 17 for some) for a failed state change, 20 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Kernel { code, .. } => kernel_exit_code(*code),
            Self::NoSuchResource { .. } => 10,
            Self::Transport { .. } | Self::Request { .. } => 20,
            Self::Message { code, .. } => *code,
        }
    }

    /// Wraps a transport error for the object `obj`.
    pub fn transport(obj: &str, source: TransportError) -> Self {
        Self::Transport {
            obj: obj.to_owned(),
            source,
        }
    }
}

/// How drbdsetup classifies a failing ret_code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Refused,
    StateChange,
    Unknown,
}

fn kind_of(code: i32) -> Kind {
    match u32::try_from(code) {
        Ok(c) if c > 100 && RetCode::from_raw(c).is_some() => Kind::Refused,
        _ if code <= 0 && StateChangeResult::from_raw(code).is_some() => Kind::StateChange,
        _ => Kind::Unknown,
    }
}

fn kernel_exit_code(code: i32) -> u8 {
    match kind_of(code) {
        Kind::Refused => 10,
        Kind::StateChange => match StateChangeResult::from_raw(code) {
            Some(StateChangeResult::NoUpToDateDisk) => 17,
            Some(StateChangeResult::LowerThanOutdated) => 5,
            Some(StateChangeResult::NoLocalDisk) => 16,
            _ => 11,
        },
        Kind::Unknown => 20,
    }
}

fn kernel_text(obj: &str, code: i32, info: Option<&str>) -> String {
    let mut text = match kind_of(code) {
        Kind::Refused => format!("{obj}: Failure: ({code}) {}", ret_code_text(code)),
        Kind::StateChange if code == 0 => {
            format!("{obj}: State change failed: (0)unknown error.")
        }
        Kind::StateChange => format!(
            "{obj}: State change failed: ({code}) {}",
            ret_code_text(code)
        ),
        Kind::Unknown => {
            format!("{obj}: Error code {code} unknown.\nYou should update the drbd userland tools.")
        }
    };
    if let Some(info) = info.filter(|i| !i.is_empty()) {
        text.push_str("\nadditional info from kernel:\n");
        text.push_str(info);
    }
    text
}

fn transport_text(obj: &str, source: &TransportError) -> String {
    match source {
        TransportError::FamilyNotFound(_) | TransportError::ApiMismatch { .. } => {
            source.to_string()
        }
        _ => format!("{obj}: {source}"),
    }
}

/// Builds a request: the DRBD header for `minor`, then `attrs`.
fn build(
    cmd: u8,
    minor: u32,
    dump: bool,
    attrs: impl FnOnce(&mut NlaWriter<'_>) -> Result<(), NlaError>,
) -> Result<Request, NlaError> {
    build_with_flags(cmd, minor, 0, dump, attrs)
}

/// As [`build`], with header flags ([`FLAG_SET_DEFAULTS`]).
fn build_with_flags(
    cmd: u8,
    minor: u32,
    flags: u32,
    dump: bool,
    attrs: impl FnOnce(&mut NlaWriter<'_>) -> Result<(), NlaError>,
) -> Result<Request, NlaError> {
    let mut buf = [0u8; MAX_REQUEST];
    let mut w = NlaWriter::new(&mut buf);
    let header = DrbdGenlHeader {
        minor,
        flags_or_ret: flags,
    };
    w.put_raw(&header.encode())?;
    attrs(&mut w)?;
    Ok(Request {
        cmd,
        dump,
        body: w.written().to_vec(),
    })
}

fn defaults_flag<S>(given: &Given<S>) -> u32 {
    if given.set_defaults {
        FLAG_SET_DEFAULTS
    } else {
        0
    }
}

fn resource_context(name: &str) -> CfgContext<'_> {
    CfgContext {
        resource_name: Some(name.as_bytes()),
        ..CfgContext::default()
    }
}

/// A request addressed to a resource: CFG_CONTEXT{name}, minor 0xFFFFFFFF.
fn resource_request(cmd: u8, name: &str) -> Result<Request, NlaError> {
    build(cmd, MINOR_ALL, false, |w| {
        put_cfg_context_request(w, &resource_context(name))
    })
}

/// `new-resource <name> [resource options]`: RESOURCE_OPTS only with options.
pub fn new_resource(
    name: &str,
    given: &Given<options::NewResourceSet>,
) -> Result<Request, NlaError> {
    build(cmd::NEW_RESOURCE, MINOR_ALL, false, |w| {
        put_cfg_context_request(w, &resource_context(name))?;
        put_resource_options(w, given)
    })
}

fn put_resource_options<S>(w: &mut NlaWriter<'_>, given: &Given<S>) -> Result<(), NlaError> {
    if !given.any() {
        return Ok(());
    }
    let opts = options::resource_opts(given);
    put_resource_opts_request(w, &opts, given.fields().as_slice())
}

/// `resource-options <name> [--set-defaults] [resource options]`.
pub fn resource_options(
    name: &str,
    given: &Given<options::ResourceSet>,
) -> Result<Request, NlaError> {
    build_with_flags(
        cmd::RESOURCE_OPTS,
        MINOR_ALL,
        defaults_flag(given),
        false,
        |w| {
            put_cfg_context_request(w, &resource_context(name))?;
            put_resource_options(w, given)
        },
    )
}

/// `del-resource <name>`.
pub fn del_resource(name: &str) -> Result<Request, NlaError> {
    resource_request(cmd::DEL_RESOURCE, name)
}

/// `down <name>`. (drbdsetup-84 first dumps the resource's status only to
/// clean up its own registry of minors; that is not needed here.)
pub fn down(name: &str) -> Result<Request, NlaError> {
    resource_request(cmd::DOWN, name)
}

/// `new-minor <resource> <minor> <volume>`.
pub fn new_minor(resource: &str, minor: u32, volume: u32) -> Result<Request, NlaError> {
    let ctx = CfgContext {
        volume: Some(volume),
        ..resource_context(resource)
    };
    build(cmd::NEW_MINOR, minor, false, |w| {
        put_cfg_context_request(w, &ctx)
    })
}

/// A request with no attributes, addressed to a minor (del-minor,
/// secondary, invalidate, invalidate-remote, pause-sync, resume-sync,
/// suspend-io, resume-io, outdate, GET_TIMEOUT_TYPE).
pub fn minor_only(cmd: u8, minor: u32) -> Result<Request, NlaError> {
    build(cmd, minor, false, |_| Ok(()))
}

/// `del-minor <minor>`: no attributes.
pub fn del_minor(minor: u32) -> Result<Request, NlaError> {
    minor_only(cmd::DEL_MINOR, minor)
}

/// `attach <minor> <lower_dev> <meta_dev> <meta_idx> [options]`: DISK_CONF
/// with the options in command line order, then the three device fields.
pub fn attach(minor: u32, attach: &Attach<'_>) -> Result<Request, NlaError> {
    let base = DiskConf {
        backing_dev: attach.backing_dev.as_bytes(),
        meta_dev: attach.meta_dev.as_bytes(),
        meta_dev_idx: attach.meta_dev_idx,
        ..DiskConf::default()
    };
    let conf = options::disk_conf(base, attach.options);
    let mut fields = attach.options.fields();
    fields.extend([
        disk_conf::BACKING_DEV,
        disk_conf::META_DEV,
        disk_conf::META_DEV_IDX,
    ]);
    build(cmd::ATTACH, minor, false, |w| {
        put_disk_conf_request(w, &conf, fields.as_slice())
    })
}

/// `disk-options <minor> [--set-defaults] [disk options]`.
pub fn disk_options(minor: u32, given: &Given<options::DiskSet>) -> Result<Request, NlaError> {
    let conf = options::disk_conf(DiskConf::default(), given);
    build_with_flags(
        cmd::CHG_DISK_OPTS,
        minor,
        defaults_flag(given),
        false,
        |w| {
            if given.any() {
                put_disk_conf_request(w, &conf, given.fields().as_slice())?;
            }
            Ok(())
        },
    )
}

/// A single-flag *_PARMS struct: sent only if the option was given, and
/// empty when it was given as "no" (as drbdsetup-84 does).
fn put_flag_struct<S>(
    w: &mut NlaWriter<'_>,
    tla_number: u16,
    given: &Given<S>,
    put: impl FnOnce(&mut NlaWriter<'_>) -> Result<(), NlaError>,
) -> Result<(), NlaError> {
    if !given.any() {
        Ok(())
    } else if options::flag_given(given) {
        put(w)
    } else {
        put_empty_request(w, tla_number)
    }
}

/// `detach <minor> [--force]`: DETACH_PARMS only with --force.
pub fn detach(minor: u32, given: &Given<options::ForceSet>) -> Result<Request, NlaError> {
    build(cmd::DETACH, minor, false, |w| {
        put_flag_struct(w, tla::DETACH_PARMS, given, |w| {
            put_detach_parms_request(w, &DetachParms { force_detach: true })
        })
    })
}

/// `primary <minor> [--force]`: SET_ROLE_PARMS only with --force.
pub fn primary(minor: u32, given: &Given<options::PrimarySet>) -> Result<Request, NlaError> {
    build(cmd::PRIMARY, minor, false, |w| {
        put_flag_struct(w, tla::SET_ROLE_PARMS, given, |w| {
            put_set_role_parms_request(
                w,
                &SetRoleParms {
                    assume_uptodate: true,
                },
            )
        })
    })
}

/// `new-current-uuid <minor> [--clear-bitmap]`.
pub fn new_current_uuid(
    minor: u32,
    given: &Given<options::NewUuidSet>,
) -> Result<Request, NlaError> {
    build(cmd::NEW_C_UUID, minor, false, |w| {
        put_flag_struct(w, tla::NEW_C_UUID_PARMS, given, |w| {
            put_new_c_uuid_parms_request(w, &NewCUuidParms { clear_bm: true })
        })
    })
}

/// A connection: the two endpoints as sockaddr images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Local address.
    pub local: Vec<u8>,
    /// Peer address.
    pub peer: Vec<u8>,
}

impl Endpoints {
    fn context<'a>(&'a self, resource: Option<&'a str>) -> CfgContext<'a> {
        CfgContext {
            resource_name: resource.map(str::as_bytes),
            my_addr: Some(&self.local),
            peer_addr: Some(&self.peer),
            volume: None,
        }
    }
}

fn put_net_options<S>(w: &mut NlaWriter<'_>, given: &Given<S>) -> Result<(), NlaError> {
    if !given.any() {
        return Ok(());
    }
    let conf = options::net_conf(given);
    put_net_conf_request(w, &conf, given.fields().as_slice())
}

/// `connect <resource> <local> <peer> [options]`: CFG_CONTEXT{name,
/// addresses}, NET_CONF with the options given (none: no NET_CONF).
pub fn connect(
    resource: &str,
    endpoints: &Endpoints,
    given: &Given<options::ConnectSet>,
) -> Result<Request, NlaError> {
    build(cmd::CONNECT, MINOR_ALL, false, |w| {
        put_cfg_context_request(w, &endpoints.context(Some(resource)))?;
        put_net_options(w, given)
    })
}

/// `net-options <local> <peer> [--set-defaults] [options]`.
pub fn net_options(
    endpoints: &Endpoints,
    given: &Given<options::NetSet>,
) -> Result<Request, NlaError> {
    build_with_flags(
        cmd::CHG_NET_OPTS,
        MINOR_ALL,
        defaults_flag(given),
        false,
        |w| {
            put_cfg_context_request(w, &endpoints.context(None))?;
            put_net_options(w, given)
        },
    )
}

/// `disconnect <local> <peer> [--force]`.
pub fn disconnect(
    endpoints: &Endpoints,
    given: &Given<options::ForceSet>,
) -> Result<Request, NlaError> {
    build(cmd::DISCONNECT, MINOR_ALL, false, |w| {
        put_cfg_context_request(w, &endpoints.context(None))?;
        put_flag_struct(w, tla::DISCONNECT_PARMS, given, |w| {
            put_disconnect_parms_request(
                w,
                &DisconnectParms {
                    force_disconnect: true,
                },
            )
        })
    })
}

/// `resize <minor> [options]`: RESIZE_PARMS only with options.
pub fn resize(minor: u32, given: &Given<options::ResizeSet>) -> Result<Request, NlaError> {
    let parms = options::resize_parms(given);
    build(cmd::RESIZE, minor, false, |w| {
        if given.any() {
            put_resize_parms_request(w, &parms, given.fields().as_slice())?;
        }
        Ok(())
    })
}

/// `verify <minor> [--start] [--stop]`: START_OV_PARMS only with options.
pub fn verify(minor: u32, given: &Given<options::VerifySet>) -> Result<Request, NlaError> {
    let parms = options::start_ov_parms(given);
    build(cmd::START_OV, minor, false, |w| {
        if given.any() {
            put_start_ov_parms_request(w, &parms, given.fields().as_slice())?;
        }
        Ok(())
    })
}

/// `status [<resource>]`: a GET_STATUS dump, filtered by CFG_CONTEXT.
pub fn status_dump(resource: Option<&str>) -> Result<Request, NlaError> {
    dump_of(cmd::GET_STATUS, resource)
}

/// A dump request for all resources or one (CFG_CONTEXT{name}).
pub fn dump_of(cmd: u8, resource: Option<&str>) -> Result<Request, NlaError> {
    build(cmd, MINOR_ALL, true, |w| match resource {
        Some(name) => put_cfg_context_request(w, &resource_context(name)),
        None => Ok(()),
    })
}

/// `show-minor <minor>`, `role <minor>` and friends: a GET_STATUS doit.
pub fn status_of_minor(minor: u32) -> Result<Request, NlaError> {
    build(cmd::GET_STATUS, minor, false, |_| Ok(()))
}

/// Wraps an encoding error for the object `obj`.
pub fn encoding_failure(obj: &str, error: NlaError) -> Failure {
    Failure::Request {
        obj: obj.to_owned(),
        reason: error.reason(),
    }
}

fn malformed(obj: &str, what: &str) -> Failure {
    Failure::transport(obj, TransportError::Malformed(what.to_owned()))
}

/// Checks a configuration reply: success, or the kernel's failure.
/// `missing_ok` accepts ERR_RES_NOT_KNOWN (drbdsetup's `down`).
pub fn check_config_reply(obj: &str, reply: &[u8], missing_ok: bool) -> Result<(), Failure> {
    let (header, _) = DrbdGenlHeader::decode(reply)
        .ok_or_else(|| malformed(obj, "reply shorter than the DRBD header"))?;
    let code = header.ret_code();
    let missing = code == i32::from(RetCode::ResNotKnown);
    if ret_code_is_success(code) || (missing_ok && missing) {
        return Ok(());
    }
    // Like drbdsetup, report the code even if the attributes are damaged.
    let info = parse_reply(reply)
        .ok()
        .and_then(|r| r.info_text)
        .map(|text| String::from_utf8_lossy(text).into_owned());
    Err(Failure::Kernel {
        obj: obj.to_owned(),
        code,
        info,
    })
}

/// Sends a configuration request and checks the reply.
pub fn run_config(
    transport: &mut impl Transport,
    obj: &str,
    request: &Request,
    missing_ok: bool,
) -> Result<(), Failure> {
    let reply = transport
        .doit(request.cmd, &request.body)
        .map_err(|e| Failure::transport(obj, e))?;
    check_config_reply(obj, &reply, missing_ok)
}

/// Sends a GET_STATUS request (dump or doit) and collects the devices.
/// `filter` is the resource asked for, if any.
pub fn run_status(
    transport: &mut impl Transport,
    obj: &str,
    request: &Request,
    filter: Option<&str>,
) -> Result<Vec<ResourceStatus>, Failure> {
    let replies = if request.dump {
        transport.dump(request.cmd, &request.body)
    } else {
        transport.doit(request.cmd, &request.body).map(|r| vec![r])
    }
    .map_err(|e| Failure::transport(obj, e))?;
    status_of_replies(obj, &replies, filter)
}

/// Interprets GET_STATUS replies; a failure ret_code in any of them fails.
pub fn status_of_replies(
    obj: &str,
    replies: &[Vec<u8>],
    filter: Option<&str>,
) -> Result<Vec<ResourceStatus>, Failure> {
    let mut entries = Vec::with_capacity(replies.len());
    for bytes in replies {
        let reply = parse_reply(bytes).map_err(|e| malformed(obj, e.reason()))?;
        if filter.is_some() && reply.ret_code == i32::from(RetCode::ResNotKnown) {
            return Err(Failure::NoSuchResource {
                obj: obj.to_owned(),
            });
        }
        check_config_reply(obj, bytes, false)?;
        entries.push(status::entry_of(&reply));
    }
    let mut resources = status::group(entries);
    if let Some(name) = filter {
        resources.retain(|r| r.name == name);
    }
    Ok(resources)
}

/// Sends a GET_STATUS request (doit for a minor, dump otherwise) and renders
/// the replies with `view`; stdout and stderr text go to `out` and `err`
/// (also when the command fails). Returns the exit code.
pub fn run_view(
    transport: &mut impl Transport,
    obj: &str,
    request: &Request,
    view: show::View,
    progname: &'static str,
    out: &mut String,
    err: &mut String,
) -> Result<u8, Failure> {
    let replies = if request.dump {
        transport.dump(request.cmd, &request.body)
    } else {
        transport.doit(request.cmd, &request.body).map(|r| vec![r])
    }
    .map_err(|e| Failure::transport(obj, e))?;
    let mut renderer = show::Renderer::new(view, progname);
    for body in &replies {
        let reply = show::parse(body).map_err(|reason| Failure::Request {
            obj: obj.to_owned(),
            reason,
        })?;
        let missing = view.missing_ok() && reply.ret_code == i32::from(RetCode::MinorInvalid);
        if reply.ret_code != i32::from(RetCode::NoError) && !missing {
            check_config_reply(obj, body, false)?;
        }
        if let show::Step::Exit(code) = renderer.reply(body, &reply, out, err) {
            return Ok(code);
        }
    }
    renderer.finish(out, err);
    Ok(0)
}

/// Listens like drbdsetup-84's continuous commands: joins the "events"
/// group, sends `request`, then hands every message that passes `filter`
/// to `listener`, calling `emit` with its output. Exits 5 when `timeout`
/// passes, 0 when the module goes away.
pub fn run_listen(
    transport: &mut impl Transport,
    obj: &str,
    request: &Request,
    filter: &events::Filter,
    listener: &mut dyn events::Listener,
    timeout: Option<std::time::Duration>,
    emit: &mut dyn FnMut(&str, &str),
) -> Result<u8, Failure> {
    let fail = |e| Failure::transport(obj, e);
    transport.subscribe().map_err(fail)?;
    transport
        .send(request.cmd, &request.body, request.dump)
        .map_err(fail)?;
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) => Some(left),
                None => return Ok(5),
            },
            None => None,
        };
        let incoming = transport.receive(left).map_err(fail)?;
        let (seq, genl_cmd, body) = match incoming {
            None => return Ok(5),
            Some(Incoming::FamilyGone) => return Ok(0),
            Some(Incoming::Done { .. }) => continue,
            Some(Incoming::Message { seq, cmd, body }) => (seq, cmd, body),
        };
        let reply = show::parse(&body).map_err(|reason| Failure::Request {
            obj: obj.to_owned(),
            reason,
        })?;
        if !filter.passes(&reply) {
            continue;
        }
        if events::failing_code(&reply, listener.missing_ok()).is_some() {
            check_config_reply(obj, &body, false)?;
        }
        let (mut out, mut err) = (String::new(), String::new());
        let next = listener.message(seq, genl_cmd, &reply, &mut out, &mut err);
        emit(&out, &err);
        if let events::Next::Exit(code) = next {
            return Ok(code);
        }
    }
}

/// `wait-connect` / `wait-sync` timeouts, seconds (0: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitTimeouts {
    /// `--wfc-timeout`.
    pub wfc: u32,
    /// `--degr-wfc-timeout`.
    pub degr: u32,
    /// `--outdated-wfc-timeout`.
    pub outdated: u32,
}

/// drbdsetup-84's `choose_timeout`: adjusts the timeouts (with its notes on
/// stderr), asks the kernel which one applies (GET_TIMEOUT_TYPE) and
/// returns it, in seconds (0: wait forever).
pub fn choose_timeout(
    transport: &mut impl Transport,
    minor: u32,
    given: WaitTimeouts,
    err: &mut String,
) -> Result<u32, Failure> {
    let mut t = given;
    if t.wfc > 0 && (t.wfc < t.degr || t.degr == 0) {
        t.degr = t.wfc;
        err.push_str(&format!(
            "degr-wfc-timeout has to be shorter than wfc-timeout\n\
             degr-wfc-timeout implicitly set to wfc-timeout ({}s)\n",
            t.degr
        ));
    }
    if t.degr > 0 && (t.degr < t.outdated || t.outdated == 0) {
        // drbdsetup-84 sets it to wfc-timeout while its message says degr.
        t.outdated = t.wfc;
        err.push_str(&format!(
            "outdated-wfc-timeout has to be shorter than degr-wfc-timeout\n\
             outdated-wfc-timeout implicitly set to degr-wfc-timeout ({}s)\n",
            t.degr
        ));
    }
    let failure = |desc: String| Failure::Message {
        text: format!("error determining which timeout to use: {desc}"),
        code: 20,
    };
    let request =
        minor_only(cmd::GET_TIMEOUT_TYPE, minor).map_err(|e| failure(e.reason().into()))?;
    let reply = transport
        .doit(request.cmd, &request.body)
        .map_err(|e| failure(e.to_string()))?;
    let (header, _) = DrbdGenlHeader::decode(&reply)
        .ok_or_else(|| failure("error receiving netlink reply".into()))?;
    let code = header.ret_code();
    if code == i32::from(RetCode::MinorInvalid) {
        return Err(failure("minor not available".into()));
    }
    if code != i32::from(RetCode::NoError) {
        return Err(failure("error receiving netlink reply".into()));
    }
    let timeout_type = parse_reply(&reply)
        .ok()
        .and_then(|r| r.timeout_type)
        .ok_or_else(|| {
            failure("reply did not validate - do you need to upgrade your userland tools?".into())
        })?;
    Ok(match timeout_type {
        timeout_parms::UT_DEGRADED => t.degr,
        timeout_parms::UT_PEER_OUTDATED => t.outdated,
        _ => t.wfc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{ATTACH_ONLY, DISK_OPTIONS, FORCE_OPTION};
    use crate::testutil::{reply_with, FakeKernel};
    use drbd_include::genl::{parse_request, DEVICE_PATH_SIZE, RESOURCE_NAME_SIZE};

    static NO_ATTACH_OPTIONS: std::sync::LazyLock<Given<options::AttachSet>> =
        std::sync::LazyLock::new(Given::default);

    #[test]
    fn resource_requests() {
        for (req, code) in [
            (
                new_resource("r0", &Given::default()).unwrap(),
                cmd::NEW_RESOURCE,
            ),
            (del_resource("r0").unwrap(), cmd::DEL_RESOURCE),
            (down("r0").unwrap(), cmd::DOWN),
        ] {
            assert_eq!((req.cmd, req.dump), (code, false));
            let parsed = parse_request(&req.body).unwrap();
            assert_eq!(parsed.minor(), MINOR_ALL);
            assert!(!parsed.set_defaults());
            assert_eq!(parsed.cfg_context().unwrap(), Some(resource_context("r0")));
            assert_eq!(parsed.disk_conf().unwrap(), None);
        }
        let long = "r".repeat(RESOURCE_NAME_SIZE);
        assert_eq!(
            new_resource(&long, &Given::default()),
            Err(NlaError::TooLong)
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn new_minor_bytes_match_drbdsetup() {
        let req = new_minor("r0", 3, 1).unwrap();
        assert_eq!(req.cmd, cmd::NEW_MINOR);
        let expected = [
            &[3u8, 0, 0, 0, 0, 0, 0, 0][..], // minor 3, flags 0
            &[20, 0, 0x02, 0x80],            // CFG_CONTEXT | NLA_F_NESTED
            &[7, 0, 0x02, 0x40],             // T_ctx_resource_name
            b"r0\0\0",
            &[8, 0, 0x01, 0x40], // T_ctx_volume
            &[1, 0, 0, 0],
        ]
        .concat();
        assert_eq!(req.body, expected);
        let ctx = parse_request(&req.body).unwrap().cfg_context().unwrap();
        assert_eq!(ctx.and_then(|c| c.volume), Some(1));
    }

    #[test]
    fn minor_requests() {
        let del = del_minor(7).unwrap();
        assert_eq!((del.cmd, del.body.len()), (cmd::DEL_MINOR, 8));
        assert_eq!(parse_request(&del.body).unwrap().minor(), 7);

        let plain = detach(2, &Given::default()).unwrap();
        assert_eq!(plain.cmd, cmd::DETACH);
        let parsed = parse_request(&plain.body).unwrap();
        assert_eq!((parsed.minor(), parsed.detach_parms()), (2, Ok(None)));

        let forced = detach(2, &Given::parsed(&[FORCE_OPTION], &[("force", "yes")])).unwrap();
        let parms = parse_request(&forced.body).unwrap().detach_parms().unwrap();
        assert_eq!(parms, Some(DetachParms { force_detach: true }));
        let not_forced = detach(2, &Given::parsed(&[FORCE_OPTION], &[("force", "no")])).unwrap();
        let parms = parse_request(&not_forced.body).unwrap().detach_parms();
        assert_eq!(
            parms,
            Ok(Some(DetachParms {
                force_detach: false
            }))
        );
        assert_eq!(not_forced.body.len(), 8 + 4, "an empty DETACH_PARMS");

        let show = status_of_minor(9).unwrap();
        assert_eq!(
            (show.cmd, show.dump, show.body.len()),
            (cmd::GET_STATUS, false, 8)
        );
        assert_eq!(parse_request(&show.body).unwrap().minor(), 9);
    }

    #[test]
    fn status_dump_requests() {
        let all = status_dump(None).unwrap();
        assert_eq!((all.cmd, all.dump), (cmd::GET_STATUS, true));
        let parsed = parse_request(&all.body).unwrap();
        assert_eq!(parsed.minor(), MINOR_ALL);
        assert_eq!(parsed.cfg_context().unwrap(), None);

        let one = status_dump(Some("r1")).unwrap();
        let ctx = parse_request(&one.body).unwrap().cfg_context().unwrap();
        assert_eq!(ctx, Some(resource_context("r1")));
    }

    fn internal(dev: &str) -> Attach<'_> {
        Attach {
            backing_dev: dev,
            meta_dev: dev,
            meta_dev_idx: disk_conf::META_DEV_IDX_FLEX_INT,
            options: &NO_ATTACH_OPTIONS,
        }
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn attach_bytes_match_drbdsetup() {
        let req = attach(0, &internal("/dev/loop0")).unwrap();
        assert_eq!(req.cmd, cmd::ATTACH);
        let expected = [
            &[0u8, 0, 0, 0, 0, 0, 0, 0][..],
            &[44, 0, 0x03, 0x80], // DISK_CONF | NLA_F_NESTED
            &[15, 0, 0x01, 0x00],
            b"/dev/loop0\0\0",
            &[15, 0, 0x02, 0x00],
            b"/dev/loop0\0\0",
            &[8, 0, 0x03, 0x00],
            &[0xfd, 0xff, 0xff, 0xff], // -3: internal
        ]
        .concat();
        assert_eq!(req.body, expected);
    }

    #[test]
    fn attach_sends_only_given_options() {
        let mut spec = Attach {
            meta_dev: "/dev/vdc",
            meta_dev_idx: 2,
            ..internal("/dev/vdb")
        };
        let given = Given::parsed(
            &[ATTACH_ONLY, DISK_OPTIONS],
            &[
                ("size", "2048"),
                ("on-io-error", "pass_on"),
                ("al-extents", "3389"),
                ("resync-rate", "100M"),
            ],
        );
        spec.options = &given;
        let req = attach(4, &spec).unwrap();
        let parsed = parse_request(&req.body).unwrap();
        assert_eq!(parsed.minor(), 4);
        let conf = parsed.disk_conf().unwrap().unwrap();
        assert_eq!(conf.backing_dev, b"/dev/vdb");
        assert_eq!(conf.meta_dev, b"/dev/vdc");
        assert_eq!(conf.meta_dev_idx, 2);
        assert_eq!(conf.disk_size, 2048);
        assert_eq!(conf.on_io_error, 0);
        assert_eq!(conf.al_extents, 3389);
        assert_eq!(conf.resync_rate, 102_400);

        let rate = Given::parsed(&[DISK_OPTIONS], &[("resync-rate", "100")]);
        let one = Attach {
            options: &rate,
            ..internal("/dev/vdb")
        };
        let body = attach(0, &one).unwrap().body;
        // Header, nest header, two 16-byte paths, idx, resync_rate: nothing else.
        assert_eq!(body.len(), 8 + 4 + 2 * (4 + 12) + 8 + 8);
        let conf = parse_request(&body).unwrap().disk_conf().unwrap().unwrap();
        assert_eq!(conf.resync_rate, 100);
        assert_eq!(conf.on_io_error, disk_conf::ON_IO_ERROR_DEF);

        let long = "/".repeat(DEVICE_PATH_SIZE);
        assert_eq!(attach(0, &internal(&long)), Err(NlaError::TooLong));
    }

    #[test]
    fn config_replies() {
        assert!(check_config_reply("r0", &reply_with(MINOR_ALL, 101, b""), false).is_ok());
        assert!(check_config_reply("0", &reply_with(0, 1, b""), false).is_ok());
        assert!(check_config_reply("0", &reply_with(0, 2, b""), false).is_ok());

        let fail = check_config_reply("r0", &reply_with(MINOR_ALL, 158, b""), false).unwrap_err();
        assert_eq!(fail.to_string(), "r0: Failure: (158) Unknown resource");
        assert_eq!(fail.exit_code(), 10);
        assert!(check_config_reply("r0", &reply_with(MINOR_ALL, 158, b""), true).is_ok());

        let with_info = reply_with(0, 126, b"required attribute missing");
        let fail = check_config_reply("0", &with_info, false).unwrap_err();
        assert_eq!(
            fail.to_string(),
            "0: Failure: (126) Unknown mandatory tag\n\
             additional info from kernel:\n\
             required attribute missing"
        );
        assert_eq!(fail.exit_code(), 10);

        let state = check_config_reply("0", &reply_with(0, -12, b""), false).unwrap_err();
        assert_eq!(
            state.to_string(),
            "0: State change failed: (-12) Device is held open by someone"
        );
        assert_eq!(state.exit_code(), 11);
        let no_disk = check_config_reply("0", &reply_with(0, -2, b""), false).unwrap_err();
        assert_eq!(no_disk.exit_code(), 17);
        let unknown_state = check_config_reply("0", &reply_with(0, 0, b""), false).unwrap_err();
        assert_eq!(unknown_state.exit_code(), 11);

        let odd = check_config_reply("0", &reply_with(0, 999, b""), false).unwrap_err();
        assert_eq!(
            odd.to_string(),
            "0: Error code 999 unknown.\nYou should update the drbd userland tools."
        );
        assert_eq!(odd.exit_code(), 20);

        let short = check_config_reply("0", &[0; 7], false).unwrap_err();
        assert_eq!(short.exit_code(), 20);
        // A damaged attribute area still reports the code.
        let mut damaged = reply_with(0, 104, b"");
        damaged.extend_from_slice(&[9, 0]);
        let fail = check_config_reply("0", &damaged, false).unwrap_err();
        assert_eq!(
            fail.to_string(),
            "0: Failure: (104) Can not open backing device"
        );
    }

    #[test]
    fn transport_failures() {
        let missing = Failure::transport("r0", TransportError::FamilyNotFound("drbd".into()));
        assert_eq!(
            missing.to_string(),
            "Could not connect to 'drbd' generic netlink family"
        );
        assert_eq!(missing.exit_code(), 20);
        let eperm = Failure::transport("0", TransportError::Netlink(1));
        assert_eq!(
            eperm.to_string(),
            "0: received netlink error reply: Operation not permitted"
        );
        assert_eq!(eperm.exit_code(), 20);
        let encoding = encoding_failure("r0", NlaError::TooLong);
        assert_eq!(encoding.to_string(), "r0: attribute too long");
        assert_eq!(encoding.exit_code(), 20);
    }

    #[test]
    fn runs_config_commands_through_the_transport() {
        let mut kernel = FakeKernel::answering(vec![reply_with(MINOR_ALL, 101, b"")]);
        let req = down("r0").unwrap();
        run_config(&mut kernel, "r0", &req, true).unwrap();
        assert_eq!(kernel.sent, [(cmd::DOWN, false, req.body.clone())]);

        kernel.error = Some(1);
        let fail = run_config(&mut kernel, "r0", &req, true).unwrap_err();
        assert_eq!(fail.exit_code(), 20);
    }

    #[test]
    fn status_failures() {
        let mut kernel = FakeKernel::answering(vec![reply_with(MINOR_ALL, 158, b"")]);
        let req = status_dump(Some("nope")).unwrap();
        let fail = run_status(&mut kernel, "nope", &req, Some("nope")).unwrap_err();
        assert_eq!(fail.to_string(), "nope: No such resource");
        assert_eq!(fail.exit_code(), 10);
        assert!(kernel.sent[0].1, "sent as a dump");

        kernel.replies = vec![reply_with(5, 127, b"")];
        let req = status_of_minor(5).unwrap();
        let fail = run_status(&mut kernel, "5", &req, None).unwrap_err();
        assert_eq!(
            fail.to_string(),
            "5: Failure: (127) Device minor not allocated"
        );
        assert!(!kernel.sent[1].1, "sent as a doit");

        kernel.replies = vec![vec![1, 2, 3]];
        let req = status_dump(None).unwrap();
        assert_eq!(
            run_status(&mut kernel, "all", &req, None)
                .unwrap_err()
                .exit_code(),
            20
        );

        kernel.replies = vec![];
        assert!(run_status(&mut kernel, "all", &req, None)
            .unwrap()
            .is_empty());
    }
}
