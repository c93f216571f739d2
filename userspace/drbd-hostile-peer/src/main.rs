//! drbd-hostile-peer: a DRBD 8.4 peer that misbehaves.
//!
//! It connects to a DRBD node (`--node ADDR:PORT`) like a real peer: a data
//! socket opened with P_INITIAL_DATA and a meta socket with P_INITIAL_META
//! (both dialed, or, with `--listen`, sometimes the meta socket accepted
//! from the node's own connect attempt), answers P_CONNECTION_FEATURES, and
//! then, round after round until `--duration` seconds are over, sends one
//! attack: truncated packets, lengths beyond the limits, unknown and
//! out-of-order commands, bad state words, garbage UUIDs and sizes, random
//! bytes, and, after a complete handshake, P_DATA beyond the end of the
//! device or of sizes no multiple of 512. Each round ends with both sockets
//! closed (by the node, or by us) and the next one connects again.
//!
//! Everything is reproducible from the seed it prints (`--seed`). Writes
//! that are legitimate (P_DATA inside the device after a complete
//! handshake) only go to the first `IN_RANGE_BYTES` of the device and carry
//! `IN_RANGE_MARK`; writes the node must refuse carry `OUT_OF_RANGE_MARK`,
//! so a test can look for it on the node's backing disk.
//!
//! Exit status: 0 after the run (errors from the node are the point), 2 on
//! a usage or setup error.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use drbd_include::genl::{ConnState, DiskState, Role, State};
use drbd_include::protocol::{
    decode_body, dp, wire_protocol, Barrier, BlockAck, BlockDesc, BlockRequest, Body, ConnectionFeatures,
    DataPacket, Header, HeaderKind, Link, Packet, ProtocolParams, ReqState, RsController, Sizes,
    SyncParams, SyncUuid, UuidsPacket, DRBD_MAGIC, DRBD_MAGIC_100, DRBD_MAGIC_BIG, ID_SYNCER, MAX_BIO_SIZE,
    PRO_VERSION_MAX, PRO_VERSION_MIN,
};
use drbd_include::uuid::{uuid_flags, Uuids, UUID_JUST_CREATED};

/// Legitimate writes stay within this many bytes at the start of the device.
const IN_RANGE_BYTES: u64 = 1 << 20;
/// Filler of legitimate writes.
const IN_RANGE_MARK: &[u8] = b"rdrbd-hostile-peer in-range write\n";
/// Filler of writes the node must refuse (outside its device).
const OUT_OF_RANGE_MARK: &[u8] = b"RDRBD-HOSTILE-PEER-OUT-OF-RANGE\n";

#[derive(Parser, Debug)]
#[command(version, about = "A hostile DRBD 8.4 peer: valid connects, then malformed and out-of-range packets")]
struct Args {
    /// The node's address (where it listens: its `connect` local address).
    #[arg(long)]
    node: SocketAddr,
    /// Our address (the node's peer address); if given, some rounds accept
    /// the node's own connection there.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Seconds to keep attacking.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seed of the random generator (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// One line per round.
    #[arg(long, short)]
    verbose: bool,
}

/// xorshift64*: reproducible from the seed the run prints.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 if `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }
}

// ---------------------------------------------------------------------------
// Packets

/// A header of any layout with any values (also invalid ones).
fn raw_header(kind: HeaderKind, cmd: u16, volume: u16, length: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(16);
    match kind {
        HeaderKind::H80 => {
            h.extend_from_slice(&DRBD_MAGIC.to_be_bytes());
            h.extend_from_slice(&cmd.to_be_bytes());
            h.extend_from_slice(&(length as u16).to_be_bytes());
        }
        HeaderKind::H95 => {
            h.extend_from_slice(&DRBD_MAGIC_BIG.to_be_bytes());
            h.extend_from_slice(&cmd.to_be_bytes());
            h.extend_from_slice(&length.to_be_bytes());
        }
        HeaderKind::H100 => {
            h.extend_from_slice(&DRBD_MAGIC_100.to_be_bytes());
            h.extend_from_slice(&volume.to_be_bytes());
            h.extend_from_slice(&cmd.to_be_bytes());
            h.extend_from_slice(&length.to_be_bytes());
            h.extend_from_slice(&0u32.to_be_bytes());
        }
    }
    h
}

/// The header a real sender would use on `link` for `length` bytes, with
/// any command number and length.
fn header_for(link: Link, cmd: u16, length: u32) -> Vec<u8> {
    raw_header(HeaderKind::for_payload(link, length), cmd, 0, length)
}

/// A well-formed packet (header by the include crate's encoder).
fn packet(link: Link, cmd: Packet, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut h = [0u8; 16];
    let header = Header { cmd, volume: 0, length };
    let n = header.encode(link, &mut h).unwrap_or(0);
    let mut out = h.get(..n).unwrap_or(&[]).to_vec();
    out.extend_from_slice(payload);
    out
}

/// Encodes a payload with one of the include crate's encoders.
fn encoded(f: impl FnOnce(&mut [u8]) -> Result<usize, drbd_include::protocol::ProtocolError>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    match f(&mut buf) {
        Ok(n) => buf.get(..n).unwrap_or(&[]).to_vec(),
        Err(_) => Vec::new(),
    }
}

