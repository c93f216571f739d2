//! Resource, disk and net options as configured (shown back by GET_STATUS,
//! `drbdsetup show`), and the configuration requests that change options
//! or state without touching the data path much: `resource-options`,
//! `disk-options`, `net-options`, `suspend-io`, `resume-io`, `outdate`
//! (DRBD 8.4 `drbd_adm_resource_opts`, `drbd_adm_disk_opts`,
//! `drbd_adm_net_opts`, `drbd_adm_suspend_io`, `drbd_adm_resume_io`,
//! `drbd_adm_outdate`).

use kernel::prelude::*;

use crate::drbd_include::fixed_str::FixedStr;
use crate::drbd_include::genl::{
    AfterSbPolicy,
    self as api, disk_conf, net_conf, resource_opts, ConnState, DiskConf, DiskState, Fencing, NetConf,
    ResourceOpts, RetCode, Role, StateChangeResult, WireProtocol,
};
use crate::drbd_include::net_options;
use crate::drbd_include::protocol_settings::ProtocolSettings;
use crate::{AdmError, AdmResult, Registry, ResourceName};

/// How long `disk-options` waits for the activity log to go idle before
/// a new `al-extents` is left for the next attach.
const AL_RESIZE_WAIT_MS: u32 = 5000;

/// A digest or secret name of NET_CONF, as stored.
type NetString = FixedStr<{ net_conf::SECRET_SIZE }>;

/// `struct res_opts` of a resource.
#[derive(Clone, Copy, Default)]
pub(crate) struct ResourceOptions {
    /// `None`: all CPUs (an empty mask).
    cpu_mask: Option<FixedStr<{ resource_opts::CPU_MASK_SIZE }>>,
    on_no_data: u32,
}

impl ResourceOptions {
    /// Checks the options of a request (`set_resource_options`): the cpu
    /// mask must parse as a kernel bitmap ("hex[,hex...]"); on-no-data is
    /// io-error or suspend-io. rdrbd's threads do not follow the mask.
    pub(crate) fn new(opts: &ResourceOpts<'_>) -> AdmResult<Self> {
        let mask_error = AdmError::new(RetCode::CpuMaskParse, "cpu-mask is not a hexadecimal CPU bitmap");
        let cpu_mask = if opts.cpu_mask.is_empty() {
            None
        } else {
            let valid = opts.cpu_mask.split(|&b| b == b',')
                .all(|g| !g.is_empty() && g.len() <= 8 && g.iter().all(u8::is_ascii_hexdigit));
            if !valid {
                return Err(mask_error);
            }
            Some(FixedStr::new(opts.cpu_mask).ok_or(mask_error)?)
        };
        if opts.on_no_data > 1 {
            return Err(AdmError::new(RetCode::InvalidRequest, "on-no-data-accessible must be io-error or suspend-io"));
        }
        Ok(Self { cpu_mask, on_no_data: opts.on_no_data })
    }

    /// The options as the netlink API carries them.
    pub(crate) fn view(&self) -> ResourceOpts<'_> {
        ResourceOpts { cpu_mask: self.cpu_mask.as_ref().map_or(&[][..], |m| m.as_bytes()), on_no_data: self.on_no_data }
    }
}

