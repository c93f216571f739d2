//! State broadcasts to the `events` multicast group, both styles of 8.4:
//! - DRBD_EVENT: every change of a device's state word (role, disk,
//!   connection, suspension) with the state before and after, as C DRBD's
//!   `drbd_bcast_event` sends it from `after_state_ch` (`drbdsetup events`);
//! - events2 (`drbdsetup events2`): RESOURCE/DEVICE/CONNECTION/PEER_DEVICE
//!   _STATE notifications with a notification header (create, change,
//!   destroy) and the objects' `*_info` and `*_statistics`
//!   (`notify_*_state`), and the GET_INITIAL_STATE dump (`exists`).
//!   Which objects a state change concerns is decided by the shared
//!   `events2` module.
//!
//! State changes happen both under the registry lock (configuration
//! requests) and in connection threads (which never take that lock), so
//! the device itself notices them: `DeviceIo` calls [`StateEvents::publish`]
//! after each change, and this compares with the last state broadcast.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::new_mutex;
use kernel::sync::Mutex;

use crate::drbd_include::events2::{self, Object};
use crate::drbd_include::genl::{
    self as api, cmd, notification_header as nh, state_info, CfgContext, ConnectionInfo, ConnectionStatistics,
    DeviceInfo, DeviceStatistics, HelperInfo, PeerDeviceInfo, PeerDeviceStatistics, ReplyBuilder, ResourceInfo,
    ResourceStatistics, StateInfo,
};
use crate::drbd_include::nla::NlaError;
use crate::kernel_glue::genl::multicast_event;
use crate::kernel_glue::net::SockAddr;
use crate::{Device, Registry, ResourceName};

/// Sequence numbers of broadcasts, shared by all devices as in C DRBD
/// (`drbd_genl_seq`); listeners see gaps when they miss messages.
static EVENT_SEQ: AtomicU32 = AtomicU32::new(2);

/// Room for one broadcast: header, CFG_CONTEXT with a 127-byte resource
/// name and STATE_INFO come to about 330 bytes; an events2 device message
/// (CFG_CONTEXT with both addresses, header, info, statistics with the
/// history UUIDs) to about 450.
const EVENT_BUF: usize = 640;

/// Which device broadcasts are about.
#[derive(Clone, Copy)]
pub(crate) struct DeviceIdent {
    pub(crate) minor: u32,
    pub(crate) volume: u32,
    pub(crate) resource: ResourceName,
}

/// The broadcasting side of one device.
#[pin_data]
pub(crate) struct StateEvents {
    ident: DeviceIdent,
    /// What listeners were told last; held while broadcasting so that
    /// they see changes in the order they happened.
    #[pin]
    last: Mutex<Published>,
}

/// What a device's listeners were told last.
struct Published {
    /// The state word.
    state: u32,
    /// The connection this device is the peer device of (created and not
    /// yet destroyed): its addresses name it in CFG_CONTEXT.
    connection: Option<ConnAddrs>,
}

/// The addresses of a configured connection.
#[derive(Clone, Copy)]
pub(crate) struct ConnAddrs {
    pub(crate) my_addr: SockAddr,
    pub(crate) peer_addr: SockAddr,
}

/// Counters that go with a state broadcast.
#[derive(Clone, Copy, Default)]
pub(crate) struct EventCounters {
    /// STATE_INFO's capacity of the DRBD_EVENT broadcast.
    pub(crate) capacity: u64,
    pub(crate) read_sectors: u64,
    pub(crate) written_sectors: u64,
    /// events2 statistics: exposed size, data sent to and received from
    /// the peer, in sectors.
    pub(crate) size_sectors: u64,
    pub(crate) sent_sectors: u64,
    pub(crate) received_sectors: u64,
}

impl StateEvents {
    /// A device that starts in `initial` (a new minor: Diskless Secondary).
    pub(crate) fn new(ident: DeviceIdent, initial: u32) -> impl PinInit<Self> {
        pin_init!(Self {
            ident,
            last <- new_mutex!(Published { state: initial, connection: None }, "rdrbd::StateEvents::last"),
        })
    }

