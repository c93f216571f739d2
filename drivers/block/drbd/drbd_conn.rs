//! The connection of a resource to its peer (DRBD 8.4 `conn_connect`):
//! a kthread that listens on our address and connects to the peer's until
//! a data and a meta socket are up (told apart by P_INITIAL_DATA /
//! P_INITIAL_META), negotiates the protocol (P_CONNECTION_FEATURES), sends
//! our parameters (`drbd_connected`) and hands over to the receiver
//! (`drbd_receiver.rs`). When the link breaks it starts over, until
//! `disconnect` stops it.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use kernel::new_mutex;

use crate::drbd_include::genl::{self as api, net_conf, ConnState, DiskState, NetConf, Role, WireProtocol};
use crate::drbd_include::protocol::{
    self as proto, encode_packet, ConnectionFeatures, Header, Link, Packet, ProtocolError,
    RsController, Sizes, StatePacket, SyncParams, UuidsPacket,
};
use crate::drbd_include::protocol_settings::ProtocolSettings;
use crate::drbd_include::request_timer::NetTimeouts;
use crate::drbd_include::uuid::uuid_flags;
use crate::drbd_req::DeviceIo;
use crate::drbd_include::fixed_str::FixedStr;
use crate::kernel_glue::crypto::{Digest, Hmac, HMAC_MAX_DIGEST};
use crate::kernel_glue::net::{SockAddr, SocketBuffers, TcpSocket};
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// What the peer looks like from here: shown in /proc/drbd and GET_STATUS.
#[derive(Clone, Copy)]
pub(crate) struct PeerView {
    pub(crate) conn: ConnState,
    pub(crate) peer: Role,
    pub(crate) pdsk: DiskState,
    /// The wire protocol (A/B/C) while a net config exists; 0 without.
    pub(crate) protocol: Option<WireProtocol>,
}

/// The net options rdrbd uses (from NET_CONF).
#[derive(Clone, Copy)]
pub(crate) struct NetConfig {
    pub(crate) my_addr: SockAddr,
    pub(crate) peer_addr: SockAddr,
    pub(crate) wire_protocol: WireProtocol,
    /// Seconds.
    pub(crate) connect_int: u32,
    /// Seconds.
    pub(crate) ping_int: u32,
    /// Tenths of a second.
    pub(crate) ping_timeo: u32,
    /// Tenths of a second.
    pub(crate) timeout: u32,
    /// Send timeouts tolerated in a row, and with `timeout` the request
    /// timer (0: off).
    pub(crate) ko_count: u32,
    /// Tenths of a second; 0: ping_timeo.
    pub(crate) sock_check_timeo: u32,
    pub(crate) after_sb: [u32; 3],
    pub(crate) rr_conflict: u32,
    pub(crate) always_asbp: bool,
    pub(crate) two_primaries: bool,
    pub(crate) discard_my_data: bool,
    /// Writes after which the Primary closes an epoch (P_BARRIER).
    pub(crate) max_epoch_size: u32,
    /// `cram-hmac-alg` and `shared-secret`, when the peer must prove it
    /// knows the secret.
    pub(crate) auth: Option<AuthConfig>,
    /// `verify-alg` of online verify, e.g. "crc32c".
    pub(crate) verify_alg: Option<FixedStr<{ net_conf::SECRET_SIZE }>>,
    /// `csums-alg` of checksum-based resync, e.g. "crc32c".
    pub(crate) csums_alg: Option<FixedStr<{ net_conf::SECRET_SIZE }>>,
    /// `csums-after-crash-only`: checksums only after a Primary crashed.
    pub(crate) csums_after_crash_only: bool,
    /// `sndbuf-size` and `rcvbuf-size` of every socket (0: the kernel
    /// sizes it).
    pub(crate) buffers: SocketBuffers,
}

/// The digest transform named `alg`.
pub(crate) fn digest_named(alg: &FixedStr<{ net_conf::SECRET_SIZE }>) -> Result<Digest> {
    kernel::str::CStr::from_bytes_with_nul(alg.as_bytes_with_nul()).map_err(|_| EINVAL).and_then(Digest::new)
}

/// Peer authentication settings.
#[derive(Clone, Copy)]
pub(crate) struct AuthConfig {
    /// The digest, e.g. "sha256" (used as "hmac(sha256)").
    pub(crate) alg: FixedStr<{ net_conf::SECRET_SIZE }>,
    pub(crate) secret: FixedStr<{ net_conf::SECRET_SIZE }>,
}

impl AuthConfig {
    /// The keyed HMAC transform.
    pub(crate) fn hmac(&self) -> Result<Hmac> {
        let alg = kernel::str::CStr::from_bytes_with_nul(self.alg.as_bytes_with_nul()).map_err(|_| EINVAL)?;
        Hmac::new(alg, self.secret.as_bytes())
    }
}