/// The options of `struct disk_conf` beside the device paths (which
/// `DiskConfig` keeps).
#[derive(Clone, Copy)]
pub(crate) struct DiskOptions(DiskConf<'static>);

impl DiskOptions {
    /// Checks every ranged option against `drbd_limits.h`.
    pub(crate) fn new(conf: &DiskConf<'_>) -> AdmResult<Self> {
        use disk_conf as d;
        let bad = |what| Err(AdmError::new(RetCode::InvalidRequest, what));
        let checks: [(bool, &'static str); 10] = [
            (d::RESYNC_RATE_LIMITS.contains(conf.resync_rate), "resync-rate out of range"),
            (d::RESYNC_AFTER_LIMITS.contains(conf.resync_after), "resync-after out of range"),
            (d::AL_EXTENTS_LIMITS.contains(conf.al_extents), "al-extents out of range"),
            (d::C_PLAN_AHEAD_LIMITS.contains(conf.c_plan_ahead), "c-plan-ahead out of range"),
            (d::C_DELAY_TARGET_LIMITS.contains(conf.c_delay_target), "c-delay-target out of range"),
            (d::C_FILL_TARGET_LIMITS.contains(conf.c_fill_target), "c-fill-target out of range"),
            (d::C_MAX_RATE_LIMITS.contains(conf.c_max_rate), "c-max-rate out of range"),
            (d::C_MIN_RATE_LIMITS.contains(conf.c_min_rate), "c-min-rate out of range"),
            (d::DISK_TIMEOUT_LIMITS.contains(conf.disk_timeout), "disk-timeout out of range"),
            (d::RS_DISCARD_GRANULARITY_LIMITS.contains(conf.rs_discard_granularity),
                "rs-discard-granularity out of range"),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return bad(what);
        }
        // on-io-error: pass_on, call-local-io-error, detach; fencing:
        // dont-care, resource-only, resource-and-stonith; read-balancing:
        // prefer-local .. 1M-striping.
        if conf.on_io_error > 2 || Fencing::from_raw(conf.fencing).is_none() || crate::drbd_include::read_balancing::ReadBalancing::from_raw(conf.read_balancing).is_none() {
            return bad("invalid on-io-error, fencing or read-balancing policy");
        }
        Ok(Self(DiskConf { backing_dev: &[], meta_dev: &[], ..*conf }))
    }

    /// The whole `disk_conf`, with the device paths given.
    pub(crate) fn view<'a>(&self, backing_dev: &'a [u8], meta_dev: &'a [u8]) -> DiskConf<'a> {
        DiskConf { backing_dev, meta_dev, ..self.0 }
    }

    /// `al-updates`: whether activity-log transactions are written.
    pub(crate) fn al_updates(&self) -> bool {
        self.0.al_updates
    }

    /// `resync-after`: the minor this one's resync waits for (-1: none).
    pub(crate) fn resync_after(&self) -> i32 {
        self.0.resync_after
    }

    /// What a local I/O error does (validated by `new`).
    pub(crate) fn on_io_error(&self) -> crate::drbd_include::io_error::OnIoError {
        crate::drbd_include::io_error::OnIoError::from_raw(self.0.on_io_error)
            .unwrap_or(crate::drbd_include::io_error::OnIoError::Detach)
    }

    /// The write-ordering method `disk-flushes` and `disk-drain` allow.
    pub(crate) fn write_ordering(&self) -> crate::drbd_include::write_ordering::WriteOrdering {
        crate::drbd_include::write_ordering::WriteOrdering::from_options(self.0.disk_flushes, self.0.disk_drain)
    }

    /// `md-flushes`: metadata writes are flush + FUA.
    pub(crate) fn md_flushes(&self) -> bool {
        self.0.md_flushes
    }

    /// The `read-balancing` policy (validated by `new`).
    pub(crate) fn read_balancing(&self) -> crate::drbd_include::read_balancing::ReadBalancing {
        crate::drbd_include::read_balancing::ReadBalancing::from_raw(self.0.read_balancing)
            .unwrap_or(crate::drbd_include::read_balancing::ReadBalancing::PreferLocal)
    }

    /// The fencing policy (validated by `new`).
    pub(crate) fn fencing(&self) -> Fencing {
        Fencing::from_raw(self.0.fencing).unwrap_or(Fencing::DontCare)
    }

    /// `discard-zeroes-if-aligned`.
    pub(crate) fn discard_zeroes_if_aligned(&self) -> bool {
        self.0.discard_zeroes_if_aligned
    }

    /// `disk-timeout` in tenths of a second (0: off).
    pub(crate) fn disk_timeout_ds(&self) -> u32 {
        self.0.disk_timeout
    }

    /// Activity log slots.
    pub(crate) fn al_extents(&self) -> u32 {
        self.0.al_extents
    }

    /// How fast a resync may go when this node is SyncTarget, and when it
    /// steps aside for application I/O (`c-min-rate`, on either side).
    pub(crate) fn resync_rate(&self) -> crate::drbd_peer_device::ResyncRate {
        let c = &self.0;
        crate::drbd_peer_device::ResyncRate::from_options(c.resync_rate, c.c_plan_ahead, c.c_max_rate, c.c_fill_target, c.c_min_rate)
    }
}

/// `struct net_conf` of a configured connection.
#[derive(Clone, Copy)]
pub(crate) struct NetOptions {
    conf: NetConf<'static>,
    shared_secret: NetString,
    cram_hmac_alg: NetString,
    integrity_alg: NetString,
    verify_alg: NetString,
    csums_alg: NetString,
}

impl NetOptions {
    /// Checks every ranged option against `drbd_limits.h` and the policy
    /// combinations C DRBD refuses (`_check_net_options`).
    pub(crate) fn new(conf: &NetConf<'_>) -> AdmResult<Self> {
        use net_conf as n;
        let bad = |what| Err(AdmError::new(RetCode::InvalidRequest, what));
        let checks: [(bool, &'static str); 13] = [
            (WireProtocol::from_raw(conf.wire_protocol).is_some(), "invalid protocol"),
            (n::CONNECT_INT_LIMITS.contains(conf.connect_int), "connect-int out of range"),
            (n::TIMEOUT_LIMITS.contains(conf.timeout), "timeout out of range"),
            (n::PING_INT_LIMITS.contains(conf.ping_int), "ping-int out of range"),
            (n::PING_TIMEO_LIMITS.contains(conf.ping_timeo), "ping-timeout out of range"),
            (n::SNDBUF_SIZE_LIMITS.contains(conf.sndbuf_size), "sndbuf-size out of range"),
            (n::RCVBUF_SIZE_LIMITS.contains(conf.rcvbuf_size), "rcvbuf-size out of range"),
            (n::KO_COUNT_LIMITS.contains(conf.ko_count), "ko-count out of range"),
            (n::MAX_BUFFERS_LIMITS.contains(conf.max_buffers), "max-buffers out of range"),
            (n::MAX_EPOCH_SIZE_LIMITS.contains(conf.max_epoch_size), "max-epoch-size out of range"),
            (n::CONG_FILL_LIMITS.contains(conf.cong_fill), "cong-fill out of range"),
            (n::CONG_EXTENTS_LIMITS.contains(conf.cong_extents), "cong-extents out of range"),
            (n::SOCK_CHECK_TIMEO_LIMITS.contains(conf.sock_check_timeo), "sock-check-timeo out of range"),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return bad(what);
        }
        let policies = [conf.after_sb_0p, conf.after_sb_1p, conf.after_sb_2p, conf.rr_conflict];
        if policies.iter().any(|&p| AfterSbPolicy::from_raw(p).is_none()) || conf.on_congestion > n::OC_DISCONNECT {
            return bad("invalid after-split-brain, rr-conflict or on-congestion policy");
        }
        if conf.two_primaries && conf.wire_protocol != n::PROT_C {
            return Err(AdmError::new(RetCode::NotProtoC, "allow-two-primaries needs protocol C"));
        }
        if conf.on_congestion != n::OC_BLOCK && conf.wire_protocol != n::PROT_A {
            return Err(AdmError::new(RetCode::CongNotProtoA, "an on-congestion policy other than block needs protocol A"));
        }
        let text = |s: &[u8]| NetString::new(s).ok_or(AdmError::new(RetCode::InvalidRequest, "net option string too long"));
        // As C DRBD (ERR_INTEGRITY_ALG, ERR_VERIFY_ALG, ERR_CSUMS_ALG), for
        // connect and net-options alike: an algorithm the kernel lacks is
        // refused now, not when it is first used (drbdsetup prints the
        // code's text).
        let digest = |s: &[u8], code| {
            let alg = text(s)?;
            match alg.as_bytes().is_empty() || crate::drbd_net::digest_named(&alg).is_ok() {
                true => Ok(alg),
                false => Err(AdmError::new(code, "")),
            }
        };
        let integrity_alg = digest(conf.integrity_alg, RetCode::IntegrityAlg)?;
        let verify_alg = digest(conf.verify_alg, RetCode::VerifyAlg)?;
        let csums_alg = digest(conf.csums_alg, RetCode::CsumsAlg)?;
        Ok(Self {
            conf: NetConf {
                shared_secret: &[],
                cram_hmac_alg: &[],
                integrity_alg: &[],
                verify_alg: &[],
                csums_alg: &[],
                ..*conf
            },
            shared_secret: text(conf.shared_secret)?,
            cram_hmac_alg: text(conf.cram_hmac_alg)?,
            integrity_alg,
            verify_alg,
            csums_alg,
        })
    }

    /// These options with the protocol settings in force (the peer may
    /// have changed them with P_PROTOCOL_UPDATE).
    pub(crate) fn with_protocol(mut self, settings: ProtocolSettings) -> Self {
        self.conf.wire_protocol = settings.wire_protocol as u32;
        [self.conf.after_sb_0p, self.conf.after_sb_1p, self.conf.after_sb_2p] = settings.after_sb.map(|p| p as u32);
        self.conf.two_primaries = settings.two_primaries;
        self.integrity_alg = settings.integrity_alg;
        self
    }

    /// These options with the verify-alg and csums-alg in force (the peer
    /// may have changed them with P_SYNC_PARAM).
    pub(crate) fn with_sync_algs(mut self, algs: crate::drbd_net::SyncAlgs) -> Self {
        self.verify_alg = algs.verify.unwrap_or(NetString::EMPTY);
        self.csums_alg = algs.csums.unwrap_or(NetString::EMPTY);
        self
    }

    /// The verify-alg and csums-alg these options ask for.
    pub(crate) fn sync_algs(&self) -> crate::drbd_net::SyncAlgs {
        let named = |s: &NetString| (!s.as_bytes().is_empty()).then_some(*s);
        crate::drbd_net::SyncAlgs { verify: named(&self.verify_alg), csums: named(&self.csums_alg) }
    }

    /// The protocol settings these options ask for.
    pub(crate) fn protocol_settings(&self) -> ProtocolSettings {
        let c = &self.conf;
        ProtocolSettings {
            wire_protocol: WireProtocol::from_raw(c.wire_protocol).unwrap_or(WireProtocol::C),
            // Checked in `new`: every policy is a known one.
            after_sb: [c.after_sb_0p, c.after_sb_1p, c.after_sb_2p]
                .map(|raw| AfterSbPolicy::from_raw(raw).unwrap_or(AfterSbPolicy::Disconnect)),
            two_primaries: c.two_primaries,
            integrity_alg: self.integrity_alg,
        }
    }

    /// The whole `net_conf`.
    pub(crate) fn view(&self) -> NetConf<'_> {
        NetConf {
            shared_secret: self.shared_secret.as_bytes(),
            cram_hmac_alg: self.cram_hmac_alg.as_bytes(),
            integrity_alg: self.integrity_alg.as_bytes(),
            verify_alg: self.verify_alg.as_bytes(),
            csums_alg: self.csums_alg.as_bytes(),
            ..self.conf
        }
    }
}

/// The result of a state change request, as its reply carries it.
pub(crate) type StateResult = AdmResult<StateChangeResult>;

impl Registry {
    /// `resource-options`.
    pub(crate) fn resource_options(&mut self, name: &ResourceName, options: ResourceOptions) -> AdmResult {
        let resource = self.resources.get_mut(name).ok_or(AdmError::new(RetCode::ResNotKnown, "unknown resource"))?;
        resource.options = options;
        Ok(())
    }

    /// `disk-options`: only with a disk; the resync rate and controller
    /// settings apply at once (also to a running resync), al-extents from
    /// the next attach (the activity log is sized there).
    pub(crate) fn disk_options(&mut self, minor: u32, change: impl FnOnce(DiskConf<'_>) -> AdmResult<DiskOptions>) -> AdmResult {
        let no_disk = AdmError::new(RetCode::NoDisk, "device has no disk (attach it first)");
        let options = {
            let config = self.device_mut(minor)?.disk_config.as_ref().ok_or(no_disk)?;
            change(config.options.view(config.backing_dev.as_bytes(), config.meta_dev.as_bytes()))?
        };
        self.check_resync_after(minor, options.resync_after())?;
        let device = self.device_mut(minor)?;
        let config = device.disk_config.as_mut().ok_or(no_disk)?;
        if options.al_extents() != config.al_extents {
            // As 8.4: at once, once no extent is in use (new writes wait).
            match device.io.resize_activity_log(options.al_extents(), AL_RESIZE_WAIT_MS) {
                Ok(true) => {}
                Ok(false) => pr_warn!("drbd{}: the activity log stayed busy; al-extents {} applies from the next attach\n",
                    minor, options.al_extents()),
                Err(e) => {
                    pr_err!("drbd{}: resizing the activity log failed: error {}\n", minor, e.to_errno());
                    return Err(AdmError::new(RetCode::IoMdDisk, "I/O error on the meta data area"));
                }
            }
        }
        config.al_extents = options.al_extents();
        // The resync worker re-reads the rate every tick: a running
        // resync follows at once. on-io-error and fencing are read when
        // they are needed, disk-timeout at the worker's next tick.
        if let Some(pd) = device.io.peer_device() {
            pd.resync.set_rate(options.resync_rate());
        }
        device.io.set_fencing(options.fencing());
        device.io.set_read_balancing(options.read_balancing());
        device.io.set_discard_zeroes_if_aligned(options.discard_zeroes_if_aligned());
        device.io.set_write_ordering(options.write_ordering(), options.md_flushes());
        device.io.io_errors().configure(options.on_io_error(), options.disk_timeout_ds(), false);
        // drbd_resync_after_changed: a new dependency pauses or resumes.
        device.io.set_resync_after(options.resync_after());
        if let Some(Err(e)) = device.io.with_md(|md, dev| md.set_al_updates(dev, options.al_updates())) {
            pr_err!("drbd{}: writing the al-updates flag failed: error {}\n", minor, e.to_errno());
            return Err(AdmError::new(RetCode::IoMdDisk, "I/O error on the meta data area"));
        }
        config.options = options;
        Ok(())
    }

    /// `net-options` (`drbd_adm_net_opts`): only on a configured
    /// connection, checked as `_check_net_options` does. ping-int,
    /// ping-timeout, timeout and ko-count apply to the live connection at
    /// once; protocol, after-sb policies, allow-two-primaries and
    /// data-integrity-alg too, and an established peer is told with
    /// P_PROTOCOL_UPDATE; verify-alg and csums-alg likewise, with
    /// P_SYNC_PARAM (not while an online verify or a resync uses them,
    /// as 8.4); the rest is stored and applies at the next `connect`.
    pub(crate) fn net_options(&mut self, name: &ResourceName, change: impl FnOnce(NetConf<'_>) -> AdmResult<NetOptions>) -> AdmResult {
        let volumes = || self.devices_of(name);
        let local_primary = volumes().any(|d| d.io.is_primary());
        let peer_primary = volumes().any(|d| d.io.peer().peer == Role::Primary);
        // conn_resync_running, conn_ov_running.
        let resync_running = volumes().any(|d| {
            matches!(d.io.peer().conn, ConnState::SyncSource | ConnState::SyncTarget | ConnState::PausedSyncS | ConnState::PausedSyncT)
        });
        let verify_running = volumes().any(|d| matches!(d.io.peer().conn, ConnState::VerifyS | ConnState::VerifyT));
        let stonith = volumes().any(|d| {
            d.disk_config.as_ref().is_some_and(|c| c.options.fencing() == Fencing::ResourceAndStonith)
        });
        let resource = self.resources.get_mut(name).ok_or(AdmError::new(RetCode::ResNotKnown, "unknown resource"))?;
        let (conn, current) = match (&resource.conn, &resource.net_options) {
            (Some(conn), Some(net)) => (conn, net.with_protocol(conn.protocol_settings()).with_sync_algs(conn.sync_algs())),
            _ => return Err(AdmError::state(StateChangeResult::NoNetConfig, "resource has no connection configured (connect first)")),
        };
        let options = change(current.view())?;
        let (old, new) = (current.view(), options.view());
        let context = net_options::NetContext { agreed_version: conn.agreed_version(), local_primary, peer_primary, stonith };
        if let Err(code) = net_options::check(Some(&old), &new, &context) {
            // drbdsetup prints the code's own text, as for C DRBD.
            return Err(AdmError::new(code, ""));
        }
        let algs = options.sync_algs();
        let in_force = conn.sync_algs();
        if resync_running && algs.csums != in_force.csums {
            return Err(AdmError::new(RetCode::CsumsResyncRunning, ""));
        }
        if verify_running && algs.verify != in_force.verify {
            return Err(AdmError::new(RetCode::VerifyRunning, ""));
        }
        if new.two_primaries && conn.peer_link().is_some_and(|link| crate::drbd_include::write_conflicts::refuses_peer(true, link)) {
            // A connected C peer would not resolve conflicting writes.
            return Err(AdmError::new(RetCode::InvalidRequest,
                "allow-two-primaries: the connected peer does not resolve conflicting writes as rdrbd does"));
        }
        conn.timing().set(new.ping_int, new.ping_timeo, new.timeout, new.ko_count);
        if let Some(policy) = crate::drbd_net::congestion_policy(&new) {
            conn.timing().set_congestion(policy);
        }
        if algs != in_force && conn.change_sync_algs(algs).is_err() {
            pr_warn!("{}: could not send the new verify-alg and csums-alg to the peer\n", name.as_str());
        }
        let settings = options.protocol_settings();
        if settings != current.protocol_settings() && conn.change_protocol_settings(settings).is_err() {
            // The connection breaks on a failed send; the settings hold
            // for the next handshake all the same.
            pr_warn!("{}: could not send the new protocol settings to the peer\n", name.as_str());
        }
        resource.net_options = Some(options);
        Ok(())
    }

    /// `suspend-io` (`NS(susp, 1)`).
    pub(crate) fn suspend_io(&mut self, minor: u32) -> StateResult {
        let device = self.device(minor)?;
        if device.io.is_suspended() {
            return Ok(StateChangeResult::NothingToDo);
        }
        device.io.request_state(|s| s.device.susp_user = true).map_err(|rv| AdmError::state(rv, rv.text()))?;
        Ok(StateChangeResult::Success)
    }

    /// `resume-io` (`NS3(susp, 0, ...)`): the waiting bios go on.
    pub(crate) fn resume_io(&mut self, minor: u32) -> StateResult {
        let device = self.device(minor)?;
        let (user, fencing) = (device.io.is_suspended(), device.io.is_frozen_for_fencing());
        if !user && !fencing {
            return Ok(StateChangeResult::NothingToDo);
        }
        device.io
            .request_state(|s| {
                s.device.susp_user = false;
                s.device.susp_fen = false;
            })
            .map_err(|rv| AdmError::state(rv, rv.text()))?;
        Ok(StateChangeResult::Success)
    }

    /// `outdate` (`NS(disk, D_OUTDATED)`), checked as `is_valid_state` and
    /// `is_valid_soft_transition` do, and persisted in the metadata flags.
    pub(crate) fn outdate(&mut self, minor: u32) -> StateResult {
        let device = self.device(minor)?;
        let state = device.io.state();
        // Connected, sanitize_state turns Outdated back into UpToDate.
        if state.conn >= ConnState::Connected {
            return Err(AdmError::state(StateChangeResult::ConnectedOutdates, "refusing to be Outdated while connected"));
        }
        if state.disk == DiskState::Outdated {
            return Ok(StateChangeResult::NothingToDo);
        }
        if state.disk < DiskState::Outdated && state.disk != DiskState::Attaching {
            return Err(AdmError::state(StateChangeResult::LowerThanOutdated, "disk state is lower than Outdated"));
        }
        if state.role == Role::Primary && state.pdsk != DiskState::UpToDate {
            return Err(AdmError::state(StateChangeResult::NoUpToDateDisk, "a Primary needs access to UpToDate data"));
        }
        let (pdsk, conn) = (state.pdsk, state.conn);
        match device.io.with_md(|md, dev| md.persist_state(dev, false, DiskState::Outdated, pdsk, conn)) {
            Some(Ok(())) => {}
            Some(Err(_)) => return Err(AdmError::new(RetCode::IoMdDisk, "writing the meta data failed")),
            None => return Err(AdmError::state(StateChangeResult::LowerThanOutdated, "device has no disk")),
        }
        device.io
            .request_state(|s| s.device.disk = DiskState::Outdated)
            .map_err(|rv| AdmError::state(rv, rv.text()))?;
        Ok(StateChangeResult::Success)
    }

    /// GET_TIMEOUT_TYPE (`drbd_adm_get_timeout_type`): which of the
    /// wfc timeouts a boot script should use.
    pub(crate) fn timeout_type(&self, minor: u32) -> AdmResult<u32> {
        let device = self.device(minor)?;
        Ok(if device.io.peer().pdsk == DiskState::Outdated {
            api::timeout_parms::UT_PEER_OUTDATED
        } else {
            api::timeout_parms::UT_DEFAULT
        })
    }
}
