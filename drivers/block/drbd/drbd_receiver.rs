//! Serving an established connection: the feature handshake, our
//! parameters, then the data socket's receive loop (`drbdd`) and the meta
//! socket's (`drbd_ack_receiver`: pings) in a second thread. Every packet
//! is checked (command known and allowed on that socket, payload length,
//! payload contents) before it is acted on; anything else ends the
//! connection with a log line.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::drbd_conn::{self as conn, ConnShared, ConnVolume, LocalView};
use crate::drbd_net::{self as net, NetError};
use crate::drbd_csums::CsumsState;
use crate::drbd_include::bitmap_rle::BitmapXfer;
use crate::drbd_include::genl::{self as api, ConnState, DiskState, Role, WireProtocol};
use crate::drbd_include::protocol_settings::{peer_integrity_alg, AlgName, Incompatible, PeerProtocol};
use crate::drbd_include::request_timer;
use crate::drbd_include::protocol::{self as proto, decode_body, Body, Link, Packet, Socket, ID_SYNCER};
use crate::drbd_include::faults::Fault;
use crate::drbd_include::io_error::IoFailure;
use crate::kernel_glue::faults;
use crate::drbd_io_error::{local_io_failed, peer_disk_changed};
use crate::drbd_remote_read::Answer;
use crate::drbd_req::DeviceIo;
use crate::drbd_peer_device::PeerDevice;
use crate::drbd_resync_reply::ReplyPipeline;
use crate::drbd_peer_writes::{IntegrityCheck, PeerWrites, SubmitError, WriteData};
use crate::drbd_resync::{SyncTargetWorker, TargetJob};
use crate::drbd_sender::Replica;
use crate::drbd_dual_primary::{admit_peer_write, Admitted, PeerLink};
use crate::kernel_glue::block::BlockPages;
use crate::drbd_include::uuid::{
    sync_handshake, HandshakeAbort, uuid_compare, uuid_flags, CompareContext, HandshakeInput,
    HandshakeResult, HelperCalls, SplitBrainConfig, Uuids,
};
use crate::kernel_glue::crypto::Digest;
use crate::kernel_glue::net::TcpSocket;
use crate::kernel_glue::thread::KThread;

/// The biggest payload a receiver accepts (P_DATA with digest).
const MAX_PAYLOAD: usize = proto::DataPacket::SIZE + proto::MAX_DIGEST_SIZE as usize + proto::MAX_BIO_SIZE as usize;

/// What we learnt from the peer during the handshake.
#[derive(Default)]
struct PeerInfo {
    uuids: Option<(Uuids, u64, u64)>,
    size: u64,
    /// The largest block the peer takes (its P_SIZES, capped by the
    /// protocol version); 0 until it said.
    max_bio_size: u32,
}

/// Runs one connection until it breaks (or we are asked to stop).
pub(crate) fn serve(
    shared: &Arc<ConnShared>,
    data: &Arc<TcpSocket>,
    meta: &Arc<TcpSocket>,
    resolve_conflicts: bool,
) -> core::result::Result<(), NetError> {
    let name = shared.name.as_str();
    let cfg = &shared.config;
    // The timing of the last net-options (a reconnect keeps it).
    let timing = &shared.timing;
    let handshake_timeout = timing.ping_timeout().saturating_mul(4);
    data.set_timeouts(handshake_timeout, handshake_timeout);
    meta.set_timeouts(timing.idle(), timing.send_timeout());
    data.set_nodelay();
    meta.set_nodelay();
    let link = conn::exchange_features(name, data)?;
    if crate::drbd_include::write_conflicts::refuses_peer(shared.protocol_settings().two_primaries, link) {
        // Before our parameters: the peer never gets far enough to think
        // itself connected.
        pr_err!("{}: two primaries allowed, but the peer does not resolve conflicting writes as rdrbd does (not rdrbd?)\n", name);
        return Err(NetError::GiveUp);
    }
    if let Some(auth) = &cfg.auth {
        conn::authenticate(name, data, link, auth)?;
    }
    let local = local_view(shared);
    conn::send_parameters(shared, data, link, local.as_ref())?;
    shared.set_view(ConnState::WfReportParams, Role::Unknown, DiskState::DUnknown);
    // Handshake done: from now on the data socket waits as long as it takes.
    data.set_timeouts(0, timing.send_timeout());

    let asender_meta = meta.clone();
    let asender_data = data.clone();
    let asender_shared = shared.clone();
    shared.ending.store(false, core::sync::atomic::Ordering::SeqCst);
    let thread_name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_a_{}", name))?;
    let _asender = KThread::spawn(&thread_name, move || {
        if let Err(e) = run_asender(&asender_shared, &asender_meta, link) {
            if !asender_shared.closing_on_purpose() {
                log_error(asender_shared.name.as_str(), "meta", &e);
            }
        }
        // Wake the receiver: the connection is over.
        asender_data.shutdown();
    })?;

    // Replicated writes in flight, answered by their own thread.
    let writes = Arc::pin_init(PeerWrites::new(), GFP_KERNEL)?;
    let answering = match &shared.volume {
        Some(ConnVolume { volume, io, pd }) => {
            let (ack_shared, ack_meta, ack_data, volume) = (shared.clone(), meta.clone(), data.clone(), *volume);
            let ack_io = io.clone();
            let (barrier_shared, barrier_meta) = (shared.clone(), meta.clone());
            let to_peer = crate::drbd_peer_writes::Answering {
                name: shared.name,
                send: move |acks: &[(Packet, proto::BlockAck)]| {
                    let replica = ack_io.replica();
                    ack_shared.send_meta_acks(&ack_meta, link, volume, acks, replica.as_deref().map(Replica::packet_seq))
                },
                send_barrier_acks: move |acks: &[proto::BarrierAck]| {
                    barrier_shared.send_meta_barrier_acks(&barrier_meta, link, acks)
                },
                broken: move || ack_data.shutdown(),
            };
            Some(crate::drbd_peer_writes::start_answering(&writes, io, pd, to_peer)?)
        }
        None => None,
    };

    let mut buf = KVVec::from_elem(0u8, MAX_PAYLOAD, GFP_KERNEL).map_err(|_| ENOMEM)?;
    let mut vs = VolumeState {
        connected: false,
        peer: PeerInfo::default(),
        replica: None,
        bitmap_rx: None,
        worker: None,
        replies: None,
        pages: BlockPages::new(proto::MAX_BIO_SIZE as usize)?,
        read_buf: KVVec::from_elem(0u8, proto::MAX_BIO_SIZE as usize, GFP_KERNEL).map_err(|_| ENOMEM)?,
        verify_digest: None,
        peer_integrity: None,
        consider_resync: false,
        csums: CsumsState::new(),
    };
    let ctx = LoopCtx { shared, data, meta, link, resolve_conflicts, writes: &writes };
    let result = receive_loop(&ctx, &mut buf, &mut vs, local.as_ref());
    // `on-congestion disconnect` shut the socket: 8.4's C_DISCONNECTING,
    // which ends StandAlone.
    let result = match &vs.replica {
        Some(r) if r.disconnected_congested() => Err(NetError::GiveUp),
        _ => result,
    };
    if matches!(result, Err(NetError::GiveUp)) {
        // With both sockets still up: the meta socket's shutdown below
        // could reach the peer before it has read why we refused.
        crate::drbd_conn::linger_for_peer(shared, data);
    }
    // Its thread sends on the data socket, and the ranges it holds keep
    // writes off: first to go.
    drop(vs.replies.take());
    // Every write in flight completes and is answered (or, the connection
    // gone, handled) before the teardown looks at what is out of sync.
    writes.finish();
    drop(answering);
    // The target's worker stops first: it sends on the data socket.
    drop(vs.worker.take());
    // Its requests still unanswered will not be: local writes they held
    // off may go.
    if let Some(ConnVolume { io, .. }) = &shared.volume {
        io.conflicts().release_resync();
    }
    if let Some(ConnVolume { io, pd, .. }) = &shared.volume {
        crate::drbd_verify::connection_lost(name, io, pd);
        connection_lost(name, io, pd, !shared.stop_requested());
        io.set_state(|s| s.peer.peer_isp = false);
    }
    // Stop the asender before the sockets go.
    meta.shutdown();
    result
}

/// What is left to do when the connection ends: writes waiting for the
/// peer complete (marked out of sync), and the metadata records the lost
/// peer, with a new current UUID if the data moves on without it.
fn connection_lost(name: &str, io: &DeviceIo, pd: &PeerDevice, network_failure: bool) {
    let view = io.peer_before_loss();
    // `resource-and-stonith`: nothing more completes, and the writes still
    // waiting for the peer do not either, until fence-peer has outdated it
    // (the connection thread runs it next) or the user resumes I/O.
    let pdsk_now = crate::drbd_include::mgmt::pdsk_while_unconnected(view.pdsk);
    let freeze = network_failure
        && crate::drbd_include::mgmt::freeze_on_lost_peer(io.fencing(), io.is_primary(), pdsk_now);
    if freeze {
        io.set_state(|s| s.device.susp_fen = true);
    }
    if let Some(replica) = pd.set_replica(None) {
        if let Some(held) = replica.abort(|sector, size| io.set_out_of_sync(sector, size), freeze) {
            io.hold_writes(held);
        }
    }
    // Writes the peer asked us to retry will not see its conflicting
    // write: they complete as they are on our disk (their bits set, no
    // ack cleared them).
    io.conflicts().release_postponed();
    if matches!(view.conn, ConnState::SyncSource | ConnState::SyncTarget | ConnState::WfBitMapS
        | ConnState::WfBitMapT | ConnState::WfSyncUuid)
    {
        pr_info!("{}: resync interrupted ({} KiB left out of sync)\n", name, io.out_of_sync_bits() * 4);
    }
    let had_peer_data = crate::drbd_include::uuid::lost_contact_to_peer_data(view.pdsk, DiskState::DUnknown);
    let primary = io.is_primary();
    let disk = io.disk_state();
    // The peer's role is unknown from now on: only our own Primary role
    // moves the data on (after_state_ch looks at the new state).
    match io.with_md(|md, dev| md.lost_peer(dev, primary, Role::Unknown, disk, had_peer_data)) {
        Some(Ok(true)) => pr_info!("{}: new current UUID: peer's data lost from view\n", name),
        Some(Err(e)) => pr_err!("{}: writing meta data after connection loss failed: error {}\n", name, e.to_errno()),
        _ => {}
    }
}