impl NetConfig {
    /// The protocol settings given at `connect`.
    pub(crate) fn protocol_settings(&self) -> ProtocolSettings {
        ProtocolSettings { wire_protocol: self.wire_protocol, after_sb: self.after_sb, two_primaries: self.two_primaries }
    }

    /// The `verify-alg` transform; `None` without a verify-alg.
    pub(crate) fn verify_digest(&self) -> Option<Result<Digest>> {
        self.verify_alg.as_ref().map(digest_named)
    }

    /// The `csums-alg` transform; `None` without a csums-alg.
    pub(crate) fn csums_digest(&self) -> Option<Result<Digest>> {
        self.csums_alg.as_ref().map(digest_named)
    }

    /// Checks a CONNECT request's addresses and options.
    pub(crate) fn new(my_addr: &[u8], peer_addr: &[u8], nc: &NetConf<'_>) -> core::result::Result<Self, &'static str> {
        let auth = match nc.cram_hmac_alg {
            [] => None,
            alg => {
                let auth = AuthConfig {
                    alg: FixedStr::new(alg).filter(|a| !a.as_bytes().contains(&0)).ok_or("invalid cram-hmac-alg")?,
                    secret: FixedStr::new(nc.shared_secret).ok_or("shared-secret too long")?,
                };
                // Refuse an algorithm the kernel does not have now, as C
                // DRBD does (ERR_AUTH_ALG), not at every connect.
                auth.hmac().map_err(|_| "cram-hmac-alg: the kernel has no such digest (rdrbd's kernel: sha256)")?;
                Some(auth)
            }
        };
        let verify_alg = match nc.verify_alg {
            [] => None,
            alg => Some(FixedStr::new(alg).filter(|a| !a.as_bytes().contains(&0)).ok_or("invalid verify-alg")?),
        };
        let csums_alg = match nc.csums_alg {
            [] => None,
            alg => Some(FixedStr::new(alg).filter(|a| !a.as_bytes().contains(&0)).ok_or("invalid csums-alg")?),
        };
        if !nc.integrity_alg.is_empty() {
            return Err("data-integrity-alg is not supported by rdrbd yet");
        }
        let my_addr = SockAddr::from_bytes(my_addr).ok_or("invalid local address")?;
        let peer_addr = SockAddr::from_bytes(peer_addr).ok_or("invalid peer address")?;
        let wire_protocol = WireProtocol::from_raw(nc.wire_protocol).ok_or("invalid wire protocol")?;
        Ok(Self {
            my_addr,
            peer_addr,
            wire_protocol,
            connect_int: nc.connect_int.max(1),
            ping_int: nc.ping_int.max(1),
            ping_timeo: nc.ping_timeo.max(1),
            timeout: nc.timeout.max(1),
            ko_count: nc.ko_count,
            sock_check_timeo: nc.sock_check_timeo,
            after_sb: [nc.after_sb_0p, nc.after_sb_1p, nc.after_sb_2p],
            rr_conflict: nc.rr_conflict,
            always_asbp: nc.always_asbp,
            two_primaries: nc.two_primaries,
            discard_my_data: nc.discard_my_data,
            max_epoch_size: nc.max_epoch_size.max(1),
            auth,
            verify_alg,
            csums_alg,
            csums_after_crash_only: nc.csums_after_crash_only,
            buffers: SocketBuffers { send: nc.sndbuf_size, receive: nc.rcvbuf_size },
        })
    }
}

/// Jiffies for `ms` milliseconds (at least one).
pub(crate) fn ms_to_jiffies(ms: u64) -> i64 {
    let ms = u32::try_from(ms).unwrap_or(u32::MAX).max(1);
    i64::try_from(kernel::time::msecs_to_jiffies(ms)).unwrap_or(i64::MAX)
}

/// Jiffies for `tenths` of a second.
pub(crate) fn deciseconds(tenths: u32) -> i64 {
    i64::try_from(kernel::time::msecs_to_jiffies(tenths.saturating_mul(100))).unwrap_or(i64::MAX)
}

/// A network-side failure that ends the connection.
#[derive(Debug)]
pub(crate) enum NetError {
    /// The socket failed (errno).
    Io(Error),
    /// The peer sent something invalid.
    Protocol(ProtocolError),
    /// The peer disagrees with us (logged where it is found).
    Refused,
    /// The peers cannot agree without the admin (split brain, unrelated
    /// data): the connection goes StandAlone instead of retrying.
    GiveUp,
}

impl From<Error> for NetError {
    fn from(e: Error) -> Self {
        Self::Io(e)
    }
}

impl From<ProtocolError> for NetError {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

/// Largest packet we send outside of data packets (P_PROTOCOL with its
/// string, P_SYNC_PARAM89, P_SIZES with queue limits).
pub(crate) const SMALL_PACKET: usize = 256;

/// Sends one packet whose payload `payload` encodes.
pub(crate) fn send_packet(
    sock: &TcpSocket,
    link: Link,
    cmd: Packet,
    volume: u16,
    payload: impl FnOnce(&mut [u8]) -> core::result::Result<usize, ProtocolError>,
) -> core::result::Result<(), NetError> {
    let mut buf = [0u8; SMALL_PACKET];
    let len = encode_packet(link, cmd, volume, &mut buf, payload)?;
    sock.send_all(buf.get(..len).ok_or(ProtocolError::BufferTooSmall)?)?;
    Ok(())
}

/// Receives one header and checks its payload length against the limits
/// of its command.
pub(crate) fn recv_header(sock: &TcpSocket, link: Link) -> core::result::Result<Header, NetError> {
    let mut buf = [0u8; 16];
    let raw = buf.get_mut(..link.header_size()).ok_or(ProtocolError::BufferTooSmall)?;
    sock.recv_exact(raw)?;
    let header = Header::decode(link, raw)?;
    proto::check_payload_size(header.cmd, link, header.length)?;
    Ok(header)
}

/// The state a connection shares with the netlink side.
#[pin_data]
pub(crate) struct ConnShared {
    pub(crate) name: crate::ResourceName,
    pub(crate) config: NetConfig,
    /// The ping and send timing in force: `net-options` changes it on the
    /// live connection (8.4's threads read `net_conf` at every use).
    /// Shared with the connection's `Replica`, whose sends count ko-count.
    pub(crate) timing: Arc<LiveTiming>,
    /// Volume 0 of the resource, if it exists (rdrbd replicates one volume).
    pub(crate) device: Option<(u16, Arc<DeviceIo>)>,
    /// The connected sockets, so `disconnect` can shut them down.
    #[pin]
    pub(crate) sockets: Mutex<Option<(Arc<TcpSocket>, Arc<TcpSocket>)>>,
    pub(crate) stopping: AtomicBool,
    /// The connection gave up (StandAlone); a new `connect` replaces it.
    pub(crate) gave_up: AtomicBool,
    /// One packet at a time on the meta socket (acks from the receiver,
    /// pings from the asender).
    #[pin]
    pub(crate) meta_lock: Mutex<()>,
    /// The current connection is ending on purpose (the peer's graceful
    /// disconnect): its sockets closing is no network error to log.
    pub(crate) ending: AtomicBool,
    /// The peer answered our P_CONN_ST_CHG_REQ (graceful disconnect).
    pub(crate) peer_replied: AtomicBool,
    /// Woken when `peer_replied` is set; the connection thread's pauses
    /// (between connect attempts) wait here for a stop.
    #[pin]
    pub(crate) wake: WaitQueue,
    /// Protocol, after-sb policies and allow-two-primaries in force:
    /// `net-options` and the peer's P_PROTOCOL_UPDATE change them on the
    /// live connection, and a reconnect uses them.
    #[pin]
    protocol: Mutex<ProtocolSettings>,
}

impl ConnShared {
    /// Sends one packet on the meta socket.
    pub(crate) fn send_meta(
        &self,
        meta: &TcpSocket,
        link: Link,
        cmd: Packet,
        volume: u16,
        payload: impl FnOnce(&mut [u8]) -> core::result::Result<usize, ProtocolError>,
    ) -> core::result::Result<(), NetError> {
        let _guard = self.meta_lock.lock();
        send_packet(meta, link, cmd, volume, payload)
    }

