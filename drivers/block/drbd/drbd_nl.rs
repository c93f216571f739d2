//! Configuration requests of the `drbd` generic netlink family (DRBD 8.4).
//!
//! Every request is parsed and validated by the shared
//! `drbd_include::genl` code; a refused request gets a DRBD return code and
//! a reason in CFG_REPLY, as C DRBD's `drbd_adm_finish` sends them.

use kernel::prelude::*;

use crate::drbd_include::genl::{
    self as api, cmd, parse_request, CfgContext, ConnectionInfo, ConnectionStatistics, DeviceInfo,
    DeviceStatistics, PeerDeviceInfo, PeerDeviceStatistics, ReplyBuilder, Request, RequestError,
    ResourceInfo, ResourceOpts, ResourceStatistics, RetCode, StateInfo,
};
use crate::drbd_options::{DiskOptions, NetOptions, ResourceOptions, StateResult};
use crate::drbd_include::nla::NlaError;
use crate::kernel_glue::genl::{requester_is_sys_admin, GenlHandler};
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
            if err.code < 0 {
                // A refused state change: C DRBD sends no text with it,
                // drbdsetup prints the code's own; the log keeps why.
                pr_info!("minor {}: state change failed: {}\n", minor, err.reason);
            } else {
                out.put_info_text(err.reason.as_bytes()).map_err(no_room)?;
            }
        }
        Ok(out.bytes().len())
    }

    fn dump(&self, command: u8, request: &[u8], cursor: &mut i64, reply_cmd: &mut u8, reply: &mut [u8]) -> Result<usize> {
        // A dump ends on a cursor past everything (after an error reply).
        if *cursor == i64::MAX {
            return Ok(0);
        }
        let request = parse_request(request).map_err(|_| EINVAL)?;
        let filter = match request.cfg_context().map_err(|_| EINVAL)? {
            Some(CfgContext { resource_name: Some(name), .. }) => {
                Some(ResourceName::new(name).ok_or(EINVAL)?)
            }
            _ => None,
        };
        let mut registry = self.registry();
        registry.forget_failed_disks();
        let written = match command {
            cmd::GET_STATUS => dump_status(&registry, filter, cursor, reply),
            cmd::GET_RESOURCES => dump_resources(&registry, cursor, reply),
            cmd::GET_DEVICES => dump_devices(&registry, filter, cursor, reply, false),
            cmd::GET_PEER_DEVICES => dump_devices(&registry, filter, cursor, reply, true),
            cmd::GET_CONNECTIONS => dump_connections(&registry, filter, cursor, reply),
            // events2: every object of every resource (the filter is the
            // client's, as in 8.4).
            cmd::GET_INITIAL_STATE => crate::drbd_events::dump_initial_state(&registry, cursor, reply)
                .map(|(command, len)| {
                    *reply_cmd = command;
                    len
                }),
            _ => Ok(0),
        };
        written.map_err(no_room)
    }
}

