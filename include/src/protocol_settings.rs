//! The connection settings both peers must agree on (8.4's P_PROTOCOL):
//! the wire protocol, the after-split-brain policies, allow-two-primaries
//! and data-integrity-alg, and what a received P_PROTOCOL or
//! P_PROTOCOL_UPDATE does to them (`receive_protocol`).
//!
//! At the handshake the peer's P_PROTOCOL must match ours, or the
//! connection is refused. On a live connection `net-options` may change
//! them; the node that changed them sends P_PROTOCOL_UPDATE (protocol
//! version 100 and later) and the peer adopts them as they are, mirrored
//! where the two sides see a policy from opposite ends. The
//! data-integrity-alg is the exception, as in 8.4: each side digests what
//! it sends with its own and checks what it receives with the peer's, so
//! an update changes only the algorithm the receiver checks with (the
//! packet marks where the sender switched); the receiver's own stays.

use super::fixed_str::FixedStr;
use super::genl::{AfterSbPolicy, WireProtocol};
use super::protocol::conn_flags;
use super::protocol::{ProtocolParams, SHARED_SECRET_MAX};

/// A digest's name as the crypto API knows it ("crc32c", "sha256"); empty
/// for none.
pub type AlgName = FixedStr<SHARED_SECRET_MAX>;

/// Settings of one side, as its net options say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolSettings {
    /// A, B or C.
    pub wire_protocol: WireProtocol,
    /// after-sb-0pri, -1pri, -2pri.
    pub after_sb: [AfterSbPolicy; 3],
    /// allow-two-primaries.
    pub two_primaries: bool,
    /// data-integrity-alg: the digest our P_DATA, P_DATA_REPLY and
    /// P_RS_DATA_REPLY carry (empty: none).
    pub integrity_alg: AlgName,
}

/// A P_PROTOCOL that does not match ours: the name of the setting as
/// 8.4 logs it ("incompatible %s settings").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incompatible(pub &'static str);

/// What a received P_PROTOCOL / P_PROTOCOL_UPDATE decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerProtocol {
    /// The handshake's P_PROTOCOL matches.
    Agreed,
    /// P_PROTOCOL_UPDATE: these are our settings from now on.
    Adopt(ProtocolSettings),
    /// The handshake's P_PROTOCOL does not match: refuse the connection.
    Refuse(Incompatible),
}

