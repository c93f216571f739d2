//! rdrbd: DRBD 8.4 in Rust-for-Linux.
//!
//! Module entry and exit, and the registry of resources and minors that
//! every configuration request goes through.

// pin_init! of the larger structs (DeviceIo, ResyncShared) nests deeply.
#![recursion_limit = "512"]

use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::sync::{Arc, Mutex};
use kernel::str::CString;
use kernel::{c_str, fmt, new_mutex};

mod drbd_actlog;
mod drbd_bitmap;
mod drbd_conflicts;
mod drbd_block_digest;
mod drbd_congestion;
mod drbd_conn;
mod drbd_csums;
mod drbd_dual_primary;
mod drbd_events;
mod drbd_helpers;
mod drbd_include;
mod drbd_io_error;
mod drbd_md;
mod drbd_mgmt;
mod drbd_net;
mod drbd_nl;
mod drbd_options;
mod drbd_packet_seq;
mod drbd_peer_device;
mod drbd_peer_writes;
mod drbd_proc;
mod drbd_receiver;
mod drbd_remote_read;
mod drbd_req;
mod drbd_resize;
mod drbd_resync;
mod drbd_resync_after;
mod drbd_resync_reply;
mod drbd_sender;
mod drbd_state;
mod drbd_timeout;
mod drbd_verify;
mod kernel_glue;

use drbd_include::fixed_str::FixedStr;
use drbd_include::genl::{self as api, RetCode};
use drbd_req::DeviceIo;
use drbd_resync_after::ResyncOrder;
use drbd_peer_device::ResyncRate;
use drbd_include::md::MetaIndex;
use kernel_glue::block::{BlockMajor, CloneBioSet, GenDisk, Holder, LowerDev};
use kernel_glue::genl::GenlFamily;
use kernel_glue::procfs::ProcEntry;
use kernel_glue::thread::KThread;

module! {
    type: RdrbdModule,
    name: "drbd",
    author: "rdrbd developers",
    description: "rdrbd: DRBD 8.4 compatible replicated block device, in Rust",
    license: "GPL",
}


/// DRBD's block major.
const DRBD_MAJOR: u32 = 147;
/// The DRBD release whose interfaces rdrbd provides.
pub(crate) const REL_VERSION: &str = "8.4.11";
/// rdrbd's own version, shown in /proc/drbd.
pub(crate) const RDRBD_VERSION: &str = "0.1.0";

/// A resource name (at most 127 bytes).
pub(crate) type ResourceName = FixedStr<{ api::RESOURCE_NAME_SIZE }>;
/// A device path as DRBD's netlink API carries it (at most 127 bytes).
pub(crate) type DevicePath = FixedStr<{ api::DEVICE_PATH_SIZE }>;

/// A refused configuration request: a DRBD 8.4 return code and the reason
/// shown to the user.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdmError {
    /// A [`RetCode`] or a [`api::StateChangeResult`], as the reply carries it.
    pub(crate) code: i32,
    pub(crate) reason: &'static str,
}

impl AdmError {
    pub(crate) const fn new(code: RetCode, reason: &'static str) -> Self {
        Self { code: code as i32, reason }
    }

    /// A refused state change (`enum drbd_state_rv`).
    pub(crate) const fn state(rv: api::StateChangeResult, reason: &'static str) -> Self {
        Self { code: rv as i32, reason }
    }
}

impl From<api::StateChangeResult> for AdmError {
    /// A change the state rules refused, with their reason.
    fn from(rv: api::StateChangeResult) -> Self {
        Self::state(rv, rv.text())
    }
}

/// The result of a configuration request.
pub(crate) type AdmResult<T = ()> = core::result::Result<T, AdmError>;

/// A resource: a named group of volumes and its connection to the peer.
pub(crate) struct Resource {
    /// Its volumes, by volume number (DRBD's `resource->devices`).
    pub(crate) devices: RBTree<u32, Device>,
    /// Its connection while configured; the connection owns the peer
    /// devices (`drbd_conn.rs`).
    pub(crate) conn: Option<drbd_conn::Connection>,
    /// `resource-options`.
    pub(crate) options: drbd_options::ResourceOptions,
    /// The net options of the configured connection.
    pub(crate) net_options: Option<drbd_options::NetOptions>,
}

impl Resource {
    /// The net options as they are in force: the protocol settings come
    /// from the connection, since the peer may have changed them.
    pub(crate) fn current_net_options(&self) -> Option<drbd_options::NetOptions> {
        let net = self.net_options?;
        Some(match &self.conn {
            Some(conn) => net.with_protocol(conn.protocol_settings()).with_sync_algs(conn.sync_algs()),
            None => net,
        })
    }
}

/// How a device's backing disk was attached.
pub(crate) struct DiskConfig {
    pub(crate) backing_dev: DevicePath,
    pub(crate) meta_dev: DevicePath,
    pub(crate) meta_dev_idx: i32,
    /// Requested size in sectors; 0 means all of the backing device.
    pub(crate) disk_size: u64,
    /// Activity log slots.
    pub(crate) al_extents: u32,
    /// Every other disk option, as configured (shown back by GET_STATUS).
    pub(crate) options: drbd_options::DiskOptions,
}