fn state_word(role: Role, conn: ConnState, disk: DiskState) -> u32 {
    State {
        role,
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
    .to_u32()
}

fn state_packet(link: Link, word: u32) -> Vec<u8> {
    packet(link, Packet::State, &word.to_be_bytes())
}

fn fill(mark: &[u8], len: usize) -> Vec<u8> {
    mark.iter().copied().cycle().take(len).collect()
}

/// P_DATA (or P_RS_DATA_REPLY...) with `len` bytes of `mark` for `sector`.
fn data_packet(link: Link, cmd: Packet, sector: u64, block_id: u64, seq: u32, len: usize, mark: &[u8]) -> Vec<u8> {
    let head = DataPacket { sector, block_id, seq_num: seq, dp_flags: dp::SEND_WRITE_ACK };
    let mut payload = encoded(|o| head.encode(o));
    payload.extend(fill(mark, len));
    packet(link, cmd, &payload)
}

// ---------------------------------------------------------------------------
// Sockets

fn io_err(what: impl Into<String>) -> io::Error {
    io::Error::other(what.into())
}

/// Connects to `addr` and sends the initial packet `first`.
fn dial(addr: SocketAddr, first: Packet) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&packet(Link::HANDSHAKE, first, &[]))?;
    Ok(s)
}

/// Dials until it works or `deadline` passes (the node listens only while
/// it is between connections).
fn dial_retry(addr: SocketAddr, first: Packet, deadline: Instant) -> io::Result<TcpStream> {
    loop {
        match dial(addr, first) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn read_exact_timeout(s: &mut TcpStream, buf: &mut [u8], timeout: Duration) -> io::Result<()> {
    s.set_read_timeout(Some(timeout))?;
    s.read_exact(buf)
}

/// Reads one packet; `None` for commands unknown to us (the node never
/// sends them).
fn read_packet(s: &mut TcpStream, link: Link, timeout: Duration) -> io::Result<(Packet, Vec<u8>)> {
    let mut h = vec![0u8; link.header_size()];
    read_exact_timeout(s, &mut h, timeout)?;
    let header = Header::decode(link, &h).map_err(|e| io_err(format!("bad header from node: {}", e.reason())))?;
    let len = usize::try_from(header.length).map_err(|_| io_err("length"))?;
    if len > 2 << 20 {
        return Err(io_err("node sent an oversized packet"));
    }
    let mut payload = vec![0u8; len];
    read_exact_timeout(s, &mut payload, timeout)?;
    Ok((header.cmd, payload))
}

/// How the sockets of a round came about.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// We dial both.
    Dial,
    /// We dial the data socket and accept the node's meta socket.
    Mixed,
}

/// Accepts the node's connection carrying P_INITIAL_META.
fn accept_meta(listener: &TcpListener, deadline: Instant) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(Duration::from_secs(5)))?;
                let mut h = [0u8; 8];
                if read_exact_timeout(&mut s, &mut h, Duration::from_secs(2)).is_ok() {
                    if let Ok(header) = Header::decode(Link::HANDSHAKE, &h) {
                        if header.cmd == Packet::InitialMeta {
                            return Ok(s);
                        }
                    }
                }
                // A data socket the node dialed before it took ours: it
                // drops it itself.
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(io_err("the node did not connect to us"));
                }
                thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens the data and meta sockets.
fn establish(args: &Args, mode: Mode, deadline: Instant) -> io::Result<(TcpStream, TcpStream)> {
    match (mode, args.listen) {
        (Mode::Mixed, Some(addr)) => {
            let listener = TcpListener::bind(addr)?;
            let data = dial_retry(args.node, Packet::InitialData, deadline)?;
            // The node connects its meta socket to us on its next attempt;
            // after crossed initial packets it may wait a connect-int
            // first, so we dial it ourselves after a while.
            let meta = match accept_meta(&listener, Instant::now() + Duration::from_secs(3)) {
                Ok(m) => m,
                Err(_) => dial_retry(args.node, Packet::InitialMeta, deadline)?,
            };
            Ok((data, meta))
        }
        _ => {
            let data = dial_retry(args.node, Packet::InitialData, deadline)?;
            let meta = dial_retry(args.node, Packet::InitialMeta, deadline)?;
            Ok((data, meta))
        }
    }
}

/// What the node told us in its handshake packets.
#[derive(Clone, Copy, Debug, Default)]
struct NodeInfo {
    capacity: u64,
    uuids: Option<(Uuids, u64)>,
    disk: Option<DiskState>,
}