    /// Broadcasts a change if `now()` differs from the last state sent.
    /// `now` runs under this device's event lock, so it must not take it.
    pub(crate) fn publish(&self, now: impl FnOnce() -> u32, counters: EventCounters) {
        let mut last = self.last.lock();
        let new = now();
        if new == last.state {
            return;
        }
        let prev = core::mem::replace(&mut last.state, new);
        if let Err(e) = self.broadcast(prev, new, counters) {
            pr_warn!("drbd{}: error {} while broadcasting a state change\n", self.ident.minor, e.to_errno());
        }
        let (Some(old), Some(now)) = (api::State::from_u32(prev), api::State::from_u32(new)) else {
            return;
        };
        let changes = events2::state_change(&old, &now, last.connection.is_some());
        let stats = counters.statistics(&now);
        for n in changes.as_slice() {
            self.notify(n.object, n.nh_type, &now, last.connection, &stats);
        }
        if changes.ends_connection() {
            last.connection = None;
        }
    }

    /// The state listeners were told last.
    fn published_state(last: &Published) -> api::State {
        api::State::from_u32(last.state).unwrap_or(UNCONFIGURED)
    }

    /// events2 DEVICE_STATE create for a new minor (`drbd_adm_new_minor`).
    pub(crate) fn device_created(&self, stats: &Statistics) {
        let last = self.last.lock();
        let state = Self::published_state(&last);
        self.notify(Object::Device, nh::NOTIFY_CREATE, &state, last.connection, stats);
    }

    /// events2 destroys of a deleted minor (`adm_del_minor`): its peer
    /// device, then the device.
    pub(crate) fn device_destroyed(&self, stats: &Statistics) {
        let mut last = self.last.lock();
        let state = Self::published_state(&last);
        if let Some(addrs) = last.connection.take() {
            self.notify(Object::PeerDevice, nh::NOTIFY_DESTROY | nh::NOTIFY_CONTINUES, &state, Some(addrs), stats);
        }
        self.notify(Object::Device, nh::NOTIFY_DESTROY, &state, None, stats);
    }

    /// events2 creates of a new connection whose peer device this device
    /// is (`drbd_adm_connect`): the connection as it is before it starts
    /// (StandAlone), then the peer device.
    pub(crate) fn connection_created(&self, addrs: ConnAddrs, stats: &Statistics) {
        let mut last = self.last.lock();
        let state = Self::published_state(&last);
        last.connection = Some(addrs);
        self.notify(Object::Connection, nh::NOTIFY_CREATE | nh::NOTIFY_CONTINUES, &state, Some(addrs), stats);
        self.notify(Object::PeerDevice, nh::NOTIFY_CREATE, &state, Some(addrs), stats);
    }

    /// events2 destroys of this device's connection if a state change has
    /// not sent them yet (a connection torn down without passing through
    /// StandAlone). Whether this device had the connection.
    pub(crate) fn connection_gone(&self, stats: &Statistics) -> bool {
        let mut last = self.last.lock();
        let state = Self::published_state(&last);
        let Some(addrs) = last.connection.take() else {
            return false;
        };
        self.notify(Object::PeerDevice, nh::NOTIFY_DESTROY | nh::NOTIFY_CONTINUES, &state, Some(addrs), stats);
        self.notify(Object::Connection, nh::NOTIFY_DESTROY, &state, Some(addrs), stats);
        true
    }

    /// Whether this device is the peer device of a configured connection.
    pub(crate) fn has_connection(&self) -> bool {
        self.last.lock().connection.is_some()
    }

    /// Sends one events2 notification about this device's `object`.
    fn notify(&self, object: Object, nh_type: u32, state: &api::State, addrs: Option<ConnAddrs>, stats: &Statistics) {
        let subject = Subject {
            resource: &self.ident.resource,
            device: Some((self.ident.minor, self.ident.volume)),
            addrs,
        };
        let body = Body::of(object, state, stats);
        send(&subject, &body, nh_type);
    }

