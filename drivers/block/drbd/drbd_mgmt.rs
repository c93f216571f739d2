//! The management commands that start, pause or check a resync (8.4's
//! `drbd_adm_invalidate`, `drbd_adm_invalidate_peer`,
//! `drbd_adm_pause_sync`, `drbd_adm_resume_sync`, `drbd_adm_start_ov`,
//! `drbd_adm_resize`), and the cluster-wide state change request
//! (P_STATE_CHG_REQ / P_STATE_CHG_REPLY) the connected ones go through.
//!
//! The rules (which state allows what, with which error) are
//! `drbd_include::mgmt`; this file gathers the state and carries out the
//! verdict. Configuration requests hold the registry lock and may wait
//! for the peer's reply: the connection threads never take that lock.

use kernel::prelude::*;

use crate::drbd_include::genl::{self as api, ConnState, DiskState, RetCode, StateChangeResult};
use crate::drbd_include::mgmt::{self, Plan, ResizeRequest, ResizeVerdict, Snapshot};
use crate::drbd_include::protocol::{self as proto, Packet};
use crate::drbd_options::StateResult;
use crate::drbd_req::DeviceIo;
use crate::kernel_glue::now_ms;
use crate::drbd_sender::Replica;
use crate::drbd_peer_device::PeerDevice;
use crate::{AdmError, AdmResult, Device, Registry};

/// How long a cluster-wide state change waits for the peer's answer.
const REPLY_TIMEOUT_MS: u64 = 30_000;

/// `_req_st_cond` after `drbd_send_state_req`: asks the peer for
/// connection state `conn` (our view) and waits for its answer.
fn request_cluster_wide(name: &str, io: &DeviceIo, replica: &Replica, conn: ConnState) -> AdmResult {
    let (mask, val) = mgmt::conn_request(conn);
    request_state_change(name, io, replica, mask, val)
}

/// Sends P_STATE_CHG_REQ `mask`/`val` and waits for the peer's reply
/// (`_drbd_request_state` of a cluster-wide change).
pub(crate) fn request_state_change(name: &str, io: &DeviceIo, replica: &Replica, mask: u32, val: u32) -> AdmResult {
    let pd = io.peer_device().ok_or(refused(StateChangeResult::NeedConnection))?;
    pd.expect_state_reply();
    let req = proto::ReqState { mask, val };
    let refused = AdmError::state(StateChangeResult::CwFailedByPeer, "state change was refused by the peer");
    replica.send_small(Packet::StateChgReq, |out| req.encode(out)).map_err(|_| refused)?;
    let deadline = now_ms().saturating_add(REPLY_TIMEOUT_MS);
    match pd.wait_state_reply(deadline, || io.peer().conn < ConnState::Connected) {
        Some(rc) if rc >= StateChangeResult::Success as i32 => Ok(()),
        Some(rc) => {
            let why = StateChangeResult::from_raw(rc).map_or("unknown reason", StateChangeResult::text);
            pr_err!("{}: Requested state change failed by peer: {} ({})\n", name, why, rc);
            Err(refused)
        }
        None => {
            pr_err!("{}: no answer from the peer to the state change request\n", name);
            Err(refused)
        }
    }
}

/// The common start of invalidate and invalidate-remote while connected:
/// have the peer agree to `conn` (StartingSyncT/S) and enter it, then set
/// and write every bit. Any failure returns to Connected. Returns the replica the
/// resync runs over.
fn begin_full_sync(name: &str, io: &DeviceIo, conn: ConnState) -> Result<kernel::sync::Arc<Replica>, AdmError> {
    let replica = io.replica().ok_or(refused(StateChangeResult::NeedConnection))?;
    io.request_state_with_consent(|s| s.peer.conn = conn, || request_cluster_wide(name, io, &replica, conn), || Ok(()))?;
    let back_to_connected = || {
        io.set_state(|s| if s.peer.conn == conn { s.peer.conn = ConnState::Connected });
    };
    if set_all_out_of_sync(name, io).is_err() {
        back_to_connected();
        return Err(AdmError::new(RetCode::IoMdDisk, "writing the bitmap failed"));
    }
    Ok(replica)
}

