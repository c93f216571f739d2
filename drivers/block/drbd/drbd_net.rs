// SPDX-License-Identifier: GPL-2.0
//! What both sockets of a connection share below the connection logic:
//! the net options in force (`NetConfig`, from NET_CONF), the live timing
//! `net-options` changes, the errors that end a connection, and sending
//! and receiving one packet.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;

use crate::drbd_include::congestion::{CongestionPolicy, OnCongestion};
use crate::drbd_include::fixed_str::FixedStr;
use crate::drbd_include::genl::{net_conf, AfterSbPolicy, NetConf, WireProtocol};
use crate::drbd_include::protocol::{self as proto, encode_packet, Header, Link, Packet, ProtocolError};
use crate::drbd_include::protocol_settings::{AlgName, ProtocolSettings};
use crate::drbd_include::request_timer::NetTimeouts;
use crate::kernel_glue::crypto::{Digest, Hmac};
use crate::kernel_glue::net::{SockAddr, SocketBuffers, TcpSocket};

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
    pub(crate) after_sb: [AfterSbPolicy; 3],
    pub(crate) rr_conflict: AfterSbPolicy,
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
    /// `data-integrity-alg`: the digest our data packets carry (empty: none).
    pub(crate) integrity_alg: AlgName,
    /// `csums-after-crash-only`: checksums only after a Primary crashed.
    pub(crate) csums_after_crash_only: bool,
    /// `on-congestion`, `cong-fill`, `cong-extents`.
    pub(crate) congestion: CongestionPolicy,
    /// `sndbuf-size` and `rcvbuf-size` of every socket (0: the kernel
    /// sizes it).
    pub(crate) buffers: SocketBuffers,
}

/// The digest transform named `alg`.
pub(crate) fn digest_named(alg: &FixedStr<{ net_conf::SECRET_SIZE }>) -> Result<Digest> {
    kernel::str::CStr::from_bytes_with_nul(alg.as_bytes_with_nul()).map_err(|_| EINVAL).and_then(Digest::new)
}

/// The digests of online verify and checksum-based resync in force
/// (`ConnShared::sync_algs`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncAlgs {
    pub(crate) verify: Option<AlgName>,
    pub(crate) csums: Option<AlgName>,
}

/// An algorithm's bytes (empty for none), as P_SYNC_PARAM carries it.
pub(crate) fn alg_bytes(alg: &Option<AlgName>) -> &[u8] {
    alg.as_ref().map_or(&[][..], |a| a.as_bytes())
}

/// The `data-integrity-alg` transform of `alg`; `None` for none (empty).
pub(crate) fn integrity_digest(alg: &AlgName) -> Result<Option<Digest>> {
    match alg.as_bytes() {
        [] => Ok(None),
        _ => digest_named(alg).map(Some),
    }
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
        ProtocolSettings {
            wire_protocol: self.wire_protocol,
            after_sb: self.after_sb,
            two_primaries: self.two_primaries,
            integrity_alg: self.integrity_alg,
        }
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
        // NetOptions::new checked that the kernel has it.
        let integrity_alg = AlgName::new(nc.integrity_alg).ok_or("invalid data-integrity-alg")?;
        let my_addr = SockAddr::from_bytes(my_addr).ok_or("invalid local address")?;
        let peer_addr = SockAddr::from_bytes(peer_addr).ok_or("invalid peer address")?;
        let wire_protocol = WireProtocol::from_raw(nc.wire_protocol).ok_or("invalid wire protocol")?;
        let policy = |raw: u32| AfterSbPolicy::from_raw(raw).ok_or("invalid after-sb or rr-conflict policy");
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
            after_sb: [policy(nc.after_sb_0p)?, policy(nc.after_sb_1p)?, policy(nc.after_sb_2p)?],
            rr_conflict: policy(nc.rr_conflict)?,
            always_asbp: nc.always_asbp,
            two_primaries: nc.two_primaries,
            discard_my_data: nc.discard_my_data,
            max_epoch_size: nc.max_epoch_size.max(1),
            auth,
            verify_alg,
            csums_alg,
            integrity_alg,
            csums_after_crash_only: nc.csums_after_crash_only,
            congestion: congestion_policy(nc).ok_or("invalid on-congestion policy")?,
            buffers: SocketBuffers { send: nc.sndbuf_size, receive: nc.rcvbuf_size },
        })
    }
}

/// The congestion options of `nc`.
pub(crate) fn congestion_policy(nc: &NetConf<'_>) -> Option<CongestionPolicy> {
    Some(CongestionPolicy {
        on_congestion: OnCongestion::from_raw(nc.on_congestion)?,
        fill_sectors: nc.cong_fill,
        extents: nc.cong_extents,
    })
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
/// of its command. Waiting for it, the data received so far is acked at
/// once (`TcpSocket::recv_exact_acking`).
pub(crate) fn recv_header(sock: &TcpSocket, link: Link) -> core::result::Result<Header, NetError> {
    let mut buf = [0u8; 16];
    let raw = buf.get_mut(..link.header_size()).ok_or(ProtocolError::BufferTooSmall)?;
    sock.recv_exact_acking(raw)?;
    let header = Header::decode(link, raw)?;
    proto::check_payload_size(header.cmd, link, header.length)?;
    Ok(header)
}

/// Ping and send timing and the congestion policy of a live connection,
/// changed by `net-options`.
pub(crate) struct LiveTiming {
    /// Seconds.
    ping_int: AtomicU32,
    /// Tenths of a second.
    ping_timeo: AtomicU32,
    /// Tenths of a second.
    timeout: AtomicU32,
    /// Blocked sends tolerated; with `timeout` the request timer.
    ko_count: AtomicU32,
    /// `on-congestion` (`net_conf::OC_*`).
    on_congestion: AtomicU32,
    /// `cong-fill`, sectors.
    cong_fill: AtomicU32,
    /// `cong-extents`.
    cong_extents: AtomicU32,
}

impl LiveTiming {
    pub(crate) fn new(config: &NetConfig) -> Self {
        Self {
            ping_int: AtomicU32::new(config.ping_int),
            ping_timeo: AtomicU32::new(config.ping_timeo),
            timeout: AtomicU32::new(config.timeout),
            ko_count: AtomicU32::new(config.ko_count),
            on_congestion: AtomicU32::new(config.congestion.on_congestion.to_raw()),
            cong_fill: AtomicU32::new(config.congestion.fill_sectors),
            cong_extents: AtomicU32::new(config.congestion.extents),
        }
    }

    /// Applies a changed congestion policy.
    pub(crate) fn set_congestion(&self, policy: CongestionPolicy) {
        self.on_congestion.store(policy.on_congestion.to_raw(), Ordering::Relaxed);
        self.cong_fill.store(policy.fill_sectors, Ordering::Relaxed);
        self.cong_extents.store(policy.extents, Ordering::Relaxed);
    }

    /// The congestion policy in force.
    pub(crate) fn congestion(&self) -> CongestionPolicy {
        CongestionPolicy {
            on_congestion: OnCongestion::from_raw(self.on_congestion.load(Ordering::Relaxed)).unwrap_or(OnCongestion::Block),
            fill_sectors: self.cong_fill.load(Ordering::Relaxed),
            extents: self.cong_extents.load(Ordering::Relaxed),
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