impl Drbd {
    /// Carries out one command on the (locked) registry.
    fn execute(&self, command: u8, req: &Request<'_>, out: &mut ReplyBuilder<'_>) -> AdmResult {
        let mut registry = self.registry();
        registry.forget_failed_disks();
        let minor = req.minor();
        match command {
            cmd::NEW_RESOURCE => {
                let name = resource_name(req)?;
                let options = ResourceOptions::new(&req.resource_opts(ResourceOpts::default())?)?;
                // An existing resource keeps its options (C DRBD ignores them).
                let created = registry.resources.get(&name).is_none();
                registry.new_resource(name)?;
                if created {
                    registry.resource_options(&name, options)?;
                }
                Ok(())
            }
            cmd::RESOURCE_OPTS => {
                let name = resource_name(req)?;
                let current = registry
                    .resources
                    .get(&name)
                    .ok_or(AdmError::new(RetCode::ResNotKnown, "unknown resource"))?
                    .options;
                let options = ResourceOptions::new(&req.resource_opts(current.view())?)?;
                registry.resource_options(&name, options)
            }
            cmd::CHG_DISK_OPTS => {
                registry.disk_options(minor, |current| DiskOptions::new(&req.disk_conf_change(current)?))
            }
            cmd::CHG_NET_OPTS => {
                let name = connection_name(&registry, req)?;
                registry.net_options(&name, |current| NetOptions::new(&req.net_conf_change(current)?))
            }
            cmd::SUSPEND_IO => state_reply(out, registry.suspend_io(minor)),
            cmd::RESUME_IO => state_reply(out, registry.resume_io(minor)),
            cmd::OUTDATE => state_reply(out, registry.outdate(minor)),
            cmd::GET_TIMEOUT_TYPE => {
                let timeout_type = registry.timeout_type(minor)?;
                out.put_timeout_type(timeout_type)
                    .map_err(|_| AdmError::new(RetCode::NoMem, "reply does not fit"))
            }
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
                let options = NetOptions::new(&nc)?;
                let config = crate::drbd_net::NetConfig::new(my_addr, peer_addr, &nc)
                    .map_err(|reason| AdmError::new(RetCode::InvalidRequest, reason))?;
                registry.connect(&name, config)?;
                if let Some(resource) = registry.resources.get_mut(&name) {
                    resource.net_options = Some(options);
                }
                Ok(())
            }
            cmd::DISCONNECT => {
                req.disconnect_parms()?;
                let name = connection_name(&registry, req)?;
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
            cmd::INVALIDATE => state_reply(out, registry.invalidate(minor)),
            cmd::INVAL_PEER => state_reply(out, registry.invalidate_peer(minor)),
            cmd::PAUSE_SYNC => registry.pause_sync(minor),
            cmd::RESUME_SYNC => registry.resume_sync(minor),
            cmd::START_OV => {
                let parms = req.start_ov_parms(api::StartOvParms::default())?;
                state_reply(out, registry.start_verify(minor, parms))
            }
            cmd::RESIZE => {
                let parms = req.resize_parms(registry.resize_base(minor)?)?;
                registry.resize(minor, parms)
            }
            cmd::GET_STATUS => {
                let device = registry.device(minor)?;
                put_status(out, &registry, device)
                    .map_err(|_| AdmError::new(RetCode::NoMem, "status does not fit the reply"))
            }
            _ => Err(AdmError::new(RetCode::InvalidRequest, "command not supported by rdrbd yet")),
        }
    }
}

/// The resource a connection request is about: 8.4's drbdsetup names the
/// connection by its pair of addresses, drbdadm may name the resource.
fn connection_name(registry: &Registry, req: &Request<'_>) -> AdmResult<ResourceName> {
    let ctx = context(req)?;
    match (ctx.resource_name, ctx.my_addr, ctx.peer_addr) {
        (Some(_), _, _) => resource_name(req),
        (None, Some(my), Some(peer)) => registry
            .resource_by_addrs(my, peer)
            .ok_or(AdmError::new(RetCode::InvalidRequest, "no connection with these addresses")),
        _ => Err(AdmError::new(RetCode::MandatoryTag, "missing resource name or addresses")),
    }
}

/// The reply of a state change request: its result code.
fn state_reply(out: &mut ReplyBuilder<'_>, result: StateResult) -> AdmResult {
    out.set_ret_code(result?).map_err(|_| AdmError::new(RetCode::NoMem, "reply does not fit"))
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
        options: DiskOptions::new(&conf)?,
    };
    // Listeners see the disk go through Attaching, as with C DRBD; a
    // failed attach leaves it Diskless again.
    let device = registry.device(req.minor())?;
    let attaching = device.disk_config.is_none();
    if attaching {
        device.io.set_disk_state(api::DiskState::Attaching);
    }
    let result = registry.attach(req.minor(), config);
    if attaching && result.is_err() {
        if let Ok(device) = registry.device(req.minor()) {
            device.io.set_disk_state(api::DiskState::Diskless);
        }
    }
    result
}

/// The GET_STATUS body of one device (`nla_put_status_info`): context,
/// resource options, disk and net configuration (when there are), state
/// with UUIDs and bitmap counts (with a disk).
fn put_status(out: &mut ReplyBuilder<'_>, registry: &Registry, device: &Device) -> core::result::Result<(), NlaError> {
    let resource = registry.resources.get(&device.resource);
    let conn = resource.and_then(|r| r.conn.as_ref()).map(|c| c.config());
    out.put_cfg_context(&CfgContext {
        volume: Some(device.volume),
        resource_name: Some(device.resource.as_bytes()),
        my_addr: conn.map(|c| c.my_addr.as_bytes()),
        peer_addr: conn.map(|c| c.peer_addr.as_bytes()),
    })?;
    out.put_resource_opts(&resource.map(|r| r.options).unwrap_or_default().view())?;
    if let Some(config) = &device.disk_config {
        out.put_disk_conf(&config.options.view(config.backing_dev.as_bytes(), config.meta_dev.as_bytes()))?;
    }
    if let Some(net) = resource.and_then(|r| r.current_net_options()) {
        out.put_net_conf(&net.view(), requester_is_sys_admin())?;
    }
    let disk = device.io.with_md(|md, _| {
        let uuids = md.uuids();
        ([uuids.current, uuids.bitmap, uuids.history[0], uuids.history[1]], md.sb.flags, md.bitmap.count())
    });
    let state = device.state();
    out.put_state_info(&StateInfo {
        sib_reason: api::state_info::SIB_GET_STATUS_REPLY,
        current_state: state.to_u32(),
        capacity: device.capacity(),
        ed_uuid: disk.map_or(0, |(uuids, _, _)| uuids[0]),
        read_cnt: device.io.read_sectors(),
        writ_cnt: device.io.written_sectors(),
        uuids: disk.map(|(uuids, _, _)| uuids),
        disk_flags: disk.map(|(_, flags, _)| flags),
        bits_total: disk.map(|_| device.capacity().div_ceil(8)),
        bits_oos: disk.map(|(_, _, oos)| oos),
        ..StateInfo::default()
    })
}