impl ProtocolSettings {
    /// The P_PROTOCOL(_UPDATE) payload carrying these settings;
    /// `conn_flags` as the caller needs them.
    pub fn params(&self, conn_flags: u32) -> ProtocolParams<'_> {
        ProtocolParams {
            wire_protocol: self.wire_protocol as u32,
            after_sb_0p: self.after_sb[0] as u32,
            after_sb_1p: self.after_sb[1] as u32,
            after_sb_2p: self.after_sb[2] as u32,
            conn_flags,
            two_primaries: u32::from(self.two_primaries),
            integrity_alg: self.integrity_alg.as_bytes(),
        }
    }

    /// The settings ours are plus `alg` as data-integrity-alg; `None` if
    /// it cannot be a digest name.
    pub fn with_integrity_alg(self, alg: &[u8]) -> Option<Self> {
        Some(Self { integrity_alg: AlgName::new(alg)?, ..self })
    }

    /// `receive_protocol`: the peer's P_PROTOCOL (`update` false, at the
    /// handshake) must match what we have (its after-sb policies seen from
    /// our side, and not both with `discard-my-data`, which is
    /// `discard_my_data` here); a P_PROTOCOL_UPDATE (`update` true) is
    /// adopted, but for our own data-integrity-alg. Protocol and policies
    /// must be known values either way. The peer's data-integrity-alg is
    /// the one to check its data with from now on ([`peer_integrity_alg`]).
    pub fn receive(&self, peer: &ProtocolParams<'_>, update: bool, discard_my_data: bool) -> PeerProtocol {
        let Some(wire_protocol) = WireProtocol::from_raw(peer.wire_protocol) else {
            return PeerProtocol::Refuse(Incompatible("protocol"));
        };
        const NAMES: [&str; 3] = ["after-sb-0pri", "after-sb-1pri", "after-sb-2pri"];
        let raw = [peer.after_sb_0p, peer.after_sb_1p, peer.after_sb_2p];
        let mut after_sb = [AfterSbPolicy::Disconnect; 3];
        for (i, slot) in after_sb.iter_mut().enumerate() {
            match AfterSbPolicy::from_raw(raw[i]) {
                Some(p) => *slot = p.seen_from_peer(),
                None => return PeerProtocol::Refuse(Incompatible(NAMES[i])),
            }
        }
        if update {
            return PeerProtocol::Adopt(Self {
                wire_protocol,
                after_sb,
                two_primaries: peer.two_primaries != 0,
                integrity_alg: self.integrity_alg,
            });
        }
        if wire_protocol != self.wire_protocol {
            return PeerProtocol::Refuse(Incompatible("protocol"));
        }
        if let Some(i) = (0..3).find(|&i| after_sb[i] != self.after_sb[i]) {
            return PeerProtocol::Refuse(Incompatible(NAMES[i]));
        }
        if peer.conn_flags & conn_flags::DISCARD_MY_DATA != 0 && discard_my_data {
            return PeerProtocol::Refuse(Incompatible("discard-my-data"));
        }
        if (peer.two_primaries != 0) != self.two_primaries {
            return PeerProtocol::Refuse(Incompatible("allow-two-primaries"));
        }
        if peer.integrity_alg != self.integrity_alg.as_bytes() {
            return PeerProtocol::Refuse(Incompatible("data-integrity-alg"));
        }
        PeerProtocol::Agreed
    }
}