    /// Publishes the connection state and what we know of the peer to the
    /// device (one change).
    pub(crate) fn set_view(&self, conn: ConnState, peer: Role, pdsk: DiskState) {
        if let Some((_, io)) = &self.device {
            io.set_state(|s| {
                s.peer.conn = conn;
                s.peer.peer = peer;
                s.peer.pdsk = pdsk;
            });
        }
    }

    /// The protocol settings in force.
    pub(crate) fn protocol_settings(&self) -> ProtocolSettings {
        *self.protocol.lock()
    }

    /// New protocol settings in force (ours from `net-options`, or the
    /// peer's P_PROTOCOL_UPDATE): the replica's writes and the view follow.
    pub(crate) fn set_protocol_settings(&self, settings: ProtocolSettings) {
        *self.protocol.lock() = settings;
        if let Some((_, io)) = &self.device {
            if let Some(replica) = io.replica() {
                replica.set_protocol(settings.wire_protocol);
            }
            io.set_protocol(Some(settings));
        }
    }

    /// A state without a connection (the engine's sanitising forgets the
    /// peer's role, and its disk unless Inconsistent or Outdated).
    fn set_unconnected(&self, conn: ConnState) {
        if let Some((_, io)) = &self.device {
            io.set_state(|s| s.peer.conn = conn);
        }
    }

