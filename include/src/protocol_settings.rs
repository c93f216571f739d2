//! The connection settings both peers must agree on (8.4's P_PROTOCOL):
//! the wire protocol, the after-split-brain policies and
//! allow-two-primaries, and what a received P_PROTOCOL or
//! P_PROTOCOL_UPDATE does to them (`receive_protocol`).
//!
//! At the handshake the peer's P_PROTOCOL must match ours, or the
//! connection is refused. On a live connection `net-options` may change
//! them; the node that changed them sends P_PROTOCOL_UPDATE (protocol
//! version 100 and later) and the peer adopts them as they are, mirrored
//! where the two sides see a policy from opposite ends.

use super::genl::{AfterSbPolicy, WireProtocol};
use super::protocol::conn_flags;
use super::protocol::ProtocolParams;

/// Settings of one side, as its net options say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolSettings {
    /// A, B or C.
    pub wire_protocol: WireProtocol,
    /// after-sb-0pri, -1pri, -2pri.
    pub after_sb: [AfterSbPolicy; 3],
    /// allow-two-primaries.
    pub two_primaries: bool,
}

/// A P_PROTOCOL that does not match ours: the name of the setting as
/// 8.4 logs it ("incompatible %s settings").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incompatible(pub &'static str);

/// The peer's data-integrity-alg, which rdrbd cannot verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntegrityUnsupported;

/// What a received P_PROTOCOL / P_PROTOCOL_UPDATE decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerProtocol {
    /// The handshake's P_PROTOCOL matches.
    Agreed,
    /// P_PROTOCOL_UPDATE: these are our settings from now on.
    Adopt(ProtocolSettings),
    /// The handshake's P_PROTOCOL does not match: refuse the connection.
    Refuse(Incompatible),
    /// The peer uses a data-integrity-alg (rdrbd has none): disconnect.
    IntegrityUnsupported,
}

impl ProtocolSettings {
    /// The P_PROTOCOL(_UPDATE) payload carrying these settings (without
    /// data-integrity-alg); `conn_flags` as the caller needs them.
    pub fn params(&self, conn_flags: u32) -> ProtocolParams<'static> {
        ProtocolParams {
            wire_protocol: self.wire_protocol as u32,
            after_sb_0p: self.after_sb[0] as u32,
            after_sb_1p: self.after_sb[1] as u32,
            after_sb_2p: self.after_sb[2] as u32,
            conn_flags,
            two_primaries: u32::from(self.two_primaries),
            integrity_alg: &[],
        }
    }

    /// `receive_protocol`: the peer's P_PROTOCOL (`update` false, at the
    /// handshake) must match what we have (its after-sb policies seen from
    /// our side, and not both with `discard-my-data`, which is
    /// `discard_my_data` here); a P_PROTOCOL_UPDATE (`update` true) is
    /// adopted. Protocol and policies must be known values either way.
    pub fn receive(&self, peer: &ProtocolParams<'_>, update: bool, discard_my_data: bool) -> PeerProtocol {
        if !peer.integrity_alg.is_empty() {
            return PeerProtocol::IntegrityUnsupported;
        }
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
            return PeerProtocol::Adopt(Self { wire_protocol, after_sb, two_primaries: peer.two_primaries != 0 });
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
        PeerProtocol::Agreed
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
        };
        let adopted = ProtocolSettings {
            wire_protocol: WireProtocol::A,
            after_sb: [AfterSbPolicy::DiscardLocal, AfterSbPolicy::DiscardRemote, AfterSbPolicy::Consensus],
            two_primaries: true,
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
    fn integrity_alg_is_not_supported() {
        let mut p = OURS.params(0);
        p.integrity_alg = b"crc32c";
        assert_eq!(OURS.receive(&p, true, false), PeerProtocol::IntegrityUnsupported);
        assert_eq!(OURS.receive(&p, false, false), PeerProtocol::IntegrityUnsupported);
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