/// The next device of a GET_STATUS dump (`drbd_adm_get_status_all`).
fn dump_status(registry: &Registry, filter: Option<ResourceName>, cursor: &mut i64, reply: &mut [u8])
    -> core::result::Result<usize, NlaError>
{
    let start = u32::try_from(*cursor).unwrap_or(u32::MAX);
    let next = registry.devices().find(|device| {
        device.minor >= start && filter.map_or(true, |name| device.resource == name)
    });
    let Some(device) = next else {
        return Ok(0);
    };
    let minor = &device.minor;
    let mut out = ReplyBuilder::new(reply, *minor)?;
    put_status(&mut out, registry, device)?;
    *cursor = i64::from(*minor) + 1;
    Ok(out.bytes().len())
}

/// The role a resource shows: Primary if any of its volumes is.
fn resource_role(registry: &Registry, name: &ResourceName) -> api::Role {
    let primary = registry.devices_of(name).any(|d| d.io.is_primary());
    if primary { api::Role::Primary } else { api::Role::Secondary }
}

/// GET_RESOURCES (`drbd_adm_dump_resources`): every resource, one per
/// message (the C driver does not filter by name either).
fn dump_resources(registry: &Registry, cursor: &mut i64, reply: &mut [u8]) -> core::result::Result<usize, NlaError> {
    let index = usize::try_from(*cursor).unwrap_or(usize::MAX);
    let Some((name, resource)) = registry.resources.iter().nth(index) else {
        return Ok(0);
    };
    let mut out = ReplyBuilder::new(reply, api::MINOR_ALL)?;
    out.put_cfg_context(&CfgContext { resource_name: Some(name.as_bytes()), ..CfgContext::default() })?;
    out.put_resource_opts(&resource.options.view())?;
    let suspended = registry.devices_of(name).any(|d| d.io.is_suspended());
    out.put_resource_info(&ResourceInfo {
        role: resource_role(registry, name) as u32,
        susp: suspended,
        susp_nod: false,
        susp_fen: registry.devices_of(name).any(|d| d.io.is_frozen_for_fencing()),
    })?;
    out.put_resource_statistics(&ResourceStatistics {
        write_ordering: api::resource_statistics::WO_BDEV_FLUSH,
    })?;
    *cursor = i64::try_from(index).unwrap_or(i64::MAX - 1) + 1;
    Ok(out.bytes().len())
}

/// The error message a filtered dump sends for an unknown resource.
fn unknown_resource(cursor: &mut i64, reply: &mut [u8]) -> core::result::Result<usize, NlaError> {
    let mut out = ReplyBuilder::new(reply, api::MINOR_ALL)?;
    out.set_ret_code(RetCode::ResNotKnown)?;
    *cursor = i64::MAX;
    Ok(out.bytes().len())
}