/// A minor: `/dev/drbd<minor>`, volume `volume` of resource `resource`.
pub(crate) struct Device {
    pub(crate) minor: u32,
    pub(crate) volume: u32,
    pub(crate) resource: ResourceName,
    pub(crate) disk_config: Option<DiskConfig>,
    pub(crate) io: Arc<DeviceIo>,
    /// Admits writes to cold extents; stopped before the disk goes.
    _submitter: KThread,
    /// Handles failed I/O and detaches a failed disk (`drbd_io_error.rs`).
    _worker: KThread,
    disk: GenDisk<DeviceIo>,
}

impl Device {
    /// The 8.4 state of this device; without networking it is a
    /// StandAlone Secondary.
    pub(crate) fn state(&self) -> api::State {
        self.io.state()
    }

    /// Capacity exposed to users, in 512-byte sectors.
    pub(crate) fn capacity(&self) -> u64 {
        self.io.exposed_sectors()
    }
}

/// All resources, which own their devices. Configuration requests are
/// serialised by the mutex around this, as DRBD serialises them with its
/// genl lock.
pub(crate) struct Registry {
    pub(crate) resources: RBTree<ResourceName, Resource>,
    /// Which resource and volume each minor is (DRBD's `drbd_devices`).
    minors: RBTree<u32, (ResourceName, u32)>,
    /// Every minor's place in the `resync-after` order (made with the
    /// first minor).
    order: Option<Arc<ResyncOrder<DeviceIo>>>,
}

/// The driver: one per module.
#[pin_data]
pub(crate) struct Drbd {
    #[pin]
    registry: Mutex<Registry>,
}

impl Drbd {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            registry <- new_mutex!(
                Registry { resources: RBTree::new(), minors: RBTree::new(), order: None },
                "rdrbd::Drbd::registry"
            ),
        })
    }

    /// Locks the registry for one configuration request or report.
    pub(crate) fn registry(&self) -> RegistryGuard<'_> {
        self.registry.lock()
    }

    /// Tears everything down, as `rmmod` must: detaches every disk (waiting
    /// for I/O in flight, writing the metadata) and removes every gendisk.
    fn shutdown(&self) {
        let mut registry = self.registry.lock();
        for resource in registry.resources.values_mut() {
            drop(resource.conn.take());
        }
        // Detach first so the metadata is closed cleanly.
        loop {
            let first = registry.minors.keys().next().copied();
            let Some(minor) = first else { break };
            let _ = registry.secondary(minor);
            let _ = registry.detach(minor, true);
            registry.remove_device(minor);
        }
        registry.resources = RBTree::new();
    }
}

/// The locked registry.
pub(crate) type RegistryGuard<'a> =
    kernel::sync::lock::Guard<'a, Registry, kernel::sync::lock::mutex::MutexBackend>;

impl Registry {
    /// `new-resource`: creating an existing resource is not an error (as in
    /// DRBD 8.4 without NLM_F_EXCL).
    pub(crate) fn new_resource(&mut self, name: ResourceName) -> AdmResult {
        if name.as_bytes().is_empty() || name.as_bytes().contains(&b'/') {
            return Err(AdmError::new(RetCode::InvalidRequest, "invalid resource name"));
        }
        if self.resources.get(&name).is_some() {
            return Ok(());
        }
        self.resources
            .try_create_and_insert(name, Resource { devices: RBTree::new(), conn: None, options: Default::default(), net_options: None }, GFP_KERNEL)
            .map_err(|_| AdmError::new(RetCode::NoMem, "out of memory"))?;
        drbd_events::resource_lifecycle(&name, api::notification_header::NOTIFY_CREATE);
        Ok(())
    }

    /// `del-resource`: only a resource without volumes can go.
    pub(crate) fn del_resource(&mut self, name: &ResourceName) -> AdmResult {
        if self.resources.get(name).is_none() {
            return Err(AdmError::new(RetCode::ResNotKnown, "unknown resource"));
        }
        if self.devices_of(name).next().is_some() {
            return Err(AdmError::new(RetCode::ResInUse, "resource still has volumes (del-minor them first)"));
        }
        if self.resources.get(name).is_some_and(|r| r.conn.is_some()) {
            return Err(AdmError::new(RetCode::NetConfigured, "resource is still connected (disconnect first)"));
        }
        self.resources.remove(name);
        drbd_events::resource_lifecycle(name, api::notification_header::NOTIFY_DESTROY);
        Ok(())
    }