    /// After losing the connection as Primary with a fencing policy and the
    /// peer's disk not known outdated: the fence-peer helper
    /// (`conn_disconnect` → `conn_try_outdate_peer_async`; here in the
    /// connection thread, before it reconnects).
    fn fence_lost_peer(&self) {
        let Some((_, io)) = &self.device else { return };
        let pdsk = crate::drbd_include::mgmt::pdsk_while_unconnected(io.peer().pdsk);
        if io.is_primary() && io.mgmt().fencing() >= api::Fencing::ResourceOnly && pdsk == DiskState::DUnknown {
            let addrs = crate::drbd_events::ConnAddrs { my_addr: self.config.my_addr, peer_addr: self.config.peer_addr };
            let outdated = crate::drbd_helpers::try_outdate_peer(self.name.as_str(), io, Some(addrs));
            // Frozen (`resource-and-stonith`): thawed once the peer is known
            // outdated (`after_state_ch` case 1); else frozen until
            // `resume-io` or the peer's return.
            if outdated {
                io.set_state(|s| s.device.susp_fen = false);
            }
        }
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stopping.load(Ordering::SeqCst) || KThread::should_stop()
    }

    /// Whether the sockets are closing on purpose (our disconnect, or the
    /// peer's graceful one): errors they report then are not logged.
    pub(crate) fn closing_on_purpose(&self) -> bool {
        self.stopping.load(Ordering::SeqCst) || self.ending.load(Ordering::SeqCst)
    }
}

/// A configured connection: its thread runs until this is dropped.
pub(crate) struct Connection {
    shared: Arc<ConnShared>,
    thread: Option<KThread>,
}

impl Connection {
    /// Starts connecting `name` with `config`.
    pub(crate) fn start(
        name: crate::ResourceName,
        config: NetConfig,
        device: Option<(u16, Arc<DeviceIo>)>,
    ) -> Result<Self> {
        let timing = Arc::new(LiveTiming::new(&config), GFP_KERNEL)?;
        let shared = Arc::pin_init(
            pin_init!(ConnShared {
                name,
                timing,
                config,
                device,
                sockets <- new_mutex!(None, "rdrbd::ConnShared::sockets"),
                stopping: AtomicBool::new(false),
                gave_up: AtomicBool::new(false),
                meta_lock <- new_mutex!((), "rdrbd::ConnShared::meta_lock"),
                ending: AtomicBool::new(false),
                peer_replied: AtomicBool::new(false),
                wake <- new_wait_queue!("rdrbd::ConnShared::wake"),
                protocol <- new_mutex!(config.protocol_settings(), "rdrbd::ConnShared::protocol"),
            }),
            GFP_KERNEL,
        )?;
        if let Some((_, io)) = &shared.device {
            io.set_protocol(Some(shared.protocol_settings()));
        }
        shared.set_view(ConnState::Unconnected, Role::Unknown, DiskState::DUnknown);
        let thread_name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_r_{}", name.as_str()))?;
        let for_thread = shared.clone();
        let thread = KThread::spawn(&thread_name, move || run(for_thread))?;
        Ok(Self { shared, thread: Some(thread) })
    }
}

impl Connection {
    /// The configuration it runs with.
    pub(crate) fn config(&self) -> &NetConfig {
        &self.shared.config
    }

    /// Whether it gave up and is StandAlone.
    pub(crate) fn gave_up(&self) -> bool {
        self.shared.gave_up.load(Ordering::SeqCst)
    }

    /// The timing `net-options` set last.
    pub(crate) fn timing(&self) -> &LiveTiming {
        &self.shared.timing
    }

    /// The agreed protocol version once the handshake is done.
    pub(crate) fn agreed_version(&self) -> Option<u32> {
        let (_, io) = self.shared.device.as_ref()?;
        io.replica().map(|replica| replica.link_version())
    }

    /// The protocol settings in force (the peer may have changed them).
    pub(crate) fn protocol_settings(&self) -> ProtocolSettings {
        self.shared.protocol_settings()
    }

    /// `net-options` changed protocol, after-sb policies or
    /// allow-two-primaries (`drbd_adm_net_opts`): on an established
    /// connection (protocol 100 or later) the peer is told with
    /// P_PROTOCOL_UPDATE, sent on the data socket between two writes, and
    /// writes sent after it use the new protocol; otherwise they apply at
    /// the next handshake.
    pub(crate) fn change_protocol_settings(&self, settings: ProtocolSettings) -> Result {
        let replica = self.shared.device.as_ref().and_then(|(_, io)| io.replica());
        match replica {
            Some(replica) if replica.link_version() >= 100 => {
                let sent = replica.send_protocol_update(settings.params(0), || self.shared.set_protocol_settings(settings));
                if sent.is_err() {
                    // The connection breaks; the next handshake uses them.
                    self.shared.set_protocol_settings(settings);
                }
                sent
            }
            _ => {
                self.shared.set_protocol_settings(settings);
                Ok(())
            }
        }
    }
}

/// Ping and send timing of a live connection, changed by `net-options`.
pub(crate) struct LiveTiming {
    /// Seconds.
    ping_int: AtomicU32,
    /// Tenths of a second.
    ping_timeo: AtomicU32,
    /// Tenths of a second.
    timeout: AtomicU32,
    /// Blocked sends tolerated; with `timeout` the request timer.
    ko_count: AtomicU32,
}

impl LiveTiming {
    fn new(config: &NetConfig) -> Self {
        Self {
            ping_int: AtomicU32::new(config.ping_int),
            ping_timeo: AtomicU32::new(config.ping_timeo),
            timeout: AtomicU32::new(config.timeout),
            ko_count: AtomicU32::new(config.ko_count),
        }
    }