/// What one connection's receiver knows and holds.
struct VolumeState {
    /// The handshake is done (first P_STATE seen).
    connected: bool,
    peer: PeerInfo,
    /// The data socket's sender, once the handshake is done.
    replica: Option<Arc<Replica>>,
    /// Receiving the peer's bitmap.
    bitmap_rx: Option<BitmapXfer>,
    /// SyncTarget: the worker requesting blocks.
    worker: Option<SyncTargetWorker>,
    /// SyncSource (and a diskless peer's reads): the replies, read here
    /// and sent by their own thread (`drbd_resync_reply.rs`); started with
    /// the first request.
    replies: Option<ReplyPipeline>,
    pages: BlockPages,
    /// Blocks read for the peer.
    read_buf: KVVec<u8>,
    /// The `verify-alg` transform, from the first online verify packet on
    /// (again after the verify-alg changed).
    verify_digest: Option<(AlgName, Digest)>,
    /// The peer's `data-integrity-alg` (its P_PROTOCOL's, or its last
    /// P_PROTOCOL_UPDATE's): the digest its data packets carry.
    peer_integrity: Option<Digest>,
    /// The peer asked to be promoted while both disks were Inconsistent
    /// (it was forced UpToDate): run the sync handshake at its next
    /// P_STATE (CONSIDER_RESYNC).
    consider_resync: bool,
    /// The agreed `csums-alg` (checksum-based resync).
    csums: CsumsState,
}

fn log_error(name: &str, which: &str, e: &NetError) {
    match e {
        NetError::Io(e) => pr_info!("{}: {} socket: error {}\n", name, which, e.to_errno()),
        NetError::Protocol(e) => pr_err!("{}: {} socket: protocol error: {}\n", name, which, e.reason()),
        NetError::Refused | NetError::GiveUp => {}
    }
}

/// Our side of the volume, read from the device (never from the registry:
/// the registry lock may be held by someone waiting for this thread).
fn local_view(shared: &ConnShared) -> Option<LocalView> {
    let io = &shared.volume.as_ref()?.io;
    let role = if io.is_primary() { Role::Primary } else { Role::Secondary };
    let disk = io.disk_state();
    let view = io.with_md(|md, _| LocalView {
        role,
        disk,
        uuids: md.uuids(),
        bitmap_bits: md.bitmap.count(),
        capacity: md.capacity(),
        crashed_primary: md.crashed_primary,
    });
    Some(view.unwrap_or(LocalView {
        role,
        disk: DiskState::Diskless,
        uuids: Uuids::default(),
        bitmap_bits: 0,
        capacity: 0,
        crashed_primary: false,
    }))
}

/// Reads one packet from `sock` into `buf`: its command, volume and payload.
fn recv_packet<'a>(
    sock: &TcpSocket,
    link: Link,
    which: Socket,
    buf: &'a mut [u8],
) -> core::result::Result<(Packet, u16, &'a mut [u8]), NetError> {
    let header = net::recv_header(sock, link)?;
    if !header.cmd.accepted_on(which) {
        return Err(proto::ProtocolError::UnexpectedCommand(header.cmd as u16).into());
    }
    let len = usize::try_from(header.length).map_err(|_| proto::ProtocolError::TooLong)?;
    let payload = buf.get_mut(..len).ok_or(proto::ProtocolError::TooLong)?;
    sock.recv_exact(payload)?;
    Ok((header.cmd, header.volume, payload))
}

/// What the receive loop works with.
struct LoopCtx<'a> {
    shared: &'a Arc<ConnShared>,
    data: &'a Arc<TcpSocket>,
    meta: &'a Arc<TcpSocket>,
    link: Link,
    resolve_conflicts: bool,
    writes: &'a PeerWrites,
}

fn receive_loop(
    ctx: &LoopCtx<'_>,
    buf: &mut [u8],
    vs: &mut VolumeState,
    local: Option<&LocalView>,
) -> core::result::Result<(), NetError> {
    let (shared, link) = (ctx.shared, ctx.link);
    let name = shared.name.as_str();
    // Writes of the current epoch (answered in P_BARRIER_ACK), and whether
    // one of them was acked before it was on our disk (protocol A or B).
    let mut epoch_size: u32 = 0;
    let mut epoch_acked_early = false;
    loop {
        let digest_size = vs.peer_integrity.as_ref().map_or(0, Digest::size);
        let (cmd, volume, payload, mut unread) = recv_data_socket_packet(ctx, buf, vs.connected, digest_size)?;
        let payload = &*payload;
        let body = decode_body(cmd, link, payload)?;
        let our_volume = shared.volume.as_ref().map(|v| v.volume);
        let per_volume = !matches!(cmd, Packet::Protocol | Packet::ProtocolUpdate | Packet::DelayProbe | Packet::UnplugRemote);
        if per_volume && Some(volume) != our_volume {
            pr_err!("{}: {} for unknown volume {}\n", name, cmd.name(), volume);
            return Err(NetError::Refused);
        }
        match body {
            Body::Protocol(p) => receive_protocol(shared, link, cmd, &p, &mut vs.peer_integrity)?,
            Body::SyncParams(p) => {
                let algs = crate::drbd_csums::receive_sync_params(name, shared.sync_algs(), !vs.connected, link.version, &p)?;
                shared.set_sync_algs(algs);
            }
            Body::DelayProbe(_) | Body::Empty => {}
            Body::Sizes(s) => {
                vs.peer.size = s.d_size;
                vs.peer.max_bio_size = s.max_bio_size.min(link.max_bio_size());
                if let Some(ConnVolume { io, pd, .. }) = &shared.volume {
                    io.resize().set_peer_size(s.d_size);
                    // After the handshake: the peer resized (drbd_resize.rs).
                    if let (true, Some(replica)) = (vs.connected, vs.replica.as_ref()) {
                        crate::drbd_resize::receive_sizes(name, io, pd, replica, &s, ctx.resolve_conflicts).map_err(NetError::Io)?;
                    }
                }
                if let (false, Some(ConnVolume { io, .. })) = (vs.connected, &shared.volume) {
                    // The handshake: both agree on the smaller disk.
                    let decision = crate::drbd_resize::handshake_sizes(name, io, &s).map_err(NetError::Io)?;
                    if matches!(decision, crate::drbd_include::mgmt::HandshakeSize::PeerTooSmall { .. }) {
                        return Err(NetError::GiveUp);
                    }
                }
            }
            Body::Uuids(u) => {
                vs.peer.uuids = Some((u.uuids, u.bitmap_bits, u.flags));
                if vs.connected && u.flags & uuid_flags::SKIP_INITIAL_SYNC != 0 && link.version >= 90 {
                    skip_initial_sync(shared, u.uuids.current)?;
                }
            }
            Body::State(s) => receive_state(ctx, vs, local, s.state)?,
            Body::Data { head, rest } if cmd == Packet::Data && vs.connected => {
                let (integrity, rest) = integrity_check(vs.peer_integrity.as_ref(), rest)?;
                let data = match unread {
                    0 => WriteData::Bytes(rest),
                    _ => WriteData::Socket(ctx.data, &mut unread),
                };
                epoch_acked_early |= !wanted_acks(ctx, &head).1;
                receive_data(ctx, head, data, integrity)?;
                epoch_size = epoch_size.saturating_add(1);
            }
            Body::Trim(t) if cmd == Packet::Trim && vs.connected => {
                // Zeroed synchronously: after the writes in flight.
                ctx.writes.wait_idle();
                epoch_acked_early |= !wanted_acks(ctx, &t.data).1;
                receive_trim(ctx, t)?;
                epoch_size = epoch_size.saturating_add(1);
            }
            Body::Data { head, rest } if cmd == Packet::RsDataReply && vs.connected => {
                let (integrity, rest) = integrity_check(vs.peer_integrity.as_ref(), rest)?;
                let data = match unread {
                    0 => WriteData::Bytes(rest),
                    _ => WriteData::Socket(ctx.data, &mut unread),
                };
                receive_rs_data(ctx, head, data, integrity)?;
            }
            Body::Data { head, rest } if cmd == Packet::DataReply && vs.connected => {
                let (integrity, rest) = integrity_check(vs.peer_integrity.as_ref(), rest)?;
                if let Some(check) = integrity {
                    if !check.digest.digest(rest).is_ok_and(|d| d.as_bytes() == check.expected) {
                        pr_err!("{}: Digest integrity check FAILED. Broken NICs?\n", name);
                        return Err(proto::ProtocolError::IntegrityCheckFailed.into());
                    }
                }
                receive_read_reply(ctx, vs, head, rest)?;
            }
            Body::Request { req, .. } if matches!(cmd, Packet::RsDataRequest | Packet::DataRequest) && vs.connected => {
                serve_read_request(ctx, vs, cmd, req)?;
            }
            Body::Request { req, digest } if cmd == Packet::CsumRsRequest && vs.connected => {
                serve_csum_request(ctx, vs, req, digest)?;
            }
            Body::Bitmap(_) | Body::CompressedBitmap { .. } if vs.connected => {
                receive_bitmap(ctx, vs, cmd, payload)?;
            }
            Body::SyncUuid(u) if vs.connected => receive_sync_uuid(ctx, vs, u.uuid)?,
            Body::Desc(d) if cmd == Packet::OutOfSync && vs.connected => {
                if let Some(ConnVolume { io, .. }) = &shared.volume {
                    io.set_out_of_sync(d.sector, d.blksize);
                }
            }
            Body::ReqState(r) => {
                if receive_req_state(ctx, vs, cmd, volume, r)? {
                    // The peer disconnects gracefully: TearDown.
                    return Ok(());
                }
            }
            Body::Request { req, .. } if cmd == Packet::OvRequest && vs.connected => serve_ov_request(ctx, vs, req)?,
            Body::Request { req, digest } if cmd == Packet::OvReply && vs.connected => {
                receive_ov_reply(ctx, vs, volume, req, digest)?
            }
            Body::Barrier(b) if shared.volume.is_some() => {
                // `receive_Barrier`: every write of the epoch completes
                // and is acked before the barrier ack, which the
                // answering thread sends (after a flush under the flush
                // ordering; under every write ordering: 8.4's `none` acks
                // later too). Before any write of the next epoch is read
                // (8.4 drains here) only if a write of this one was acked
                // before it was on our disk: the Primary may have
                // completed it, and the next epoch may depend on it.
                ctx.writes.close_epoch(b.barrier, epoch_size);
                if epoch_acked_early {
                    ctx.writes.wait_epochs_acked();
                }
                epoch_size = 0;
                epoch_acked_early = false;
            }
            Body::Barrier(b) => {
                // No volume, so no writes: acked at once.
                let ack = proto::BarrierAck { barrier: b.barrier, set_size: epoch_size };
                shared.send_meta(ctx.meta, link, Packet::BarrierAck, 0, |out| ack.encode(out))?;
                epoch_size = 0;
            }
            _ => {
                pr_err!("{}: {} is not supported by rdrbd yet (or not now); dropping the connection\n", name, cmd.name());
                return Err(NetError::Refused);
            }
        }
        // A write's data the write did not take (it failed before): read
        // and dropped, so that the next packet starts where it should.
        while unread != 0 {
            let n = unread.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
            let chunk = buf.get_mut(..n as usize).ok_or(proto::ProtocolError::TooLong)?;
            ctx.data.recv_exact(chunk)?;
            unread -= n;
        }
    }
}