    /// A usermode helper is about to run (`status` None) or returned:
    /// DRBD_EVENT with SIB_HELPER_PRE/POST (`drbd_bcast_event`) and the
    /// events2 HELPER call/response (`notify_helper`).
    pub(crate) fn helper(&self, name: &str, status: Option<i32>, addrs: Option<ConnAddrs>) {
        let state = self.last.lock().state;
        let seq = EVENT_SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let mut buf = [0u8; EVENT_BUF];
        let legacy = (|| -> Result<usize, NlaError> {
            let mut msg = ReplyBuilder::new(&mut buf, self.ident.minor)?;
            msg.put_cfg_context(&CfgContext {
                volume: Some(self.ident.volume),
                resource_name: Some(self.ident.resource.as_bytes()),
                my_addr: None,
                peer_addr: None,
            })?;
            msg.put_state_info(&StateInfo {
                sib_reason: if status.is_some() { state_info::SIB_HELPER_POST } else { state_info::SIB_HELPER_PRE },
                current_state: state,
                helper: Some(name.as_bytes()),
                helper_exit_code: status.map(|s| s as u32),
                ..StateInfo::default()
            })?;
            Ok(msg.bytes().len())
        })();
        let sent = match legacy {
            Ok(len) => multicast_event(cmd::EVENT, seq, buf.get(..len).unwrap_or(&[])),
            Err(_) => Err(EINVAL),
        };
        if let Err(e) = sent {
            pr_err!("{}: error {} while broadcasting event. Event seq:{}\n", self.ident.resource.as_str(), e.to_errno(), seq);
        }
        let seq = EVENT_SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let mut buf = [0u8; EVENT_BUF];
        let notification = (|| -> Result<usize, NlaError> {
            let mut msg = ReplyBuilder::new(&mut buf, self.ident.minor)?;
            msg.put_cfg_context(&CfgContext {
                volume: Some(self.ident.volume),
                resource_name: Some(self.ident.resource.as_bytes()),
                my_addr: addrs.as_ref().map(|a| a.my_addr.as_bytes()),
                peer_addr: addrs.as_ref().map(|a| a.peer_addr.as_bytes()),
            })?;
            msg.put_notification_header(if status.is_some() { nh::NOTIFY_RESPONSE } else { nh::NOTIFY_CALL })?;
            msg.put_helper_info(&HelperInfo { name: name.as_bytes(), status: status.map_or(0, |s| s as u32) })?;
            Ok(msg.bytes().len())
        })();
        let sent = match notification {
            Ok(len) => multicast_event(cmd::HELPER, seq, buf.get(..len).unwrap_or(&[])),
            Err(_) => Err(EINVAL),
        };
        if let Err(e) = sent {
            pr_err!("{}: error {} while broadcasting event. Event seq:{}\n", self.ident.resource.as_str(), e.to_errno(), seq);
        }
    }

    /// The minor this device broadcasts as.
    pub(crate) fn minor(&self) -> u32 {
        self.ident.minor
    }

    fn broadcast(&self, prev: u32, new: u32, counters: EventCounters) -> Result {
        let mut buf = [0u8; EVENT_BUF];
        let too_big = |_| Error::from_errno(-(kernel::bindings::EMSGSIZE as i32));
        let mut msg = ReplyBuilder::new(&mut buf, self.ident.minor).map_err(too_big)?;
        msg.put_cfg_context(&CfgContext {
            volume: Some(self.ident.volume),
            resource_name: Some(self.ident.resource.as_bytes()),
            my_addr: None,
            peer_addr: None,
        })
        .map_err(too_big)?;
        msg.put_state_info(&StateInfo {
            sib_reason: state_info::SIB_STATE_CHANGE,
            current_state: new,
            prev_state: Some(prev),
            new_state: Some(new),
            capacity: counters.capacity,
            read_cnt: counters.read_sectors,
            writ_cnt: counters.written_sectors,
            ..StateInfo::default()
        })
        .map_err(too_big)?;
        let seq = EVENT_SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        multicast_event(cmd::EVENT, seq, msg.bytes())
    }
}

/// The state of a new minor: Diskless, Secondary, StandAlone.
const UNCONFIGURED: api::State = api::State {
    role: api::Role::Secondary,
    peer: api::Role::Unknown,
    conn: api::ConnState::StandAlone,
    disk: api::DiskState::Diskless,
    pdsk: api::DiskState::DUnknown,
    susp: false,
    aftr_isp: false,
    peer_isp: false,
    user_isp: false,
    susp_nod: false,
    susp_fen: false,
};

/// The state word of a new minor: Diskless, Secondary, StandAlone.
pub(crate) fn unconfigured_state() -> u32 {
    UNCONFIGURED.to_u32()
}

