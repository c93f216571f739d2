//! Serving an established connection: the feature handshake, our
//! parameters, then the data socket's receive loop (`drbdd`) and the meta
//! socket's (`drbd_ack_receiver`: pings) in a second thread. Every packet
//! is checked (command known and allowed on that socket, payload length,
//! payload contents) before it is acted on; anything else ends the
//! connection with a log line.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::drbd_conn::{self as conn, ConnShared, LocalView, NetError};
use crate::drbd_include::genl::{net_conf, ConnState, DiskState, Role};
use crate::drbd_sender::Replica;
use crate::kernel_glue::block::WritePages;
use crate::drbd_include::protocol::{self as proto, decode_body, Body, Link, Packet, Socket};
use crate::drbd_include::uuid::{
    sync_handshake, uuid_compare, uuid_flags, AfterSbPolicy, CompareContext, HandshakeInput,
    HandshakeResult, SplitBrainConfig, Uuids,
};
use crate::kernel_glue::net::TcpSocket;
use crate::kernel_glue::thread::KThread;

/// The biggest payload a receiver accepts (P_DATA with digest).
const MAX_PAYLOAD: usize = proto::DataPacket::SIZE + proto::MAX_DIGEST_SIZE as usize + proto::MAX_BIO_SIZE as usize;

/// What we learnt from the peer during the handshake.
#[derive(Default)]
struct PeerInfo {
    uuids: Option<(Uuids, u64, u64)>,
    size: u64,
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
    let handshake_timeout = conn::deciseconds(cfg.ping_timeo.saturating_mul(4));
    data.set_timeouts(handshake_timeout, handshake_timeout);
    meta.set_timeouts(conn::deciseconds(cfg.ping_int.saturating_mul(10)), conn::deciseconds(cfg.timeout));
    data.set_nodelay();
    meta.set_nodelay();
    let link = conn::exchange_features(name, data)?;
    let local = local_view(shared);
    conn::send_parameters(shared, data, link, local.as_ref())?;
    shared.set_view(ConnState::WfReportParams, Role::Unknown, DiskState::DUnknown);
    // Handshake done: from now on the data socket waits as long as it takes.
    data.set_timeouts(0, conn::deciseconds(cfg.timeout));

    let asender_meta = meta.clone();
    let asender_data = data.clone();
    let asender_shared = shared.clone();
    let thread_name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_a_{}", name))?;
    let _asender = KThread::spawn(&thread_name, move || {
        if let Err(e) = run_asender(&asender_shared, &asender_meta, link) {
            log_error(asender_shared.name.as_str(), "meta", &e);
        }
        // Wake the receiver: the connection is over.
        asender_data.shutdown();
    })?;

    let mut buf = KVVec::from_elem(0u8, MAX_PAYLOAD, GFP_KERNEL).map_err(|_| ENOMEM)?;
    let mut peer = PeerInfo::default();
    let mut pages = WritePages::new(proto::MAX_BIO_SIZE as usize)?;
    let ctx = LoopCtx { shared, data, meta, link, resolve_conflicts };
    let result = receive_loop(&ctx, &mut buf, &mut pages, &mut peer, local.as_ref());
    // Writes waiting for the peer complete now (they stay out of sync).
    if let Some((_, io)) = &shared.device {
        if let Some(replica) = io.set_replica(None) {
            replica.abort();
        }
    }
    // Stop the asender before the sockets go.
    meta.shutdown();
    result
}

fn log_error(name: &str, which: &str, e: &NetError) {
    match e {
        NetError::Io(e) => pr_info!("{}: {} socket: error {}\n", name, which, e.to_errno()),
        NetError::Protocol(e) => pr_err!("{}: {} socket: protocol error: {}\n", name, which, e.reason()),
        NetError::Refused => {}
    }
}

/// Our side of the volume, read from the device (never from the registry:
/// the registry lock may be held by someone waiting for this thread).
fn local_view(shared: &ConnShared) -> Option<LocalView> {
    let (_, io) = shared.device.as_ref()?;
    let role = if io.is_primary() { Role::Primary } else { Role::Secondary };
    let disk = io.disk_state();
    let view = io.with_md(|md, _| LocalView {
        role,
        disk,
        uuids: md.uuids(),
        bitmap_bits: md.bitmap.count(),
        capacity: md.capacity(),
    });
    Some(view.unwrap_or(LocalView {
        role,
        disk: DiskState::Diskless,
        uuids: Uuids::default(),
        bitmap_bits: 0,
        capacity: 0,
    }))
}