/// `receive_protocol`: the handshake's P_PROTOCOL must match our
/// settings; a P_PROTOCOL_UPDATE (the peer's `net-options` on the live
/// connection) becomes our settings but for our data-integrity-alg. It
/// arrives on the data socket in order with the peer's writes, which carry
/// their own ack requests; the peer's data after it carries a digest of
/// its data-integrity-alg, which becomes `peer_integrity`.
fn receive_protocol(
    shared: &ConnShared,
    ctx_link: Link,
    cmd: Packet,
    peer: &proto::ProtocolParams<'_>,
    peer_integrity: &mut Option<Digest>,
) -> core::result::Result<(), NetError> {
    let name = shared.name.as_str();
    let ours = shared.protocol_settings();
    let adopt = match ours.receive(peer, cmd == Packet::ProtocolUpdate, shared.config.discard_my_data) {
        PeerProtocol::Agreed => None,
        PeerProtocol::Adopt(new) => Some(new),
        PeerProtocol::Refuse(Incompatible(what)) => {
            // As 8.4, the connection goes StandAlone (Disconnecting): only
            // the admin can make the settings agree.
            pr_err!("{}: incompatible {} settings\n", name, what);
            return Err(NetError::GiveUp);
        }
    };
    let two_primaries = adopt.map_or(ours.two_primaries, |new| new.two_primaries);
    if crate::drbd_include::write_conflicts::refuses_peer(two_primaries, ctx_link) {
        // The C driver does not resolve two Primaries' conflicting writes
        // as rdrbd does (and fails them itself): refused, StandAlone.
        pr_err!("{}: two primaries allowed, but the peer does not resolve conflicting writes as rdrbd does (not rdrbd?)\n", name);
        return Err(NetError::GiveUp);
    }
    let alg = peer_integrity_alg(peer);
    let digest = match &alg {
        None => None,
        Some(alg) => match crate::drbd_net::digest_named(alg) {
            Ok(digest) => Some(digest),
            Err(_) => {
                pr_err!("{}: peer data-integrity-alg {} not supported\n", name, alg.as_str());
                return Err(NetError::GiveUp);
            }
        },
    };
    *peer_integrity = digest;
    if alg.unwrap_or(AlgName::EMPTY) != ours.integrity_alg {
        pr_info!("{}: peer data-integrity-alg: {}\n", name, alg.as_ref().map_or("(none)", AlgName::as_str));
    }
    if let Some(new) = adopt {
        shared.set_protocol_settings(new);
        if new != ours {
            pr_info!("{}: peer changed the connection settings: protocol {} -> {}, allow-two-primaries {} -> {}\n",
                name, ours.wire_protocol.name(), new.wire_protocol.name(),
                ours.two_primaries, new.two_primaries);
        }
    }
    Ok(())
}

/// Splits the peer's data-integrity-alg digest off the start of a data
/// packet's `rest` (8.4 puts it between the fixed part and the data);
/// without one, the check is `None` and `rest` the data.
fn integrity_check<'a>(
    digest: Option<&'a Digest>,
    rest: &'a [u8],
) -> core::result::Result<(Option<IntegrityCheck<'a>>, &'a [u8]), NetError> {
    let Some(digest) = digest else { return Ok((None, rest)) };
    let (expected, data) = rest.split_at_checked(digest.size()).ok_or(proto::ProtocolError::TooShort)?;
    Ok((Some(IntegrityCheck { digest, expected }), data))
}

/// `receive_state`: the first P_STATE completes the handshake; later ones
/// update the peer's role and disk, end a resync we are source of, or
/// start a new handshake (the peer was forced Primary, or started a sync).
fn receive_state(
    ctx: &LoopCtx<'_>,
    vs: &mut VolumeState,
    local: Option<&LocalView>,
    st: api::State,
) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let mut pdsk = st.disk;
    if pdsk == DiskState::Negotiating {
        let inconsistent = vs.peer.uuids.is_some_and(|(_, _, f)| f & uuid_flags::INCONSISTENT != 0);
        pdsk = if inconsistent { DiskState::Inconsistent } else { DiskState::Consistent };
    }
    let Some(ConnVolume { volume, io, pd, .. }) = &shared.volume else {
        if !vs.connected {
            vs.connected = true;
            shared.set_view(ConnState::Connected, st.role, pdsk);
        }
        return Ok(());
    };
    if !vs.connected {
        let cfg = &shared.config;
        let protocol = shared.protocol_settings().wire_protocol;
        let integrity = net::integrity_digest(&shared.protocol_settings().integrity_alg)?;
        let replica = Replica::new(ctx.data.clone(), ctx.link, *volume, protocol, cfg.max_epoch_size,
            shared.timing.clone(), integrity)?;
        let decision = handshake(shared, ctx.link, local, None, &vs.peer, st.role, pdsk, ctx.resolve_conflicts)?;
        vs.connected = true;
        // From here on the connection's end aborts the replica, which
        // stops its sender.
        let leave_ahead = crate::drbd_congestion::resync_after_ahead(shared.name, io.clone(), pd.clone());
        replica.start_sender(shared.name.as_str(), io.clone(), leave_ahead)?;
        pd.set_replica(Some(replica.clone()));
        vs.replica = Some(replica);
        // The peer is back (`after_state_ch` case 2): what waited for
        // fencing is out of sync and goes to it by the resync.
        io.set_state(|s| s.device.susp_fen = false);
        return begin_sync(ctx, vs, io, decision, (st.role, pdsk), true);
    }
    let old = io.peer();
    io.set_state(|s| {
        s.peer.peer = st.role;
        s.peer.pdsk = pdsk;
        s.peer.peer_isp = st.user_isp || st.aftr_isp;
    });
    if old.pdsk != pdsk {
        peer_disk_changed(shared.name.as_str(), io, old.pdsk, pdsk, st.role);
    }
    if old.conn == ConnState::SyncSource && st.conn == ConnState::Connected {
        return finish_source(ctx, vs, io, pd);
    }
    if old.conn == ConnState::Connected && st.conn == ConnState::Ahead {
        crate::drbd_congestion::peer_went_ahead(io);
        return Ok(());
    }
    // Explicit end of an online verify (stop sector reached, or done).
    if old.conn == ConnState::VerifyT && st.conn == ConnState::Connected {
        crate::drbd_verify::finish(shared.name.as_str(), io, pd, ConnState::VerifyT);
        return Ok(());
    }
    let peer_started_sync = (ConnState::StartingSyncS as u32..=ConnState::WfBitMapT as u32).contains(&(st.conn as u32));
    // The peer was forced UpToDate and Primary (CONSIDER_RESYNC): announced
    // by its promotion request (C DRBD, rdrbd), or seen in this P_STATE.
    let asked_before = core::mem::take(&mut vs.consider_resync);
    let peer_forced = asked_before
        || io.disk_state() == DiskState::Inconsistent
        && old.pdsk == DiskState::Inconsistent
        && old.peer == Role::Secondary
        && st.role == Role::Primary;
    // The peer attached a disk while connected (C DRBD: its P_STATE says
    // Negotiating, after its P_SIZES and P_UUIDS): a handshake as at
    // connect, and the peer, which waits for our UUIDs to run its own,
    // gets them before our state (8.4's after_state_ch, "attach on the
    // peer").
    let peer_attached = st.disk == DiskState::Negotiating;
    // We attached while connected (our disk Negotiating): this P_STATE
    // follows the peer's handshake and its UUIDs; ours runs on the state
    // the disk's flags give (8.4's new_state_tmp), which the disk takes
    // unless it becomes SyncTarget.
    let attached = io.disk_state() == DiskState::Negotiating;
    if old.conn == ConnState::Connected && (peer_started_sync || peer_forced || peer_attached || attached) {
        let local = local_view(shared);
        let flagged = if attached { io.with_md(|md, _| md.disk_state()) } else { None };
        let decision = match handshake(shared, ctx.link, local.as_ref(), flagged, &vs.peer, st.role, pdsk, ctx.resolve_conflicts) {
            // 8.4's receive_state with C_MASK: a disk attached while
            // connected that the handshake refuses goes; the connection
            // stays (a diskless Primary keeps its data through it).
            Err(NetError::GiveUp) if attached || peer_attached => {
                return refuse_attached_disk(ctx, vs, io, local.as_ref(), attached, st.role);
            }
            other => other?,
        };
        if let (true, Some(local), Some(replica)) = (peer_attached, local.as_ref(), vs.replica.as_ref()) {
            local.send_uuids(replica).map_err(NetError::Io)?;
        }
        if let Some(disk) = flagged {
            // Implicitly Inconsistent as SyncTarget (8.4's sanitize_state).
            let disk = if matches!(decision, Decision::Target { .. }) { DiskState::Inconsistent } else { disk };
            io.set_state(|s| s.device.disk = disk);
        }
        // We tell the peer only if it has not decided on a sync itself.
        return begin_sync(ctx, vs, io, decision, (st.role, pdsk), st.conn <= ConnState::Connected);
    }
    Ok(())
}

/// The sync handshake refused a disk attached while connected (8.4's
/// receive_state with C_MASK). `ours`: our disk fails and is detached.
/// Else the peer's: to us it is Diskless (the peer's own handshake, which
/// gets our UUIDs and state as after any attach of its, refuses it too and
/// fails it; "Disk attach process on the peer node was aborted").
fn refuse_attached_disk(
    ctx: &LoopCtx<'_>,
    vs: &VolumeState,
    io: &DeviceIo,
    local: Option<&LocalView>,
    ours: bool,
    peer_role: Role,
) -> core::result::Result<(), NetError> {
    let name = ctx.shared.name.as_str();
    if ours {
        pr_err!("{}: the sync handshake refused the disk attached while connected; detaching it\n", name);
        crate::drbd_io_error::fail_refused_disk(io);
        return Ok(());
    }
    pr_err!("{}: Disk attach process on the peer node was aborted.\n", name);
    let Some(replica) = vs.replica.as_ref() else { return Err(NetError::Refused) };
    if let Some(local) = local {
        local.send_uuids(replica).map_err(NetError::Io)?;
    }
    let now = io.set_state(|s| {
        s.peer.peer = peer_role;
        s.peer.pdsk = DiskState::Diskless;
    }).new;
    replica.send_state(now.word()).map_err(NetError::Io)
}