    /// `new-minor`: creates `/dev/drbd<minor>` as volume `volume` of
    /// resource `name`, diskless.
    pub(crate) fn new_minor(&mut self, name: &ResourceName, minor: u32, volume: u32) -> AdmResult {
        if self.resources.get(name).is_none() {
            return Err(AdmError::new(RetCode::ResNotKnown, "unknown resource"));
        }
        if minor > api::MINOR_MAX {
            return Err(AdmError::new(RetCode::InvalidRequest, "requested minor out of range"));
        }
        if volume > api::VOLUME_MAX {
            return Err(AdmError::new(RetCode::InvalidRequest, "requested volume id out of range"));
        }
        if self.minors.get(&minor).is_some() || self.resources.get(name).is_some_and(|r| r.devices.get(&volume).is_some()) {
            return Err(AdmError::new(RetCode::MinorOrVolumeExists, "minor or volume exists already"));
        }
        let nomem = AdmError::new(RetCode::NoMem, "out of memory");
        let ident = drbd_events::DeviceIdent { minor, volume, resource: *name };
        let order = match &self.order {
            Some(order) => order.clone(),
            None => {
                let order = Arc::pin_init(ResyncOrder::new(), GFP_KERNEL).map_err(|_| nomem)?;
                self.order = Some(order.clone());
                order
            }
        };
        let io = Arc::pin_init(DeviceIo::new(ident, order.clone()), GFP_KERNEL).map_err(|_| nomem)?;
        let member = io.clone();
        let disk = GenDisk::new(DRBD_MAJOR, minor, io.clone())
            .map_err(|_| AdmError::new(RetCode::NoMem, "could not create the block device"))?;
        let thread_name = CString::try_from_fmt(fmt!("drbd{}_submit", minor)).map_err(|_| nomem)?;
        let submitter_io = io.clone();
        let submitter = KThread::spawn(&thread_name, move || submitter_io.run_submitter()).map_err(|_| nomem)?;
        let thread_name = CString::try_from_fmt(fmt!("drbd{}_worker", minor)).map_err(|_| nomem)?;
        let worker_io = io.clone();
        let worker = KThread::spawn(&thread_name, move || drbd_io_error::run_worker(worker_io)).map_err(|_| nomem)?;
        io.set_disk_capacity_handle(disk.capacity_handle());
        let device = Device {
            minor,
            volume,
            resource: *name,
            disk_config: None,
            io,
            _submitter: submitter,
            _worker: worker,
            disk,
        };
        // Both maps get their node first, so neither insert can fail
        // after the other succeeded.
        let minor_node = kernel::rbtree::RBTreeNode::new(minor, (*name, volume), GFP_KERNEL).map_err(|_| nomem)?;
        let device_node = kernel::rbtree::RBTreeNode::new(volume, device, GFP_KERNEL).map_err(|_| nomem)?;
        let resource = self.resources.get_mut(name).ok_or(AdmError::new(RetCode::ResNotKnown, "unknown resource"))?;
        resource.devices.insert(device_node);
        self.minors.insert(minor_node);
        // Last: a minor that could not be created is never a member.
        if order.add(member).is_err() {
            self.remove_device(minor);
            return Err(nomem);
        }
        if let Ok(device) = self.device(minor) {
            device.io.events().device_created(&drbd_events::statistics_of(device));
        }
        pr_info!("drbd{}: created as volume {} of {}\n", minor, volume, name.as_str());
        Ok(())
    }

    /// `del-minor`: only a diskless minor can go.
    pub(crate) fn del_minor(&mut self, minor: u32) -> AdmResult {
        let device = self.device(minor)?;
        if device.disk_config.is_some() {
            return Err(AdmError::new(RetCode::MinorConfigured, "minor is still attached (detach it first)"));
        }
        if device.io.is_primary() {
            return Err(AdmError::new(RetCode::MinorConfigured, "minor is still Primary (make it secondary first)"));
        }
        device.io.events().device_destroyed(&drbd_events::statistics_of(device));
        self.remove_device(minor);
        pr_info!("drbd{}: deleted\n", minor);
        Ok(())
    }