/// Reads one packet from `sock` into `buf`: its command, volume and payload.
fn recv_packet<'a>(
    sock: &TcpSocket,
    link: Link,
    which: Socket,
    buf: &'a mut [u8],
) -> core::result::Result<(Packet, u16, &'a [u8]), NetError> {
    let header = conn::recv_header(sock, link)?;
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
}

fn receive_loop(
    ctx: &LoopCtx<'_>,
    buf: &mut [u8],
    pages: &mut WritePages,
    peer: &mut PeerInfo,
    local: Option<&LocalView>,
) -> core::result::Result<(), NetError> {
    let (shared, data, link, resolve_conflicts) = (ctx.shared, ctx.data, ctx.link, ctx.resolve_conflicts);
    let name = shared.name.as_str();
    let cfg = &shared.config;
    let mut connected = false;
    // Writes of the current epoch (answered in P_BARRIER_ACK).
    let mut epoch_size: u32 = 0;
    loop {
        let (cmd, volume, payload) = recv_packet(data, link, Socket::Data, buf)?;
        let body = decode_body(cmd, link, payload)?;
        let our_volume = shared.device.as_ref().map(|(v, _)| *v);
        let per_volume = !matches!(cmd, Packet::Protocol | Packet::ProtocolUpdate | Packet::DelayProbe | Packet::UnplugRemote);
        if per_volume && Some(volume) != our_volume {
            pr_err!("{}: {} for unknown volume {}\n", name, cmd.name(), volume);
            return Err(NetError::Refused);
        }
        match body {
            Body::Protocol(p) => {
                if p.wire_protocol != cfg.wire_protocol {
                    pr_err!("{}: incompatible communication protocols\n", name);
                    return Err(NetError::Refused);
                }
                if (p.two_primaries != 0) != cfg.two_primaries {
                    pr_err!("{}: incompatible setting of the two-primaries options\n", name);
                    return Err(NetError::Refused);
                }
            }
            Body::SyncParams(_) | Body::DelayProbe(_) | Body::Empty => {}
            Body::Sizes(s) => {
                peer.size = s.d_size;
                if let Some(local) = local {
                    if s.d_size != 0 && local.capacity != 0 && s.d_size < local.capacity {
                        pr_warn!("{}: peer's disk is smaller ({} < {} sectors)\n", name, s.d_size, local.capacity);
                    }
                }
            }
            Body::Uuids(u) => {
                peer.uuids = Some((u.uuids, u.bitmap_bits, u.flags));
                if connected && u.flags & uuid_flags::SKIP_INITIAL_SYNC != 0 && link.version >= 90 {
                    skip_initial_sync(shared, u.uuids.current)?;
                }
            }
            Body::State(s) => {
                let st = s.state;
                let mut pdsk = st.disk;
                if pdsk == DiskState::Negotiating {
                    let inconsistent = peer.uuids.is_some_and(|(_, _, f)| f & uuid_flags::INCONSISTENT != 0);
                    pdsk = if inconsistent { DiskState::Inconsistent } else { DiskState::Consistent };
                }
                if !connected {
                    handshake(shared, data, link, local, peer, st.role, pdsk, resolve_conflicts)?;
                    connected = true;
                    if let Some((volume, io)) = &shared.device {
                        let replica = Arc::pin_init(
                            Replica::new(data.clone(), link, *volume, cfg.wire_protocol),
                            GFP_KERNEL,
                        )?;
                        replica.reserve(256)?;
                        io.set_replica(Some(replica));
                    }
                } else {
                    shared.set_view(ConnState::Connected, st.role, pdsk);
                }
            }
            Body::Data { head, rest } if cmd == Packet::Data && connected => {
                receive_data(ctx, pages, head, rest)?;
                epoch_size = epoch_size.saturating_add(1);
            }
            Body::ReqState(r) => {
                // A cluster-wide state change of the peer (promotion,
                // graceful disconnect): rdrbd has nothing to object to.
                let reply_cmd = if cmd == Packet::ConnStChgReq { Packet::ConnStChgReply } else { Packet::StateChgReply };
                let reply = proto::StateReply { retcode: crate::drbd_include::genl::StateChangeResult::Success as i32 };
                pr_info!("{}: peer requests state change (mask 0x{:x} val 0x{:x}): granted\n", name, r.mask, r.val);
                shared.send_meta(ctx.meta, link, reply_cmd, volume, |out| reply.encode(out))?;
            }
            Body::Barrier(b) => {
                // Every write before it is on disk already (written
                // synchronously): the epoch is complete.
                let ack = proto::BarrierAck { barrier: b.barrier, set_size: epoch_size };
                shared.send_meta(ctx.meta, link, Packet::BarrierAck, 0, |out| ack.encode(out))?;
                epoch_size = 0;
            }
            _ => {
                pr_err!("{}: {} is not supported by rdrbd yet; dropping the connection\n", name, cmd.name());
                return Err(NetError::Refused);
            }
        }
    }
}