/// After a handshake: Connected, or the start of a bitmap exchange
/// (`drbd_sync_handshake`'s C_WF_BITMAP_S / C_WF_BITMAP_T), with the
/// peer's role and disk from its P_STATE in the same state change.
fn begin_sync(
    ctx: &LoopCtx<'_>,
    vs: &mut VolumeState,
    io: &DeviceIo,
    decision: Decision,
    (peer_role, pdsk): (Role, DiskState),
    tell_peer: bool,
) -> core::result::Result<(), NetError> {
    let connect = |conn: ConnState| {
        io.set_state(|s| {
            s.peer.conn = conn;
            s.peer.peer = peer_role;
            s.peer.pdsk = pdsk;
        })
    };
    let name = ctx.shared.name.as_str();
    let Some(replica) = vs.replica.clone() else { return Err(NetError::Refused) };
    let (conn, full) = match decision {
        Decision::Connected => {
            // The state change persists the flags (after_state_change).
            let now = connect(ConnState::Connected).new;
            if tell_peer {
                replica.send_state(now.word()).map_err(NetError::Io)?;
            }
            return Ok(());
        }
        Decision::Source { full } => (ConnState::WfBitMapS, full),
        Decision::Target { full } => (ConnState::WfBitMapT, full),
    };
    if full {
        pr_info!("{}: Writing the whole bitmap, full sync required after drbd_sync_handshake.\n", name);
        let exposed = io.exposed_sectors();
        match io.with_md(|md, dev| md.set_all_out_of_sync(dev, exposed)) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                pr_err!("{}: writing the bitmap failed: error {}\n", name, e.to_errno());
                return Err(NetError::Refused);
            }
            None => return Err(NetError::Refused),
        }
    }
    let now = connect(conn).new;
    pr_info!("{}: {} KiB out of sync here\n", name, io.out_of_sync_bits() * 4);
    if tell_peer {
        replica.send_state(now.word()).map_err(NetError::Io)?;
    }
    let exposed = io.exposed_sectors();
    let bits = io.with_md(|md, _| md.bits_in_use(exposed)).unwrap_or(0);
    vs.bitmap_rx = Some(BitmapXfer::new(bits));
    if conn == ConnState::WfBitMapS {
        send_bitmap(ctx, io, &replica)?;
    }
    Ok(())
}

/// Sends our bitmap (`drbd_send_bitmap`): RLE-compressed chunks where that
/// pays off, plain words where not, one chunk at a time so application
/// writes are not held up.
fn send_bitmap(ctx: &LoopCtx<'_>, io: &DeviceIo, replica: &Replica) -> core::result::Result<(), NetError> {
    let link = ctx.link;
    let exposed = io.exposed_sectors();
    let bits = io.with_md(|md, _| md.bits_in_use(exposed)).ok_or(NetError::Refused)?;
    let mut xfer = BitmapXfer::new(bits);
    let mut chunk = [0u8; proto::SOCKET_BUFFER_SIZE];
    loop {
        let sent = io
            .with_md(|md, _| xfer.send_next(link, true, &md.bitmap, &mut chunk))
            .ok_or(NetError::Refused)??;
        replica.send_with_data(sent.cmd, &[], chunk.get(..sent.len).unwrap_or(&[])).map_err(NetError::Io)?;
        if sent.last {
            return Ok(());
        }
    }
}

/// `receive_bitmap`: ORs the peer's bitmap into ours; when complete, the
/// target sends its own and waits for the sync UUID, the source starts
/// the resync.
fn receive_bitmap(ctx: &LoopCtx<'_>, vs: &mut VolumeState, cmd: Packet, payload: &[u8]) -> core::result::Result<(), NetError> {
    let name = ctx.shared.name.as_str();
    let Some(ConnVolume { io, pd, .. }) = &ctx.shared.volume else { return Err(NetError::Refused) };
    let conn = io.peer().conn;
    let Some(xfer) = vs.bitmap_rx.as_mut().filter(|_| matches!(conn, ConnState::WfBitMapS | ConnState::WfBitMapT)) else {
        pr_err!("{}: {} in connection state {}\n", name, cmd.name(), conn.name());
        return Err(NetError::Refused);
    };
    let done = io.with_md(|md, _| xfer.receive(ctx.link, cmd, payload, &mut md.bitmap)).ok_or(NetError::Refused)??;
    if !done {
        return Ok(());
    }
    vs.bitmap_rx = None;
    let Some(replica) = vs.replica.clone() else { return Err(NetError::Refused) };
    if conn == ConnState::WfBitMapT {
        send_bitmap(ctx, io, &replica)?;
        io.set_state(|s| s.peer.conn = ConnState::WfSyncUuid);
        return Ok(());
    }
    // drbd_start_resync(C_SYNC_SOURCE), then the sync UUID (apv >= 96
    // order: before any state packet).
    crate::drbd_mgmt::start_sync_source(name, io, pd, &replica).map_err(NetError::Io)
}

/// `receive_sync_uuid`: the source's sync UUID; the resync begins here as
/// SyncTarget.
fn receive_sync_uuid(ctx: &LoopCtx<'_>, vs: &mut VolumeState, uuid: u64) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let name = shared.name.as_str();
    let Some(ConnVolume { io, pd, .. }) = &shared.volume else { return Err(NetError::Refused) };
    // After invalidate, the source may answer before we made the change
    // it agreed to, or before our bitmap is written (`receive_sync_uuid`
    // waits for C_WF_SYNC_UUID too).
    let conn = io.wait_peer_leaves(&[ConnState::Connected, ConnState::StartingSyncT], 30_000).conn;
    // Behind: the peer that pulled ahead of us starts its resync.
    if conn != ConnState::WfSyncUuid && conn != ConnState::Behind {
        pr_err!("{}: ReportSyncUUID in connection state {}\n", name, conn.name());
        return Err(NetError::Refused);
    }
    let primary = io.is_primary();
    match io.with_md(|md, dev| md.begin_sync_target(dev, uuid, primary)) {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            pr_err!("{}: writing meta data failed: error {}\n", name, e.to_errno());
            return Err(NetError::Refused);
        }
        None => return Err(NetError::Refused),
    }
    let bits = io.out_of_sync_bits();
    pd.resync.begin(bits);
    io.set_state(|s| {
        s.device.disk = DiskState::Inconsistent;
        s.peer.conn = ConnState::SyncTarget;
    });
    pr_info!("{}: Began resync as SyncTarget (will sync {} KB [{} bits set]).\n", name, bits * 4, bits);
    let (Some(replica), Some((peer_uuids, _, _))) = (vs.replica.clone(), vs.peer.uuids) else {
        return Err(NetError::Refused);
    };
    let crashed_primary = io.with_md(|md, _| md.crashed_primary).unwrap_or(false);
    let csums = vs.csums.target_digest(name, &shared.config, shared.sync_algs().csums, ctx.link.version, crashed_primary);
    let request_bytes = crate::drbd_include::resync_request::request_bytes(vs.peer.max_bio_size);
    let job = TargetJob { name: shared.name, io: io.clone(), pd: pd.clone(), replica, peer_uuids, csums, request_bytes };
    vs.worker = Some(SyncTargetWorker::start(job)?);
    Ok(())
}

/// The SyncTarget reports Connected: the resync we were source of is
/// done (`drbd_resync_finished` on the source).
fn finish_source(ctx: &LoopCtx<'_>, vs: &mut VolumeState, io: &DeviceIo, pd: &PeerDevice) -> core::result::Result<(), NetError> {
    let name = ctx.shared.name.as_str();
    let rs = &pd.resync;
    let failed = rs.failed();
    let left = io.out_of_sync_bits();
    let dt = rs.elapsed_secs();
    pr_info!("{}: Resync done (total {} sec; paused 0 sec; {} K/sec)\n", name, dt, rs.total().saturating_sub(left) * 4 / dt);
    crate::drbd_csums::log_summary(name, rs);
    if left > failed {
        // Writes still in flight keep their bits until acked.
        pr_info!("{}: {} KiB still marked out of sync (writes in flight)\n", name, left * 4);
    }
    let primary = io.is_primary();
    let pdsk = if failed == 0 { DiskState::UpToDate } else { DiskState::Inconsistent };
    let mut peer_uuids = vs.peer.uuids.map(|(u, _, _)| u).unwrap_or_default();
    let written = io.with_md(|md, dev| {
        md.resync_finished(dev, &mut peer_uuids, false, primary, failed == 0, DiskState::UpToDate, pdsk)
    });
    if let Some(Err(e)) = written {
        pr_err!("{}: writing meta data after resync failed: error {}\n", name, e.to_errno());
    }
    if let Some((_, bits, flags)) = vs.peer.uuids {
        vs.peer.uuids = Some((peer_uuids, bits, flags));
    }
    io.set_state(|s| {
        s.peer.conn = ConnState::Connected;
        s.peer.pdsk = pdsk;
    });
    Ok(())
}

/// Checks a block request's range against our device.
fn check_request_range(io: &DeviceIo, sector: u64, size: u32) -> bool {
    size != 0
        && size % 512 == 0
        && size <= proto::MAX_BIO_SIZE
        && sector.checked_add(u64::from(size / 512)).is_some_and(|end| end <= io.capacity_sectors())
}

/// P_RS_DATA_REQUEST (we are SyncSource) and P_DATA_REQUEST (a diskless
/// peer reads): read the block and send it; a block we cannot read is
/// answered with a negative reply.
fn serve_read_request(ctx: &LoopCtx<'_>, vs: &mut VolumeState, cmd: Packet, req: proto::BlockRequest) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let name = shared.name.as_str();
    let Some(ConnVolume { volume, io, pd }) = &shared.volume else { return Err(NetError::Refused) };
    if !check_request_range(io, req.sector, req.blksize) {
        pr_err!("{}: {} for sector {} size {} is out of range\n", name, cmd.name(), req.sector, req.blksize);
        return Err(NetError::Refused);
    }
    if cmd == Packet::RsDataRequest {
        source_steps_aside(name, io, pd);
    }
    let Some(replica) = vs.replica.clone() else { return Err(NetError::Refused) };
    let (neg, reply) = match cmd {
        Packet::RsDataRequest => (Packet::NegRsDReply, Packet::RsDataReply),
        _ => (Packet::NegDReply, Packet::DataReply),
    };
    let nack = |ctx: &LoopCtx<'_>| {
        let a = proto::BlockAck { sector: req.sector, block_id: req.block_id, blksize: req.blksize, seq_num: 0 };
        shared.send_meta(ctx.meta, ctx.link, neg, *volume, |out| a.encode(out))
    };
    if io.disk_state() != DiskState::UpToDate {
        return nack(ctx);
    }
    let fault = if reply == Packet::RsDataReply { Fault::ResyncRead } else { Fault::DataRead };
    let replies = match &mut vs.replies {
        Some(replies) => replies,
        none => none.insert(ReplyPipeline::start(name, io.clone(), replica, proto::MAX_BIO_SIZE as usize)?),
    };
    match replies.read_and_queue(io, reply, req, fault) {
        // Sent by the pipeline's thread; a failed send ends the connection.
        Ok(()) => Ok(()),
        Err(e) => {
            pr_err!("{}: reading sector {} for the peer failed: error {}\n", name, req.sector, e.to_errno());
            if e != EIO || io.disk_state() == DiskState::Diskless {
                return nack(ctx);
            }
            io.set_out_of_sync(req.sector, req.blksize);
            local_io_failed(io, IoFailure::Read, req.sector, req.blksize, e);
            nack(ctx)
        }
    }
}

