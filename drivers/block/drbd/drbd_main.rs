//! rdrbd: DRBD 8.4 in Rust-for-Linux.
//!
//! Module entry and exit, and the registry of resources and minors that
//! every configuration request goes through.

use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::sync::{Arc, Mutex};
use kernel::str::CString;
use kernel::{c_str, fmt, new_mutex};

mod drbd_actlog;
mod drbd_bitmap;
mod drbd_include;
mod drbd_md;
mod drbd_nl;
mod drbd_proc;
mod drbd_req;
mod kernel_glue;

use drbd_include::fixed_str::FixedStr;
use drbd_include::genl::{self as api, RetCode};
use drbd_req::DeviceIo;
use kernel_glue::block::{BlockMajor, CloneBioSet, GenDisk, LowerDev};
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

/// Who the glue hands bios, netlink requests and /proc reads to.
pub(crate) type DiskOwner = DeviceIo;
/// See [`DiskOwner`].
pub(crate) type GenlOwner = Drbd;
/// See [`DiskOwner`].
pub(crate) type ProcOwner = Drbd;

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
    pub(crate) code: RetCode,
    pub(crate) reason: &'static str,
}

impl AdmError {
    pub(crate) const fn new(code: RetCode, reason: &'static str) -> Self {
        Self { code, reason }
    }
}

/// The result of a configuration request.
pub(crate) type AdmResult<T = ()> = core::result::Result<T, AdmError>;

/// A resource: a named group of volumes. Its options and connection come
/// with replication; for now it exists to own volumes.
pub(crate) struct Resource {}

/// How a device's backing disk was attached.
pub(crate) struct DiskConfig {
    pub(crate) backing_dev: DevicePath,
    pub(crate) meta_dev: DevicePath,
    pub(crate) meta_dev_idx: i32,
    /// Requested size in sectors; 0 means all of the backing device.
    pub(crate) disk_size: u64,
    /// Activity log slots.
    pub(crate) al_extents: u32,
}

/// A minor: `/dev/drbd<minor>`, volume `volume` of resource `resource`.
pub(crate) struct Device {
    pub(crate) minor: u32,
    pub(crate) volume: u32,
    pub(crate) resource: ResourceName,
    pub(crate) disk_config: Option<DiskConfig>,
    /// Capacity exposed to users, in 512-byte sectors.
    pub(crate) capacity: u64,
    /// Own disk state (Diskless when no disk is attached).
    pub(crate) disk_state: api::DiskState,
    pub(crate) io: Arc<DeviceIo>,
    /// Admits writes to cold extents; stopped before the disk goes.
    _submitter: KThread,
    disk: GenDisk<DeviceIo>,
}

impl Device {
    /// The 8.4 state of this device; without networking it is a
    /// StandAlone Secondary.
    pub(crate) fn state(&self) -> api::State {
        api::State {
            role: api::Role::Secondary,
            peer: api::Role::Unknown,
            conn: api::ConnState::StandAlone,
            disk: self.disk_state,
            pdsk: api::DiskState::DUnknown,
            susp: false,
            aftr_isp: false,
            peer_isp: false,
            user_isp: false,
            susp_nod: false,
            susp_fen: false,
        }
    }
}

/// All resources and minors. Configuration requests are serialised by the
/// mutex around this, as DRBD serialises them with its genl lock.
pub(crate) struct Registry {
    pub(crate) resources: RBTree<ResourceName, Resource>,
    pub(crate) devices: RBTree<u32, Device>,
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
                Registry { resources: RBTree::new(), devices: RBTree::new() },
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
        // Detach first so the metadata is closed cleanly.
        loop {
            let first = registry.devices.keys().next().copied();
            let Some(minor) = first else { break };
            let _ = registry.detach(minor);
            registry.devices.remove(&minor);
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
            .try_create_and_insert(name, Resource {}, GFP_KERNEL)
            .map_err(|_| AdmError::new(RetCode::NoMem, "out of memory"))?;
        Ok(())
    }