    /// `attach`: opens the backing disk exclusively (and the meta device of
    /// external metadata), reads its metadata and exposes it.
    pub(crate) fn attach(&mut self, minor: u32, config: DiskConfig) -> AdmResult {
        self.check_resync_after(minor, config.options.resync_after())?;
        let device = self.device_mut(minor)?;
        if device.disk_config.is_some() {
            return Err(AdmError::new(RetCode::DiskConfigured, "minor is already attached"));
        }
        // On a connected minor the disk comes up Negotiating and the sync
        // handshake with the peer decides its state (8.4's attach): a disk
        // that missed writes must not come up UpToDate beside them. A
        // (diskless) Primary's becomes SyncTarget under its application:
        // the replacement of a failed disk. Only while plainly Connected.
        let conn = device.io.peer().conn;
        let negotiate = conn >= api::ConnState::Connected;
        if negotiate && conn != api::ConnState::Connected {
            return Err(AdmError::new(RetCode::NetConfigured,
                "attaching while connected needs the state Connected (not during a resync; disconnect first)"));
        }
        let holder = device.disk.holder();
        let lower = open_lower(minor, &config.backing_dev, holder).map_err(|e| {
            if e == EBUSY {
                AdmError::new(RetCode::BdClaimDisk, "backing device is in use (claimed by another user)")
            } else {
                AdmError::new(RetCode::OpenDisk, "cannot open backing device")
            }
        })?;
        let meta = self.open_meta_device(minor, &config, holder, &lower)?;
        let device = self.device_mut(minor)?;
        let mut md = drbd_md::MetaData::load(lower.bdev_ref(), lower.nr_sectors(), meta, config.meta_dev_idx, config.al_extents, minor)?;
        md.set_al_updates(lower.bdev_ref(), config.options.al_updates())
            .map_err(|_| AdmError::new(RetCode::IoMdDisk, "I/O error on the meta data area"))?;
        let usable = md.capacity();
        let exposed_now = device.io.exposed_sectors();
        let sectors = match config.disk_size {
            // Connected, the device keeps the size the peers agreed (a
            // bigger disk grows it only by `resize`); a smaller disk
            // cannot hold it.
            0 if negotiate && exposed_now > 0 => {
                if usable < exposed_now {
                    return Err(AdmError::new(RetCode::DiskTooSmall, "backing device smaller than the connected device"));
                }
                exposed_now
            }
            0 => md.agreed_size(),
            wanted if wanted <= usable => wanted,
            _ => return Err(AdmError::new(RetCode::DiskTooSmall, "backing device smaller than the requested size")),
        };
        if device.disk.stack_limits(&lower).is_err() {
            return Err(AdmError::new(RetCode::OpenDisk, "backing device limits do not fit"));
        }
        let disk_state = md.disk_state();
        let peer_outdated = md.peer_outdated();
        // A Primary's application goes on: its writes so far went to the
        // peer alone, which must have every one of them (marked out of
        // sync for us) before our attach reaches it; new ones wait until
        // our packets are out.
        let io = device.io.clone();
        let held_replica = if negotiate && io.is_primary() { io.replica() } else { None };
        let _hold = held_replica.as_deref().map(|replica| io.hold_io_for_attach(replica));
        if device.io.attach_lower(lower, md).is_err() {
            return Err(AdmError::new(RetCode::DiskConfigured, "minor is already attached"));
        }
        device.io.set_exposed_sectors(sectors);
        device.io.resize().set_user_size(config.disk_size);
        // drbd_adm_attach: the disk as the flags have it, and the peer's
        // disk Outdated if they say so (while it is not connected); on a
        // connected minor Negotiating until the handshake (the flags' state
        // then, or the connection's end, `drbd_receiver::receive_state`).
        device.io.set_state(|s| {
            s.device.disk = if negotiate { api::DiskState::Negotiating } else { disk_state };
            if peer_outdated && s.peer.conn < api::ConnState::Connected {
                s.peer.pdsk = api::DiskState::Outdated;
            }
        });
        if let Some(pd) = device.io.peer_device() {
            pd.resync.set_rate(config.options.resync_rate());
        }
        device.io.set_fencing(config.options.fencing());
        device.io.set_read_balancing(config.options.read_balancing());
        device.io.set_discard_zeroes_if_aligned(config.options.discard_zeroes_if_aligned());
        device.io.set_resync_after(config.options.resync_after());
        device.io.set_write_ordering(config.options.write_ordering(), config.options.md_flushes());
        device.io.io_errors().configure(config.options.on_io_error(), config.options.disk_timeout_ds(), true);
        if MetaIndex::from_raw(config.meta_dev_idx).is_ok_and(|index| !index.is_internal()) {
            pr_info!("drbd{}: attached to {} (meta data on {}, index {}), {} sectors\n", minor,
                config.backing_dev.as_str(), config.meta_dev.as_str(), config.meta_dev_idx, sectors);
        } else {
            pr_info!("drbd{}: attached to {}, {} sectors\n", minor, config.backing_dev.as_str(), sectors);
        }
        let user_size = config.disk_size;
        device.disk_config = Some(config);
        if negotiate {
            // after_state_ch, Attaching -> Negotiating while connected: our
            // sizes, UUIDs and state; the peer runs the handshake and
            // answers with its UUIDs and state, on which we run ours. A
            // connection that fails here ends the negotiation (the disk
            // takes its flags' state).
            if let Some(replica) = device.io.replica() {
                let io = &device.io;
                // The UUIDs' flags as the disk's flags have it (8.4 sends
                // them with the disk state to be).
                let role = if io.is_primary() { api::Role::Primary } else { api::Role::Secondary };
                let view = io.with_md(|md, _| crate::drbd_conn::LocalView {
                    role,
                    disk: md.disk_state(),
                    uuids: md.uuids(),
                    bitmap_bits: md.bitmap.count(),
                    capacity: md.capacity(),
                    crashed_primary: md.crashed_primary,
                });
                let _ = crate::drbd_resize::send_sizes(io, &replica, user_size, 0)
                    .and_then(|()| view.map_or(Ok(()), |v| v.send_uuids(&replica)))
                    .and_then(|()| replica.send_state(io.state()));
            }
        }
        Ok(())
    }