/// `c-min-rate` on the SyncSource (8.4's `receive_DataRequest`): with
/// application I/O on our disk and the resync above that rate, wait 100 ms
/// before serving a resync request — unless the peer is Primary, whose
/// reads through us would wait too (the SyncTarget throttles then).
fn source_steps_aside(name: &str, io: &DeviceIo, pd: &PeerDevice) {
    let rs = &pd.resync;
    if io.peer().peer != Role::Primary {
        rs.step_aside(name, io.app_activity(), io.out_of_sync_bits().saturating_sub(rs.failed()));
    }
}

/// P_CSUM_RS_REQUEST (we are SyncSource): our block's digest decides
/// between P_RS_IS_IN_SYNC and P_RS_DATA_REPLY (`drbd_csums`).
fn serve_csum_request(
    ctx: &LoopCtx<'_>,
    vs: &mut VolumeState,
    req: proto::BlockRequest,
    peer_digest: &[u8],
) -> core::result::Result<(), NetError> {
    use crate::drbd_csums::CsumServed;
    let shared = ctx.shared;
    let name = shared.name.as_str();
    let Some(ConnVolume { volume, io, pd, .. }) = &shared.volume else { return Err(NetError::Refused) };
    if ctx.link.version < crate::drbd_include::csums::MIN_VERSION || !check_request_range(io, req.sector, req.blksize) {
        pr_err!("{}: CsumRSRequest for sector {} size {} is out of range (or protocol {} too old)\n",
            name, req.sector, req.blksize, ctx.link.version);
        return Err(NetError::Refused);
    }
    let Some(replica) = vs.replica.clone() else { return Err(NetError::Refused) };
    let answer = |cmd: Packet| {
        let a = proto::BlockAck { sector: req.sector, block_id: req.block_id, blksize: req.blksize, seq_num: 0 };
        shared.send_meta(ctx.meta, ctx.link, cmd, *volume, |out| a.encode(out))
    };
    if io.disk_state() != DiskState::UpToDate {
        pr_err!("{}: Can not satisfy peer's read request, no local data.\n", name);
        return answer(Packet::NegRsDReply);
    }
    source_steps_aside(name, io, pd);
    let served = crate::drbd_csums::serve_request(
        name, io, &pd.resync, &replica, &mut vs.csums, shared.sync_algs().csums, &mut vs.pages, &mut vs.read_buf, req,
        peer_digest,
    )?;
    match served {
        CsumServed::InSync => answer(Packet::RsIsInSync),
        CsumServed::DataSent => Ok(()),
        CsumServed::ReadFailed => answer(Packet::NegRsDReply),
    }
}

/// P_RS_DATA_REPLY (we are SyncTarget): the block goes to the disk with
/// the writes in flight (after any earlier one it overlaps); when written
/// it is in sync and acked (P_RS_WRITE_ACK), and the worker may ask for
/// more (`drbd_peer_writes.rs`).
fn receive_rs_data(
    ctx: &LoopCtx<'_>,
    head: proto::DataPacket,
    data: WriteData<'_>,
    integrity: Option<IntegrityCheck<'_>>,
) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let name = shared.name.as_str();
    let Some(ConnVolume { volume, io, pd, .. }) = &shared.volume else { return Err(NetError::Refused) };
    let size = data.len().map_err(|_| proto::ProtocolError::TooLong)?;
    if head.block_id != ID_SYNCER || !check_request_range(io, head.sector, size) || io.peer().conn != ConnState::SyncTarget {
        pr_err!("{}: unexpected RSDataReply for sector {} size {}\n", name, head.sector, size);
        return Err(NetError::Refused);
    }
    io.count_net(size, false);
    match ctx.writes.submit_resync(io, head.sector, data, integrity) {
        Ok(()) => Ok(()),
        Err(SubmitError::IntegrityFailed) => Err(integrity_failed(name, head.sector, size)),
        Err(SubmitError::NoMemory) => {
            pr_err!("{}: cannot allocate a resync write for sector {}\n", name, head.sector);
            Err(NetError::Io(ENOMEM))
        }
        Err(SubmitError::Network(e)) => Err(e),
        Err(SubmitError::Local(e)) => {
            // The data was not taken in; the receive loop reads it past.
            crate::drbd_peer_writes::resync_write_failed(name, io, pd, head.sector, size, e);
            crate::drbd_resync::request_answered(io, pd, head.sector, size);
            let a = proto::BlockAck { sector: head.sector, block_id: ID_SYNCER, blksize: size, seq_num: 0 };
            shared.send_meta(ctx.meta, ctx.link, Packet::NegAck, *volume, |out| a.encode(out))
        }
    }
}

/// P_DATA_REPLY: the block a read of ours asked the peer for.
fn receive_read_reply(
    ctx: &LoopCtx<'_>,
    vs: &VolumeState,
    head: proto::DataPacket,
    rest: &[u8],
) -> core::result::Result<(), NetError> {
    let name = ctx.shared.name.as_str();
    let Some(replica) = vs.replica.as_ref() else { return Err(NetError::Refused) };
    if let Some(ConnVolume { io, .. }) = &ctx.shared.volume {
        io.count_net(u32::try_from(rest.len()).unwrap_or(u32::MAX), false);
    }
    match replica.reads().reply(head.block_id, head.sector, rest) {
        Answer::Done => Ok(()),
        Answer::Unknown | Answer::Mismatch => {
            pr_err!("{}: P_DATA_REPLY for sector {} size {} matches no read of ours\n", name, head.sector, rest.len());
            Err(NetError::Refused)
        }
    }
}

/// What judging a peer write needs of the connection (two Primaries):
/// acks go out with `send_ack`; the peer's missing acks are waited for up
/// to ping-timeout, a conflicting write of ours up to ko-count times
/// timeout (8.4's `drbd_wait_misc`), then the connection goes.
fn peer_link<'a>(
    ctx: &'a LoopCtx<'_>,
    send_ack: &'a dyn Fn(Packet, proto::BlockAck) -> core::result::Result<(), NetError>,
) -> PeerLink<'a> {
    let shared = ctx.shared;
    let t = shared.timing.net_timeouts();
    PeerLink {
        name: shared.name.as_str(),
        data: ctx.data,
        link: ctx.link,
        two_primaries: shared.protocol_settings().two_primaries,
        resolver: ctx.resolve_conflicts,
        ack_wait_ms: u32::try_from(shared.timing.ping_timeout_ms()).unwrap_or(u32::MAX),
        conflict_wait_ms: t.ko_count.saturating_mul(t.timeout_ds).saturating_mul(100),
        send_ack,
    }
}

/// `receive_Data`: writes a replicated block to our disk and acks it as
/// the peer asked (protocol B on receipt, C when written).
/// The acks the peer wants for a write: (P_RECV_ACK, P_WRITE_ACK), by its
/// dp_flags (protocol 100 on) or else by the agreed protocol (B, C).
fn wanted_acks(ctx: &LoopCtx<'_>, head: &proto::DataPacket) -> (bool, bool) {
    if ctx.link.version >= 100 {
        (head.dp_flags & proto::dp::SEND_RECEIVE_ACK != 0, head.dp_flags & proto::dp::SEND_WRITE_ACK != 0)
    } else {
        let prot = ctx.shared.protocol_settings().wire_protocol;
        (prot == WireProtocol::B, prot == WireProtocol::C)
    }
}