    /// `del-resource`: only a resource without volumes can go.
    pub(crate) fn del_resource(&mut self, name: &ResourceName) -> AdmResult {
        if self.resources.get(name).is_none() {
            return Err(AdmError::new(RetCode::ResNotKnown, "unknown resource"));
        }
        if self.devices.values().any(|d| d.resource == *name) {
            return Err(AdmError::new(RetCode::ResInUse, "resource still has volumes (del-minor them first)"));
        }
        self.resources.remove(name);
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
        if self.devices.get(&minor).is_some()
            || self.devices.values().any(|d| d.resource == *name && d.volume == volume)
        {
            return Err(AdmError::new(RetCode::MinorOrVolumeExists, "minor or volume exists already"));
        }
        let nomem = AdmError::new(RetCode::NoMem, "out of memory");
        let io = Arc::pin_init(DeviceIo::new(), GFP_KERNEL).map_err(|_| nomem)?;
        let disk = GenDisk::new(DRBD_MAJOR, minor, io.clone())
            .map_err(|_| AdmError::new(RetCode::NoMem, "could not create the block device"))?;
        let thread_name = CString::try_from_fmt(fmt!("drbd{}_submit", minor)).map_err(|_| nomem)?;
        let submitter_io = io.clone();
        let submitter = KThread::spawn(&thread_name, move || submitter_io.run_submitter()).map_err(|_| nomem)?;
        let device = Device {
            minor,
            volume,
            resource: *name,
            disk_config: None,
            capacity: 0,
            disk_state: api::DiskState::Diskless,
            io,
            _submitter: submitter,
            disk,
        };
        self.devices.try_create_and_insert(minor, device, GFP_KERNEL).map_err(|_| nomem)?;
        pr_info!("drbd{}: created as volume {} of {}\n", minor, volume, name.as_str());
        Ok(())
    }

    /// `del-minor`: only a diskless minor can go.
    pub(crate) fn del_minor(&mut self, minor: u32) -> AdmResult {
        let device = self.device(minor)?;
        if device.disk_config.is_some() {
            return Err(AdmError::new(RetCode::MinorConfigured, "minor is still attached (detach it first)"));
        }
        self.devices.remove(&minor);
        pr_info!("drbd{}: deleted\n", minor);
        Ok(())
    }

    /// `attach`: opens the backing disk exclusively and exposes it.
    pub(crate) fn attach(&mut self, minor: u32, config: DiskConfig) -> AdmResult {
        let device = self.device_mut(minor)?;
        if device.disk_config.is_some() {
            return Err(AdmError::new(RetCode::DiskConfigured, "minor is already attached"));
        }
        let path = kernel::str::CStr::from_bytes_with_nul(config.backing_dev.as_bytes_with_nul())
            .map_err(|_| AdmError::new(RetCode::OpenDisk, "invalid backing device path"))?;
        let lower = LowerDev::open(path, device.disk.holder()).map_err(|e| {
            pr_err!("drbd{}: cannot open backing device {}: error {}\n",
                minor, config.backing_dev.as_str(), e.to_errno());
            if e == EBUSY {
                AdmError::new(RetCode::BdClaimDisk, "backing device is in use (claimed by another user)")
            } else {
                AdmError::new(RetCode::OpenDisk, "cannot open backing device")
            }
        })?;
        if config.meta_dev != config.backing_dev {
            return Err(AdmError::new(RetCode::MdIdxInvalid, "rdrbd supports internal meta data only, so far"));
        }
        let md = drbd_md::MetaData::load(lower.bdev_ref(), lower.nr_sectors(), config.meta_dev_idx, config.al_extents)?;
        let usable = md.capacity();
        let sectors = match config.disk_size {
            0 => usable,
            wanted if wanted <= usable => wanted,
            _ => return Err(AdmError::new(RetCode::DiskTooSmall, "backing device smaller than the requested size")),
        };
        if device.disk.stack_limits(&lower).is_err() {
            return Err(AdmError::new(RetCode::OpenDisk, "backing device limits do not fit"));
        }
        let disk_state = md.disk_state();
        if device.io.attach_lower(lower, md).is_err() {
            return Err(AdmError::new(RetCode::DiskConfigured, "minor is already attached"));
        }
        device.disk.set_capacity(sectors);
        device.capacity = sectors;
        device.disk_state = disk_state;
        pr_info!("drbd{}: attached to {}, {} sectors\n", minor, config.backing_dev.as_str(), sectors);
        device.disk_config = Some(config);
        Ok(())
    }

    /// `detach`: waits for I/O in flight, then releases the backing disk;
    /// a diskless minor is left as it is.
    pub(crate) fn detach(&mut self, minor: u32) -> AdmResult {
        let device = self.device_mut(minor)?;
        if device.disk_config.take().is_none() {
            return Ok(());
        }
        device.disk.set_capacity(0);
        device.capacity = 0;
        device.disk_state = api::DiskState::Diskless;
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
        while let Some(minor) =
            self.devices.iter().find(|(_, d)| d.resource == *name).map(|(minor, _)| *minor)
        {
            self.detach(minor)?;
            self.del_minor(minor)?;
        }
        self.del_resource(name)
    }

    /// The device of `minor`, or the DRBD error for an unknown minor.
    pub(crate) fn device(&self, minor: u32) -> AdmResult<&Device> {
        self.devices.get(&minor).ok_or(AdmError::new(RetCode::MinorInvalid, "unknown minor"))
    }

    fn device_mut(&mut self, minor: u32) -> AdmResult<&mut Device> {
        self.devices.get_mut(&minor).ok_or(AdmError::new(RetCode::MinorInvalid, "unknown minor"))
    }
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