/// The `*_statistics` nests of a device's events2 messages.
#[derive(Clone, Copy, Default)]
pub(crate) struct Statistics {
    pub(crate) device: DeviceStatistics,
    pub(crate) peer_device: PeerDeviceStatistics,
}

impl EventCounters {
    /// The statistics a state change carries. State changes come from
    /// paths that may hold the metadata lock, so the UUIDs, flags and
    /// bitmap counts (which need it) are left to the configuration paths
    /// and the GET_INITIAL_STATE dump ([`statistics_of`]).
    fn statistics(&self, state: &api::State) -> Statistics {
        Statistics {
            device: DeviceStatistics {
                size: self.size_sectors,
                read: self.read_sectors,
                write: self.written_sectors,
                upper_blocked: state.susp,
                ..DeviceStatistics::default()
            },
            peer_device: PeerDeviceStatistics {
                sent: self.sent_sectors,
                received: self.received_sectors,
                ..PeerDeviceStatistics::default()
            },
        }
    }
}

/// The full statistics of `device` (`device_to_statistics`,
/// `peer_device_to_statistics`); takes the metadata lock.
pub(crate) fn statistics_of(device: &Device) -> Statistics {
    let io = &device.io;
    let disk = io.with_md(|md, _| (md.uuids(), md.sb.flags, md.bitmap.count()));
    Statistics {
        device: DeviceStatistics {
            size: device.capacity(),
            read: io.read_sectors(),
            write: io.written_sectors(),
            upper_blocked: io.is_suspended(),
            exposed_data_uuid: disk.map_or(0, |(uuids, _, _)| uuids.current),
            current_uuid: disk.map_or(0, |(uuids, _, _)| uuids.current),
            disk_flags: disk.map_or(0, |(_, flags, _)| flags),
            history_uuids: disk.map(|(uuids, _, _)| uuids.history),
            ..DeviceStatistics::default()
        },
        peer_device: PeerDeviceStatistics {
            sent: io.net_sent_kib() << 1,
            received: io.net_received_kib() << 1,
            // Bitmap bits are 4 KiB: 8 sectors each.
            out_of_sync: disk.map_or(0, |(_, _, oos)| oos << 3),
            bitmap_uuid: disk.map_or(0, |(uuids, _, _)| uuids.bitmap),
            flags: disk.map_or(0, |(_, flags, _)| peer_flags(flags)),
            ..PeerDeviceStatistics::default()
        },
    }
}

/// `peer_device_to_statistics`: the peer flags derived from the metadata
/// flags (connected, peer outdated, full sync).
pub(crate) fn peer_flags(md_flags: u32) -> u32 {
    use crate::drbd_include::md;
    let mut flags = 0;
    if md_flags & md::MDF_CONNECTED_IND != 0 {
        flags |= 1;
    }
    if md_flags & md::MDF_CONSISTENT != 0 && md_flags & md::MDF_WAS_UP_TO_DATE == 0 {
        flags |= 2;
    }
    if md_flags & md::MDF_FULL_SYNC != 0 {
        flags |= 8;
    }
    flags
}

/// Which object an events2 message names in its CFG_CONTEXT.
struct Subject<'a> {
    resource: &'a ResourceName,
    /// Minor and volume (device and peer device messages).
    device: Option<(u32, u32)>,
    /// The connection's addresses (connection and peer device messages).
    addrs: Option<ConnAddrs>,
}

/// The object-specific part of an events2 message.
enum Body {
    Resource(ResourceInfo),
    Connection(ConnectionInfo),
    Device(DeviceInfo, DeviceStatistics),
    PeerDevice(PeerDeviceInfo, PeerDeviceStatistics),
}

impl Body {
    /// `object`'s info and statistics in state `state`.
    fn of(object: Object, state: &api::State, stats: &Statistics) -> Self {
        match object {
            Object::Resource => Body::Resource(events2::resource_info(state)),
            Object::Connection => Body::Connection(events2::connection_info(state)),
            Object::Device => Body::Device(events2::device_info(state), stats.device),
            Object::PeerDevice => Body::PeerDevice(events2::peer_device_info(state), stats.peer_device),
        }
    }
}