fn receive_data(
    ctx: &LoopCtx<'_>,
    head: proto::DataPacket,
    data: WriteData<'_>,
    integrity: Option<IntegrityCheck<'_>>,
) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let (link, meta) = (ctx.link, ctx.meta);
    let Some(ConnVolume { volume, io, .. }) = &shared.volume else {
        return Err(NetError::Refused);
    };
    let size = match &data {
        WriteData::Bytes(rest) => u32::try_from(rest.len()).map_err(|_| proto::ProtocolError::TooLong)?,
        WriteData::Socket(_, unread) => **unread,
    };
    if size == 0 || size % 512 != 0 {
        pr_err!("{}: P_DATA with a size of {} bytes\n", shared.name.as_str(), size);
        return Err(NetError::Refused);
    }
    // `read_in_block`: beyond the device lies our internal metadata (and
    // then the end of the backing disk); the write must not get there.
    // (Without a disk, capacity 0, the write fails below and is nacked.)
    let capacity = io.capacity_sectors();
    if capacity != 0 && !check_request_range(io, head.sector, size) {
        pr_err!("{}: request from peer beyond end of local disk: capacity: {}s < sector: {}s + size: {}\n",
            shared.name.as_str(), capacity, head.sector, size);
        return Err(NetError::Refused);
    }
    if faults::insert(io.events().minor(), Fault::PeerRequestAlloc) {
        // 8.4's drbd_alloc_peer_req failing: the write cannot be taken in,
        // the connection goes (and the resync after it repairs).
        pr_err!("{}: cannot allocate a peer request for sector {}\n", shared.name.as_str(), head.sector);
        return Err(NetError::Io(ENOMEM));
    }
    let (recv_ack, write_ack) = wanted_acks(ctx, &head);
    let replica = io.replica();
    let seq = replica.as_deref().map(Replica::packet_seq);
    let send_ack = |cmd, a| shared.send_block_ack(meta, link, *volume, cmd, a, seq);
    // Two Primaries: after the peer's earlier acks, and judged against our
    // writes in flight (drbd_dual_primary.rs).
    let interval = match admit_peer_write(&peer_link(ctx, &send_ack), io, &head, size)? {
        Admitted::Write(interval) => interval,
        // Its data is read past by the receive loop.
        Admitted::Answered => return Ok(()),
    };
    let ack = |cmd: Packet| {
        send_ack(cmd, proto::BlockAck { sector: head.sector, block_id: head.block_id, blksize: size, seq_num: head.seq_num })
    };
    let fua = head.dp_flags & proto::dp::FUA != 0;
    let flush = head.dp_flags & proto::dp::FLUSH != 0;
    io.count_net(size, false);
    if !crate::drbd_include::io_error::has_data(io.peer().pdsk) {
        // A Diskless peer writes through us: only our disk has it.
        io.set_out_of_sync(head.sector, size);
    }
    // Protocol B: acknowledged once the data is in, before the write may
    // complete (and be answered).
    let received = || if recv_ack { ack(Packet::RecvAck) } else { Ok(()) };
    // During a resync the Primary lets us set its blocks in sync when
    // written, unless we hold its only copy (8.4's EE_MAY_SET_IN_SYNC).
    let peer_has_data = crate::drbd_include::io_error::has_data(io.peer().pdsk);
    let may_set_in_sync = head.dp_flags & proto::dp::MAY_SET_IN_SYNC != 0 && peer_has_data;
    let answers = (write_ack, write_ack || recv_ack, may_set_in_sync, peer_has_data);
    let submitted = ctx.writes.submit(io, &head, data, integrity, fua, flush, answers, interval, received);
    if submitted.is_err() {
        io.peer_write_answered(interval);
    }
    match submitted {
        // Answered when it completes (drbd_peer_writes.rs).
        Ok(()) => Ok(()),
        Err(SubmitError::IntegrityFailed) => Err(integrity_failed(shared.name.as_str(), head.sector, size)),
        Err(SubmitError::NoMemory) => {
            // 8.4's drbd_alloc_peer_req failing: the connection goes.
            pr_err!("{}: cannot allocate a peer request for sector {}\n", shared.name.as_str(), head.sector);
            Err(NetError::Io(ENOMEM))
        }
        Err(SubmitError::Network(e)) => Err(e),
        Err(SubmitError::Local(e)) => {
            pr_err!("{}: writing a replicated block at sector {} failed: error {}\n",
                shared.name.as_str(), head.sector, e.to_errno());
            if io.disk_state() != DiskState::Diskless {
                io.set_out_of_sync(head.sector, size);
                local_io_failed(io, IoFailure::Write, head.sector, size, e);
            }
            // The data was not taken in; the receive loop reads it past.
            if recv_ack {
                ack(Packet::RecvAck)?;
            }
            if write_ack || recv_ack {
                ack(Packet::NegAck)?;
            }
            Ok(())
        }
    }
}

/// A block's data did not match its data-integrity-alg digest: nothing
/// was written, and the connection goes (8.4: "Digest integrity check
/// FAILED", then ProtocolError).
fn integrity_failed(name: &str, sector: u64, size: u32) -> NetError {
    pr_err!("{}: Digest integrity check FAILED: {}s +{}\n", name, sector, size);
    proto::ProtocolError::IntegrityCheckFailed.into()
}

/// Largest P_TRIM we take: without FF_WSAME (we do not offer it) 8.4
/// sends at most 4 MiB, one activity-log extent's worth.
const MAX_TRIM_SIZE: u32 = 4 << 20;

/// `receive_Data` for P_TRIM: the peer discarded a range; discard it on
/// our disk too, zeroing what would not read back zeroes (8.4's
/// `drbd_issue_peer_discard_or_zero_out`), so both disks read the same,
/// and ack it as the peer asked, like P_DATA.
fn receive_trim(ctx: &LoopCtx<'_>, t: proto::Trim) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let name = shared.name.as_str();
    let Some(ConnVolume { volume, io, .. }) = &shared.volume else { return Err(NetError::Refused) };
    let head = t.data;
    let capacity = io.capacity_sectors();
    let in_range = head.sector.checked_add(u64::from(t.size / 512)).is_some_and(|end| end <= capacity);
    if t.size == 0 || t.size % 512 != 0 || t.size > MAX_TRIM_SIZE || (capacity != 0 && !in_range) {
        pr_err!("{}: refusing P_TRIM of {} bytes at sector {} (capacity {} sectors, at most {} bytes)\n",
            name, t.size, head.sector, capacity, MAX_TRIM_SIZE);
        return Err(NetError::Refused);
    }
    let (recv_ack, write_ack) = wanted_acks(ctx, &head);
    let replica = io.replica();
    let seq = replica.as_deref().map(Replica::packet_seq);
    let send_ack = |cmd, a| shared.send_block_ack(ctx.meta, ctx.link, *volume, cmd, a, seq);
    let interval = match admit_peer_write(&peer_link(ctx, &send_ack), io, &head, t.size)? {
        Admitted::Write(interval) => interval,
        Admitted::Answered => return Ok(()),
    };
    let ack = |cmd: Packet| {
        send_ack(cmd, proto::BlockAck { sector: head.sector, block_id: head.block_id, blksize: t.size, seq_num: head.seq_num })
    };
    let zeroed = (|| {
        if recv_ack {
            ack(Packet::RecvAck)?;
        }
        match io.discard_replicated(head.sector, t.size) {
            Ok(()) if write_ack => ack(Packet::WriteAck),
            Ok(()) => Ok(()),
            Err(e) => {
                pr_err!("{}: discarding a range at sector {} failed: error {}\n", name, head.sector, e.to_errno());
                if write_ack || recv_ack {
                    ack(Packet::NegAck)?;
                }
                Ok(())
            }
        }
    })();
    // Answered (or the connection is gone): local writes may go on.
    io.peer_write_answered(interval);
    zeroed
}

/// `receive_uuids` with SKIP_INITIAL_SYNC on a just-created node: take
/// the peer's current UUID, clear the bitmap, both disks UpToDate.
fn skip_initial_sync(shared: &ConnShared, peer_current: u64) -> core::result::Result<(), NetError> {
    let Some(ConnVolume { io, .. }) = &shared.volume else { return Ok(()) };
    let primary = io.is_primary();
    let done = io.with_md(|md, dev| {
        if md.uuids().current & !1 != crate::drbd_include::uuid::UUID_JUST_CREATED {
            return Ok(false);
        }
        md.skip_initial_sync(dev, peer_current, primary).map(|()| true)
    });
    match done {
        Some(Ok(true)) => {
            pr_info!("{}: accepted new current UUID, preparing to skip initial sync\n", shared.name.as_str());
            io.set_state(|s| {
                s.device.disk = DiskState::UpToDate;
                s.peer.pdsk = DiskState::UpToDate;
            });
            Ok(())
        }
        Some(Err(e)) => Err(NetError::Io(e)),
        _ => Ok(()),
    }
}

/// What a handshake decided.
#[derive(Clone, Copy)]
enum Decision {
    Connected,
    /// We have the good data; `full`: every block.
    Source { full: bool },
    /// The peer has the good data.
    Target { full: bool },
}

/// `drbd_sync_handshake` on receipt of the peer's P_STATE; `pending_disk`:
/// the state the disk's flags give when we attached while connected (our
/// disk Negotiating; 8.4's new_state_tmp).
#[allow(clippy::too_many_arguments)]
fn handshake(
    shared: &ConnShared,
    link: Link,
    local: Option<&LocalView>,
    pending_disk: Option<DiskState>,
    peer: &PeerInfo,
    peer_role: Role,
    pdsk: DiskState,
    resolve_conflicts: bool,
) -> core::result::Result<Decision, NetError> {
    let name = shared.name.as_str();
    let cfg = &shared.config;
    let after_sb = shared.protocol_settings().after_sb;
    let Some(local) = local else {
        return Ok(Decision::Connected);
    };
    let mut decision = Decision::Connected;
    let both_disks = local.disk != DiskState::Diskless && pdsk != DiskState::Diskless;
    if both_disks {
        let Some((peer_uuids, peer_bits, peer_flags)) = peer.uuids else {
            pr_err!("{}: peer sent P_STATE before P_UUIDS\n", name);
            return Err(NetError::Refused);
        };
        let mut own = local.uuids;
        let mut theirs = peer_uuids;
        let ctx = CompareContext {
            own_role: local.role,
            peer_role,
            own_crashed_primary: local.crashed_primary,
            peer_flags,
            resolve_conflicts,
            link,
        };
        let comparison = uuid_compare(&mut own, &mut theirs, &ctx);
        let input = HandshakeInput {
            comparison,
            own_uuids: own,
            peer_uuids: theirs,
            own_role: local.role,
            peer_role,
            own_disk: local.disk,
            pending_disk: pending_disk.unwrap_or(local.disk),
            peer_disk: pdsk,
            own_changes: local.bitmap_bits,
            peer_changes: peer_bits,
            discard_my_data: cfg.discard_my_data,
            peer_flags,
            resolve_conflicts,
            dry_run: false,
            config: SplitBrainConfig {
                after_sb_0p: after_sb[0],
                after_sb_1p: after_sb[1],
                after_sb_2p: after_sb[2],
                rr_conflict: cfg.rr_conflict,
                always_asbp: cfg.always_asbp,
            },
        };
        let outcome = sync_handshake(&input, || false);
        pr_info!("{}: uuid_compare()={} by rule {}\n", name, outcome.hg, comparison.rule);
        run_handshake_helpers(shared, &outcome.helpers);
        match outcome.result {
            HandshakeResult::Connected => {}
            HandshakeResult::Abort(why) => {
                match why {
                    HandshakeAbort::SplitBrain => {
                        pr_alert!("{}: Split-Brain detected but unresolved, dropping connection!\n", name)
                    }
                    HandshakeAbort::UnrelatedData => pr_alert!("{}: Unrelated data, aborting!\n", name),
                    HandshakeAbort::InconsistentSyncSource => {
                        pr_err!("{}: I shall become SyncSource, but I am inconsistent!\n", name)
                    }
                    HandshakeAbort::PrimarySyncTarget => {
                        pr_err!("{}: I shall become SyncTarget, but I am primary!\n", name)
                    }
                    other => pr_err!("{}: handshake refused the connection ({:?})\n", name, other),
                }
                // As C DRBD: no retry; the admin decides (e.g. connect
                // --discard-my-data on one side after a split brain).
                return Err(NetError::GiveUp);
            }
            HandshakeResult::SyncSource { full_sync } => decision = Decision::Source { full: full_sync },
            // As Primary too, if our disk is not Consistent (the rule's
            // rr-conflict): the application goes on, its reads of blocks
            // not yet resynced served by the peer.
            HandshakeResult::SyncTarget { full_sync } => decision = Decision::Target { full: full_sync },
        }
    }
    Ok(decision)
}