/// Sets every bit of the bitmap and writes it (`drbd_bmio_set_n_write`).
pub(crate) fn set_all_out_of_sync(name: &str, io: &DeviceIo) -> Result {
    let exposed = io.exposed_sectors();
    match io.with_md(|md, dev| md.set_all_out_of_sync(dev, exposed)) {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => {
            pr_err!("{}: writing the bitmap failed: error {}\n", name, e.to_errno());
            Err(e)
        }
        None => Err(EIO),
    }
}

/// `drbd_start_resync(C_SYNC_SOURCE)`: a new sync UUID, persisted and
/// sent (P_SYNC_UUID), SyncSource with the peer's disk Inconsistent.
pub(crate) fn start_sync_source(name: &str, io: &DeviceIo, pd: &PeerDevice, replica: &Replica) -> Result {
    let primary = io.is_primary();
    let sync_uuid = match io.with_md(|md, dev| md.begin_sync_source(dev, primary)) {
        Some(Ok(uuid)) => uuid,
        Some(Err(e)) => {
            pr_err!("{}: writing meta data failed: error {}\n", name, e.to_errno());
            return Err(e);
        }
        None => return Err(EIO),
    };
    let bits = io.out_of_sync_bits();
    pd.resync.begin(bits);
    io.set_state(|s| {
        s.peer.conn = ConnState::SyncSource;
        s.peer.pdsk = DiskState::Inconsistent;
    });
    pr_info!("{}: Began resync as SyncSource (will sync {} KB [{} bits set]).\n", name, bits * 4, bits);
    let packet = proto::SyncUuid { uuid: sync_uuid };
    replica.send_small(Packet::SyncUuid, |out| packet.encode(out))
}

/// What the receiver does about the peer's P_STATE_CHG_REQ for a
/// connection state (`receive_req_state`).
pub(crate) enum PeerRequest {
    /// Not a request this file handles: granted as before.
    Other,
    /// The peer's promotion, granted; `true`: consider a resync at its
    /// next P_STATE (it was forced UpToDate while both were Inconsistent).
    Promotion(bool),
    /// Refused with this code.
    Refused(StateChangeResult),
    /// Granted: after the reply, go to this state (StartingSyncS/T, VerifyT).
    Granted(ConnState),
}

/// Decides on the peer's request `mask`/`val`.
pub(crate) fn judge_peer_request(
    io: &DeviceIo,
    cfg: &crate::drbd_net::NetConfig,
    verify_alg: bool,
    link_version: u32,
    mask: u32,
    val: u32,
) -> PeerRequest {
    let view = io.peer();
    let s = Snapshot {
        role: if io.is_primary() { api::Role::Primary } else { api::Role::Secondary },
        peer: view.peer,
        conn: view.conn,
        disk: io.disk_state(),
        pdsk: view.pdsk,
        verify_alg,
        link_version,
    };
    if mgmt::requests_promotion(mask, val) {
        return match mgmt::grant_peer_promotion(&s, cfg.two_primaries) {
            Ok(consider_resync) => PeerRequest::Promotion(consider_resync),
            Err(rv) => PeerRequest::Refused(rv),
        };
    }
    let Some(peer_conn) = mgmt::requested_conn(mask, val) else {
        return PeerRequest::Other;
    };
    match mgmt::grant_peer_request(&s, peer_conn) {
        Ok(ours) => PeerRequest::Granted(ours),
        Err(rv) => PeerRequest::Refused(rv),
    }
}