    /// Applies changed options (zero values are kept at 1, as at connect,
    /// except ko-count, where 0 means off).
    pub(crate) fn set(&self, ping_int: u32, ping_timeo: u32, timeout: u32, ko_count: u32) {
        self.ping_int.store(ping_int.max(1), Ordering::Relaxed);
        self.ping_timeo.store(ping_timeo.max(1), Ordering::Relaxed);
        self.timeout.store(timeout.max(1), Ordering::Relaxed);
        self.ko_count.store(ko_count, Ordering::Relaxed);
    }

    /// `timeout` and `ko-count` as the request timer and the ko-count of
    /// blocked sends use them.
    pub(crate) fn net_timeouts(&self) -> NetTimeouts {
        NetTimeouts { timeout_ds: self.timeout.load(Ordering::Relaxed), ko_count: self.ko_count.load(Ordering::Relaxed) }
    }

    /// ping-int in milliseconds.
    pub(crate) fn idle_ms(&self) -> u64 {
        u64::from(self.ping_int.load(Ordering::Relaxed)).saturating_mul(1000)
    }

    /// ping-timeout in milliseconds.
    pub(crate) fn ping_timeout_ms(&self) -> u64 {
        u64::from(self.ping_timeo.load(Ordering::Relaxed)).saturating_mul(100)
    }

    /// How long the meta socket may be quiet before we ping (ping-int), in
    /// jiffies as [`deciseconds`].
    pub(crate) fn idle(&self) -> i64 {
        deciseconds(self.ping_int.load(Ordering::Relaxed).saturating_mul(10))
    }

    /// How long a PingAck may take (ping-timeout).
    pub(crate) fn ping_timeout(&self) -> i64 {
        deciseconds(self.ping_timeo.load(Ordering::Relaxed))
    }