/// The digest the peer's data carries from this P_PROTOCOL(_UPDATE) on;
/// `None` for none. (Its decoder made sure the name is a valid string.)
pub fn peer_integrity_alg(peer: &ProtocolParams<'_>) -> Option<AlgName> {
    match peer.integrity_alg {
        [] => None,
        alg => AlgName::new(alg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genl::net_conf;

    const OURS: ProtocolSettings = ProtocolSettings {
        wire_protocol: WireProtocol::C,
        after_sb: [AfterSbPolicy::Disconnect, AfterSbPolicy::Consensus, AfterSbPolicy::Disconnect],
        two_primaries: false,
        integrity_alg: AlgName::EMPTY,
    };

    #[test]
    fn handshake_packet_must_match() {
        assert_eq!(OURS.receive(&OURS.params(0), false, false), PeerProtocol::Agreed);
        let mut a = OURS.params(0);
        a.wire_protocol = net_conf::PROT_A;
        assert_eq!(OURS.receive(&a, false, false), PeerProtocol::Refuse(Incompatible("protocol")));
        let mut two = OURS.params(0);
        two.two_primaries = 1;
        assert_eq!(OURS.receive(&two, false, false), PeerProtocol::Refuse(Incompatible("allow-two-primaries")));
    }

    #[test]
    fn update_is_adopted_with_mirrored_policies() {
        let theirs = ProtocolSettings {
            wire_protocol: WireProtocol::A,
            after_sb: [AfterSbPolicy::DiscardRemote, AfterSbPolicy::DiscardLocal, AfterSbPolicy::Consensus],
            two_primaries: true,
            integrity_alg: AlgName::EMPTY,
        };
        let adopted = ProtocolSettings {
            wire_protocol: WireProtocol::A,
            after_sb: [AfterSbPolicy::DiscardLocal, AfterSbPolicy::DiscardRemote, AfterSbPolicy::Consensus],
            two_primaries: true,
            integrity_alg: AlgName::EMPTY,
        };
        assert_eq!(OURS.receive(&theirs.params(0), true, false), PeerProtocol::Adopt(adopted));
    }

    #[test]
    fn bad_protocol_number_is_refused_even_in_an_update() {
        let mut p = OURS.params(0);
        p.wire_protocol = 4;
        assert_eq!(OURS.receive(&p, true, false), PeerProtocol::Refuse(Incompatible("protocol")));
        p.wire_protocol = 0;
        assert_eq!(OURS.receive(&p, false, false), PeerProtocol::Refuse(Incompatible("protocol")));
    }

    #[test]
    fn handshake_after_sb_policies_must_match_as_seen_from_each_side() {
        let mine = ProtocolSettings { after_sb: [AfterSbPolicy::DiscardLocal, AfterSbPolicy::Consensus, AfterSbPolicy::Disconnect], ..OURS };
        // The peer's discard-remote is our discard-local.
        let mut mirrored = mine.params(0);
        mirrored.after_sb_0p = net_conf::ASB_DISCARD_REMOTE;
        assert_eq!(mine.receive(&mirrored, false, false), PeerProtocol::Agreed);
        // Both discarding their own data cannot agree.
        assert_eq!(mine.receive(&mine.params(0), false, false), PeerProtocol::Refuse(Incompatible("after-sb-0pri")));
        let mut other = OURS.params(0);
        other.after_sb_1p = net_conf::ASB_DISCARD_SECONDARY;
        assert_eq!(OURS.receive(&other, false, false), PeerProtocol::Refuse(Incompatible("after-sb-1pri")));
        let mut unknown = OURS.params(0);
        unknown.after_sb_2p = 11;
        assert_eq!(OURS.receive(&unknown, true, false), PeerProtocol::Refuse(Incompatible("after-sb-2pri")));
    }

    #[test]
    fn only_one_side_may_discard_its_data() {
        let theirs = OURS.params(conn_flags::DISCARD_MY_DATA);
        assert_eq!(OURS.receive(&theirs, false, false), PeerProtocol::Agreed);
        assert_eq!(OURS.receive(&OURS.params(0), false, true), PeerProtocol::Agreed);
        assert_eq!(OURS.receive(&theirs, false, true), PeerProtocol::Refuse(Incompatible("discard-my-data")));
    }

    #[test]
    fn integrity_alg_must_match_at_the_handshake_only() {
        let crc = OURS.with_integrity_alg(b"crc32c").unwrap();
        assert_eq!(crc.params(0).integrity_alg, b"crc32c");
        assert_eq!(crc.receive(&crc.params(0), false, false), PeerProtocol::Agreed);
        assert_eq!(OURS.receive(&crc.params(0), false, false), PeerProtocol::Refuse(Incompatible("data-integrity-alg")));
        assert_eq!(crc.receive(&OURS.params(0), false, false), PeerProtocol::Refuse(Incompatible("data-integrity-alg")));
        // An update changes what we check the peer's data with, not what
        // we send.
        assert_eq!(OURS.receive(&crc.params(0), true, false), PeerProtocol::Adopt(OURS));
        assert_eq!(peer_integrity_alg(&crc.params(0)).unwrap().as_bytes(), b"crc32c");
        assert_eq!(peer_integrity_alg(&OURS.params(0)), None);
        assert_eq!(OURS.with_integrity_alg(&[b'x'; 64]), None);
    }

    #[test]
    fn names_and_values() {
        assert_eq!(WireProtocol::A.name(), "A");
        assert_eq!(WireProtocol::C.name(), "C");
        assert_eq!(WireProtocol::from_raw(net_conf::PROT_B), Some(WireProtocol::B));
        assert_eq!(WireProtocol::from_raw(9), None);
    }

    #[test]
    fn an_unknown_protocol_is_refused() {
        let mut p = OURS.params(0);
        p.wire_protocol = 4;
        assert_eq!(OURS.receive(&p, true, false), PeerProtocol::Refuse(Incompatible("protocol")));
        assert_eq!(OURS.receive(&p, false, false), PeerProtocol::Refuse(Incompatible("protocol")));
    }
}