    /// The meta device of external metadata, opened as `open_backing_devices`
    /// does: claimed with the minor's `holder` for flexible metadata, with
    /// the holder shared by all minors for indexed metadata (slots of one
    /// meta device); `None` for internal metadata. The meta device must be
    /// the backing device exactly when the metadata is internal, and an
    /// indexed slot must not be in use by another minor.
    fn open_meta_device(&self, minor: u32, config: &DiskConfig, holder: Holder, lower: &LowerDev) -> AdmResult<Option<LowerDev>> {
        let index = MetaIndex::from_raw(config.meta_dev_idx)
            .map_err(|_| AdmError::new(RetCode::MdIdxInvalid, "invalid meta data index"))?;
        let internal = index.is_internal();
        if !internal && config.meta_dev == config.backing_dev {
            return Err(AdmError::new(RetCode::MdIdxInvalid,
                "external meta data needs a meta device other than the backing device (or use internal)"));
        }
        let meta_holder = if matches!(index, MetaIndex::Indexed(_)) { Holder::shared_meta_device() } else { holder };
        let meta = open_lower(minor, &config.meta_dev, meta_holder).map_err(|e| {
            if e == EBUSY {
                AdmError::new(RetCode::BdClaimMdDisk,
                    "meta device is in use (claimed by another user, or by this minor as its backing device)")
            } else {
                AdmError::new(RetCode::OpenMdDisk, "cannot open meta device")
            }
        })?;
        if meta.is_same_device(lower) != internal {
            return Err(AdmError::new(RetCode::MdIdxInvalid, if internal {
                "internal meta data lives on the backing device (the meta device must be the backing device)"
            } else {
                "external meta data needs a meta device other than the backing device (or use internal)"
            }));
        }
        if internal {
            // The backing device itself: its own open is the one to keep.
            return Ok(None);
        }
        if let MetaIndex::Indexed(slot) = index {
            let meta_number = meta.device_number();
            let user = self.devices().find(|d| {
                d.minor != minor
                    && d.io.with_md(|md, _| md.indexed_slot() == Some(slot) && md.meta_device_number() == Some(meta_number))
                        .unwrap_or(false)
            });
            if let Some(other) = user.map(|d| d.minor) {
                pr_err!("drbd{}: meta data index {} of {} is in use by drbd{}\n", minor, slot, config.meta_dev.as_str(), other);
                return Err(AdmError::new(RetCode::MdIdxInvalid, "this meta data index of the meta device is in use by another minor"));
            }
        }
        Ok(Some(meta))
    }

    /// `detach`: waits for I/O in flight, then releases the backing disk;
    /// a diskless minor is left as it is.
    pub(crate) fn detach(&mut self, minor: u32, force: bool) -> AdmResult {
        let device = self.device_mut(minor)?;
        if device.disk_config.is_none() {
            return Ok(());
        }
        // is_valid_state: a Primary needs access to UpToDate data, its own
        // or the connected peer's (then its reads and writes go to the
        // peer); only a forced (hard) detach may take the last copy away.
        let peer = device.io.peer();
        let peer_up_to_date = peer.conn >= api::ConnState::Connected && peer.pdsk == api::DiskState::UpToDate;
        if device.io.is_primary() && !force && !peer_up_to_date {
            return Err(AdmError::state(api::StateChangeResult::NoUpToDateDisk,
                "a Primary without an UpToDate peer cannot give up its disk (make it secondary first, or detach --force)"));
        }
        device.disk_config = None;
        if !peer_up_to_date {
            // No data left behind the device. (With an UpToDate peer it
            // keeps the agreed size: reads and writes go to the peer, as
            // after a detach on an I/O error.)
            device.io.set_exposed_sectors(0);
        }
        // As in C DRBD, listeners see the disk go through Failed.
        device.io.set_disk_state(api::DiskState::Failed);
        device.io.set_disk_state(api::DiskState::Diskless);
        if let Some((lower, md)) = device.io.detach_lower() {
            if let Some(Err(e)) = md.map(|md| md.close(lower.bdev_ref())) {
                pr_err!("drbd{}: writing meta data at detach failed: error {}\n", minor, e.to_errno());
            }
        }
        let _ = device.disk.reset_limits();
        pr_info!("drbd{}: detached\n", minor);
        Ok(())
    }

    /// `down`: detaches and deletes every volume of a resource, then the
    /// resource itself.
    pub(crate) fn down(&mut self, name: &ResourceName) -> AdmResult {
        if self.resources.get(name).is_none() {
            return Err(AdmError::new(RetCode::ResNotKnown, "unknown resource"));
        }
        self.disconnect(name)?;
        loop {
            let Some(minor) = self.devices_of(name).next().map(|d| d.minor) else { break };
            self.secondary(minor)?;
            self.detach(minor, false)?;
            self.del_minor(minor)?;
        }
        self.del_resource(name)
    }

