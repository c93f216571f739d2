//! events2 decisions (DRBD 8.4 `broadcast_state_change`, `*_to_info`):
//! which RESOURCE/CONNECTION/DEVICE/PEER_DEVICE notifications one change of
//! a device's state word produces, and what their `*_info` nests carry.
//!
//! 8.4 keeps one state word per device; events2 shows it split into four
//! objects. A change notifies every object whose part of the word changed,
//! resource first, then connection, device, peer device; all but the last
//! message carry `NOTIFY_CONTINUES` so listeners see one atomic change.

use super::genl::{
    notification_header::{NOTIFY_CHANGE, NOTIFY_CONTINUES, NOTIFY_DESTROY},
    ConnState, ConnectionInfo, DeviceInfo, PeerDeviceInfo, ResourceInfo, State,
};

/// The kind of object a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// DRBD_RESOURCE_STATE.
    Resource,
    /// DRBD_CONNECTION_STATE.
    Connection,
    /// DRBD_DEVICE_STATE.
    Device,
    /// DRBD_PEER_DEVICE_STATE.
    PeerDevice,
}

/// One notification to send: the object and its `NOTIFY_*` type (with
/// `NOTIFY_CONTINUES` when more of the same change follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// What the notification is about.
    pub object: Object,
    /// `notification_header::NOTIFY_*`, maybe | `NOTIFY_CONTINUES`.
    pub nh_type: u32,
}

/// The most notifications one state change produces: four changes and the
/// two destroys of a connection that ended.
pub const MAX_PER_CHANGE: usize = 6;

/// The notifications of one state change, in sending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notifications {
    items: [Notification; MAX_PER_CHANGE],
    len: usize,
}

impl Notifications {
    const EMPTY: Notification = Notification { object: Object::Resource, nh_type: NOTIFY_CHANGE };

    fn new() -> Self {
        Self { items: [Self::EMPTY; MAX_PER_CHANGE], len: 0 }
    }

    fn push(&mut self, object: Object, nh_type: u32) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Notification { object, nh_type };
            self.len += 1;
        }
    }

    /// Marks every notification but the last as continued.
    fn seal(mut self) -> Self {
        let len = self.len;
        for (i, n) in self.items.iter_mut().enumerate().take(len) {
            if i + 1 < len {
                n.nh_type |= NOTIFY_CONTINUES;
            }
        }
        self
    }

    /// The notifications in sending order.
    pub fn as_slice(&self) -> &[Notification] {
        self.items.get(..self.len).unwrap_or(&[])
    }

    /// Whether the change ends the connection (its objects are destroyed).
    pub fn ends_connection(&self) -> bool {
        self.as_slice()
            .iter()
            .any(|n| n.object == Object::Connection && n.nh_type & !NOTIFY_CONTINUES == NOTIFY_DESTROY)
    }
}

/// The connection-wide state (8.4's `connection->cstate`): set only by
/// connection-wide transitions, which end at WFReportParams; the
/// replication states after the handshake (Connected, SyncSource, ...) are
/// the peer device's.
pub fn connection_state(conn: ConnState) -> ConnState {
    if conn > ConnState::WfReportParams {
        ConnState::WfReportParams
    } else {
        conn
    }
}

/// `resource_info` of a state word.
pub fn resource_info(s: &State) -> ResourceInfo {
    ResourceInfo { role: s.role as u32, susp: s.susp, susp_nod: s.susp_nod, susp_fen: s.susp_fen }
}

/// `connection_info` of a state word.
pub fn connection_info(s: &State) -> ConnectionInfo {
    ConnectionInfo { connection_state: connection_state(s.conn) as u32, role: s.peer as u32 }
}

/// `device_info` of a state word.
pub fn device_info(s: &State) -> DeviceInfo {
    DeviceInfo { disk_state: s.disk as u32 }
}

/// `peer_device_info` of a state word. 8.4 shows the replication state
/// from WFReportParams on (DRBD 9's "Off"): the states before belong to
/// the connection.
pub fn peer_device_info(s: &State) -> PeerDeviceInfo {
    PeerDeviceInfo {
        repl_state: (s.conn as u32).max(ConnState::WfReportParams as u32),
        disk_state: s.pdsk as u32,
        resync_susp_user: u32::from(s.user_isp),
        resync_susp_peer: u32::from(s.peer_isp),
        resync_susp_dependency: u32::from(s.aftr_isp),
    }
}