/// Writes one events2 message (`notify_*_state`) into `buf`: the user
/// header, CFG_CONTEXT, NOTIFICATION_HEADER, the info (not for a destroy)
/// and the statistics. Returns its command and length.
fn write_notification(buf: &mut [u8], subject: &Subject<'_>, body: &Body, nh_type: u32) -> Result<(u8, usize), NlaError> {
    let (command, minor, volume, addrs) = match body {
        Body::Resource(_) => (cmd::RESOURCE_STATE, api::MINOR_ALL, None, None),
        Body::Connection(_) => (cmd::CONNECTION_STATE, api::MINOR_ALL, None, subject.addrs),
        Body::Device(..) => {
            let (minor, volume) = subject.device.map_or((api::MINOR_ALL, None), |(m, v)| (m, Some(v)));
            (cmd::DEVICE_STATE, minor, volume, None)
        }
        Body::PeerDevice(..) => (cmd::PEER_DEVICE_STATE, api::MINOR_ALL, subject.device.map(|(_, v)| v), subject.addrs),
    };
    let mut msg = ReplyBuilder::new(buf, minor)?;
    msg.put_cfg_context(&CfgContext {
        volume,
        resource_name: Some(subject.resource.as_bytes()),
        my_addr: addrs.as_ref().map(|a| a.my_addr.as_bytes()),
        peer_addr: addrs.as_ref().map(|a| a.peer_addr.as_bytes()),
    })?;
    msg.put_notification_header(nh_type)?;
    let with_info = nh_type & !nh::NOTIFY_CONTINUES != nh::NOTIFY_DESTROY;
    match body {
        Body::Resource(info) => {
            if with_info {
                msg.put_resource_info(info)?;
            }
            msg.put_resource_statistics(&ResourceStatistics { write_ordering: api::resource_statistics::WO_BDEV_FLUSH })?;
        }
        Body::Connection(info) => {
            if with_info {
                msg.put_connection_info(info)?;
            }
            msg.put_connection_statistics(&ConnectionStatistics { congested: false })?;
        }
        Body::Device(info, stats) => {
            if with_info {
                msg.put_device_info(info)?;
            }
            msg.put_device_statistics(stats)?;
        }
        Body::PeerDevice(info, stats) => {
            if with_info {
                msg.put_peer_device_info(info)?;
            }
            msg.put_peer_device_statistics(stats)?;
        }
    }
    Ok((command, msg.bytes().len()))
}

/// Multicasts one events2 message; failures are logged, as in C DRBD.
/// Not inlined: its buffer stays off the callers' (state changers') frames.
#[inline(never)]
fn send(subject: &Subject<'_>, body: &Body, nh_type: u32) {
    let mut buf = [0u8; EVENT_BUF];
    let seq = EVENT_SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let result = match write_notification(&mut buf, subject, body, nh_type) {
        Ok((command, len)) => multicast_event(command, seq, buf.get(..len).unwrap_or(&[])),
        Err(_) => Err(Error::from_errno(-(kernel::bindings::EMSGSIZE as i32))),
    };
    if let Err(e) = result {
        pr_err!("{}: error {} while broadcasting event. Event seq:{}\n", subject.resource.as_str(), e.to_errno(), seq);
    }
}

/// The resource-wide info: Primary if any volume is, suspended if any is.
fn resource_info_of(registry: &Registry, name: &ResourceName) -> ResourceInfo {
    let devices = || registry.devices_of(name);
    let primary = devices().any(|d| d.io.is_primary());
    ResourceInfo {
        role: if primary { api::Role::Primary } else { api::Role::Secondary } as u32,
        susp: devices().any(|d| d.io.is_suspended()),
        susp_nod: false,
        susp_fen: devices().any(|d| d.io.is_frozen_for_fencing()),
    }
}

/// events2 RESOURCE_STATE create (`drbd_adm_new_resource`) or destroy
/// (`drbd_adm_del_resource`).
pub(crate) fn resource_lifecycle(name: &ResourceName, nh_type: u32) {
    let subject = Subject { resource: name, device: None, addrs: None };
    let info = events2::resource_info(&UNCONFIGURED);
    send(&subject, &Body::Resource(info), nh_type);
}

