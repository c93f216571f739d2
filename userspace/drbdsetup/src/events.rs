//! Listening to the "events" multicast group: `events` (DRBD 8.4's one line
//! per DRBD_EVENT), `events2` (key:value lines of the notifications 34..41)
//! and `wait-connect` / `wait-sync`, with drbdsetup-84's formats.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drbd_include::genl::{
    cmd, notification_header as nh, state_info, ConnState, ConnectionInfo, ConnectionStatistics,
    DeviceInfo, DeviceStatistics, DiskState, PeerDeviceInfo, PeerDeviceStatistics, Reply,
    ResourceInfo, ResourceStatistics, RetCode, Role, MINOR_ALL,
};

use crate::show::{self, Word};

/// Which objects a listener reports (drbdsetup-84's context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Messages about one minor.
    Minor(u32),
    /// Messages about one resource.
    Resource(String),
    /// Everything.
    All,
}

impl Filter {
    /// Whether a message passes; messages without CFG_CONTEXT always do.
    pub fn passes(&self, reply: &Reply<'_>) -> bool {
        let Some(ctx) = reply.cfg_context else {
            return true;
        };
        match self {
            Self::Minor(minor) => reply.header.minor == *minor,
            Self::Resource(name) => ctx.resource_name.unwrap_or_default() == name.as_bytes(),
            Self::All => true,
        }
    }
}

/// What a listener wants after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep listening.
    Continue,
    /// Stop and exit with this code.
    Exit(u8),
}

/// Handles the messages of a listening command.
pub trait Listener {
    /// Whether an unknown minor is not an error.
    fn missing_ok(&self) -> bool;

    /// One message; text for stdout and stderr goes to `out` and `err`.
    fn message(
        &mut self,
        seq: u32,
        genl_cmd: u8,
        reply: &Reply<'_>,
        out: &mut String,
        err: &mut String,
    ) -> Next;
}

/// Writes one of drbdsetup-84's level-1 debug messages, which it prints on
/// stderr as `<1>` + the message + two newlines.
pub fn dbg(err: &mut String, message: &str) {
    let _ = write!(err, "<1>{message}\n\n");
}

/// Formats `time` as drbdsetup's `--timestamps` do, in UTC:
/// `2024-01-31T12:34:56.123456+00:00 `.
pub fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00 ",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `events`: DRBD 8.4's event lines.
#[derive(Debug)]
pub struct Events {
    /// Prefix lines with a timestamp (an rdrbd extension).
    pub timestamps: bool,
    /// The clock for timestamps.
    pub clock: fn() -> SystemTime,
}

fn text(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}

fn state_line(tag: &str, seq: u32, minor: u32, name: &str, volume: u32, word: u32) -> String {
    let s = Word(word);
    let flag = |set: bool, c: char| if set { c } else { '-' };
    format!(
        "{seq} {tag} {},{name}[{}] {{ cs:{} ro:{}/{} ds:{}/{} {}{}{}{} }}\n",
        minor as i32,
        volume as i32,
        s.conn(),
        s.role(),
        s.peer(),
        s.disk(),
        s.pdsk(),
        if s.susp() { 's' } else { 'r' },
        flag(s.aftr_isp(), 'a'),
        flag(s.peer_isp(), 'p'),
        flag(s.user_isp(), 'u'),
    )
}

impl Events {
    fn line(&self, out: &mut String, line: &str) {
        if self.timestamps {
            out.push_str(&timestamp((self.clock)()));
        }
        out.push_str(line);
    }
}

impl Listener for Events {
    fn missing_ok(&self) -> bool {
        true
    }