    /// `primary`: needs an UpToDate disk; `force` (--force) first makes an
    /// Inconsistent, Outdated or Consistent disk UpToDate (`drbd_set_role`),
    /// with a new current UUID and the flags persisted.
    pub(crate) fn primary(&mut self, minor: u32, force: bool) -> AdmResult {
        let conn_config = self
            .device(minor)
            .ok()
            .and_then(|d| self.resources.get(&d.resource))
            .and_then(|r| r.conn.as_ref())
            .map(|c| c.config())
            .map(|c| (c.two_primaries, drbd_events::ConnAddrs { my_addr: c.my_addr, peer_addr: c.peer_addr }));
        let two_primaries = conn_config.is_some_and(|(two, _)| two);
        let addrs = conn_config.map(|(_, addrs)| addrs);
        let device = self.device_mut(minor)?;
        // A fencing policy wants the peer outdated before we promote
        // without it (SS_PRIMARY_NOP): ask the fence-peer helper.
        let view = device.io.peer();
        if drbd_include::mgmt::promotion_needs_fencing(device.io.fencing(), view.conn, view.pdsk)
            && device.io.disk_state() >= api::DiskState::Inconsistent
        {
            let outdated = drbd_helpers::try_outdate_peer(device.resource.as_str(), &device.io, addrs);
            if !outdated && !force {
                return Err(AdmError::state(api::StateChangeResult::PrimaryNop,
                    "Refusing to be Primary while peer is not outdated"));
            }
            if !outdated {
                pr_warn!("drbd{}: Forced into split brain situation!\n", minor);
                device.io.set_state(|s| s.peer.pdsk = api::DiskState::Outdated);
            }
        }
        if device.io.is_primary() {
            return Ok(());
        }
        let disk = device.io.disk_state();
        let forced = match disk {
            api::DiskState::UpToDate => false,
            api::DiskState::Inconsistent | api::DiskState::Outdated | api::DiskState::Consistent if force => true,
            _ => {
                return Err(AdmError::state(api::StateChangeResult::NoUpToDateDisk,
                    "no UpToDate disk to become Primary with (use --force to declare it UpToDate)"))
            }
        };
        if device.io.replica().is_some() {
            let peer = device.io.peer();
            drbd_include::mgmt::check_promotion(api::Role::Primary, peer.peer, peer.conn, two_primaries)
                .map_err(|rv| AdmError::state(rv, rv.text()))?;
        }
        // Connected, the promotion is cluster-wide (`cl_wide_st_chg`): the
        // peer may refuse (two Primaries), and a C peer learns from it that
        // a forced promotion between Inconsistent disks needs a resync.
        // Role and disk change in one state change, as listeners see it,
        // after the metadata records the promotion.
        let io = &device.io;
        let name = device.resource;
        let (mask, val) = drbd_include::mgmt::promote_request(forced);
        io.request_state_with_consent(
            |s| {
                s.device.disk = api::DiskState::UpToDate;
                s.device.role = api::Role::Primary;
            },
            || match io.replica() {
                Some(replica) => crate::drbd_mgmt::request_state_change(name.as_str(), io, &replica, mask, val),
                None => Err(AdmError::from(api::StateChangeResult::NeedConnection)),
            },
            || {
                let peer = io.peer();
                match io.with_md(|md, dev| md.promote(dev, peer.conn, peer.pdsk, forced)) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(_)) => Err(AdmError::new(RetCode::IoMdDisk, "writing the meta data failed")),
                    None => Err(AdmError::state(api::StateChangeResult::NoUpToDateDisk, "no disk")),
                }
            },
        )?;
        device.disk.set_read_only(false);
        if forced {
            pr_warn!("drbd{}: forced into Primary: {} disk declared UpToDate\n", minor, disk.name());
        }
        // Tell a connected peer (`drbd_set_role`): after --force it
        // reconsiders the resync on our new UUIDs.
        if let Some(replica) = device.io.replica() {
            let io = &device.io;
            if forced {
                if let Some((uuids, bits, flags)) = io.with_md(|md, _| (md.uuids(), md.bitmap.count(), md.uuid_flags())) {
                    let _ = replica.send_uuids(uuids, bits, flags);
                }
            }
            // The state as it is now (`drbd_send_current_state`).
            let _ = replica.send_state(io.state());
        }
        Ok(())
    }

    /// `secondary`: refused while `/dev/drbdN` is open.
    pub(crate) fn secondary(&mut self, minor: u32) -> AdmResult {
        let device = self.device_mut(minor)?;
        if !device.io.is_primary() {
            return Ok(());
        }
        device.io
            .request_state(|s| s.device.role = api::Role::Secondary)
            .map_err(|rv| AdmError::state(rv, rv.text()))?;
        device.disk.set_read_only(true);
        let peer = device.io.peer();
        let (disk, pdsk, conn) = (device.io.disk_state(), peer.pdsk, peer.conn);
        if let Some(Err(e)) = device.io.with_md(|md, dev| md.demote(dev, disk, pdsk, conn)) {
            pr_err!("drbd{}: writing meta data at demotion failed: error {}\n", minor, e.to_errno());
        }
        // Tell a connected peer, as `drbd_set_role` does for either
        // direction (drbd_send_current_state): otherwise it keeps seeing
        // us as Primary (/proc/drbd, its own promotion, a later handshake).
        if let Some(replica) = device.io.replica() {
            let _ = replica.send_state(device.io.state());
        }
        Ok(())
    }

    /// `connect`: configures the connection of resource `name` and starts
    /// connecting (volume 0 is the replicated one).
    pub(crate) fn connect(&mut self, name: &ResourceName, config: drbd_net::NetConfig) -> AdmResult {
        let device = self
            .devices_of(name)
            .next()
            .and_then(|d| {
                // The peer device resyncs at the rate of the disk options.
                let rate = d.disk_config.as_ref().map_or_else(ResyncRate::defaults, |c| c.options.resync_rate());
                u16::try_from(d.volume).ok().map(|v| (v, d.io.clone(), rate, drbd_events::statistics_of(d)))
            });
        let resource = self.resources.get_mut(name).ok_or(AdmError::new(RetCode::ResNotKnown, "unknown resource"))?;
        if resource.conn.as_ref().is_some_and(|c| !c.gave_up()) {
            return Err(AdmError::new(RetCode::NetConfigured, "resource is already connected (disconnect first)"));
        }
        // A connection that gave up (StandAlone) is replaced.
        drop(resource.conn.take());
        // Listeners see the connection and its peer device created before
        // it starts (`drbd_adm_connect`).
        let addrs = drbd_events::ConnAddrs { my_addr: config.my_addr, peer_addr: config.peer_addr };
        let device = match device {
            Some((volume, io, rate, stats)) => {
                io.events().connection_created(addrs, &stats);
                Some((volume, io, rate))
            }
            None => {
                drbd_events::connection_lifecycle(name, addrs, api::notification_header::NOTIFY_CREATE);
                None
            }
        };
        let events_io = device.as_ref().map(|(_, io, _)| io.clone());
        let conn = drbd_conn::Connection::start(*name, config, device).map_err(|_| {
            // The connection never was: take its events2 objects back.
            let gone = events_io.is_some_and(|io| io.events().connection_gone(&drbd_events::Statistics::default()));
            if !gone {
                drbd_events::connection_lifecycle(name, addrs, api::notification_header::NOTIFY_DESTROY);
            }
            AdmError::new(RetCode::NoMem, "cannot start the connection thread")
        })?;
        resource.conn = Some(conn);
        Ok(())
    }

    /// The resource whose connection has these (raw sockaddr) addresses.
    pub(crate) fn resource_by_addrs(&self, my_addr: &[u8], peer_addr: &[u8]) -> Option<ResourceName> {
        use kernel_glue::net::SockAddr;
        let same = |a: &SockAddr, raw: &[u8]| {
            SockAddr::from_bytes(raw).is_some_and(|b| a.port() == b.port() && a.ip_bytes() == b.ip_bytes())
        };
        self.resources.iter().find_map(|(name, r)| {
            let config = r.conn.as_ref()?.config();
            (same(&config.my_addr, my_addr) && same(&config.peer_addr, peer_addr)).then_some(*name)
        })
    }

    /// `disconnect`: stops the connection (a StandAlone resource is left
    /// as it is).
    pub(crate) fn disconnect(&mut self, name: &ResourceName) -> AdmResult {
        let resource = self.resources.get_mut(name).ok_or(AdmError::new(RetCode::ResNotKnown, "unknown resource"))?;
        resource.net_options = None;
        let Some(conn) = resource.conn.take() else { return Ok(()) };
        // Listeners see Disconnecting first, as with C DRBD.
        for device in self.devices_of(name) {
            device.io.set_state(|s| {
                if s.peer.conn != api::ConnState::StandAlone {
                    s.peer.conn = api::ConnState::Disconnecting;
                }
            });
        }
        let config = conn.config();
        let addrs = drbd_events::ConnAddrs { my_addr: config.my_addr, peer_addr: config.peer_addr };
        // Dropping the connection stops its threads and closes its sockets;
        // its StandAlone state change destroys its events2 objects (or
        // here, if it stopped before). A resource without volumes has no
        // state change to do it.
        drop(conn);
        let mut volumes = 0;
        for device in self.devices_of(name) {
            volumes += 1;
            device.io.events().connection_gone(&drbd_events::statistics_of(device));
        }
        if volumes == 0 {
            drbd_events::connection_lifecycle(name, addrs, api::notification_header::NOTIFY_DESTROY);
        }
        Ok(())
    }

    /// `new-current-uuid` (`drbd_adm_new_c_uuid`): StandAlone, or Connected
    /// on a just-created pair with `--clear-bitmap`, which skips the
    /// initial sync: the peer is told (P_UUIDS with SKIP_INITIAL_SYNC) and
    /// both disks become UpToDate.
    pub(crate) fn new_current_uuid(&mut self, minor: u32, clear_bitmap: bool) -> AdmResult {
        let device = self.device_mut(minor)?;
        let peer = device.io.peer();
        let primary = device.io.is_primary();
        let just_created = device
            .io
            .with_md(|md, _| md.uuids().current & !1 == drbd_include::uuid::UUID_JUST_CREATED)
            .ok_or(AdmError::new(RetCode::NoDisk, "device has no disk"))?;
        let replica = device.io.replica();
        let skip_sync = match (&replica, peer.conn) {
            (Some(r), api::ConnState::Connected) if r.link_version() >= 90 && just_created && clear_bitmap => true,
            (_, api::ConnState::StandAlone) => false,
            _ => return Err(AdmError::new(RetCode::Connected, "device is connected (new-current-uuid --clear-bitmap is only allowed on a fresh connected pair)")),
        };
        if let Some(Err(_)) = device.io.with_md(|md, dev| md.new_current_uuid(dev, primary, clear_bitmap, skip_sync)) {
            return Err(AdmError::new(RetCode::IoMdDisk, "writing the meta data failed"));
        }
        if let (true, Some(replica)) = (skip_sync, replica) {
            pr_info!("drbd{}: preparing to skip initial sync\n", minor);
            let uuids = device.io.with_md(|md, _| md.uuids()).unwrap_or_default();
            if replica.send_uuids_skip_initial_sync(uuids).is_err() {
                return Err(AdmError::new(RetCode::Connected, "sending the new UUIDs to the peer failed"));
            }
            device.io.set_state(|s| {
                s.device.disk = api::DiskState::UpToDate;
                s.peer.pdsk = api::DiskState::UpToDate;
            });
        }
        Ok(())
    }

    /// The device of `minor`, or the DRBD error for an unknown minor.
    pub(crate) fn device(&self, minor: u32) -> AdmResult<&Device> {
        self.minors
            .get(&minor)
            .and_then(|(name, volume)| self.resources.get(name)?.devices.get(volume))
            .ok_or(AdmError::new(RetCode::MinorInvalid, "unknown minor"))
    }

    /// Every device, by minor.
    pub(crate) fn devices(&self) -> impl Iterator<Item = &Device> {
        self.minors.values().filter_map(|(name, volume)| self.resources.get(name)?.devices.get(volume))
    }

    /// The devices of resource `name`, by volume.
    pub(crate) fn devices_of(&self, name: &ResourceName) -> impl Iterator<Item = &Device> {
        self.resources.get(name).into_iter().flat_map(|r| r.devices.values())
    }

    /// Takes `minor` out of its resource and the minor map; dropping the
    /// device stops its threads and deletes its gendisk.
    fn remove_device(&mut self, minor: u32) {
        if let Some((name, volume)) = self.minors.remove(&minor) {
            if let Some(resource) = self.resources.get_mut(&name) {
                resource.devices.remove(&volume);
            }
        }
        if let Some(order) = &self.order {
            order.remove(minor);
        }
    }

    /// `drbd_resync_after_valid` for `minor` waiting for `after`.
    fn check_resync_after(&self, minor: u32, after: i32) -> AdmResult {
        let Some(order) = &self.order else { return Ok(()) };
        order.check(minor, after).map_err(|code| AdmError::new(code, match code {
            RetCode::ResyncAfterCycle => "resync-after would form a dependency cycle",
            _ => "resync-after names an invalid minor",
        }))
    }

    /// Disks the worker released after an I/O error (`drbd_io_error.rs`)
    /// are no longer configured: their minors show no disk options and
    /// may attach again.
    pub(crate) fn forget_failed_disks(&mut self) {
        for device in self.resources.values_mut().flat_map(|r| r.devices.values_mut()) {
            if device.disk_config.is_some() && !device.io.has_disk() {
                device.disk_config = None;
                let _ = device.disk.reset_limits();
                pr_info!("drbd{}: the failed disk is detached\n", device.minor);
            }
        }
    }

    pub(crate) fn device_mut(&mut self, minor: u32) -> AdmResult<&mut Device> {
        let (name, volume) = *self.minors.get(&minor).ok_or(AdmError::new(RetCode::MinorInvalid, "unknown minor"))?;
        self.resources
            .get_mut(&name)
            .and_then(|r| r.devices.get_mut(&volume))
            .ok_or(AdmError::new(RetCode::MinorInvalid, "unknown minor"))
    }
}