/// `receive_Data`: writes a replicated block to our disk and acks it as
/// the peer asked (protocol B on receipt, C when written).
fn receive_data(
    ctx: &LoopCtx<'_>,
    pages: &mut WritePages,
    head: proto::DataPacket,
    rest: &[u8],
) -> core::result::Result<(), NetError> {
    let shared = ctx.shared;
    let (link, meta) = (ctx.link, ctx.meta);
    let Some((volume, io)) = &shared.device else {
        return Err(NetError::Refused);
    };
    let size = u32::try_from(rest.len()).map_err(|_| proto::ProtocolError::TooLong)?;
    if size == 0 || size % 512 != 0 {
        pr_err!("{}: P_DATA with a size of {} bytes\n", shared.name.as_str(), size);
        return Err(NetError::Refused);
    }
    let prot = shared.config.wire_protocol;
    let (recv_ack, write_ack) = if link.version >= 100 {
        (head.dp_flags & proto::dp::SEND_RECEIVE_ACK != 0, head.dp_flags & proto::dp::SEND_WRITE_ACK != 0)
    } else {
        (prot == net_conf::PROT_B, prot == net_conf::PROT_C)
    };
    let ack = |cmd: Packet| {
        let a = proto::BlockAck { sector: head.sector, block_id: head.block_id, blksize: size, seq_num: head.seq_num };
        shared.send_meta(meta, link, cmd, *volume, |out| a.encode(out))
    };
    if recv_ack {
        ack(Packet::RecvAck)?;
    }
    let fua = head.dp_flags & proto::dp::FUA != 0;
    let flush = head.dp_flags & proto::dp::FLUSH != 0;
    match io.write_replicated(pages, head.sector, rest, fua, flush) {
        Ok(()) if write_ack => ack(Packet::WriteAck),
        Ok(()) => Ok(()),
        Err(e) => {
            pr_err!("{}: writing a replicated block at sector {} failed: error {}\n",
                shared.name.as_str(), head.sector, e.to_errno());
            if write_ack || recv_ack {
                ack(Packet::NegAck)?;
            }
            Ok(())
        }
    }
}

/// `receive_uuids` with SKIP_INITIAL_SYNC on a just-created node: take
/// the peer's current UUID, clear the bitmap, both disks UpToDate.
fn skip_initial_sync(shared: &ConnShared, peer_current: u64) -> core::result::Result<(), NetError> {
    let Some((_, io)) = &shared.device else { return Ok(()) };
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
            io.set_disk_state(DiskState::UpToDate);
            let view = io.peer();
            io.set_peer(crate::drbd_conn::PeerView { pdsk: DiskState::UpToDate, ..view });
            Ok(())
        }
        Some(Err(e)) => Err(NetError::Io(e)),
        _ => Ok(()),
    }
}