    fn message(
        &mut self,
        seq: u32,
        _cmd: u8,
        reply: &Reply<'_>,
        out: &mut String,
        err: &mut String,
    ) -> Next {
        if reply.ret_code == i32::from(RetCode::MinorInvalid) {
            return Next::Continue;
        }
        let Some(ctx) = reply.cfg_context else {
            // drbdsetup-84 means to print "<seq> # <info text>" here, but
            // its lookup never finds the text (it searches for the type
            // with the mandatory bit, which it has just cleared).
            dbg(err, "unexpected packet, configuration context missing!");
            return Next::Continue;
        };
        let name = text(ctx.resource_name);
        let Some(si) = reply.state_info else {
            self.line(out, &format!("{seq} R - {name}\n"));
            return Next::Continue;
        };
        let minor = reply.header.minor;
        let volume = ctx.volume.unwrap_or(u32::MAX);
        let mnv = format!("{},{name}[{}]", minor as i32, volume as i32);
        match si.sib_reason {
            state_info::SIB_STATE_CHANGE | state_info::SIB_GET_STATUS_REPLY => {
                if si.sib_reason == state_info::SIB_STATE_CHANGE {
                    let prev = si.prev_state.unwrap_or(0);
                    let new = si.new_state.unwrap_or(0);
                    self.line(out, &state_line("ST-prev", seq, minor, &name, volume, prev));
                    self.line(out, &state_line("ST-new", seq, minor, &name, volume, new));
                }
                let line = state_line("ST", seq, minor, &name, volume, si.current_state);
                self.line(out, &line);
            }
            state_info::SIB_HELPER_PRE => {
                let helper = text(si.helper);
                self.line(out, &format!("{seq} UH {mnv} {helper}\n"));
            }
            state_info::SIB_HELPER_POST => {
                let helper = text(si.helper);
                let code = si.helper_exit_code.unwrap_or(0);
                self.line(out, &format!("{seq} UH-post {mnv} {helper} 0x{code:04x}\n"));
            }
            state_info::SIB_SYNC_PROGRESS => {
                let done = show::synced_per_mille(
                    si.bits_oos.unwrap_or(0),
                    si.bits_rs_failed.unwrap_or(0),
                    si.bits_rs_total.unwrap_or(0),
                );
                let line = format!("{seq} SP {mnv} {}.{}\n", done / 10, done % 10);
                self.line(out, &line);
            }
            other => {
                let line = format!(
                    "{seq} ?? {mnv} <other message, state info broadcast reason:{other}>\n"
                );
                self.line(out, &line);
            }
        }
        Next::Continue
    }
}

/// `wait-connect` and `wait-sync`.
#[derive(Debug)]
pub struct Wait {
    /// Wait for the end of the resync, not just the connection.
    pub sync: bool,
    /// `--wait-after-sb`: keep waiting in StandAlone.
    pub after_sb: bool,
}

impl Listener for Wait {
    fn missing_ok(&self) -> bool {
        false
    }

    fn message(
        &mut self,
        _seq: u32,
        _cmd: u8,
        reply: &Reply<'_>,
        _out: &mut String,
        err: &mut String,
    ) -> Next {
        let Some(si) = reply.state_info else {
            return Next::Continue;
        };
        if si.sib_reason != state_info::SIB_STATE_CHANGE
            && si.sib_reason != state_info::SIB_GET_STATUS_REPLY
        {
            return Next::Continue;
        }
        let word = Word(si.current_state);
        let conn = word.conn_raw();
        let connected = ConnState::Connected as u32;
        let unconnected = ConnState::Unconnected as u32;
        if self.sync {
            if conn == connected || (!self.after_sb && conn < unconnected) {
                return Next::Exit(0);
            }
            return Next::Continue;
        }
        if conn >= connected {
            return Next::Exit(0);
        }
        if conn < unconnected {
            if !self.after_sb {
                return Next::Exit(0);
            }
            let ctx = reply.cfg_context.unwrap_or_default();
            let _ = writeln!(
                err,
                "\ndrbd{} ({}[{}]) is {}, but I'm configured to wait anways (--wait-after-sb)",
                reply.header.minor,
                text(ctx.resource_name),
                ctx.volume.unwrap_or(u32::MAX),
                word.conn()
            );
        }
        Next::Continue
    }
}

/// What `events2` remembers about an object, to print only changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Resource(ResourceInfo, Option<ResourceStatistics>),
    Device(DeviceInfo, Option<DeviceStatistics>),
    Connection(ConnectionInfo, Option<ConnectionStatistics>),
    PeerDevice(PeerDeviceInfo, Option<PeerDeviceStatistics>),
}

/// `events2`: drbd-utils' `print_notifications` for an 8.4 kernel.
#[derive(Debug)]
pub struct Events2 {
    /// `--timestamps` (in UTC).
    pub timestamps: bool,
    /// `--statistics` (implies verbose statistics, as drbdsetup-84).
    pub statistics: bool,
    /// `--now`: only the initial state, then exit.
    pub now: bool,
    /// The clock for timestamps.
    pub clock: fn() -> SystemTime,
    last_seq: Option<u32>,
    kept_time: Option<SystemTime>,
    known: HashMap<String, Known>,
}

impl Events2 {
    /// A listener with these options.
    pub fn new(timestamps: bool, statistics: bool, now: bool, clock: fn() -> SystemTime) -> Self {
        Self {
            timestamps,
            statistics,
            now,
            clock,
            last_seq: None,
            kept_time: None,
            known: HashMap::new(),
        }
    }
}

