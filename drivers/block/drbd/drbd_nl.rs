//! Configuration requests of the `drbd` generic netlink family (DRBD 8.4).
//!
//! Every request is parsed and validated by the shared
//! `drbd_include::genl` code; a refused request gets a DRBD return code and
//! a reason in CFG_REPLY, as C DRBD's `drbd_adm_finish` sends them.

use kernel::prelude::*;

use crate::drbd_include::genl::{
    self as api, cmd, parse_request, CfgContext, DiskConf, ReplyBuilder, Request, RequestError,
    RetCode, StateInfo,
};
use crate::drbd_include::nla::NlaError;
use crate::kernel_glue::genl::GenlHandler;
use crate::{AdmError, AdmResult, Device, DevicePath, DiskConfig, Drbd, Registry, ResourceName};

impl From<RequestError> for AdmError {
    fn from(e: RequestError) -> Self {
        AdmError::new(e.ret_code(), e.reason())
    }
}

/// A reply that does not fit its message is the kernel's problem, not the
/// requester's: report it as a netlink error.
fn no_room(_: NlaError) -> Error {
    Error::from_errno(-(kernel::bindings::EMSGSIZE as i32))
}

impl GenlHandler for Drbd {
    fn doit(&self, command: u8, request: &[u8], reply: &mut [u8]) -> Result<usize> {
        let parsed = parse_request(request);
        let minor = match &parsed {
            Ok(req) => req.minor(),
            Err(_) => api::MINOR_ALL,
        };
        let mut out = ReplyBuilder::new(reply, minor).map_err(no_room)?;
        let outcome = match parsed {
            Ok(req) => {
                // Replies carry the request's context back, as in C DRBD.
                if let Some(raw) = req.cfg_context_raw() {
                    out.copy_cfg_context(raw).map_err(no_room)?;
                }
                self.execute(command, &req, &mut out)
            }
            Err(e) => Err(AdmError::from(e)),
        };
        if let Err(err) = outcome {
            out.set_ret_code(err.code).map_err(no_room)?;
            out.put_info_text(err.reason.as_bytes()).map_err(no_room)?;
        }
        Ok(out.bytes().len())
    }

    fn dump(&self, command: u8, request: &[u8], cursor: &mut i64, reply: &mut [u8]) -> Result<usize> {
        // Only GET_STATUS has objects to list so far; the other dumps of the
        // 8.4 API (resources, connections, ...) answer with none.
        if command != cmd::GET_STATUS {
            return Ok(0);
        }
        let request = parse_request(request).map_err(|_| EINVAL)?;
        let filter = match request.cfg_context().map_err(|_| EINVAL)? {
            Some(CfgContext { resource_name: Some(name), .. }) => Some(name),
            _ => None,
        };
        let start = u32::try_from(*cursor).unwrap_or(u32::MAX);
        let registry = self.registry();
        let next = registry.devices.iter().find(|(minor, device)| {
            **minor >= start && filter.map_or(true, |name| device.resource.as_bytes() == name)
        });
        let Some((minor, device)) = next else {
            return Ok(0);
        };
        let mut out = ReplyBuilder::new(reply, *minor).map_err(no_room)?;
        put_status(&mut out, device).map_err(no_room)?;
        *cursor = i64::from(*minor) + 1;
        Ok(out.bytes().len())
    }
}