/// GET_DEVICES (`drbd_adm_dump_devices`) or, with `peer`, GET_PEER_DEVICES
/// (`drbd_adm_dump_peer_devices`: only devices with a configured
/// connection): the next device by minor.
fn dump_devices(registry: &Registry, filter: Option<ResourceName>, cursor: &mut i64, reply: &mut [u8], peer: bool)
    -> core::result::Result<usize, NlaError>
{
    if let Some(name) = filter {
        if *cursor == 0 && registry.resources.get(&name).is_none() {
            return unknown_resource(cursor, reply);
        }
    }
    let start = u32::try_from(*cursor).unwrap_or(u32::MAX);
    let connected = |d: &Device| registry.resources.get(&d.resource).and_then(|r| r.conn.as_ref()).is_some();
    let next = registry.devices().find(|device| {
        device.minor >= start
            && filter.map_or(true, |name| device.resource == name)
            && (!peer || connected(device))
    });
    let Some(device) = next else {
        return Ok(0);
    };
    let minor = &device.minor;
    let mut out = ReplyBuilder::new(reply, *minor)?;
    let disk = device.io.with_md(|md, _| (md.uuids(), md.sb.flags, md.bitmap.count()));
    let state = device.state();
    if peer {
        let conn = registry.resources.get(&device.resource).and_then(|r| r.conn.as_ref()).map(|c| c.config());
        out.put_cfg_context(&CfgContext {
            volume: Some(device.volume),
            resource_name: Some(device.resource.as_bytes()),
            my_addr: conn.map(|c| c.my_addr.as_bytes()),
            peer_addr: conn.map(|c| c.peer_addr.as_bytes()),
        })?;
        out.put_peer_device_info(&PeerDeviceInfo {
            repl_state: state.conn as u32,
            disk_state: state.pdsk as u32,
            ..PeerDeviceInfo::default()
        })?;
        let flags = disk.map_or(0, |(_, flags, _)| crate::drbd_events::peer_flags(flags));
        out.put_peer_device_statistics(&PeerDeviceStatistics {
            out_of_sync: disk.map_or(0, |(_, _, oos)| oos << 3),
            bitmap_uuid: disk.map_or(0, |(uuids, _, _)| uuids.bitmap),
            flags,
            ..PeerDeviceStatistics::default()
        })?;
    } else {
        out.put_cfg_context(&CfgContext {
            volume: Some(device.volume),
            resource_name: Some(device.resource.as_bytes()),
            ..CfgContext::default()
        })?;
        if let Some(config) = &device.disk_config {
            out.put_disk_conf(&config.options.view(config.backing_dev.as_bytes(), config.meta_dev.as_bytes()))?;
        }
        out.put_device_info(&DeviceInfo { disk_state: state.disk as u32 })?;
        out.put_device_statistics(&DeviceStatistics {
            size: device.capacity(),
            read: device.io.read_sectors(),
            write: device.io.written_sectors(),
            upper_blocked: state.susp,
            exposed_data_uuid: disk.map_or(0, |(uuids, _, _)| uuids.current),
            current_uuid: disk.map_or(0, |(uuids, _, _)| uuids.current),
            disk_flags: disk.map_or(0, |(_, flags, _)| flags),
            history_uuids: disk.map(|(uuids, _, _)| uuids.history),
            ..DeviceStatistics::default()
        })?;
    }
    *cursor = i64::from(*minor) + 1;
    Ok(out.bytes().len())
}

/// GET_CONNECTIONS (`drbd_adm_dump_connections`): every resource with a
/// configured connection, by position in the registry.
fn dump_connections(registry: &Registry, filter: Option<ResourceName>, cursor: &mut i64, reply: &mut [u8])
    -> core::result::Result<usize, NlaError>
{
    if let Some(name) = filter {
        if *cursor == 0 && registry.resources.get(&name).is_none() {
            return unknown_resource(cursor, reply);
        }
    }
    let first = usize::try_from(*cursor).unwrap_or(usize::MAX);
    let next = registry.resources.iter().enumerate().skip(first).find(|(_, (name, resource))| {
        resource.conn.is_some() && filter.map_or(true, |wanted| **name == wanted)
    });
    let Some((index, (name, resource))) = next else {
        return Ok(0);
    };
    let Some(conn) = resource.conn.as_ref() else {
        return Ok(0);
    };
    let config = conn.config();
    let mut out = ReplyBuilder::new(reply, api::MINOR_ALL)?;
    out.put_cfg_context(&CfgContext {
        volume: None,
        resource_name: Some(name.as_bytes()),
        my_addr: Some(config.my_addr.as_bytes()),
        peer_addr: Some(config.peer_addr.as_bytes()),
    })?;
    if let Some(net) = resource.current_net_options() {
        out.put_net_conf(&net.view(), requester_is_sys_admin())?;
    }
    // The connection's state is the one its first volume shows.
    let view = registry.devices_of(name).next().map(|d| d.io.peer());
    let (conn_state, peer_role) = match view {
        Some(v) => (v.conn, v.peer),
        None => (api::ConnState::StandAlone, api::Role::Unknown),
    };
    out.put_connection_info(&ConnectionInfo { connection_state: conn_state as u32, role: peer_role as u32 })?;
    out.put_connection_statistics(&ConnectionStatistics { congested: false })?;
    *cursor = i64::try_from(index).unwrap_or(i64::MAX - 1) + 1;
    Ok(out.bytes().len())
}