fn role_name(raw: u32) -> &'static str {
    Role::from_raw(raw).map_or("TOO_LARGE", Role::name)
}

fn disk_name(raw: u32) -> &'static str {
    DiskState::from_raw(raw).map_or("TOO_LARGE", DiskState::name)
}

fn conn_name(raw: u32) -> &'static str {
    ConnState::from_raw(raw).map_or("TOO_LARGE", ConnState::name)
}

/// DRBD 9's name of an 8.4 connection state (`drbd_conn_str9`).
fn conn_name9(raw: u32) -> &'static str {
    match ConnState::from_raw(raw) {
        Some(ConnState::WfConnection) => "Connecting",
        Some(ConnState::WfReportParams) => "Connected",
        _ => conn_name(raw),
    }
}

/// DRBD 9's replication state name (`drbd_repl_str9`).
fn repl_name9(raw: u32) -> &'static str {
    match ConnState::from_raw(raw) {
        Some(ConnState::WfReportParams) => "Off",
        Some(ConnState::Connected) => "Established",
        _ => conn_name(raw),
    }
}

fn list(parts: &[(bool, &str)]) -> String {
    let set: Vec<&str> = parts
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        "no".to_owned()
    } else {
        set.join(",")
    }
}

fn susp_text(i: &ResourceInfo) -> String {
    list(&[
        (i.susp, "user"),
        (i.susp_nod, "no-data"),
        (i.susp_fen, "fencing"),
    ])
}

