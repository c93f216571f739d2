//! The connection of a resource to its peer (DRBD 8.4 `conn_connect`):
//! a kthread that listens on our address and connects to the peer's until
//! a data and a meta socket are up (told apart by P_INITIAL_DATA /
//! P_INITIAL_META), negotiates the protocol (P_CONNECTION_FEATURES), sends
//! our parameters (`drbd_connected`) and hands over to the receiver
//! (`drbd_receiver.rs`). When the link breaks it starts over, until
//! `disconnect` stops it.

use core::sync::atomic::{AtomicBool, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use kernel::new_mutex;

use crate::drbd_include::genl::{self as api, ConnState, DiskState, Role};
use crate::drbd_include::protocol::{
    self as proto, encode_packet, ConnectionFeatures, Link, Packet, ProtocolError,
    RsController, Sizes, StatePacket, SyncParams, UuidsPacket,
};
use crate::drbd_include::protocol_settings::ProtocolSettings;
use crate::drbd_include::uuid::uuid_flags;
use crate::drbd_req::DeviceIo;
use crate::drbd_peer_device::{PeerDevice, ResyncRate};
use crate::drbd_peer_writes::{ACK_BATCH, BARRIER_ACK_BATCH};
use crate::drbd_packet_seq::PacketSeq;
use crate::drbd_net::{alg_bytes, deciseconds, recv_header, send_packet, AuthConfig, LiveTiming, NetConfig, NetError, SyncAlgs};
use crate::kernel_glue::crypto::HMAC_MAX_DIGEST;
use crate::kernel_glue::net::TcpSocket;
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// The state a connection shares with the netlink side.
#[pin_data]
pub(crate) struct ConnShared {
    pub(crate) name: crate::ResourceName,
    pub(crate) config: NetConfig,
    /// The ping and send timing in force: `net-options` changes it on the
    /// live connection (8.4's threads read `net_conf` at every use).
    /// Shared with the connection's `Replica`, whose sends count ko-count.
    pub(crate) timing: Arc<LiveTiming>,
    /// Volume 0 of the resource, if it exists (rdrbd replicates one
    /// volume), with the connection's peer device for it.
    pub(crate) volume: Option<ConnVolume>,
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
    /// verify-alg and csums-alg in force: `net-options` and the peer's
    /// P_SYNC_PARAM on the live connection change them (8.4 adopts the
    /// peer's into its own net_conf), and a reconnect uses them.
    #[pin]
    sync_algs: Mutex<SyncAlgs>,
}


/// Bytes of one block ack at most: the largest header and its payload.
const ACK_PACKET_MAX: usize = 16 + proto::BlockAck::SIZE;
/// The same for a P_BARRIER_ACK.
const BARRIER_ACK_PACKET_MAX: usize = 16 + proto::BarrierAck::SIZE;

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

    /// Sends block acks on the meta socket in one send, so that the acks
    /// of writes completed together leave in one segment (8.4's asender
    /// corks the meta socket around `drbd_finish_peer_reqs`).
    /// The acks of replicated writes take their numbers from `seq` as they
    /// go on the socket (`send_block_ack`).
    pub(crate) fn send_meta_acks(
        &self,
        meta: &TcpSocket,
        link: Link,
        volume: u16,
        acks: &[(Packet, proto::BlockAck)],
        seq: Option<&PacketSeq>,
    ) -> core::result::Result<(), NetError> {
        let mut buf = [0u8; ACK_BATCH * ACK_PACKET_MAX];
        let mut len = 0usize;
        let _guard = self.meta_lock.lock();
        for (cmd, ack) in acks.iter().take(ACK_BATCH) {
            let out = buf.get_mut(len..).ok_or(ProtocolError::BufferTooSmall)?;
            let ack = numbered(*cmd, *ack, seq);
            len += encode_packet(link, *cmd, volume, out, |body| ack.encode(body))?;
        }
        meta.send_all(buf.get(..len).ok_or(ProtocolError::BufferTooSmall)?)?;
        Ok(())
    }

    /// Sends P_BARRIER_ACKs (volume 0) on the meta socket in one send:
    /// the epochs a flush made stable together are acked in one segment.
    pub(crate) fn send_meta_barrier_acks(
        &self,
        meta: &TcpSocket,
        link: Link,
        acks: &[proto::BarrierAck],
    ) -> core::result::Result<(), NetError> {
        let mut buf = [0u8; BARRIER_ACK_BATCH * BARRIER_ACK_PACKET_MAX];
        let mut len = 0usize;
        for ack in acks.iter().take(BARRIER_ACK_BATCH) {
            let out = buf.get_mut(len..).ok_or(ProtocolError::BufferTooSmall)?;
            len += encode_packet(link, Packet::BarrierAck, 0, out, |body| ack.encode(body))?;
        }
        let _guard = self.meta_lock.lock();
        meta.send_all(buf.get(..len).ok_or(ProtocolError::BufferTooSmall)?)?;
        Ok(())
    }

    /// Sends one block ack; an ack of a replicated write takes the next
    /// number of `seq` (8.4's `_drbd_send_ack`), under the socket's lock,
    /// so that the numbers leave in order.
    pub(crate) fn send_block_ack(
        &self,
        meta: &TcpSocket,
        link: Link,
        volume: u16,
        cmd: Packet,
        ack: proto::BlockAck,
        seq: Option<&PacketSeq>,
    ) -> core::result::Result<(), NetError> {
        let _guard = self.meta_lock.lock();
        let ack = numbered(cmd, ack, seq);
        send_packet(meta, link, cmd, volume, |out| ack.encode(out))
    }

    /// Publishes the connection state and what we know of the peer to the
    /// device (one change).
    pub(crate) fn set_view(&self, conn: ConnState, peer: Role, pdsk: DiskState) {
        if let Some(ConnVolume { io, .. }) = &self.volume {
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

    /// The verify-alg and csums-alg in force.
    pub(crate) fn sync_algs(&self) -> SyncAlgs {
        *self.sync_algs.lock()
    }

    /// New verify-alg and csums-alg (ours from `net-options`, or the
    /// peer's P_SYNC_PARAM).
    pub(crate) fn set_sync_algs(&self, algs: SyncAlgs) {
        *self.sync_algs.lock() = algs;
    }

    /// New protocol settings in force (ours from `net-options`, or the
    /// peer's P_PROTOCOL_UPDATE): the replica's writes and the view follow.
    pub(crate) fn set_protocol_settings(&self, settings: ProtocolSettings) {
        *self.protocol.lock() = settings;
        if let Some(ConnVolume { io, .. }) = &self.volume {
            if let Some(replica) = io.replica() {
                replica.set_protocol(settings.wire_protocol);
            }
            io.set_protocol(Some(settings));
        }
    }

    /// A state without a connection (the engine's sanitising forgets the
    /// peer's role, and its disk unless Inconsistent or Outdated). A disk
    /// attached while connected that had no handshake yet takes the state
    /// its metadata flags give (8.4's sanitize_state, "connection breaks
    /// down before we finished Negotiating").
    fn set_unconnected(&self, conn: ConnState) {
        if let Some(ConnVolume { io, .. }) = &self.volume {
            let flagged = io.with_md(|md, _| md.disk_state());
            io.set_state(|s| {
                s.peer.conn = conn;
                if let (DiskState::Negotiating, Some(disk)) = (s.device.disk, flagged) {
                    s.device.disk = disk;
                }
            });
        }
    }

    /// After losing the connection as Primary with a fencing policy and the
    /// peer's disk not known outdated: the fence-peer helper
    /// (`conn_disconnect` → `conn_try_outdate_peer_async`; here in the
    /// connection thread, before it reconnects).
    fn fence_lost_peer(&self) {
        let Some(ConnVolume { io, .. }) = &self.volume else { return };
        let pdsk = crate::drbd_include::mgmt::pdsk_while_unconnected(io.peer().pdsk);
        if io.is_primary() && io.fencing() >= api::Fencing::ResourceOnly && pdsk == DiskState::DUnknown {
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

/// A volume a connection replicates: the device, and the peer device the
/// connection owns for it (DRBD 9's `connection->peer_devices`). The
/// device holds the peer device too while the connection lives (its bio
/// path sends through the replica); [`Connection`]'s drop takes it back.
pub(crate) struct ConnVolume {
    pub(crate) volume: u16,
    pub(crate) io: Arc<DeviceIo>,
    pub(crate) pd: Arc<PeerDevice>,
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
        device: Option<(u16, Arc<DeviceIo>, ResyncRate)>,
    ) -> Result<Self> {
        let timing = Arc::new(LiveTiming::new(&config), GFP_KERNEL)?;
        let volume = match device {
            Some((volume, io, rate)) => {
                let pd = Arc::pin_init(PeerDevice::new(rate), GFP_KERNEL)?;
                Some(ConnVolume { volume, io, pd })
            }
            None => None,
        };
        let shared = Arc::pin_init(
            pin_init!(ConnShared {
                name,
                timing,
                config,
                volume,
                sockets <- new_mutex!(None, "rdrbd::ConnShared::sockets"),
                stopping: AtomicBool::new(false),
                gave_up: AtomicBool::new(false),
                meta_lock <- new_mutex!((), "rdrbd::ConnShared::meta_lock"),
                ending: AtomicBool::new(false),
                peer_replied: AtomicBool::new(false),
                wake <- new_wait_queue!("rdrbd::ConnShared::wake"),
                protocol <- new_mutex!(config.protocol_settings(), "rdrbd::ConnShared::protocol"),
                sync_algs <- new_mutex!(SyncAlgs { verify: config.verify_alg, csums: config.csums_alg },
                    "rdrbd::ConnShared::sync_algs"),
            }),
            GFP_KERNEL,
        )?;
        if let Some(ConnVolume { io, pd, .. }) = &shared.volume {
            io.set_peer_device(Some(pd.clone()));
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
        let io = &self.shared.volume.as_ref()?.io;
        io.replica().map(|replica| replica.link_version())
    }

    /// The protocol settings in force (the peer may have changed them).
    pub(crate) fn protocol_settings(&self) -> ProtocolSettings {
        self.shared.protocol_settings()
    }

    /// The agreed version and features once the handshake is done.
    pub(crate) fn peer_link(&self) -> Option<Link> {
        let io = &self.shared.volume.as_ref()?.io;
        io.replica().map(|replica| replica.link())
    }

    /// `net-options` changed protocol, after-sb policies,
    /// allow-two-primaries or data-integrity-alg (`drbd_adm_net_opts`): on
    /// an established connection (protocol 100 or later) the peer is told
    /// with P_PROTOCOL_UPDATE, sent on the data socket between two writes,
    /// and writes sent after it use the new settings; otherwise they apply
    /// at the next handshake.
    pub(crate) fn change_protocol_settings(&self, settings: ProtocolSettings) -> Result {
        let replica = self.shared.volume.as_ref().and_then(|v| v.io.replica());
        match replica {
            Some(replica) if replica.link_version() >= 100 => {
                let integrity = crate::drbd_net::integrity_digest(&settings.integrity_alg)?;
                let sent = replica.send_protocol_update(settings.params(0), integrity,
                    || self.shared.set_protocol_settings(settings));
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

impl Connection {
    /// `net-options` changed verify-alg or csums-alg: in force at once,
    /// and an established peer is told with P_SYNC_PARAM (8.4's
    /// `drbd_send_sync_param`), which it adopts.
    pub(crate) fn change_sync_algs(&self, algs: SyncAlgs) -> Result {
        self.shared.set_sync_algs(algs);
        let Some(replica) = self.shared.volume.as_ref().and_then(|v| v.io.replica()) else { return Ok(()) };
        let link = replica.link();
        let sync = sync_params(&algs);
        replica.send_small(SyncParams::command(link), |out| sync.encode(link, out))
    }

    /// The verify-alg and csums-alg in force.
    pub(crate) fn sync_algs(&self) -> SyncAlgs {
        self.shared.sync_algs()
    }

    /// Our graceful disconnect (`conn_try_disconnect`): a connected peer
    /// is asked to let us go (P_CONN_ST_CHG_REQ conn Disconnecting, which
    /// it takes as TearDown), so that it goes back to WFConnection without
    /// seeing a network failure. Its P_CONN_ST_CHG_REPLY is awaited for up
    /// to ping-timeout (at least half a second); we disconnect either way.
    fn say_goodbye(&self) {
        let Some(ConnVolume { io, .. }) = &self.shared.volume else { return };
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
        if let Some(ConnVolume { io, .. }) = &self.shared.volume {
            io.set_state(|s| s.peer.conn = ConnState::StandAlone);
            io.set_protocol(None);
            // The device lets go of the peer device (and the cycle through
            // it back to the device ends): the connection owned it.
            io.set_peer_device(None);
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
        let result = crate::drbd_receiver::serve(&shared, &data, &meta, resolve_conflicts);
        // As `conn_disconnect` after the failure: ProtocolError or
        // NetworkFailure, then Unconnected.
        let failure = if matches!(result, Err(NetError::Protocol(_))) {
            ConnState::ProtocolError
        } else {
            ConnState::NetworkFailure
        };
        match result {
            Ok(()) => {}
            // Our own disconnect closed the sockets.
            Err(NetError::Io(_)) if shared.stop_requested() => {}
            Err(NetError::Io(e)) => pr_info!("{}: connection lost: error {}\n", shared.name.as_str(), e.to_errno()),
            Err(NetError::Protocol(e)) => pr_err!("{}: protocol error from peer: {}; dropping the connection\n",
                shared.name.as_str(), e.reason()),
            Err(NetError::Refused) => {}
            // `serve` lingered for the peer to see why.
            Err(NetError::GiveUp) => shared.gave_up.store(true, Ordering::SeqCst),
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
        shared.set_unconnected(failure);
        shared.set_unconnected(ConnState::Unconnected);
        if !shared.stop_requested() {
            shared.fence_lost_peer();
        }
    }
}

/// `ack` with the next number of `seq` if it answers a replicated write
/// (the numbers the resolving peer orders its data socket by); resync acks
/// keep theirs.
fn numbered(cmd: Packet, ack: proto::BlockAck, seq: Option<&PacketSeq>) -> proto::BlockAck {
    let numbers = matches!(cmd, Packet::WriteAck | Packet::RecvAck | Packet::NegAck | Packet::Superseded | Packet::RetryWrite)
        && ack.block_id != proto::ID_SYNCER;
    match seq {
        Some(seq) if numbers => proto::BlockAck { seq_num: seq.next(), ..ack },
        _ => ack,
    }
}

/// After we refused the handshake (a split brain, different csums-alg or
/// verify-alg, ...): let the peer see why too, as it does in 8.4 when both
/// nodes decide at about the same time. Closing both sockets at once can
/// reach the peer before it has read our parameters: its meta socket then
/// reports a lost connection and it retries as after a network failure,
/// never logging the refusal (the in-tree C driver did, against our faster
/// refusal of its csums-alg). So we end our data stream (the peer reads it
/// to the end), keep the meta socket open (the receiver calls this before
/// its teardown shuts it down), and wait up to four ping-timeouts for the
/// peer to close.
pub(crate) fn linger_for_peer(shared: &ConnShared, data: &TcpSocket) {
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
    ConnectionFeatures { feature_flags: proto::feature::TRIM | proto::feature::RDRBD_WRITE_CONFLICTS, ..ConnectionFeatures::OURS };

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
    /// We went down as Primary (P_UUIDS flag CRASHED_PRIMARY).
    pub(crate) crashed_primary: bool,
}

impl LocalView {
    /// The flags of our P_UUIDS (`drbd_send_uuids`) but for
    /// DISCARD_MY_DATA, which only the connect sends.
    pub(crate) fn uuid_flags(&self) -> u64 {
        let mut flags = 0;
        if self.disk == DiskState::Inconsistent {
            flags |= uuid_flags::INCONSISTENT;
        }
        if self.crashed_primary {
            flags |= uuid_flags::CRASHED_PRIMARY;
        }
        flags
    }

    /// Sends our P_UUIDS on a live connection.
    pub(crate) fn send_uuids(&self, replica: &crate::drbd_sender::Replica) -> Result {
        replica.send_uuids(self.uuids, self.bitmap_bits, self.uuid_flags())
    }
}

/// P_SYNC_PARAM(89) with `algs` (8.4's `drbd_send_sync_param`; the rate
/// and controller fields are informational for the peer).
pub(crate) fn sync_params(algs: &SyncAlgs) -> SyncParams<'_> {
    SyncParams {
        resync_rate: api::disk_conf::RESYNC_RATE_LIMITS.default,
        verify_alg: alg_bytes(&algs.verify),
        csums_alg: alg_bytes(&algs.csums),
        controller: Some(RsController::DEFAULTS),
    }
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
    let settings = shared.protocol_settings();
    let params = settings.params(conn_flags);
    send_packet(data, link, Packet::Protocol, 0, |out| params.encode(link, out))?;
    let (Some(local), Some(ConnVolume { volume, io, .. })) = (local, &shared.volume) else {
        return Ok(());
    };
    let volume = *volume;
    let algs = shared.sync_algs();
    let sync = sync_params(&algs);
    send_packet(data, link, SyncParams::command(link), volume, |out| sync.encode(link, out))?;
    // What our disk offers, the user's --size and the size exposed now
    // (`drbd_send_sizes`).
    let sizes = Sizes::ours(link, local.capacity, io.resize().user_size(), io.exposed_sectors(), 0);
    send_packet(data, link, Packet::Sizes, volume, |out| sizes.encode(link, out))?;
    let mut flags = local.uuid_flags();
    if cfg.discard_my_data {
        flags |= uuid_flags::DISCARD_MY_DATA;
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