/// The notifications for a change of a device's state from `old` to
/// `new` (`broadcast_state_change`). `connection`: the device has a
/// configured connection, whose objects exist; when its state falls back
/// to StandAlone they are destroyed after the change is shown
/// (`after_conn_state_ch`).
pub fn state_change(old: &State, new: &State, connection: bool) -> Notifications {
    let mut out = Notifications::new();
    if resource_info(old) != resource_info(new) {
        out.push(Object::Resource, NOTIFY_CHANGE);
    }
    if connection && connection_info(old) != connection_info(new) {
        out.push(Object::Connection, NOTIFY_CHANGE);
    }
    if device_info(old) != device_info(new) {
        out.push(Object::Device, NOTIFY_CHANGE);
    }
    if connection && peer_device_info(old) != peer_device_info(new) {
        out.push(Object::PeerDevice, NOTIFY_CHANGE);
    }
    if connection && old.conn != ConnState::StandAlone && new.conn == ConnState::StandAlone {
        out.push(Object::PeerDevice, NOTIFY_DESTROY);
        out.push(Object::Connection, NOTIFY_DESTROY);
    }
    out.seal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genl::{DiskState, Role};

    fn state(conn: ConnState, disk: DiskState) -> State {
        State {
            role: Role::Secondary,
            peer: Role::Unknown,
            conn,
            disk,
            pdsk: DiskState::DUnknown,
            susp: false,
            aftr_isp: false,
            peer_isp: false,
            user_isp: false,
            susp_nod: false,
            susp_fen: false,
        }
    }

    #[test]
    fn no_change_no_notification() {
        let s = state(ConnState::StandAlone, DiskState::Diskless);
        assert!(state_change(&s, &s, true).as_slice().is_empty());
        assert!(state_change(&s, &s, false).as_slice().is_empty());
    }

    #[test]
    fn disk_change_is_a_device_change() {
        let old = state(ConnState::StandAlone, DiskState::Diskless);
        let new = state(ConnState::StandAlone, DiskState::Attaching);
        let n = state_change(&old, &new, false);
        assert_eq!(n.as_slice(), &[Notification { object: Object::Device, nh_type: NOTIFY_CHANGE }]);
    }

    #[test]
    fn role_and_disk_change_together_continue() {
        let old = state(ConnState::StandAlone, DiskState::Inconsistent);
        let new = State { role: Role::Primary, ..state(ConnState::StandAlone, DiskState::UpToDate) };
        let n = state_change(&old, &new, false);
        assert_eq!(
            n.as_slice(),
            &[
                Notification { object: Object::Resource, nh_type: NOTIFY_CHANGE | NOTIFY_CONTINUES },
                Notification { object: Object::Device, nh_type: NOTIFY_CHANGE },
            ]
        );
    }

    #[test]
    fn connection_objects_only_with_a_connection() {
        let old = state(ConnState::StandAlone, DiskState::Diskless);
        let new = state(ConnState::Unconnected, DiskState::Diskless);
        assert!(state_change(&old, &new, false).as_slice().is_empty());
        let n = state_change(&old, &new, true);
        assert_eq!(n.as_slice(), &[Notification { object: Object::Connection, nh_type: NOTIFY_CHANGE }]);
        assert!(!n.ends_connection());
        // The handshake's end is the peer device's (Established).
        let old = state(ConnState::WfReportParams, DiskState::Diskless);
        let new = state(ConnState::Connected, DiskState::Diskless);
        let n = state_change(&old, &new, true);
        assert_eq!(n.as_slice(), &[Notification { object: Object::PeerDevice, nh_type: NOTIFY_CHANGE }]);
    }

    #[test]
    fn replication_states_are_the_peer_devices() {
        let old = state(ConnState::Connected, DiskState::UpToDate);
        let new = state(ConnState::SyncSource, DiskState::UpToDate);
        let n = state_change(&old, &new, true);
        assert_eq!(n.as_slice(), &[Notification { object: Object::PeerDevice, nh_type: NOTIFY_CHANGE }]);
        assert_eq!(connection_info(&new).connection_state, ConnState::WfReportParams as u32);
    }

    #[test]
    fn standalone_destroys_the_connection_after_the_change() {
        let old = state(ConnState::Disconnecting, DiskState::UpToDate);
        let new = state(ConnState::StandAlone, DiskState::UpToDate);
        let n = state_change(&old, &new, true);
        let c = NOTIFY_CONTINUES;
        assert_eq!(
            n.as_slice(),
            &[
                Notification { object: Object::Connection, nh_type: NOTIFY_CHANGE | c },
                Notification { object: Object::PeerDevice, nh_type: NOTIFY_DESTROY | c },
                Notification { object: Object::Connection, nh_type: NOTIFY_DESTROY },
            ]
        );
        assert!(n.ends_connection());
    }

    #[test]
    fn peer_device_shows_at_least_wfreportparams() {
        let s = state(ConnState::StandAlone, DiskState::UpToDate);
        assert_eq!(peer_device_info(&s).repl_state, ConnState::WfReportParams as u32);
        let s = state(ConnState::SyncTarget, DiskState::Inconsistent);
        assert_eq!(peer_device_info(&s).repl_state, ConnState::SyncTarget as u32);
    }
}