fn resync_susp_text(i: &PeerDeviceInfo) -> String {
    list(&[
        (i.resync_susp_user != 0, "user"),
        (i.resync_susp_peer != 0, "peer"),
        (i.resync_susp_dependency != 0, "dependency"),
    ])
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// The object key of a notification, as drbd-utils' `event_key`.
fn event_key(name: &str, minor: u32, reply: &Reply<'_>) -> String {
    let ctx = reply.cfg_context.unwrap_or_default();
    let mut key = format!("{name} name:{}", text(ctx.resource_name));
    if matches!(name, "connection" | "peer-device" | "helper") {
        key.push_str(" peer-node-id:0");
    }
    if ctx.peer_addr.is_some_and(|a| !a.is_empty()) {
        key.push_str(" conn-name:peer");
    }
    if let Some(volume) = ctx.volume.filter(|v| *v != u32::MAX) {
        let _ = write!(key, " volume:{volume}");
    }
    if minor != MINOR_ALL {
        let _ = write!(key, " minor:{minor}");
    }
    key
}

fn resource_statistics_text(old: Option<&ResourceStatistics>, new: &ResourceStatistics) -> String {
    const NAMES: [&str; 4] = ["none", "drain", "flush", "barrier"];
    let wo = new.write_ordering;
    let changed = old.is_none_or(|o| o.write_ordering != wo);
    match usize::try_from(wo).ok().and_then(|i| NAMES.get(i)) {
        Some(name) if changed => format!(" write-ordering:{name}"),
        _ => String::new(),
    }
}

fn device_statistics_text(old: Option<&DeviceStatistics>, new: &DeviceStatistics) -> String {
    let mut s = format!(
        " size:{} read:{} written:{} al-writes:{} bm-writes:{} upper-pending:{} lower-pending:{}",
        new.size / 2,
        new.read / 2,
        new.write / 2,
        new.al_writes,
        new.bm_writes,
        new.upper_pending,
        new.lower_pending
    );
    if old.is_none_or(|o| o.al_suspended != new.al_suspended) {
        let _ = write!(s, " al-suspended:{}", yes_no(new.al_suspended));
    }
    let blocked_changed = old.is_none_or(|o| {
        o.upper_blocked != new.upper_blocked || o.lower_blocked != new.lower_blocked
    });
    if blocked_changed {
        let blocked = list(&[(new.upper_blocked, "upper"), (new.lower_blocked, "lower")]);
        let _ = write!(s, " blocked:{blocked}");
    }
    s
}

fn connection_statistics_text(
    old: Option<&ConnectionStatistics>,
    new: &ConnectionStatistics,
) -> String {
    if old.is_none_or(|o| o.congested != new.congested) {
        format!(" congested:{}", yes_no(new.congested))
    } else {
        String::new()
    }
}

fn peer_device_statistics_text(new: &PeerDeviceStatistics) -> String {
    format!(
        " received:{} sent:{} out-of-sync:{} pending:{} unacked:{}",
        new.received / 2,
        new.sent / 2,
        new.out_of_sync / 2,
        new.pending,
        new.unacked
    )
}

impl Events2 {
    /// The changed fields of an object notification (debug messages on
    /// `err`, as drbdsetup-84).
    fn object(
        &mut self,
        genl_cmd: u8,
        key: &str,
        action: u32,
        reply: &Reply<'_>,
        err: &mut String,
    ) -> String {
        if action == nh::NOTIFY_DESTROY {
            self.known.remove(key);
            return String::new();
        }
        let stats = self.statistics;
        let mut line = String::new();
        let (what, has_info, has_stats) = match genl_cmd {
            cmd::RESOURCE_STATE => (
                "resource",
                reply.resource_info.is_some(),
                reply.resource_statistics.is_some(),
            ),
            cmd::DEVICE_STATE => (
                "device",
                reply.device_info.is_some(),
                reply.device_statistics.is_some(),
            ),
            cmd::CONNECTION_STATE => (
                "connection",
                reply.connection_info.is_some(),
                reply.connection_statistics.is_some(),
            ),
            _ => (
                "peer device",
                reply.peer_device_info.is_some(),
                reply.peer_device_statistics.is_some(),
            ),
        };
        if !has_info {
            dbg(err, &format!("{what} info missing"));
            return line;
        }
        if !has_stats {
            dbg(err, &format!("{what} statistics missing"));
        }
        let new = match genl_cmd {
            cmd::RESOURCE_STATE => reply
                .resource_info
                .map(|i| Known::Resource(i, reply.resource_statistics)),
            cmd::DEVICE_STATE => reply
                .device_info
                .map(|i| Known::Device(i, reply.device_statistics)),
            cmd::CONNECTION_STATE => reply
                .connection_info
                .map(|i| Known::Connection(i, reply.connection_statistics)),
            _ => reply
                .peer_device_info
                .map(|i| Known::PeerDevice(i, reply.peer_device_statistics)),
        };
        let Some(new) = new else {
            return line;
        };
        let old = self.known.get(key).copied();
        // Statistics missing now: keep the old ones (drbdsetup does too).
        let new = match (new, old) {
            (Known::Resource(i, None), Some(Known::Resource(_, s))) => Known::Resource(i, s),
            (Known::Device(i, None), Some(Known::Device(_, s))) => Known::Device(i, s),
            (Known::Connection(i, None), Some(Known::Connection(_, s))) => Known::Connection(i, s),
            (Known::PeerDevice(i, None), Some(Known::PeerDevice(_, s))) => Known::PeerDevice(i, s),
            (new, _) => new,
        };
        match (new, old) {
            (Known::Resource(i, s), old) => {
                let (oi, os) = match old {
                    Some(Known::Resource(oi, os)) => (Some(oi), os),
                    _ => (None, None),
                };
                if oi.is_none_or(|o| o.role != i.role) {
                    let _ = write!(line, " role:{}", role_name(i.role));
                }
                if oi.is_none_or(|o| {
                    (o.susp, o.susp_nod, o.susp_fen) != (i.susp, i.susp_nod, i.susp_fen)
                }) {
                    let _ = write!(line, " suspended:{}", susp_text(&i));
                }
                if let (true, Some(s), true) = (stats, s, reply.resource_statistics.is_some()) {
                    let old_stats = if oi.is_some() { os } else { None };
                    line.push_str(&resource_statistics_text(old_stats.as_ref(), &s));
                }
            }
            (Known::Device(i, s), old) => {
                let (oi, os) = match old {
                    Some(Known::Device(oi, os)) => (Some(oi), os),
                    _ => (None, None),
                };
                if oi.is_none_or(|o| o.disk_state != i.disk_state) {
                    let _ = write!(line, " disk:{}", disk_name(i.disk_state));
                }
                if let (true, Some(s), true) = (stats, s, reply.device_statistics.is_some()) {
                    let old_stats = if oi.is_some() { os } else { None };
                    line.push_str(&device_statistics_text(old_stats.as_ref(), &s));
                }
            }
            (Known::Connection(i, s), old) => {
                let (oi, os) = match old {
                    Some(Known::Connection(oi, os)) => (Some(oi), os),
                    _ => (None, None),
                };
                if oi.is_none_or(|o| o.connection_state != i.connection_state) {
                    let _ = write!(line, " connection:{}", conn_name9(i.connection_state));
                }
                if oi.is_none_or(|o| o.role != i.role) {
                    let _ = write!(line, " role:{}", role_name(i.role));
                }
                if let (true, Some(s), true) = (stats, s, reply.connection_statistics.is_some()) {
                    let old_stats = if oi.is_some() { os } else { None };
                    line.push_str(&connection_statistics_text(old_stats.as_ref(), &s));
                }
            }
            (Known::PeerDevice(i, s), old) => {
                let oi = match old {
                    Some(Known::PeerDevice(oi, _)) => Some(oi),
                    _ => None,
                };
                if oi.is_none_or(|o| o.repl_state != i.repl_state) {
                    let _ = write!(line, " replication:{}", repl_name9(i.repl_state));
                }
                if oi.is_none_or(|o| o.disk_state != i.disk_state) {
                    let _ = write!(line, " peer-disk:{}", disk_name(i.disk_state));
                }
                let susp = |p: &PeerDeviceInfo| {
                    (
                        p.resync_susp_user,
                        p.resync_susp_peer,
                        p.resync_susp_dependency,
                    )
                };
                if oi.is_none_or(|o| susp(&o) != susp(&i)) {
                    let _ = write!(line, " resync-suspended:{}", resync_susp_text(&i));
                }
                if let (true, Some(s), true) = (stats, s, reply.peer_device_statistics.is_some()) {
                    line.push_str(&peer_device_statistics_text(&s));
                }
            }
        }
        self.known.insert(key.to_owned(), new);
        line
    }
}

impl Listener for Events2 {
    fn missing_ok(&self) -> bool {
        true
    }

    fn message(
        &mut self,
        seq: u32,
        genl_cmd: u8,
        reply: &Reply<'_>,
        out: &mut String,
        err: &mut String,
    ) -> Next {
        const ACTIONS: [&str; 6] = ["exists", "create", "change", "destroy", "call", "response"];
        let Some(nh_type) = reply.notification_type else {
            return Next::Continue;
        };
        let action = nh_type & !nh::NOTIFY_CONTINUES;
        let Some(action_name) = usize::try_from(action).ok().and_then(|a| ACTIONS.get(a)) else {
            dbg(err, "unknown notification type");
            return Next::Continue;
        };
        if self.now && action != nh::NOTIFY_EXISTS {
            return Next::Continue;
        }
        let object = match genl_cmd {
            cmd::RESOURCE_STATE => Some("resource"),
            cmd::DEVICE_STATE => Some("device"),
            cmd::CONNECTION_STATE => Some("connection"),
            cmd::PEER_DEVICE_STATE => Some("peer-device"),
            cmd::HELPER => Some("helper"),
            cmd::INITIAL_STATE_DONE => None,
            _ if reply.cfg_context.is_none() => return Next::Continue,
            _ => {
                dbg(err, "unknown notification");
                return Next::Continue;
            }
        };
        if object.is_some() && reply.cfg_context.is_none() {
            return Next::Continue;
        }
        if action != nh::NOTIFY_EXISTS {
            if let Some(last) = self.last_seq {
                let skipped = seq.wrapping_sub(last.wrapping_add(1)) as i32;
                if skipped != 0 {
                    let _ = writeln!(out, "- skipped {skipped}");
                }
            }
            self.last_seq = Some(seq);
        }
        if self.timestamps {
            let time = self.kept_time.unwrap_or_else(self.clock);
            self.kept_time = (nh_type & nh::NOTIFY_CONTINUES != 0).then_some(time);
            out.push_str(&timestamp(time));
        }
        let key = object.map(|name| event_key(name, reply.header.minor, reply));
        let _ = write!(out, "{action_name} {}", key.as_deref().unwrap_or("-"));
        if let (Some(key), Some(_)) = (&key, object) {
            if genl_cmd == cmd::HELPER {
                match reply.helper_info {
                    Some(h) => {
                        let _ = write!(out, " helper:{}", text(Some(h.name)));
                        if action == nh::NOTIFY_RESPONSE {
                            let _ = write!(out, " status:{}", h.status);
                        }
                    }
                    None => dbg(err, "helper info missing"),
                }
            } else {
                let fields = self.object(genl_cmd, key, action, reply, err);
                out.push_str(&fields);
            }
        }
        out.push('\n');
        if self.now && genl_cmd == cmd::INITIAL_STATE_DONE {
            return Next::Exit(0);
        }
        Next::Continue
    }
}

/// What `listen` does with a message's ret_code: `None` to go on, or the
/// failing code.
pub fn failing_code(reply: &Reply<'_>, missing_ok: bool) -> Option<i32> {
    let code = reply.ret_code;
    let ok = code == i32::from(RetCode::NoError)
        || (missing_ok && code == i32::from(RetCode::MinorInvalid));
    (!ok).then_some(code)
}