/// After granting the peer's request (the reply is sent): StartingSyncT
/// sets every bit and waits for the source's sync UUID, StartingSyncS
/// sets every bit and starts the resync, VerifyT waits for requests.
pub(crate) fn peer_request_granted(name: &str, io: &DeviceIo, pd: &PeerDevice, replica: &Replica, conn: ConnState) -> Result {
    pr_info!("{}: {} granted, as the peer requested\n", name, conn.name());
    match conn {
        ConnState::StartingSyncT => {
            io.set_state(|s| s.peer.conn = conn);
            set_all_out_of_sync(name, io)?;
            io.set_state(|s| s.peer.conn = ConnState::WfSyncUuid);
            Ok(())
        }
        ConnState::StartingSyncS => {
            io.set_state(|s| s.peer.conn = conn);
            set_all_out_of_sync(name, io)?;
            start_sync_source(name, io, pd, replica)
        }
        ConnState::VerifyT => {
            pd.verify.begin_target();
            io.set_state(|s| s.peer.conn = conn);
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// A state change refused by the rules.
fn refused(rv: StateChangeResult) -> AdmError {
    AdmError::state(rv, rv.text())
}

impl Registry {
    fn snapshot(&self, device: &Device) -> Snapshot {
        let io = &device.io;
        let view = io.peer();
        let verify_alg = self
            .resources
            .get(&device.resource)
            .and_then(|r| r.conn.as_ref())
            .is_some_and(|c| c.sync_algs().verify.is_some());
        Snapshot {
            role: device.io.role(),
            peer: view.peer,
            conn: view.conn,
            disk: io.disk_state(),
            pdsk: view.pdsk,
            verify_alg,
            link_version: io.replica().map_or(0, |r| r.link_version()),
        }
    }

    fn attached_device(&self, minor: u32) -> AdmResult<&Device> {
        let device = self.device(minor)?;
        if device.disk_config.is_none() || device.io.disk_state() == DiskState::Diskless {
            return Err(AdmError::new(RetCode::NoDisk, "device has no disk (attach it first)"));
        }
        Ok(device)
    }

    /// `invalidate`: our disk becomes Inconsistent and a full resync from
    /// the peer follows (StandAlone Secondary: just Inconsistent, every
    /// bit set, for the next connect).
    pub(crate) fn invalidate(&mut self, minor: u32) -> StateResult {
        let device = self.attached_device(minor)?;
        let io = &device.io;
        let name = device.resource;
        let name = name.as_str();
        match mgmt::invalidate(&self.snapshot(device)).map_err(refused)? {
            Plan::LocalOnly => {
                set_all_out_of_sync(name, io).map_err(|_| AdmError::new(RetCode::IoMdDisk, "writing the bitmap failed"))?;
                // The state change persists the flags (after_state_change).
                io.request_state(|s| s.device.disk = DiskState::Inconsistent).map_err(refused)?;
                pr_info!("drbd{}: invalidated: every block out of sync\n", minor);
            }
            Plan::ClusterWide(conn) => {
                // The source's sync UUID may come before we are done here:
                // the receiver waits while we are StartingSyncT.
                begin_full_sync(name, io, conn)?;
                pr_info!("drbd{}: invalidated, full resync from the peer\n", minor);
                io.set_state(|s| if s.peer.conn == conn { s.peer.conn = ConnState::WfSyncUuid });
            }
        }
        Ok(StateChangeResult::Success)
    }

    /// `invalidate-remote`: the peer's disk becomes Inconsistent and a
    /// full resync to it follows (StandAlone Primary: every bit set, for
    /// the next connect).
    pub(crate) fn invalidate_peer(&mut self, minor: u32) -> StateResult {
        let device = self.attached_device(minor)?;
        let io = &device.io;
        let name = device.resource;
        let name = name.as_str();
        match mgmt::invalidate_peer(&self.snapshot(device)).map_err(refused)? {
            Plan::LocalOnly => {
                set_all_out_of_sync(name, io).map_err(|_| AdmError::new(RetCode::IoMdDisk, "writing the bitmap failed"))?;
                pr_info!("drbd{}: peer invalidated: every block out of sync, full resync at the next connect\n", minor);
            }
            Plan::ClusterWide(conn) => {
                let replica = begin_full_sync(name, io, conn)?;
                pr_info!("drbd{}: full resync to the peer\n", minor);
                let pd = io.peer_device().ok_or(refused(StateChangeResult::NeedConnection))?;
                if start_sync_source(name, io, &pd, &replica).is_err() {
                    return Err(AdmError::new(RetCode::IoMdDisk, "starting the resync failed"));
                }
            }
        }
        Ok(StateChangeResult::Success)
    }

    /// `pause-sync` (`NS(user_isp, 1)`).
    pub(crate) fn pause_sync(&mut self, minor: u32) -> AdmResult {
        let io = &self.device(minor)?.io;
        mgmt::pause_sync(io.states().device.user_isp).map_err(|c| AdmError::new(c, "the resync is paused already"))?;
        io.request_state(|s| s.device.user_isp = true).map_err(refused)?;
        Ok(())
    }

    /// `resume-sync` (`NS(user_isp, 0)`).
    pub(crate) fn resume_sync(&mut self, minor: u32) -> AdmResult {
        let io = &self.device(minor)?.io;
        let s = io.states();
        mgmt::resume_sync(s.device.user_isp, s.device.aftr_isp, s.peer.peer_isp, s.peer.conn).map_err(|c| AdmError::new(c, match c {
            RetCode::PicAfterDep => "the resync waits for its resync-after dependency",
            RetCode::PicPeerDep => "the resync is paused by the peer",
            _ => "the resync is not paused",
        }))?;
        io.request_state(|s| s.device.user_isp = false).map_err(refused)?;
        Ok(())
    }

    /// `verify` (`drbd_adm_start_ov`): online verify as VerifyS from
    /// `start` (rounded down to a block) to `stop` (exclusive, clipped to
    /// the device).
    pub(crate) fn start_verify(&mut self, minor: u32, parms: api::StartOvParms) -> StateResult {
        let device = self.attached_device(minor)?;
        let io = &device.io;
        let name = device.resource;
        let name = name.as_str();
        let Plan::ClusterWide(conn) = mgmt::start_verify(&self.snapshot(device)).map_err(refused)? else {
            return Err(refused(StateChangeResult::NotSupported));
        };
        let pd = io.peer_device().ok_or(refused(StateChangeResult::NeedConnection))?;
        let replica = pd.replica().ok_or(refused(StateChangeResult::NeedConnection))?;
        let capacity = io.capacity_sectors();
        let start = (parms.ov_start_sector & !7).min(capacity);
        let end = parms.ov_stop_sector.min(capacity);
        io.request_state_with_consent(|s| s.peer.conn = conn, || request_cluster_wide(name, io, &replica, conn), || Ok(()))?;
        let job = crate::drbd_verify::SourceJob { name: device.resource, io: device.io.clone(), pd, replica, start, end };
        crate::drbd_verify::start_source(name, job).map_err(|_| AdmError::new(RetCode::NoMem, "cannot start the verify thread"))?;
        Ok(StateChangeResult::Success)
    }

    /// The current activity log layout (stripes, stripe size KiB); a
    /// superblock without striping (0/0) has the default one.
    fn al_layout(device: &Device) -> (u32, u32) {
        device
            .io
            .with_md(|md, _| (md.sb.al_stripes, md.sb.al_stripe_size_4k.saturating_mul(4)))
            .filter(|&(stripes, size)| stripes != 0 && size != 0)
            .unwrap_or((1, 32))
    }

    /// What a resize request starts from: size 0, no flags, the device's
    /// activity log layout (`drbd_adm_resize`).
    pub(crate) fn resize_base(&self, minor: u32) -> AdmResult<api::ResizeParms> {
        let (al_stripes, al_stripe_size) = Self::al_layout(self.attached_device(minor)?);
        Ok(api::ResizeParms { al_stripes, al_stripe_size, ..api::ResizeParms::default() })
    }

    /// `resize` (`drbd_adm_resize`, `drbd_determine_dev_size`): the
    /// checks with their codes, then the size as `drbd_new_dev_size`
    /// decides it from the backing device as large as it is now and the
    /// peer's last known size. The metadata moves to the new layout (also
    /// when the size stays: the peer learns our new disk size), the bitmap
    /// follows (the new area out of sync unless `--assume-clean`), the
    /// disk gets its size. Connected, the peer gets P_SIZES and answers
    /// with its own; both then agree on the smaller disk, and the new area
    /// is resynced from the Primary (`drbd_resize.rs`).
    pub(crate) fn resize(&mut self, minor: u32, parms: api::ResizeParms) -> AdmResult {
        let device = self.attached_device(minor)?;
        let io = &device.io;
        let snapshot = self.snapshot(device);
        let al = Self::al_layout(device);
        let no_disk = || AdmError::new(RetCode::NoDisk, "device has no disk (attach it first)");
        // `--al-stripes` / `--al-stripe-size-kB`: the size is decided for
        // the metadata in the new layout (8.4's determine_dev_size with rs).
        let al_change = (parms.al_stripes, parms.al_stripe_size) != al;
        let geometry = (parms.al_stripe_size % 4 == 0)
            .then(|| crate::drbd_include::al::AlGeometry::new(parms.al_stripes, parms.al_stripe_size / 4))
            .flatten();
        let layout = match geometry.filter(|_| al_change) {
            Some(geometry) => io.with_md(|md, dev| md.layout_with(dev, geometry)).ok_or_else(no_disk)??,
            None => crate::drbd_resize::layout_now(io).ok_or_else(no_disk)??,
        };
        let connected = snapshot.conn == ConnState::Connected;
        let current = device.capacity();
        let sizes = mgmt::SizeInputs {
            peer_size: io.resize().peer_size(),
            last_agreed: current,
            my_max: layout.max_capacity,
            user_size: 0,
            connected,
            assume_peer_has_space: false,
        };
        let req = ResizeRequest {
            size: parms.resize_size,
            no_resync: parms.no_resync,
            force: parms.resize_force,
            al_stripes: parms.al_stripes,
            al_stripe_size: parms.al_stripe_size,
        };
        let reason = |c: RetCode| match c {
            RetCode::ImplicitShrink => "the device would shrink: shrink explicitly with --size",
            _ => c.text(),
        };
        let (new, verdict) = mgmt::resize(&snapshot, &req, &sizes, al).map_err(|c| AdmError::new(c, reason(c)))?;
        if al_change && geometry.is_none() {
            return Err(AdmError::new(RetCode::MdLayoutNoFit, "invalid activity log layout"));
        }
        if new.forced_unconnected {
            pr_warn!("drbd{}: Resize while not connected was forced by the user!\n", minor);
        }
        if new.too_big {
            pr_err!("drbd{}: Requested disk size is too big ({} > {})\n", minor, req.size >> 1, new.size >> 1);
        }
        let name = device.resource;
        let name = name.as_str();
        crate::drbd_resize::apply(name, io, layout, new.size, !req.no_resync).map_err(|e| {
            pr_err!("drbd{}: resize from {} to {} sectors failed: error {}\n", minor, current, new.size, e.to_errno());
            if e == ENOMEM {
                AdmError::new(RetCode::NoMemBitmap, "out of memory for the bitmap")
            } else {
                AdmError::new(RetCode::IoMdDisk, "I/O error writing the meta data at its new place")
            }
        })?;
        io.resize().set_user_size(req.size);
        if let ResizeVerdict::Unchanged { .. } = verdict {
            pr_info!("drbd{}: resize: size unchanged ({} sectors)\n", minor, current);
        }
        if connected {
            if let Some(replica) = io.replica() {
                if matches!(verdict, ResizeVerdict::Grow(_)) {
                    io.resize().set_pending();
                }
                let mut flags = 0;
                if req.force {
                    flags |= proto::dds_flags::FORCED;
                }
                if req.no_resync {
                    flags |= proto::dds_flags::NO_RESYNC;
                }
                crate::drbd_resize::send_sizes(io, &replica, req.size, flags)
                    .map_err(|_| AdmError::new(RetCode::InvalidRequest, "sending the new sizes to the peer failed"))?;
            }
        }
        if let Some(config) = self.device_mut(minor)?.disk_config.as_mut() {
            config.disk_size = req.size;
        }
        Ok(())
    }
}