/// Opens `path` exclusively for `holder`; failures are logged with the
/// kernel's error code.
fn open_lower(minor: u32, path: &DevicePath, holder: Holder) -> Result<LowerDev> {
    let c_path = kernel::str::CStr::from_bytes_with_nul(path.as_bytes_with_nul()).map_err(|_| EINVAL)?;
    LowerDev::open(c_path, holder).inspect_err(|e| {
        pr_err!("drbd{}: open(\"{}\") failed with {}\n", minor, path.as_str(), e.to_errno());
    })
}

struct RdrbdModule {
    // Dropped first (see Drop): no request or read may arrive during teardown.
    genl: Option<GenlFamily>,
    proc_entry: Option<ProcEntry>,
    drbd: Arc<Drbd>,
    // Dropped last, after every disk is gone.
    _clones: CloneBioSet,
    _major: BlockMajor,
}

impl kernel::Module for RdrbdModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let major = BlockMajor::register(DRBD_MAJOR, c_str!("drbd"))?;
        let clones = CloneBioSet::init()?;
        let drbd = Arc::pin_init(Drbd::new(), GFP_KERNEL)?;
        let genl = GenlFamily::register(drbd.clone())?;
        let proc_entry = ProcEntry::create(drbd.clone())?;
        pr_info!("initialized. Version: {} (api:{}/proto:{}-{}), rdrbd {}\n",
            REL_VERSION, api::GENL_VERSION, api::PRO_VERSION_MIN, api::PRO_VERSION_MAX, RDRBD_VERSION);
        Ok(Self { genl: Some(genl), proc_entry: Some(proc_entry), drbd, _clones: clones, _major: major })
    }
}

impl Drop for RdrbdModule {
    fn drop(&mut self) {
        drop(self.genl.take());
        drop(self.proc_entry.take());
        self.drbd.shutdown();
        pr_info!("module cleanup done.\n");
    }
}