/// One connection to the node.
struct Conn {
    data: TcpStream,
    meta: Arc<Mutex<TcpStream>>,
    link: Link,
    reader: Option<thread::JoinHandle<()>>,
    acks: Arc<AtomicU64>,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.data.write_all(bytes)
    }

    fn send_meta(&self, bytes: &[u8]) -> io::Result<()> {
        let mut m = self.meta.lock().map_err(|_| io_err("meta lock"))?;
        m.write_all(bytes)
    }

    /// Reads what the node sends on the data socket until it closes it or
    /// `wait` passes; true if it closed (or reset) the connection.
    fn node_closes(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.data.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.data.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return false,
                Err(_) => return true,
            }
        }
    }

    fn close(mut self) {
        let _ = self.data.shutdown(Shutdown::Both);
        if let Ok(m) = self.meta.lock() {
            let _ = m.shutdown(Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The meta socket's reader: answers pings, counts acks, ends with the
/// socket.
fn meta_reader(mut rx: TcpStream, tx: Arc<Mutex<TcpStream>>, link: Link, acks: Arc<AtomicU64>) {
    let _ = rx.set_read_timeout(None);
    loop {
        let Ok((cmd, _)) = read_packet(&mut rx, link, Duration::from_secs(3600)) else { return };
        match cmd {
            Packet::Ping => {
                let Ok(mut m) = tx.lock() else { return };
                if m.write_all(&packet(link, Packet::PingAck, &[])).is_err() {
                    return;
                }
            }
            Packet::PingAck => {}
            _ => {
                acks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Our side of P_CONNECTION_FEATURES: read the node's, send `offer`.
fn features(data: &mut TcpStream, offer: &ConnectionFeatures) -> io::Result<Link> {
    let (cmd, payload) = read_packet(data, Link::HANDSHAKE, Duration::from_secs(5))?;
    if cmd != Packet::ConnectionFeatures {
        return Err(io_err(format!("node sent {} instead of its features", cmd.name())));
    }
    let node = ConnectionFeatures::decode(&payload).map_err(|e| io_err(e.reason()))?;
    data.write_all(&packet(Link::HANDSHAKE, Packet::ConnectionFeatures, &encoded(|o| offer.encode(o))))?;
    ConnectionFeatures::negotiate(offer, &node).map_err(|e| io_err(e.reason()))
}

/// Reads the node's P_PROTOCOL .. P_STATE.
fn node_params(data: &mut TcpStream, link: Link) -> io::Result<NodeInfo> {
    let mut info = NodeInfo::default();
    loop {
        let (cmd, payload) = read_packet(data, link, Duration::from_secs(5))?;
        match decode_body(cmd, link, &payload) {
            Ok(Body::Sizes(s)) => info.capacity = s.c_size.max(s.d_size),
            Ok(Body::Uuids(u)) => info.uuids = Some((u.uuids, u.flags)),
            Ok(Body::State(s)) => {
                info.disk = Some(s.state.disk);
                return Ok(info);
            }
            Ok(_) => {}
            Err(e) => return Err(io_err(format!("node's {}: {}", cmd.name(), e.reason()))),
        }
    }
}

// ---------------------------------------------------------------------------
// Our handshake packets

fn protocol_packet(link: Link, wire: u32, alg: &[u8]) -> Vec<u8> {
    let p = ProtocolParams {
        wire_protocol: wire,
        after_sb_0p: 0,
        after_sb_1p: 0,
        after_sb_2p: 0,
        conn_flags: 0,
        two_primaries: 0,
        integrity_alg: alg,
    };
    let mut payload = encoded(|o| p.encode(link, o));
    if payload.is_empty() {
        // The encoder refuses bad algorithm names: build it by hand.
        for w in [wire, 0, 0, 0, 0, 0] {
            payload.extend_from_slice(&w.to_be_bytes());
        }
        payload.extend_from_slice(alg);
        payload.push(0);
    }
    packet(link, Packet::Protocol, &payload)
}

fn sync_param_packet(link: Link) -> Vec<u8> {
    let s = SyncParams { resync_rate: 250, verify_alg: &[], csums_alg: &[], controller: Some(RsController::DEFAULTS) };
    packet(link, SyncParams::command(link), &encoded(|o| s.encode(link, o)))
}

fn sizes_packet(link: Link, d_size: u64, c_size: u64) -> Vec<u8> {
    let s = Sizes {
        d_size,
        u_size: 0,
        c_size,
        max_bio_size: link.max_bio_size(),
        queue_order_type: 0,
        dds_flags: 0,
        qlim: link.has(drbd_include::protocol::feature::WSAME).then_some(Default::default()),
    };
    packet(link, Packet::Sizes, &encoded(|o| s.encode(link, o)))
}

fn uuids_packet(link: Link, uuids: Uuids, bits: u64, flags: u64) -> Vec<u8> {
    let u = UuidsPacket { uuids, bitmap_bits: bits, flags };
    packet(link, Packet::Uuids, &encoded(|o| u.encode(o)))
}

/// The node's own UUIDs and disk state sent back: the sync handshake finds
/// nothing to do and the node goes Connected.
fn mirror_params(link: Link, node: &NodeInfo) -> Vec<u8> {
    mirror_params_sized(link, node, node.capacity)
}

/// `mirror_params` with P_SIZES claiming `size` sectors.
fn mirror_params_sized(link: Link, node: &NodeInfo, size: u64) -> Vec<u8> {
    let (uuids, flags) = node.uuids.unwrap_or((Uuids { current: UUID_JUST_CREATED, ..Default::default() }, 0));
    let disk = node.disk.unwrap_or(DiskState::Inconsistent);
    let flags = flags & uuid_flags::INCONSISTENT;
    let mut out = protocol_packet(link, wire_protocol::C, &[]);
    out.extend(sync_param_packet(link));
    out.extend(sizes_packet(link, size, size));
    out.extend(uuids_packet(link, uuids, 0, flags));
    out.extend(state_packet(link, state_word(Role::Secondary, ConnState::WfReportParams, disk)));
    out
}

// ---------------------------------------------------------------------------
// Attacks

/// Where in the connection an attack strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Instead of (or as) the initial packet.
    Initial,
    /// Instead of our P_CONNECTION_FEATURES.
    Features,
    /// After the features, during the node's handshake.
    Handshake,
    /// After a complete handshake (node Connected).
    Connected,
}

/// Statistics of a run.
#[derive(Default)]
struct Stats {
    rounds: u64,
    established: u64,
    handshakes: u64,
    node_closed: u64,
    we_closed: u64,
    connect_failed: u64,
    packets: u64,
    in_range_writes: u64,
    out_of_range_writes: u64,
}

/// Garbage in place of the initial packet on a fresh socket.
fn attack_initial(args: &Args, rng: &mut Rng, what: &mut String) -> io::Result<bool> {
    let mut s = TcpStream::connect_timeout(&args.node, Duration::from_secs(2))?;
    let bytes = match rng.below(6) {
        0 => {
            *what = "random bytes as the initial packet".into();
            let n = 1 + rng.below(64) as usize;
            rng.bytes(n)
        }
        1 => {
            *what = "initial packet with a payload length".into();
            raw_header(HeaderKind::H80, Packet::InitialData as u16, 0, 1 + rng.below(0xffff) as u32)
        }
        2 => {
            *what = "P_DATA as the initial packet".into();
            raw_header(HeaderKind::H80, Packet::Data as u16, 0, 24)
        }
        3 => {
            *what = "truncated initial header".into();
            let h = raw_header(HeaderKind::H80, Packet::InitialData as u16, 0, 0);
            h.get(..1 + rng.below(7) as usize).unwrap_or(&[]).to_vec()
        }
        4 => {
            *what = "h100 header as the initial packet".into();
            raw_header(HeaderKind::H100, Packet::InitialMeta as u16, 0, 0)
        }
        _ => {
            *what = "unknown command as the initial packet".into();
            raw_header(HeaderKind::H80, 0xfff0 - rng.below(16) as u16, 0, 0)
        }
    };
    s.write_all(&bytes)?;
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut buf = [0u8; 64];
    Ok(matches!(s.read(&mut buf), Ok(0) | Err(_)))
}

/// Misbehaviour in place of our features (node waits 4 ping-timeouts).
fn attack_features(c: &mut Conn, rng: &mut Rng, what: &mut String) -> io::Result<()> {
    let hs = Link::HANDSHAKE;
    let offer = ConnectionFeatures::OURS;
    let features = encoded(|o| offer.encode(o));
    match rng.below(8) {
        0 => {
            *what = "features truncated (header promises 72 bytes)".into();
            let mut p = raw_header(HeaderKind::H80, Packet::ConnectionFeatures as u16, 0, 72);
            p.extend(features.get(..rng.below(72) as usize).unwrap_or(&[]));
            c.send(&p)
        }
        1 => {
            *what = "features with an oversized length".into();
            let mut p = raw_header(HeaderKind::H95, Packet::ConnectionFeatures as u16, 0, 0xffff_fff0);
            p.extend(&features);
            c.send(&p)
        }
        2 => {
            let (min, max) = if rng.chance(50) { (200, 300) } else { (1, PRO_VERSION_MIN - 1) };
            *what = format!("features for incompatible versions {min}-{max}");
            let bad = ConnectionFeatures { protocol_min: min, feature_flags: u32::MAX, protocol_max: max };
            c.send(&packet(hs, Packet::ConnectionFeatures, &encoded(|o| bad.encode(o))))
        }
        3 => {
            *what = "P_DATA before the feature handshake".into();
            let head = DataPacket { sector: 0, block_id: 1, seq_num: 1, dp_flags: 0 };
            let mut payload = encoded(|o| head.encode(o));
            payload.extend(fill(OUT_OF_RANGE_MARK, 4096));
            let mut p = raw_header(HeaderKind::H95, Packet::Data as u16, 0, payload.len() as u32);
            p.extend(payload);
            c.send(&p)
        }
        4 => {
            *what = "P_STATE before the feature handshake".into();
            c.send(&state_packet(hs, state_word(Role::Primary, ConnState::Connected, DiskState::UpToDate)))
        }
        5 => {
            *what = "random bytes instead of features".into();
            let n = 1 + rng.below(200) as usize;
            let b = rng.bytes(n);
            c.send(&b)
        }
        6 => {
            *what = "features with a 73-byte payload".into();
            let mut p = raw_header(HeaderKind::H80, Packet::ConnectionFeatures as u16, 0, 73);
            p.extend(&features);
            p.push(0);
            c.send(&p)
        }
        _ => {
            *what = "garbage on the meta socket, features never sent".into();
            let b = rng.bytes(64);
            c.send_meta(&b)
        }
    }
}

/// A bad packet during the node's handshake (after the features).
fn attack_handshake(c: &mut Conn, rng: &mut Rng, node: &NodeInfo, what: &mut String) -> io::Result<()> {
    let link = c.link;
    let mut out = Vec::new();
    // Most of them come after a valid P_PROTOCOL.
    if rng.chance(60) {
        out.extend(protocol_packet(link, wire_protocol::C, &[]));
    }
    match rng.below(16) {
        0 => {
            *what = "unknown command".into();
            let cmd = *rng.pick(&[0x25u16, 0x26, 0x2e, 0x30, 0x35, 0x37, 0x99, 0x100, 0x101, 0x7fff]).unwrap_or(&0x99);
            out.extend(header_for(link, cmd, 8));
            out.extend(rng.bytes(8));
        }
        1 => {
            *what = "P_DATA with a length beyond any limit".into();
            out.extend(raw_header(HeaderKind::for_payload(link, u32::MAX), Packet::Data as u16, 0, 0xffff_ff00));
            out.extend(rng.bytes(100));
        }
        2 => {
            *what = "truncated P_SIZES, then close".into();
            let full = sizes_packet(link, node.capacity, node.capacity);
            let cut = link.header_size() + rng.below(20) as usize;
            out.extend(full.get(..cut).unwrap_or(&full));
        }
        3 => {
            *what = "P_DATA before the handshake completes".into();
            out.extend(data_packet(link, Packet::Data, 0, 7, 1, 4096, OUT_OF_RANGE_MARK));
        }
        4 => {
            *what = "P_RS_DATA_REPLY never requested (handshake)".into();
            out.extend(data_packet(link, Packet::RsDataReply, 8, ID_SYNCER, 0, 4096, OUT_OF_RANGE_MARK));
        }
        5 => {
            *what = "P_BITMAP in the wrong state".into();
            let n = 8 * (1 + rng.below(64) as usize);
            out.extend(packet(link, Packet::Bitmap, &rng.bytes(n)));
        }
        6 => {
            let wire = *rng.pick(&[0u32, wire_protocol::A, wire_protocol::B, 4, 0xffff_ffff]).unwrap_or(&0);
            *what = format!("P_PROTOCOL with wire protocol {wire}");
            out.clear();
            out.extend(protocol_packet(link, wire, &[]));
        }
        7 => {
            *what = "P_PROTOCOL with a garbage integrity algorithm".into();
            out.clear();
            let alg: Vec<u8> = (0..1 + rng.below(63)).map(|_| b'a' + (rng.below(26) as u8)).collect();
            out.extend(protocol_packet(link, wire_protocol::C, &alg));
        }
        8 => {
            let word = (rng.next() as u32) | (1 << (23 + rng.below(9)));
            *what = format!("P_STATE with an undefined word 0x{word:08x}");
            out.extend(state_packet(link, word));
        }
        9 => {
            let d = *rng.pick(&[u64::MAX, u64::MAX / 512, 1 << 62, 1]).unwrap_or(&u64::MAX);
            *what = format!("P_SIZES of {d} sectors, then a mirrored handshake");
            out.clear();
            out.extend(mirror_params_sized(link, node, d));
        }
        10 => {
            *what = "P_UUIDS garbage, then P_STATE UpToDate".into();
            let u = Uuids { current: rng.next(), bitmap: rng.next(), history: [rng.next(), rng.next()] };
            out.extend(uuids_packet(link, u, rng.next(), rng.next()));
            out.extend(state_packet(link, state_word(Role::Secondary, ConnState::WfReportParams, DiskState::UpToDate)));
        }
        11 => {
            *what = "P_STATE before P_UUIDS".into();
            out.extend(state_packet(link, state_word(Role::Secondary, ConnState::WfReportParams, DiskState::UpToDate)));
        }
        12 => {
            *what = "packet for volume 5".into();
            if link.header_size() == 16 {
                out.extend(raw_header(HeaderKind::H100, Packet::Uuids as u16, 5, 48));
                out.extend(rng.bytes(48));
            } else {
                out.extend(header_for(link, Packet::Uuids as u16, 47));
                out.extend(rng.bytes(47));
            }
        }
        13 => {
            *what = "header with a bad magic or non-zero pad".into();
            let mut h = header_for(link, Packet::State as u16, 4);
            let i = if link.header_size() == 16 && rng.chance(50) { 12 + rng.below(4) } else { rng.below(4) };
            if let Some(b) = h.get_mut(i as usize) {
                *b ^= 1 << rng.below(8);
            }
            out.extend(h);
            out.extend(rng.bytes(4));
        }
        14 => {
            *what = "random bytes during the handshake".into();
            let n = 1 + rng.below(4096) as usize;
            out.extend(rng.bytes(n));
        }
        _ => {
            *what = "P_STATE with the wrong length".into();
            let n = *rng.pick(&[0u32, 3, 5, 4096, 65535]).unwrap_or(&5);
            out.extend(header_for(link, Packet::State as u16, n));
            out.extend(rng.bytes(n.min(4096) as usize));
        }
    }
    c.send(&out)
}

/// One packet for a connected node; `writes` counts (in, out of range).
fn connected_packet(link: Link, rng: &mut Rng, node: &NodeInfo, seq: &mut u32, stats: &mut Stats) -> (Vec<u8>, String) {
    let cap = node.capacity;
    *seq = seq.wrapping_add(1);
    let block_id = 0x1000 + u64::from(*seq);
    match rng.below(22) {
        0..=3 => {
            let blocks = 1 + rng.below(8);
            let len = (blocks * 4096).min(IN_RANGE_BYTES);
            let sector = rng.below((IN_RANGE_BYTES - len) / 512 + 1) & !7;
            stats.in_range_writes += 1;
            (data_packet(link, Packet::Data, sector, block_id, *seq, len as usize, IN_RANGE_MARK),
                format!("P_DATA in range: sector {sector} size {len}"))
        }
        4..=6 => {
            // Just past the end (the node's metadata lives there), across
            // the end, far beyond, and at the top of the sector space.
            let len = 512 * (1 + rng.below(16));
            let sector = match rng.below(5) {
                0 => cap,
                1 => cap + rng.below(256),
                // Across the end: starts k sectors before it, k smaller
                // than the write (a 512-byte write cannot cross it).
                2 if len > 512 => cap.saturating_sub(1 + rng.below(len / 512 - 1)),
                2 => cap,
                3 => cap + (1 << 30) + rng.below(1 << 20),
                _ => u64::MAX - rng.below(64),
            };
            stats.out_of_range_writes += 1;
            (data_packet(link, Packet::Data, sector, block_id, *seq, len as usize, OUT_OF_RANGE_MARK),
                format!("P_DATA out of range: sector {sector} size {len} (capacity {cap})"))
        }
        7 => {
            let len = *rng.pick(&[0usize, 1, 100, 511, 513, 1000, 4095, 4097]).unwrap_or(&1000);
            let sector = rng.below(IN_RANGE_BYTES / 512 - 16);
            (data_packet(link, Packet::Data, sector, block_id, *seq, len, OUT_OF_RANGE_MARK),
                format!("P_DATA of {len} bytes"))
        }
        8 => {
            let sector = rng.below(IN_RANGE_BYTES / 512 - 8);
            (data_packet(link, Packet::RsDataReply, sector, ID_SYNCER, 0, 4096, OUT_OF_RANGE_MARK),
                format!("P_RS_DATA_REPLY never requested: sector {sector}"))
        }
        9 => {
            let n = 8 * (1 + rng.below(64) as usize);
            let cmd = if rng.chance(50) { Packet::Bitmap } else { Packet::CompressedBitmap };
            (packet(link, cmd, &rng.bytes(n)), format!("{} while Connected", cmd.name()))
        }
        10 => (packet(link, Packet::SyncUuid, &encoded(|o| SyncUuid { uuid: rng.next() }.encode(o))),
            "P_SYNC_UUID while Connected".into()),
        11 => {
            let cmd = if rng.chance(50) { Packet::DataRequest } else { Packet::RsDataRequest };
            let (sector, blksize) = match rng.below(4) {
                0 => (cap, 4096),
                1 => (rng.below(cap.max(1)), 1 + rng.below(u64::from(u32::MAX)) as u32),
                2 => (u64::MAX - 7, 4096),
                _ => (rng.below(IN_RANGE_BYTES / 512 - 8) & !7, 4096),
            };
            let r = BlockRequest { sector, block_id, blksize };
            (packet(link, cmd, &encoded(|o| r.encode(o))), format!("{} sector {sector} size {blksize}", cmd.name()))
        }
        12 => {
            let d = BlockDesc { sector: rng.next(), blksize: rng.next() as u32 };
            (packet(link, Packet::OutOfSync, &encoded(|o| d.encode(o))),
                format!("P_OUT_OF_SYNC sector {} size {}", d.sector, d.blksize))
        }
        13 => {
            let b = Barrier { barrier: rng.next() as u32 };
            (packet(link, Packet::Barrier, &encoded(|o| b.encode(o))), "P_BARRIER".into())
        }
        14 => {
            let word = rng.next() as u32;
            (state_packet(link, word), format!("P_STATE word 0x{word:08x}"))
        }
        15 => {
            let cmd = if rng.chance(50) { Packet::StateChgReq } else { Packet::ConnStChgReq };
            let r = ReqState { mask: rng.next() as u32, val: rng.next() as u32 };
            (packet(link, cmd, &encoded(|o| r.encode(o))), format!("{} while Connected", cmd.name()))
        }
        16 => {
            let u = Uuids { current: rng.next(), bitmap: rng.next(), history: [rng.next(), rng.next()] };
            let flags = rng.next() & !uuid_flags::SKIP_INITIAL_SYNC;
            (uuids_packet(link, u, rng.next(), flags), "P_UUIDS garbage while Connected".into())
        }
        17 => {
            let d = rng.next();
            (sizes_packet(link, d, d), format!("P_SIZES of {d} sectors while Connected"))
        }
        18 => {
            let cmd = *rng.pick(&[Packet::Trim, Packet::Zeroes, Packet::OvRequest, Packet::CsumRsRequest,
                Packet::RsThinReq, Packet::Wsame, Packet::DataReply, Packet::AuthChallenge]).unwrap_or(&Packet::Trim);
            let n = 24 + 4 * rng.below(4) as usize;
            (packet(link, cmd, &rng.bytes(n)), format!("{} (not expected)", cmd.name()))
        }
        19 => {
            let n = 1 + rng.below(2048) as usize;
            (rng.bytes(n), format!("{n} random bytes"))
        }
        20 => {
            let full = data_packet(link, Packet::Data, 0, block_id, *seq, 4096, IN_RANGE_MARK);
            let cut = rng.below(full.len() as u64) as usize;
            (full.get(..cut).unwrap_or(&[]).to_vec(), format!("P_DATA truncated after {cut} bytes"))
        }
        _ => {
            let len = MAX_BIO_SIZE as usize + 4096;
            let mut p = header_for(link, Packet::Data as u16, (len + DataPacket::SIZE) as u32);
            p.extend(encoded(|o| DataPacket { sector: 0, block_id, seq_num: *seq, dp_flags: 0 }.encode(o)));
            p.extend(fill(OUT_OF_RANGE_MARK, 8192));
            (p, format!("P_DATA of {len} bytes (over the limit)"))
        }
    }
}

/// A P_DATA for a connected node: in range (first `IN_RANGE_BYTES`), or
/// in the sectors right after the device (internal metadata).
fn write_packet(link: Link, rng: &mut Rng, node: &NodeInfo, seq: &mut u32, stats: &mut Stats) -> (Vec<u8>, String) {
    *seq = seq.wrapping_add(1);
    let block_id = 0x1000 + u64::from(*seq);
    let cap = node.capacity;
    if rng.chance(50) {
        let len = 4096 * (1 + rng.below(4));
        let sector = rng.below((IN_RANGE_BYTES - len) / 512 + 1) & !7;
        stats.in_range_writes += 1;
        return (data_packet(link, Packet::Data, sector, block_id, *seq, len as usize, IN_RANGE_MARK),
            format!("P_DATA in range: sector {sector} size {len}"));
    }
    let len = 512 * (1 + rng.below(8));
    let sector = cap + rng.below(96);
    stats.out_of_range_writes += 1;
    (data_packet(link, Packet::Data, sector, block_id, *seq, len as usize, OUT_OF_RANGE_MARK),
        format!("P_DATA out of range: sector {sector} size {len} (capacity {cap})"))
}

/// A meta-socket packet for a connected node.
fn meta_packet(link: Link, rng: &mut Rng) -> (Vec<u8>, String) {
    match rng.below(6) {
        0 => {
            let cmd = *rng.pick(&[Packet::WriteAck, Packet::RecvAck, Packet::NegAck, Packet::Superseded,
                Packet::RetryWrite, Packet::NegDReply]).unwrap_or(&Packet::WriteAck);
            let a = BlockAck { sector: rng.next(), block_id: rng.next(), blksize: rng.next() as u32, seq_num: 0 };
            (packet(link, cmd, &encoded(|o| a.encode(o))), format!("meta: {} for an unknown request", cmd.name()))
        }
        1 => {
            let cmd = *rng.pick(&[Packet::RsWriteAck, Packet::NegRsDReply, Packet::RsIsInSync, Packet::RsCancel,
                Packet::NegAck]).unwrap_or(&Packet::RsWriteAck);
            let a = BlockAck { sector: rng.next() >> rng.below(64), block_id: ID_SYNCER, blksize: rng.next() as u32, seq_num: 0 };
            (packet(link, cmd, &encoded(|o| a.encode(o))), format!("meta: {} for no resync", cmd.name()))
        }
        2 => {
            let mut p = Vec::new();
            for _ in 0..(1 + rng.below(200)) {
                p.extend(packet(link, Packet::Ping, &[]));
            }
            (p, "meta: ping flood".into())
        }
        3 => (packet(link, Packet::Data, &rng.bytes(24)), "meta: P_DATA on the meta socket".into()),
        4 => {
            let n = 1 + rng.below(256) as usize;
            (rng.bytes(n), "meta: random bytes".into())
        }
        _ => (header_for(link, Packet::BarrierAck as u16, 4096), "meta: P_BARRIER_ACK with a bad length".into()),
    }
}

// ---------------------------------------------------------------------------
// Rounds

fn pick_stage(rng: &mut Rng) -> Stage {
    match rng.below(100) {
        0..=9 => Stage::Initial,
        10..=24 => Stage::Features,
        25..=54 => Stage::Handshake,
        _ => Stage::Connected,
    }
}

/// One round: connect, attack, see whether the node drops us, close.
fn round(args: &Args, rng: &mut Rng, stats: &mut Stats, end: Instant) -> String {
    let stage = pick_stage(rng);
    let mut what = String::new();
    if stage == Stage::Initial {
        return match attack_initial(args, rng, &mut what) {
            Ok(true) => {
                stats.node_closed += 1;
                format!("{what}: node closed")
            }
            Ok(false) => format!("{what}: still open"),
            Err(e) => {
                stats.connect_failed += 1;
                format!("{what}: {e}")
            }
        };
    }
    let mode = if args.listen.is_some() && rng.chance(30) { Mode::Mixed } else { Mode::Dial };
    let deadline = (Instant::now() + Duration::from_secs(25)).min(end + Duration::from_secs(5));
    let (data, meta) = match establish(args, mode, deadline) {
        Ok(s) => s,
        Err(e) => {
            stats.connect_failed += 1;
            return format!("{mode:?}: could not connect: {e}");
        }
    };
    stats.established += 1;
    let Ok(meta_rx) = meta.try_clone() else { return "meta socket clone failed".into() };
    let mut c = Conn {
        data,
        meta: Arc::new(Mutex::new(meta)),
        link: Link::HANDSHAKE,
        reader: None,
        acks: Arc::new(AtomicU64::new(0)),
    };
    let result = run_round(&mut c, meta_rx, stage, rng, stats, &mut what);
    let closed = match result {
        Ok(wait) => c.node_closes(wait),
        Err(_) => true,
    };
    if closed {
        stats.node_closed += 1;
    } else {
        stats.we_closed += 1;
    }
    let acks = c.acks.load(Ordering::Relaxed);
    c.close();
    let how = match (&result, closed) {
        (Err(e), _) => format!("send failed ({e}): node closed"),
        (Ok(_), true) => "node closed".into(),
        (Ok(_), false) => "still open, we close".into(),
    };
    format!("{mode:?} {stage:?}: {what}: {how}; {acks} acks")
}

/// The attack of one round on established sockets; returns how long to
/// wait for the node to drop the connection.
fn run_round(
    c: &mut Conn,
    meta_rx: TcpStream,
    stage: Stage,
    rng: &mut Rng,
    stats: &mut Stats,
    what: &mut String,
) -> io::Result<Duration> {
    if stage == Stage::Features {
        // The node sends its features first; then it waits 4 ping-timeouts
        // for ours.
        let _ = read_packet(&mut c.data, Link::HANDSHAKE, Duration::from_secs(5))?;
        attack_features(c, rng, what)?;
        stats.packets += 1;
        return Ok(Duration::from_secs(3));
    }
    let mut offer = ConnectionFeatures::OURS;
    if rng.chance(25) {
        // An older peer: h80/h95 headers, no volumes.
        offer.protocol_max = PRO_VERSION_MIN + rng.below(u64::from(PRO_VERSION_MAX - PRO_VERSION_MIN)) as u32;
    }
    c.link = features(&mut c.data, &offer)?;
    let link = c.link;
    let tx = c.meta.clone();
    let acks = c.acks.clone();
    c.reader = Some(thread::spawn(move || meta_reader(meta_rx, tx, link, acks)));
    let node = node_params(&mut c.data, link)?;
    if stage == Stage::Handshake {
        attack_handshake(c, rng, &node, what)?;
        stats.packets += 1;
        return Ok(Duration::from_secs(2));
    }
    c.send(&mirror_params(link, &node))?;
    stats.handshakes += 1;
    let n = 1 + rng.below(12);
    let mut seq = 0u32;
    let mut names = Vec::new();
    // Half of the rounds send only writes: in range, and beyond the end
    // where the node keeps its metadata.
    let writes_only = rng.chance(50);
    for _ in 0..n {
        let (bytes, name) = if writes_only {
            write_packet(link, rng, &node, &mut seq, stats)
        } else if rng.chance(15) {
            meta_packet(link, rng)
        } else {
            connected_packet(link, rng, &node, &mut seq, stats)
        };
        let on_meta = name.starts_with("meta:");
        names.push(name);
        *what = format!("v{} capacity {}: {}", link.version, node.capacity, names.join(", "));
        stats.packets += 1;
        if on_meta {
            c.send_meta(&bytes)?;
        } else {
            c.send(&bytes)?;
        }
        if rng.chance(20) {
            thread::sleep(Duration::from_millis(rng.below(200)));
        }
    }
    Ok(Duration::from_millis(1500))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64
    });
    println!("drbd-hostile-peer: seed {seed}, node {}, listen {:?}, {} s", args.node, args.listen, args.duration);
    let mut rng = Rng::new(seed);
    let mut stats = Stats::default();
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    while Instant::now() < end {
        stats.rounds += 1;
        let line = round(&args, &mut rng, &mut stats, end);
        if args.verbose {
            println!("[{:6.1}] round {}: {line}", start.elapsed().as_secs_f64(), stats.rounds);
        }
    }
    println!(
        "drbd-hostile-peer: seed {seed}: {} rounds, {} connected, {} handshakes completed, {} packets, \
         {} in-range and {} out-of-range writes sent; node closed {} times, we closed {}, {} connects failed",
        stats.rounds, stats.established, stats.handshakes, stats.packets, stats.in_range_writes,
        stats.out_of_range_writes, stats.node_closed, stats.we_closed, stats.connect_failed
    );
    if stats.established == 0 {
        eprintln!("drbd-hostile-peer: never got a connection to {}", args.node);
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn packets_decode() {
        let link = Link { version: 101, features: 0 };
        let p = data_packet(link, Packet::Data, 8, 1, 1, 4096, IN_RANGE_MARK);
        let h = Header::decode(link, &p).unwrap();
        assert_eq!(h.cmd, Packet::Data);
        assert_eq!(h.length as usize, p.len() - 16);
        let node = NodeInfo { capacity: 1000, uuids: None, disk: Some(DiskState::Inconsistent) };
        let mut bytes = &mirror_params(link, &node)[..];
        let mut cmds = Vec::new();
        while !bytes.is_empty() {
            let h = Header::decode(link, bytes).unwrap();
            let (pkt, rest) = bytes.split_at(16 + h.length as usize);
            decode_body(h.cmd, link, &pkt[16..]).unwrap();
            cmds.push(h.cmd);
            bytes = rest;
        }
        assert_eq!(cmds, [Packet::Protocol, Packet::SyncParam89, Packet::Sizes, Packet::Uuids, Packet::State]);
    }

    #[test]
    fn old_link_headers() {
        let link = Link { version: 94, features: 0 };
        let p = sizes_packet(link, 1, 1);
        assert_eq!(Header::decode(link, &p).unwrap().cmd, Packet::Sizes);
        let h = raw_header(HeaderKind::H95, Packet::Data as u16, 0, 100_000);
        assert_eq!(Header::decode(link, &h).unwrap().length, 100_000);
    }

    #[test]
    fn seeded_rng_is_deterministic() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        assert!((0..100).all(|_| a.next() == b.next()));
    }

    #[test]
    fn connected_packets_are_built() {
        let link = Link { version: 101, features: 0 };
        let node = NodeInfo { capacity: 500_000, uuids: None, disk: None };
        let mut rng = Rng::new(7);
        let mut stats = Stats::default();
        let mut seq = 0;
        for _ in 0..500 {
            let (bytes, name) = connected_packet(link, &mut rng, &node, &mut seq, &mut stats);
            assert!(!name.is_empty());
            assert!(bytes.len() < 2 << 20);
        }
        assert!(stats.in_range_writes > 0 && stats.out_of_range_writes > 0);
    }
}