/// The usermode helpers the handshake asks for, in the order
/// `drbd_sync_handshake` runs them: on detecting a split brain, when the
/// recovery demoted us, when it stays unresolved, on rr-conflict.
fn run_handshake_helpers(shared: &ConnShared, calls: &HelperCalls) {
    let Some(ConnVolume { io, .. }) = &shared.volume else { return };
    let addrs = crate::drbd_events::ConnAddrs { my_addr: shared.config.my_addr, peer_addr: shared.config.peer_addr };
    let events = [
        (calls.initial_split_brain, "initial-split-brain"),
        (calls.pri_lost_after_sb, "pri-lost-after-sb"),
        (calls.split_brain, "split-brain"),
        (calls.pri_lost, "pri-lost"),
    ];
    for (_, event) in events.iter().filter(|(wanted, _)| *wanted) {
        crate::drbd_helpers::run(io, Some(addrs), event);
    }
}

/// The meta socket (`drbd_ack_receiver`): answers pings, and pings the
/// peer when it has been quiet for ping-int; no PingAck within
/// ping-timeout ends the connection. It also runs the request timer
/// (`crate::drbd_timeout`): a write the peer has not finished within
/// ko-count * timeout ends the connection too (conn Timeout), although
/// the peer still answers pings. The timing is read at every use:
/// `net-options` changes it on the live connection.
fn run_asender(shared: &ConnShared, meta: &TcpSocket, link: Link) -> core::result::Result<(), NetError> {
    let timing = &shared.timing;
    let mut buf = [0u8; 64];
    let mut ping_pending = false;
    // The last packet received, or our ping: the ping timing counts from it.
    let mut quiet_since = crate::kernel_glue::now_ms();
    let mut request_timer = crate::drbd_timeout::RequestTimer::new(quiet_since);
    // When an Ahead Primary whose link drained starts its resync.
    let mut leave_ahead_at: Option<u64> = None;
    loop {
        if KThread::should_stop() {
            return Ok(());
        }
        let now = crate::kernel_glue::now_ms();
        if let Some(ConnVolume { io, .. }) = &shared.volume {
            leave_ahead_at = crate::drbd_congestion::leave_ahead_when_drained(io, leave_ahead_at, now);
        }
        let ping_due = quiet_since.wrapping_add(if ping_pending { timing.ping_timeout_ms() } else { timing.idle_ms() });
        if !request_timer::time_after(ping_due, now) {
            if ping_pending {
                pr_err!("{}: PingAck did not arrive in time.\n", shared.name.as_str());
                return Err(NetError::Refused);
            }
            shared.send_meta(meta, link, Packet::Ping, 0, |_| Ok(0))?;
            ping_pending = true;
            quiet_since = now;
            continue;
        }
        let check_due = request_timer.check(shared, now)?;
        let mut wake = if request_timer::time_after(ping_due, check_due) { check_due } else { ping_due };
        if let Some(at) = leave_ahead_at.filter(|&at| request_timer::time_after(wake, at)) {
            wake = at;
        }
        meta.set_timeouts(net::ms_to_jiffies(request_timer::elapsed_ms(wake, now)), timing.send_timeout());
        let received = recv_packet(meta, link, Socket::Meta, &mut buf);
        if received.is_ok() {
            quiet_since = crate::kernel_glue::now_ms();
        }
        match received {
            Ok((Packet::Ping, _, _)) => shared.send_meta(meta, link, Packet::PingAck, 0, |_| Ok(0))?,
            Ok((cmd, _, payload)) if is_block_ack(cmd) => {
                if let Body::Ack(ack) = decode_body(cmd, link, payload)? {
                    got_block_ack(shared, cmd, ack)?;
                }
            }
            Ok((Packet::BarrierAck, _, payload)) => {
                if let Body::BarrierAck(ack) = decode_body(Packet::BarrierAck, link, payload)? {
                    got_barrier_ack(shared, ack)?;
                }
            }
            Ok((Packet::ConnStChgReply, _, payload)) => {
                // The peer lets us go (our graceful disconnect waits for it).
                decode_body(Packet::ConnStChgReply, link, payload)?;
                shared.peer_replied.store(true, core::sync::atomic::Ordering::SeqCst);
                shared.wake.wake_all();
            }
            Ok((Packet::OvResult, _, payload)) => {
                if let (Body::Ack(ack), Some(ConnVolume { io, pd, .. })) = (decode_body(Packet::OvResult, link, payload)?, &shared.volume) {
                    crate::drbd_verify::got_result(shared.name.as_str(), io, pd, ack);
                }
            }
            Ok((Packet::StateChgReply, _, payload)) => {
                // The answer to our cluster-wide request (drbd_mgmt).
                if let (Body::StateReply(r), Some(ConnVolume { pd, .. })) = (decode_body(Packet::StateChgReply, link, payload)?, &shared.volume) {
                    pd.got_state_reply(r.retcode);
                }
            }
            Ok((Packet::PingAck, _, _)) => ping_pending = false,
            Ok((cmd, _, payload)) => {
                // Validate it even though nothing acts on it yet.
                decode_body(cmd, link, payload)?;
            }
            // A deadline passed: the top of the loop sees which.
            Err(NetError::Io(e)) if e == EAGAIN => {}
            Err(e) => return Err(e),
        }
    }
}

/// Acks of single blocks the meta socket carries.
fn is_block_ack(cmd: Packet) -> bool {
    matches!(cmd, Packet::WriteAck | Packet::RecvAck | Packet::NegAck | Packet::RsWriteAck
        | Packet::NegRsDReply | Packet::RsIsInSync | Packet::RsCancel | Packet::NegDReply
        | Packet::Superseded | Packet::RetryWrite)
}

/// `got_BlockAck` and friends: an ack of a replicated write (by its block
/// id), or of a resync block (ID_SYNCER).
fn got_block_ack(shared: &ConnShared, cmd: Packet, ack: proto::BlockAck) -> core::result::Result<(), NetError> {
    let name = shared.name.as_str();
    let Some(ConnVolume { io, pd, .. }) = &shared.volume else { return Err(NetError::Refused) };
    // P_RS_IS_IN_SYNC's block id means nothing: 8.4 sends whatever shares
    // the peer request's union with the digest pointer (`got_IsInSync`
    // ignores it too).
    if ack.block_id == ID_SYNCER || cmd == Packet::RsIsInSync {
        let rs = &pd.resync;
        let blocks = u64::from(ack.blksize).div_ceil(4096);
        match cmd {
            // Source: the target has the block.
            Packet::RsWriteAck => {
                io.set_in_sync(ack.sector, ack.blksize);
                rs.note_left(|| io.out_of_sync_bits());
            }
            // Source: the target could not write it.
            Packet::NegAck => {
                pr_warn!("{}: peer failed the resync write at sector {}\n", name, ack.sector);
                rs.add_failed(blocks);
            }
            // Target: the source could not read it.
            Packet::NegRsDReply => {
                pr_warn!("{}: peer could not read sector {} for the resync\n", name, ack.sector);
                rs.add_failed(blocks);
                crate::drbd_resync::request_answered(io, pd, ack.sector, ack.blksize);
            }
            // Target: same data on both (checksum-based resync).
            Packet::RsIsInSync => {
                io.set_in_sync(ack.sector, ack.blksize);
                rs.add_same_csum(crate::drbd_include::csums::same_csum_bits(ack.blksize));
                rs.note_left(|| io.out_of_sync_bits());
                crate::drbd_resync::request_answered(io, pd, ack.sector, ack.blksize);
            }
            // Target: the source declined for now; the next pass asks again.
            Packet::RsCancel => crate::drbd_resync::request_answered(io, pd, ack.sector, ack.blksize),
            _ => {
                pr_err!("{}: {} for a resync block\n", name, cmd.name());
                return Err(NetError::Refused);
            }
        }
        return Ok(());
    }
    let Some(replica) = io.replica() else { return Err(NetError::Refused) };
    if cmd == Packet::NegDReply {
        // A read of ours: the peer could not read the block either.
        pr_err!("{}: Got NegDReply; Sector {}s, len {}.\n", name, ack.sector, ack.blksize);
        return match replica.reads().refused(ack.block_id, ack.sector) {
            Answer::Done => Ok(()),
            Answer::Unknown | Answer::Mismatch => Err(NetError::Refused),
        };
    }
    // Counted as processed once it took effect (the write it ends no
    // longer holds overlapping writes off): the resolving receiver may
    // then judge the peer's later P_DATA.
    let processed = || replica.packet_seq().peer_processed(ack.seq_num);
    if cmd == Packet::NegAck {
        // Its epoch's barrier ack must not clear it (protocol B: the
        // P_RECV_ACK came first and released the ack token already).
        let in_log = replica.write_failed(ack.block_id);
        let nacked = |sector, size, _| {
            io.set_out_of_sync(sector, size);
            io.conflicts().peer_acked(sector);
        };
        if !replica.got_ack(ack.block_id, false, nacked) && !in_log {
            pr_err!("{}: {} for an unknown request\n", name, cmd.name());
            return Err(NetError::Refused);
        }
        io.set_out_of_sync(ack.sector, ack.blksize);
        processed();
        pr_warn!("{}: peer failed the write at sector {}\n", name, ack.sector);
        return Ok(());
    }
    if cmd == Packet::RetryWrite {
        // Two Primaries: the peer's conflicting write goes first here.
        if !crate::drbd_dual_primary::got_retry_write(io, &replica, ack.block_id) {
            pr_err!("{}: {} for an unknown request\n", name, cmd.name());
            return Err(NetError::Refused);
        }
        processed();
        return Ok(());
    }
    // P_RS_WRITE_ACK for a write of ours: written there during a resync,
    // its blocks set in sync there (8.4's WRITE_ACKED_BY_PEER_AND_SIS).
    let positive = matches!(cmd, Packet::WriteAck | Packet::RsWriteAck | Packet::RecvAck | Packet::Superseded);
    let known = replica.got_ack(ack.block_id, positive, |sector, size, local_failed| {
        if matches!(cmd, Packet::WriteAck | Packet::RsWriteAck | Packet::Superseded) {
            // Two Primaries: the peer's writes after this ack are later.
            io.conflicts().peer_acked(sector);
        }
        match cmd {
            // Protocol C: on the peer's disk, and in sync if on ours too.
            // (Protocol A and B writes stay marked until their epoch's
            // barrier ack.) Superseded (two Primaries): the peer's write,
            // which contains ours, goes over ours here next; where the two
            // differ until then, the peer's bits (its write is not acked
            // yet) and activity log say so.
            Packet::WriteAck | Packet::RsWriteAck | Packet::Superseded if !local_failed => {
                io.set_in_sync(sector, size);
            }
            Packet::WriteAck | Packet::RsWriteAck | Packet::Superseded => {}
            Packet::RecvAck => {}
            _ => io.set_out_of_sync(sector, size),
        }
    });
    if !known {
        pr_err!("{}: {} for an unknown request\n", name, cmd.name());
        return Err(NetError::Refused);
    }
    processed();
    Ok(())
}