    /// How long a send may block (timeout).
    pub(crate) fn send_timeout(&self) -> i64 {
        deciseconds(self.timeout.load(Ordering::Relaxed))
    }
}

impl Connection {
    /// Our graceful disconnect (`conn_try_disconnect`): a connected peer
    /// is asked to let us go (P_CONN_ST_CHG_REQ conn Disconnecting, which
    /// it takes as TearDown), so that it goes back to WFConnection without
    /// seeing a network failure. Its P_CONN_ST_CHG_REPLY is awaited for up
    /// to ping-timeout (at least half a second); we disconnect either way.
    fn say_goodbye(&self) {
        let Some((_, io)) = &self.shared.device else { return };
        // The replica exists from the handshake on until the connection
        // is lost (the view already says Disconnecting here).
        let Some(replica) = io.replica() else { return };
        self.shared.peer_replied.store(false, Ordering::SeqCst);
        let request = proto::ReqState::conn_change(ConnState::Disconnecting);
        if replica.send_small(Packet::ConnStChgReq, |out| request.encode(out)).is_err() {
            return;
        }
        let limit_ms = self.shared.config.ping_timeo.saturating_mul(100).max(500);
        let replied = self.shared.wake.wait_until_timeout(|| self.shared.peer_replied.load(Ordering::SeqCst), limit_ms);
        if !replied {
            pr_info!("{}: peer did not answer the disconnect request in time\n", self.shared.name.as_str());
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Stopping first: the connection thread must not reconnect once
        // the peer lets us go.
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.say_goodbye();
        if let Some((data, meta)) = self.shared.sockets.lock().as_ref() {
            data.shutdown();
            meta.shutdown();
        }
        drop(self.thread.take());
        if let Some((_, io)) = &self.shared.device {
            io.set_state(|s| s.peer.conn = ConnState::StandAlone);
            io.set_protocol(None);
        }
    }
}

/// The connection thread (`drbd_receiver` in C): connect, serve, retry.
fn run(shared: Arc<ConnShared>) {
    while !shared.stop_requested() {
        shared.set_unconnected(ConnState::WfConnection);
        let Some((data, meta, resolve_conflicts)) = establish(&shared) else {
            continue;
        };
        let (data, meta) = match (Arc::new(data, GFP_KERNEL), Arc::new(meta, GFP_KERNEL)) {
            (Ok(d), Ok(m)) => (d, m),
            _ => continue,
        };
        *shared.sockets.lock() = Some((data.clone(), meta.clone()));
        match crate::drbd_receiver::serve(&shared, &data, &meta, resolve_conflicts) {
            Ok(()) => {}
            // Our own disconnect closed the sockets.
            Err(NetError::Io(_)) if shared.stop_requested() => {}
            Err(NetError::Io(e)) => pr_info!("{}: connection lost: error {}\n", shared.name.as_str(), e.to_errno()),
            Err(NetError::Protocol(e)) => pr_err!("{}: protocol error from peer: {}; dropping the connection\n",
                shared.name.as_str(), e.reason()),
            Err(NetError::Refused) => {}
            Err(NetError::GiveUp) => {
                shared.gave_up.store(true, Ordering::SeqCst);
                linger_for_peer(&shared, &data);
            }
        }
        data.shutdown();
        meta.shutdown();
        shared.sockets.lock().take();
        if shared.gave_up.load(Ordering::SeqCst) {
            shared.set_unconnected(ConnState::Disconnecting);
            shared.set_unconnected(ConnState::StandAlone);
            shared.fence_lost_peer();
            return;
        }
        // As `conn_disconnect`: the failure, then Unconnected.
        shared.set_unconnected(ConnState::NetworkFailure);
        shared.set_unconnected(ConnState::Unconnected);
        if !shared.stop_requested() {
            shared.fence_lost_peer();
        }
    }
}

/// After we refused the handshake (a split brain, different csums-alg or
/// verify-alg, ...): let the peer see why too, as it does in 8.4 when both
/// nodes decide at about the same time. Closing both sockets at once can
/// reach the peer before it has read our parameters: its meta socket then
/// reports a lost connection and it retries as after a network failure,
/// never logging the refusal (the in-tree C driver did, against our faster
/// refusal of its csums-alg). So we end our data stream (the peer reads it
/// to the end), keep the meta socket open, and wait up to four
/// ping-timeouts for the peer to close.
fn linger_for_peer(shared: &ConnShared, data: &TcpSocket) {
    data.set_timeouts(deciseconds(shared.config.ping_timeo.saturating_mul(4)), 0);
    data.shutdown_write();
    data.drain_until_closed(64);
}

/// `conn_connect`'s socket phase: returns the data and meta sockets and
/// whether we hold RESOLVE_CONFLICTS (we accepted the meta socket), or
/// `None` if the attempt failed (the caller retries) or we are stopping.
fn establish(shared: &ConnShared) -> Option<(TcpSocket, TcpSocket, bool)> {
    let cfg = &shared.config;
    let listener = match TcpSocket::listen(&cfg.my_addr, 5, cfg.buffers) {
        Ok(l) => l,
        Err(e) => {
            pr_err!("{}: cannot listen on the local address: error {}\n", shared.name.as_str(), e.to_errno());
            shared.wake.pause_unless(|| shared.stopping.load(Ordering::SeqCst), cfg.connect_int.saturating_mul(1000));
            return None;
        }
    };
    listener.set_timeouts(deciseconds(cfg.connect_int.saturating_mul(10)), 0);
    let mut data: Option<TcpSocket> = None;
    let mut meta: Option<TcpSocket> = None;
    let mut resolve = false;
    let first_timeout = deciseconds(cfg.ping_timeo.saturating_mul(4));
    // After sockets crossed, each side skips its next connect attempt at
    // random, so two nodes retrying in lockstep fall out of step (C
    // DRBD's `randomize`).
    let mut skip_connect = false;
    loop {
        if shared.stop_requested() {
            return None;
        }
        if !core::mem::take(&mut skip_connect) && (data.is_none() || meta.is_none()) {
            if let Ok(s) = TcpSocket::connect(Some(&cfg.my_addr), &cfg.peer_addr, cfg.buffers) {
                let first = if data.is_none() { Packet::InitialData } else { Packet::InitialMeta };
                if send_packet(&s, Link::HANDSHAKE, first, 0, |_| Ok(0)).is_ok() {
                    if first == Packet::InitialData {
                        data = Some(s);
                    } else {
                        resolve = false;
                        meta = Some(s);
                    }
                }
            }
        }
        if established(shared, &mut data, &mut meta) {
            break;
        }
        if let Ok(s) = listener.accept() {
            s.set_timeouts(first_timeout, first_timeout);
            match recv_header(&s, Link::HANDSHAKE).map(|h| h.cmd) {
                Ok(Packet::InitialData) => {
                    if data.is_some() {
                        pr_warn!("{}: initial packet S crossed\n", shared.name.as_str());
                        skip_connect = crate::kernel_glue::random_u64() & 1 == 1;
                    }
                    data = Some(s);
                }
                Ok(Packet::InitialMeta) => {
                    resolve = true;
                    if meta.is_some() {
                        pr_warn!("{}: initial packet M crossed\n", shared.name.as_str());
                        skip_connect = crate::kernel_glue::random_u64() & 1 == 1;
                    }
                    meta = Some(s);
                }
                _ => pr_warn!("{}: error receiving initial packet\n", shared.name.as_str()),
            }
        }
        if established(shared, &mut data, &mut meta) {
            break;
        }
    }
    Some((data?, meta?, resolve))
}

/// `connection_established`: both sockets there, and still up after
/// sock-check-timeo (a crossed socket the peer dropped shows up as dead).
fn established(shared: &ConnShared, data: &mut Option<TcpSocket>, meta: &mut Option<TcpSocket>) -> bool {
    let cfg = &shared.config;
    if data.is_none() || meta.is_none() {
        return false;
    }
    let check = if cfg.sock_check_timeo != 0 { cfg.sock_check_timeo } else { cfg.ping_timeo };
    shared.wake.pause_unless(|| shared.stopping.load(Ordering::SeqCst), check.saturating_mul(100));
    if data.as_ref().is_some_and(|s| !s.is_alive()) {
        *data = None;
    }
    if meta.as_ref().is_some_and(|s| !s.is_alive()) {
        *meta = None;
    }
    data.is_some() && meta.is_some()
}

/// What rdrbd offers in P_CONNECTION_FEATURES: 8.4's versions and TRIM
/// (discards travel as P_TRIM and are applied as zero-out), but not
/// THIN_RESYNC, WSAME or WZEROES: without WZEROES a peer sends no
/// P_ZEROES, and P_TRIM stays within 4 MiB without WSAME.
const OUR_FEATURES: ConnectionFeatures =
    ConnectionFeatures { feature_flags: proto::feature::TRIM, ..ConnectionFeatures::OURS };

/// `drbd_do_features` on the data socket: both send P_CONNECTION_FEATURES
/// with an h80 header, then agree.
pub(crate) fn exchange_features(name: &str, data: &TcpSocket) -> core::result::Result<Link, NetError> {
    send_packet(data, Link::HANDSHAKE, Packet::ConnectionFeatures, 0, |out| OUR_FEATURES.encode(out))?;
    let header = recv_header(data, Link::HANDSHAKE)?;
    if header.cmd != Packet::ConnectionFeatures {
        pr_err!("{}: expected ConnectionFeatures packet, received: {}\n", name, header.cmd.name());
        return Err(NetError::Refused);
    }
    let mut payload = [0u8; ConnectionFeatures::SIZE];
    data.recv_exact(&mut payload)?;
    let peer = ConnectionFeatures::decode(&payload)?;
    let link = ConnectionFeatures::negotiate(&OUR_FEATURES, &peer).inspect_err(|_| {
        pr_err!("{}: incompatible DRBD dialects: I support {}-{}, peer supports {}-{}\n",
            name, proto::PRO_VERSION_MIN, proto::PRO_VERSION_MAX, peer.protocol_min, peer.protocol_max);
    })?;
    pr_info!("{}: Handshake successful: Agreed network protocol version {}\n", name, link.version);
    pr_info!("{}: Feature flags enabled on protocol level: 0x{:x}\n", name, link.features);
    Ok(link)
}

/// `drbd_do_auth`: each side sends a random challenge and answers the
/// peer's with its HMAC under the shared secret; the peer must answer
/// ours right. `Refused`: a wrong answer (the connection gives up and goes
/// StandAlone, as C's "Authentication of peer failed").
pub(crate) fn authenticate(name: &str, data: &TcpSocket, link: Link, auth: &AuthConfig) -> core::result::Result<(), NetError> {
    const CHALLENGE: usize = proto::AUTH_CHALLENGE_LEN as usize;
    let hmac = auth.hmac().map_err(NetError::Io)?;
    let mut mine = [0u8; CHALLENGE];
    for chunk in mine.chunks_mut(8) {
        chunk.copy_from_slice(&crate::kernel_glue::random_u64().to_ne_bytes()[..chunk.len()]);
    }
    send_challenge_or_response(data, link, Packet::AuthChallenge, &mine)?;
    let header = recv_header(data, link)?;
    if header.cmd != Packet::AuthChallenge {
        pr_err!("{}: expected AuthChallenge packet, received: {}\n", name, header.cmd.name());
        return Err(NetError::GiveUp);
    }
    // recv_header checked the length: CHALLENGE..=2*CHALLENGE.
    let mut theirs = [0u8; 2 * CHALLENGE];
    let theirs = theirs.get_mut(..header.length as usize).ok_or(proto::ProtocolError::TooLong)?;
    data.recv_exact(theirs)?;
    if theirs.get(..CHALLENGE) == Some(&mine[..]) {
        pr_err!("{}: Peer presented the same challenge!\n", name);
        return Err(NetError::GiveUp);
    }
    let mut answer = [0u8; HMAC_MAX_DIGEST];
    let n = hmac.digest(theirs, &mut answer).map_err(NetError::Io)?;
    send_challenge_or_response(data, link, Packet::AuthResponse, answer.get(..n).unwrap_or(&[]))?;
    let header = recv_header(data, link)?;
    if header.cmd != Packet::AuthResponse || header.length as usize != hmac.digest_size() {
        pr_err!("{}: expected AuthResponse packet of {} bytes, received: {} of {}\n",
            name, hmac.digest_size(), header.cmd.name(), header.length);
        return Err(NetError::GiveUp);
    }
    let mut response = [0u8; HMAC_MAX_DIGEST];
    let response = response.get_mut(..hmac.digest_size()).ok_or(proto::ProtocolError::TooLong)?;
    data.recv_exact(response)?;
    let mut right = [0u8; HMAC_MAX_DIGEST];
    let n = hmac.digest(&mine, &mut right).map_err(NetError::Io)?;
    // Every byte compared: no early exit that would time the secret.
    let differ = response.iter().zip(right.get(..n).unwrap_or(&[])).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if differ != 0 || n != response.len() {
        pr_err!("{}: Authentication of peer failed\n", name);
        return Err(NetError::GiveUp);
    }
    pr_info!("{}: Peer authenticated using {} bytes HMAC\n", name, n);
    Ok(())
}

fn send_challenge_or_response(data: &TcpSocket, link: Link, cmd: Packet, payload: &[u8]) -> core::result::Result<(), NetError> {
    let mut buf = [0u8; 16 + 2 * HMAC_MAX_DIGEST];
    let len = encode_packet(link, cmd, 0, &mut buf, |out| {
        let dst = out.get_mut(..payload.len()).ok_or(ProtocolError::BufferTooSmall)?;
        dst.copy_from_slice(payload);
        Ok(payload.len())
    })?;
    data.send_all(buf.get(..len).ok_or(ProtocolError::BufferTooSmall)?)?;
    Ok(())
}

/// What we tell the peer about one volume.
pub(crate) struct LocalView {
    pub(crate) role: Role,
    pub(crate) disk: DiskState,
    pub(crate) uuids: crate::drbd_include::uuid::Uuids,
    pub(crate) bitmap_bits: u64,
    pub(crate) capacity: u64,
}

/// `drbd_send_protocol` and `drbd_connected`: P_PROTOCOL, then for the
/// volume P_SYNC_PARAM89, P_SIZES, P_UUIDS, P_STATE.
pub(crate) fn send_parameters(
    shared: &ConnShared,
    data: &TcpSocket,
    link: Link,
    local: Option<&LocalView>,
) -> core::result::Result<(), NetError> {
    let cfg = &shared.config;
    let mut conn_flags = 0;
    if cfg.discard_my_data {
        conn_flags |= proto::conn_flags::DISCARD_MY_DATA;
    }
    let params = shared.protocol_settings().params(conn_flags);
    send_packet(data, link, Packet::Protocol, 0, |out| params.encode(link, out))?;
    let (Some(local), Some((volume, _))) = (local, &shared.device) else {
        return Ok(());
    };
    let volume = *volume;
    let sync = SyncParams {
        resync_rate: api::disk_conf::RESYNC_RATE_LIMITS.default,
        verify_alg: cfg.verify_alg.as_ref().map_or(&[][..], |a| a.as_bytes()),
        csums_alg: cfg.csums_alg.as_ref().map_or(&[][..], |a| a.as_bytes()),
        controller: Some(RsController::DEFAULTS),
    };
    send_packet(data, link, SyncParams::command(link), volume, |out| sync.encode(link, out))?;
    let sizes = Sizes::ours(link, local.capacity, 0, local.capacity, 0);
    send_packet(data, link, Packet::Sizes, volume, |out| sizes.encode(link, out))?;
    let mut flags = 0;
    if cfg.discard_my_data {
        flags |= uuid_flags::DISCARD_MY_DATA;
    }
    if local.disk == DiskState::Inconsistent {
        flags |= uuid_flags::INCONSISTENT;
    }
    let uuids = UuidsPacket { uuids: local.uuids, bitmap_bits: local.bitmap_bits, flags };
    send_packet(data, link, Packet::Uuids, volume, |out| uuids.encode(out))?;
    send_state(data, link, volume, local.role, ConnState::WfReportParams, local.disk, DiskState::DUnknown, Role::Unknown)
}

/// P_STATE with our state word.
#[allow(clippy::too_many_arguments)]
pub(crate) fn send_state(
    data: &TcpSocket,
    link: Link,
    volume: u16,
    role: Role,
    conn: ConnState,
    disk: DiskState,
    pdsk: DiskState,
    peer: Role,
) -> core::result::Result<(), NetError> {
    let state = api::State {
        role,
        peer,
        conn,
        disk,
        pdsk,
        susp: false,
        aftr_isp: false,
        peer_isp: false,
        user_isp: false,
        susp_nod: false,
        susp_fen: false,
    };
    send_packet(data, link, Packet::State, volume, |out| StatePacket { state }.encode(out))
}