/// events2 CONNECTION_STATE of a resource that has no volume to speak
/// for its connection: created and destroyed with it, StandAlone.
pub(crate) fn connection_lifecycle(name: &ResourceName, addrs: ConnAddrs, nh_type: u32) {
    let subject = Subject { resource: name, device: None, addrs: Some(addrs) };
    send(&subject, &Body::Connection(events2::connection_info(&UNCONFIGURED)), nh_type);
}

/// The addresses of a resource's live connection (one that has not
/// given up and gone StandAlone).
pub(crate) fn live_connection(resource: &crate::Resource) -> Option<ConnAddrs> {
    let conn = resource.conn.as_ref().filter(|c| !c.gave_up())?;
    let config = conn.config();
    Some(ConnAddrs { my_addr: config.my_addr, peer_addr: config.peer_addr })
}

/// What position `index` of a GET_INITIAL_STATE dump holds.
enum InitialState<'a> {
    Object(Subject<'a>, Body),
    /// INITIAL_STATE_DONE, after every object.
    Done,
    End,
}

/// The objects of every resource in the order 8.4's `get_initial_state`
/// sends them: the resource, its connection, its devices, its peer
/// devices. As in 8.4, where every resource has its one connection object
/// from creation on, the connection and a peer device per device are
/// listed even while unconfigured (StandAlone, without addresses).
fn initial_state_at(registry: &Registry, mut index: usize) -> InitialState<'_> {
    for (name, resource) in registry.resources.iter() {
        let devices = move || registry.devices_of(name);
        let conn = live_connection(resource);
        let addrs_of = |d: &Device| conn.filter(|_| d.io.events().has_connection());
        if index == 0 {
            let subject = Subject { resource: name, device: None, addrs: None };
            return InitialState::Object(subject, Body::Resource(resource_info_of(registry, name)));
        }
        index -= 1;
        if index == 0 {
            let state = devices().find(|d| addrs_of(d).is_some()).map_or(UNCONFIGURED, |d| d.state());
            let subject = Subject { resource: name, device: None, addrs: conn };
            return InitialState::Object(subject, Body::Connection(events2::connection_info(&state)));
        }
        index -= 1;
        let count = devices().count();
        if let Some(device) = devices().nth(index) {
            let subject = Subject { resource: name, device: Some((device.minor, device.volume)), addrs: None };
            let state = device.state();
            return InitialState::Object(subject, Body::of(Object::Device, &state, &statistics_of(device)));
        }
        index -= count;
        if let Some(device) = devices().nth(index) {
            let subject = Subject { resource: name, device: Some((device.minor, device.volume)), addrs: addrs_of(device) };
            let state = device.state();
            return InitialState::Object(subject, Body::of(Object::PeerDevice, &state, &statistics_of(device)));
        }
        index -= count;
    }
    if index == 0 { InitialState::Done } else { InitialState::End }
}

/// The next message of a GET_INITIAL_STATE dump (`drbd_adm_get_initial_state`):
/// every object as NOTIFY_EXISTS (with NOTIFY_CONTINUES but the last),
/// then INITIAL_STATE_DONE. Returns the message's command and length, or
/// a length of 0 at the end. `cursor` counts the messages sent.
pub(crate) fn dump_initial_state(registry: &Registry, cursor: &mut i64, reply: &mut [u8]) -> Result<(u8, usize), NlaError> {
    let Ok(index) = usize::try_from(*cursor) else {
        return Ok((cmd::INITIAL_STATE_DONE, 0));
    };
    let (command, len) = match initial_state_at(registry, index) {
        InitialState::Object(subject, body) => {
            // As in 8.4, the messages of one resource form one change.
            let more = matches!(initial_state_at(registry, index + 1),
                InitialState::Object(next, _) if next.resource == subject.resource);
            let nh_type = nh::NOTIFY_EXISTS | if more { nh::NOTIFY_CONTINUES } else { 0 };
            write_notification(reply, &subject, &body, nh_type)?
        }
        InitialState::Done => {
            let mut msg = ReplyBuilder::new(reply, api::MINOR_ALL)?;
            msg.put_notification_header(nh::NOTIFY_EXISTS)?;
            (cmd::INITIAL_STATE_DONE, msg.bytes().len())
        }
        InitialState::End => return Ok((cmd::INITIAL_STATE_DONE, 0)),
    };
    *cursor = *cursor + 1;
    Ok((command, len))
}