/// `receive_req_state`: the peer's cluster-wide state change request.
/// Invalidate, invalidate-remote and verify on the peer are checked by
/// the 8.4 rules and carried out here after the reply; anything else
/// (its promotion) rdrbd grants. Returns true when the peer disconnects
/// gracefully (`receive_req_conn_state`: Disconnecting is TearDown for
/// us; the sockets closing after the reply are expected, not a network
/// failure), and the receive loop ends.
fn receive_req_state(
    ctx: &LoopCtx<'_>,
    vs: &mut VolumeState,
    cmd: Packet,
    volume: u16,
    r: proto::ReqState,
) -> core::result::Result<bool, NetError> {
    use crate::drbd_mgmt::{judge_peer_request, peer_request_granted, PeerRequest};
    let shared = ctx.shared;
    let name = shared.name.as_str();
    let reply_cmd = if cmd == Packet::ConnStChgReq { Packet::ConnStChgReply } else { Packet::StateChgReply };
    let send = |rv: api::StateChangeResult| {
        let reply = proto::StateReply { retcode: rv as i32 };
        shared.send_meta(ctx.meta, ctx.link, reply_cmd, volume, |out| reply.encode(out))
    };
    if cmd == Packet::ConnStChgReq && r.requested_conn() == Some(ConnState::Disconnecting) {
        shared.ending.store(true, core::sync::atomic::Ordering::SeqCst);
        pr_info!("{}: peer is disconnecting\n", name);
        if let Some(ConnVolume { io, .. }) = &shared.volume {
            io.set_state(|s| s.peer.conn = ConnState::TearDown);
        }
        send(api::StateChangeResult::Success)?;
        return Ok(true);
    }
    let judged = match &shared.volume {
        Some(ConnVolume { io, .. }) if cmd == Packet::StateChgReq && vs.connected => {
            judge_peer_request(io, &shared.config, shared.sync_algs().verify.is_some(), ctx.link.version, r.mask, r.val)
        }
        _ => PeerRequest::Other,
    };
    match judged {
        PeerRequest::Other => {
            pr_info!("{}: peer requests state change (mask 0x{:x} val 0x{:x}): granted\n", name, r.mask, r.val);
            send(api::StateChangeResult::Success).map(|()| false)
        }
        PeerRequest::Promotion(consider_resync) => {
            pr_info!("{}: peer requests promotion: granted\n", name);
            vs.consider_resync = consider_resync;
            send(api::StateChangeResult::Success).map(|()| false)
        }
        PeerRequest::Refused(rv) => {
            pr_info!("{}: peer requests state change (mask 0x{:x} val 0x{:x}): refused: {}\n", name, r.mask, r.val, rv.text());
            send(rv).map(|()| false)
        }
        PeerRequest::Granted(conn) => {
            send(api::StateChangeResult::Success)?;
            let (Some(ConnVolume { io, pd, .. }), Some(replica)) = (&shared.volume, vs.replica.clone()) else {
                return Err(NetError::Refused);
            };
            peer_request_granted(name, io, pd, &replica, conn).map_err(NetError::Io)?;
            Ok(false)
        }
    }
}

/// The transform of the `verify-alg` in force, allocated at the first
/// verify packet and again when the algorithm changed.
fn verify_digest<'a>(shared: &ConnShared, slot: &'a mut Option<(AlgName, Digest)>) -> core::result::Result<&'a Digest, NetError> {
    let alg = shared.sync_algs().verify;
    let Some(alg) = alg else {
        pr_err!("{}: online verify packet, but no verify-alg is configured\n", shared.name.as_str());
        return Err(NetError::Refused);
    };
    if slot.as_ref().is_none_or(|(cached, _)| *cached != alg) {
        match net::digest_named(&alg) {
            Ok(digest) => *slot = Some((alg, digest)),
            Err(_) => {
                pr_err!("{}: online verify packet, but verify-alg {} is not usable\n", shared.name.as_str(), alg.as_str());
                return Err(NetError::Refused);
            }
        }
    }
    slot.as_ref().map(|(_, d)| d).ok_or(NetError::Refused)
}

/// Checks an online verify packet: the connection state it belongs to
/// and its range (at most one 4 KiB block, inside the device).
fn check_verify_packet(shared: &ConnShared, io: &DeviceIo, cmd: Packet, want: ConnState, req: &proto::BlockRequest) -> bool {
    let name = shared.name.as_str();
    let conn = io.peer().conn;
    if conn != want {
        pr_err!("{}: {} in connection state {}\n", name, cmd.name(), conn.name());
        return false;
    }
    if req.blksize > 4096 || !check_request_range(io, req.sector, req.blksize) {
        pr_err!("{}: {} for sector {} size {} is out of range\n", name, cmd.name(), req.sector, req.blksize);
        return false;
    }
    true
}

/// P_OV_REQUEST (we are VerifyT): answer with our block's digest.
fn serve_ov_request(ctx: &LoopCtx<'_>, vs: &mut VolumeState, req: proto::BlockRequest) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let Some(ConnVolume { io, pd, .. }) = &shared.volume else { return Err(NetError::Refused) };
    if !check_verify_packet(shared, io, Packet::OvRequest, ConnState::VerifyT, &req) {
        return Err(NetError::Refused);
    }
    let Some(replica) = vs.replica.clone() else { return Err(NetError::Refused) };
    let digest = verify_digest(shared, &mut vs.verify_digest)?;
    io.count_net(req.blksize, true);
    crate::drbd_verify::serve_request(shared.name.as_str(), io, pd, &replica, digest, &mut vs.pages, &mut vs.read_buf, req)
        .map_err(NetError::Io)
}

/// P_OV_REPLY (we are VerifyS): compare, answer P_OV_RESULT.
fn receive_ov_reply(
    ctx: &LoopCtx<'_>,
    vs: &mut VolumeState,
    volume: u16,
    req: proto::BlockRequest,
    peer_digest: &[u8],
) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let name = shared.name.as_str();
    let Some(ConnVolume { io, pd, .. }) = &shared.volume else { return Err(NetError::Refused) };
    if !check_verify_packet(shared, io, Packet::OvReply, ConnState::VerifyS, &req) {
        return Err(NetError::Refused);
    }
    let Some(replica) = vs.replica.clone() else { return Err(NetError::Refused) };
    let digest = verify_digest(shared, &mut vs.verify_digest)?;
    let ack = crate::drbd_verify::compare_reply(name, io, pd, digest, &mut vs.pages, &mut vs.read_buf, req, peer_digest)
        .map_err(NetError::Io)?;
    shared.send_meta(ctx.meta, ctx.link, Packet::OvResult, volume, |out| ack.encode(out))?;
    crate::drbd_verify::reply_done(name, io, pd, &replica).map_err(NetError::Io)
}

/// P_BARRIER_ACK (`got_BarrierAck` → `tl_release`): every write of the
/// acked epoch is on the peer's stable storage. Protocol A and B writes
/// are marked in sync now (protocol C ones were at their P_WRITE_ACK);
/// writes the peer failed stay out of sync. An ack that does not match
/// the oldest epoch we sent is a protocol error.
fn got_barrier_ack(shared: &ConnShared, ack: proto::BarrierAck) -> core::result::Result<(), NetError> {
    let name = shared.name.as_str();
    let Some(ConnVolume { io, .. }) = &shared.volume else { return Err(NetError::Refused) };
    let Some(replica) = io.replica() else {
        pr_err!("{}: BarrierAck #{} while not replicating\n", name, ack.barrier);
        return Err(NetError::Refused);
    };
    let clear = replica.protocol() != WireProtocol::C;
    let released = replica.got_barrier_ack(ack.barrier, ack.set_size, |w| {
        if w.failed {
            io.set_out_of_sync(w.sector, w.size);
        } else if clear && !replica.keep_marked_if_ahead(w.sector, w.size) {
            io.set_in_sync(w.sector, w.size);
        }
    });
    match released {
        Ok(_) => Ok(()),
        Err(e) => {
            pr_err!("{}: {}\n", name, e);
            Err(NetError::Refused)
        }
    }
}

/// Reads the next packet of the data socket: its command, volume, the
/// payload read into `buf`, and how much of it is left in the socket.
/// Once `connected`, the data of a P_DATA or P_RS_DATA_REPLY is left
/// there, for the write to receive into its own pages
/// (`WriteData::Socket`); the caller reads
/// what the write did not take. An injected receive fault flips the
/// first data byte of a P_DATA, P_RS_DATA_REPLY or P_DATA_REPLY.
fn recv_data_socket_packet<'a>(
    ctx: &LoopCtx<'_>,
    buf: &'a mut [u8],
    connected: bool,
    digest_size: usize,
) -> core::result::Result<(Packet, u16, &'a mut [u8], u32), NetError> {
    let header = net::recv_header(ctx.data, ctx.link)?;
    let cmd = header.cmd;
    if !cmd.accepted_on(Socket::Data) {
        return Err(proto::ProtocolError::UnexpectedCommand(cmd as u16).into());
    }
    let len = usize::try_from(header.length).map_err(|_| proto::ProtocolError::TooLong)?;
    let corrupt = matches!(cmd, Packet::Data | Packet::RsDataReply | Packet::DataReply) && receive_fault(ctx.shared);
    // The fixed part and the data-integrity-alg digest come first.
    let fixed = proto::DataPacket::SIZE.saturating_add(digest_size);
    let leave = matches!(cmd, Packet::Data | Packet::RsDataReply) && connected && !corrupt && len > fixed;
    let read = if leave { fixed } else { len };
    let unread = len.saturating_sub(read);
    if unread > proto::MAX_BIO_SIZE as usize {
        return Err(proto::ProtocolError::TooLong.into());
    }
    let payload = buf.get_mut(..read).ok_or(proto::ProtocolError::TooLong)?;
    ctx.data.recv_exact(payload)?;
    if corrupt {
        if let Some(byte) = payload.get_mut(fixed) {
            *byte ^= 0xff;
        }
    }
    Ok((cmd, header.volume, payload, u32::try_from(unread).map_err(|_| proto::ProtocolError::TooLong)?))
}

/// Whether the `receive` fault fires for this packet's data.
fn receive_fault(shared: &ConnShared) -> bool {
    shared.volume.as_ref().is_some_and(|ConnVolume { io, .. }| faults::insert(io.events().minor(), Fault::Receive))
}