impl Drbd {
    /// Carries out one command on the (locked) registry.
    fn execute(&self, command: u8, req: &Request<'_>, out: &mut ReplyBuilder<'_>) -> AdmResult {
        let mut registry = self.registry();
        let minor = req.minor();
        match command {
            cmd::NEW_RESOURCE => registry.new_resource(resource_name(req)?),
            cmd::DEL_RESOURCE => registry.del_resource(&resource_name(req)?),
            cmd::DOWN => registry.down(&resource_name(req)?),
            cmd::NEW_MINOR => {
                let volume = context(req)?.volume.ok_or(AdmError::new(
                    RetCode::MandatoryTag,
                    "missing volume number",
                ))?;
                registry.new_minor(&resource_name(req)?, minor, volume)
            }
            cmd::DEL_MINOR => registry.del_minor(minor),
            cmd::ATTACH => attach(&mut registry, req),
            cmd::DETACH => {
                let force = req.detach_parms()?.is_some_and(|p| p.force_detach);
                registry.detach(minor, force)
            }
            cmd::CONNECT => {
                let ctx = context(req)?;
                let name = resource_name(req)?;
                let missing = AdmError::new(RetCode::MandatoryTag, "missing local or peer address");
                let (my_addr, peer_addr) = (ctx.my_addr.ok_or(missing)?, ctx.peer_addr.ok_or(missing)?);
                let nc = req.net_conf()?;
                let config = crate::drbd_conn::NetConfig::new(my_addr, peer_addr, &nc)
                    .map_err(|reason| AdmError::new(RetCode::InvalidRequest, reason))?;
                registry.connect(&name, config)
            }
            cmd::DISCONNECT => {
                req.disconnect_parms()?;
                // 8.4's drbdsetup names the connection by its addresses.
                let ctx = context(req)?;
                let name = match (ctx.resource_name, ctx.my_addr, ctx.peer_addr) {
                    (Some(_), _, _) => resource_name(req)?,
                    (None, Some(my), Some(peer)) => registry
                        .resource_by_addrs(my, peer)
                        .ok_or(AdmError::new(RetCode::InvalidRequest, "no connection with these addresses"))?,
                    _ => return Err(AdmError::new(RetCode::MandatoryTag, "missing resource name or addresses")),
                };
                registry.disconnect(&name)
            }
            cmd::NEW_C_UUID => {
                let clear = req.new_c_uuid_parms()?.is_some_and(|p| p.clear_bm);
                registry.new_current_uuid(minor, clear)
            }
            cmd::PRIMARY => {
                let force = req.set_role_parms()?.is_some_and(|p| p.assume_uptodate);
                registry.primary(minor, force)?;
                out.set_ret_code(api::StateChangeResult::Success)
                    .map_err(|_| AdmError::new(RetCode::NoMem, "reply does not fit"))
            }
            cmd::SECONDARY => {
                registry.secondary(minor)?;
                out.set_ret_code(api::StateChangeResult::Success)
                    .map_err(|_| AdmError::new(RetCode::NoMem, "reply does not fit"))
            }
            cmd::GET_STATUS => {
                let device = registry.device(minor)?;
                put_status(out, device)
                    .map_err(|_| AdmError::new(RetCode::NoMem, "status does not fit the reply"))
            }
            _ => Err(AdmError::new(RetCode::InvalidRequest, "command not supported by rdrbd yet")),
        }
    }
}

fn context<'a>(req: &Request<'a>) -> AdmResult<CfgContext<'a>> {
    req.cfg_context()?.ok_or(AdmError::new(RetCode::MandatoryTag, "missing configuration context"))
}

fn resource_name(req: &Request<'_>) -> AdmResult<ResourceName> {
    let name = context(req)?
        .resource_name
        .ok_or(AdmError::new(RetCode::MandatoryTag, "missing resource name"))?;
    ResourceName::new(name).ok_or(AdmError::new(RetCode::InvalidRequest, "invalid resource name"))
}

fn attach(registry: &mut Registry, req: &Request<'_>) -> AdmResult {
    let conf = req.disk_conf()?.ok_or(AdmError::new(RetCode::MandatoryTag, "missing disk configuration"))?;
    let path = |bytes: &[u8]| {
        DevicePath::new(bytes)
            .filter(|p| !p.as_bytes().is_empty())
            .ok_or(AdmError::new(RetCode::OpenDisk, "invalid device path"))
    };
    if conf.meta_dev_idx < api::disk_conf::META_DEV_IDX_FLEX_INT {
        return Err(AdmError::new(RetCode::MdIdxInvalid, "invalid meta data index"));
    }
    let config = DiskConfig {
        backing_dev: path(conf.backing_dev)?,
        meta_dev: path(conf.meta_dev)?,
        meta_dev_idx: conf.meta_dev_idx,
        disk_size: conf.disk_size,
        al_extents: conf.al_extents,
        resync_rate: crate::drbd_resync::ResyncRate::from_options(
            conf.resync_rate,
            conf.c_plan_ahead,
            conf.c_max_rate,
            conf.c_fill_target,
        ),
    };
    registry.attach(req.minor(), config)
}

/// The GET_STATUS body of one device: context, disk configuration (when
/// attached) and state.
fn put_status(out: &mut ReplyBuilder<'_>, device: &Device) -> core::result::Result<(), NlaError> {
    out.put_cfg_context(&CfgContext {
        volume: Some(device.volume),
        resource_name: Some(device.resource.as_bytes()),
        my_addr: None,
        peer_addr: None,
    })?;
    if let Some(config) = &device.disk_config {
        out.put_disk_conf(&DiskConf {
            backing_dev: config.backing_dev.as_bytes(),
            meta_dev: config.meta_dev.as_bytes(),
            meta_dev_idx: config.meta_dev_idx,
            disk_size: config.disk_size,
            ..DiskConf::default()
        })?;
    }
    out.put_state_info(&StateInfo {
        sib_reason: api::state_info::SIB_GET_STATUS_REPLY,
        current_state: device.state().to_u32(),
        capacity: device.capacity,
        read_cnt: device.io.read_sectors(),
        writ_cnt: device.io.written_sectors(),
        ..StateInfo::default()
    })
}
