//! The DRBD request of each command, and what the kernel's replies mean:
//! success, or a failure printed and exited with like drbdsetup-84 does.

use drbd_include::genl::{
    cmd, disk_conf, field_bit, parse_reply, put_cfg_context_request, put_detach_parms_request,
    put_disk_conf_request, ret_code_is_success, ret_code_text, CfgContext, DetachParms, DiskConf,
    DrbdGenlHeader, RetCode, StateChangeResult, MINOR_ALL,
};
use drbd_include::nla::{NlaError, NlaWriter};

use crate::netlink::{Transport, TransportError};
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

/// Disk options of attach; only those given are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskOptions {
    /// `--size`, sectors.
    pub size: Option<u64>,
    /// `--on-io-error`: 0 pass_on, 1 call-local-io-error, 2 detach.
    pub on_io_error: Option<u32>,
    /// `--al-extents`.
    pub al_extents: Option<u32>,
    /// `--resync-rate`, KiB/s.
    pub resync_rate: Option<u32>,
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
    pub options: DiskOptions,
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
}

impl Failure {
    /// drbdsetup-84's exit code: 10 for a refused request, 11 (or 5, 16,
    /// 17 for some) for a failed state change, 20 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Kernel { code, .. } => kernel_exit_code(*code),
            Self::NoSuchResource { .. } => 10,
            Self::Transport { .. } | Self::Request { .. } => 20,
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
    let mut buf = [0u8; MAX_REQUEST];
    let mut w = NlaWriter::new(&mut buf);
    let header = DrbdGenlHeader {
        minor,
        flags_or_ret: 0,
    };
    w.put_raw(&header.encode())?;
    attrs(&mut w)?;
    Ok(Request {
        cmd,
        dump,
        body: w.written().to_vec(),
    })
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

/// `new-resource <name>`.
pub fn new_resource(name: &str) -> Result<Request, NlaError> {
    resource_request(cmd::NEW_RESOURCE, name)
}

/// `del-resource <name>`.
pub fn del_resource(name: &str) -> Result<Request, NlaError> {
    resource_request(cmd::DEL_RESOURCE, name)
}

/// `down <name>`.
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

/// `del-minor <minor>`: no attributes.
pub fn del_minor(minor: u32) -> Result<Request, NlaError> {
    build(cmd::DEL_MINOR, minor, false, |_| Ok(()))
}

/// The DISK_CONF fields attach sends: the three device fields and the
/// options given.
fn attach_fields(options: &DiskOptions) -> u64 {
    let given = [
        (disk_conf::DISK_SIZE, options.size.is_some()),
        (disk_conf::ON_IO_ERROR, options.on_io_error.is_some()),
        (disk_conf::AL_EXTENTS, options.al_extents.is_some()),
        (disk_conf::RESYNC_RATE, options.resync_rate.is_some()),
    ];
    given
        .iter()
        .filter(|(_, present)| *present)
        .fold(disk_conf::REQUIRED, |mask, (field, _)| {
            mask | field_bit(*field)
        })
}

/// `attach <minor> <lower_dev> <meta_dev> <meta_idx> [options]`.
pub fn attach(minor: u32, attach: &Attach<'_>) -> Result<Request, NlaError> {
    let defaults = DiskConf::default();
    let o = &attach.options;
    let conf = DiskConf {
        backing_dev: attach.backing_dev.as_bytes(),
        meta_dev: attach.meta_dev.as_bytes(),
        meta_dev_idx: attach.meta_dev_idx,
        disk_size: o.size.unwrap_or(defaults.disk_size),
        on_io_error: o.on_io_error.unwrap_or(defaults.on_io_error),
        al_extents: o.al_extents.unwrap_or(defaults.al_extents),
        resync_rate: o.resync_rate.unwrap_or(defaults.resync_rate),
        ..defaults
    };
    build(cmd::ATTACH, minor, false, |w| {
        put_disk_conf_request(w, &conf, attach_fields(o))
    })
}

/// `detach <minor> [--force]`: DETACH_PARMS only with --force.
pub fn detach(minor: u32, force: bool) -> Result<Request, NlaError> {
    build(cmd::DETACH, minor, false, |w| {
        if force {
            put_detach_parms_request(w, &DetachParms { force_detach: true })
        } else {
            Ok(())
        }
    })
}

/// `status [<resource>]`: a GET_STATUS dump, filtered by CFG_CONTEXT.
pub fn status_dump(resource: Option<&str>) -> Result<Request, NlaError> {
    build(cmd::GET_STATUS, MINOR_ALL, true, |w| match resource {
        Some(name) => put_cfg_context_request(w, &resource_context(name)),
        None => Ok(()),
    })
}

/// `show-minor <minor>`: a GET_STATUS doit.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{reply_with, FakeKernel};
    use drbd_include::genl::{parse_request, DEVICE_PATH_SIZE, RESOURCE_NAME_SIZE};

    #[test]
    fn resource_requests() {
        for (req, code) in [
            (new_resource("r0").unwrap(), cmd::NEW_RESOURCE),
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
        assert_eq!(new_resource(&long), Err(NlaError::TooLong));
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

        let plain = detach(2, false).unwrap();
        assert_eq!(plain.cmd, cmd::DETACH);
        let parsed = parse_request(&plain.body).unwrap();
        assert_eq!((parsed.minor(), parsed.detach_parms()), (2, Ok(None)));

        let forced = detach(2, true).unwrap();
        let parms = parse_request(&forced.body).unwrap().detach_parms().unwrap();
        assert_eq!(parms, Some(DetachParms { force_detach: true }));

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
            options: DiskOptions::default(),
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
        spec.options = DiskOptions {
            size: Some(2048),
            on_io_error: Some(0),
            al_extents: Some(3389),
            resync_rate: Some(102_400),
        };
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

        let one = Attach {
            options: DiskOptions {
                resync_rate: Some(100),
                ..DiskOptions::default()
            },
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