/// `drbd_sync_handshake` on receipt of the peer's first P_STATE.
#[allow(clippy::too_many_arguments)]
fn handshake(
    shared: &ConnShared,
    data: &TcpSocket,
    link: Link,
    local: Option<&LocalView>,
    peer: &PeerInfo,
    peer_role: Role,
    pdsk: DiskState,
    resolve_conflicts: bool,
) -> core::result::Result<(), NetError> {
    let name = shared.name.as_str();
    let cfg = &shared.config;
    let volume = shared.device.as_ref().map_or(0, |(v, _)| *v);
    let Some(local) = local else {
        shared.set_view(ConnState::Connected, peer_role, pdsk);
        return Ok(());
    };
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
            own_crashed_primary: false,
            peer_flags,
            resolve_conflicts,
            link,
        };
        let comparison = uuid_compare(&mut own, &mut theirs, &ctx);
        let policy = |raw: u32| AfterSbPolicy::from_raw(raw).unwrap_or(AfterSbPolicy::Disconnect);
        let input = HandshakeInput {
            comparison,
            own_uuids: own,
            peer_uuids: theirs,
            own_role: local.role,
            peer_role,
            own_disk: local.disk,
            pending_disk: local.disk,
            peer_disk: pdsk,
            own_changes: local.bitmap_bits,
            peer_changes: peer_bits,
            discard_my_data: cfg.discard_my_data,
            peer_flags,
            resolve_conflicts,
            dry_run: false,
            config: SplitBrainConfig {
                after_sb_0p: policy(cfg.after_sb[0]),
                after_sb_1p: policy(cfg.after_sb[1]),
                after_sb_2p: policy(cfg.after_sb[2]),
                rr_conflict: policy(cfg.rr_conflict),
                always_asbp: cfg.always_asbp,
            },
        };
        let outcome = sync_handshake(&input, || false);
        pr_info!("{}: uuid_compare()={} by rule {}\n", name, outcome.hg, comparison.rule);
        match outcome.result {
            HandshakeResult::Connected => {}
            HandshakeResult::Abort(why) => {
                pr_err!("{}: handshake refused the connection ({:?})\n", name, why);
                return Err(NetError::Refused);
            }
            HandshakeResult::SyncSource { .. } | HandshakeResult::SyncTarget { .. } => {
                pr_err!("{}: a resync is needed, which rdrbd does not implement yet; dropping the connection\n", name);
                return Err(NetError::Refused);
            }
        }
    }
    shared.set_view(ConnState::Connected, peer_role, pdsk);
    pr_info!("{}: conn( WFReportParams -> Connected ) pdsk( DUnknown -> {} )\n", name, pdsk.name());
    // after_state_ch: tell the peer where we ended up.
    conn::send_state(data, link, volume, local.role, ConnState::Connected, local.disk, pdsk, peer_role)
}

/// The meta socket (`drbd_ack_receiver`): answers pings, and pings the
/// peer when it has been quiet for ping-int; no PingAck within
/// ping-timeout ends the connection.
fn run_asender(shared: &ConnShared, meta: &TcpSocket, link: Link) -> core::result::Result<(), NetError> {
    let cfg = &shared.config;
    let idle = conn::deciseconds(cfg.ping_int.saturating_mul(10));
    let send_timeout = conn::deciseconds(cfg.timeout);
    let mut buf = [0u8; 64];
    let mut ping_pending = false;
    loop {
        if KThread::should_stop() {
            return Ok(());
        }
        match recv_packet(meta, link, Socket::Meta, &mut buf) {
            Ok((Packet::Ping, _, _)) => shared.send_meta(meta, link, Packet::PingAck, 0, |_| Ok(0))?,
            Ok((cmd @ (Packet::WriteAck | Packet::RecvAck | Packet::NegAck), _, payload)) => {
                if let Body::Ack(ack) = decode_body(cmd, link, payload)? {
                    let replica = shared.device.as_ref().and_then(|(_, io)| io.replica());
                    if !replica.is_some_and(|r| r.got_ack(ack.block_id)) {
                        pr_err!("{}: {} for an unknown request\n", shared.name.as_str(), cmd.name());
                        return Err(NetError::Refused);
                    }
                    if cmd == Packet::NegAck {
                        pr_warn!("{}: peer failed the write at sector {}\n", shared.name.as_str(), ack.sector);
                    }
                }
            }
            Ok((Packet::PingAck, _, _)) => {
                ping_pending = false;
                meta.set_timeouts(idle, send_timeout);
            }
            Ok((cmd, _, payload)) => {
                // Validate it even though nothing acts on it yet.
                decode_body(cmd, link, payload)?;
            }
            Err(NetError::Io(e)) if e == EAGAIN => {
                if ping_pending {
                    pr_err!("{}: PingAck did not arrive in time.\n", shared.name.as_str());
                    return Err(NetError::Refused);
                }
                shared.send_meta(meta, link, Packet::Ping, 0, |_| Ok(0))?;
                ping_pending = true;
                meta.set_timeouts(conn::deciseconds(cfg.ping_timeo), send_timeout);
            }
            Err(e) => return Err(e),
        }
    }
}
