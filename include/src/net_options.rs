//! Which net option changes a configured connection accepts (DRBD 8.4
//! `_check_net_options`, `drbd_adm_net_opts`).

use super::genl::{net_conf, NetConf, RetCode};

/// What the checks need to know about the connection and its volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetContext {
    /// The agreed protocol version while the handshake is done (the
    /// connection is WFReportParams or beyond), `None` otherwise.
    pub agreed_version: Option<u32>,
    /// Some volume of the resource is Primary.
    pub local_primary: bool,
    /// The peer is Primary.
    pub peer_primary: bool,
    /// Some attached volume has fencing resource-and-stonith.
    pub stonith: bool,
}

/// `_check_net_options`: the 8.4 error code for a refused change from
/// `old` (the connection's current options) to `new`.
pub fn check(old: Option<&NetConf<'_>>, new: &NetConf<'_>, ctx: &NetContext) -> Result<(), RetCode> {
    if let (Some(old), Some(version)) = (old, ctx.agreed_version) {
        if version < 100 && protocol_settings_differ(old, new) {
            return Err(RetCode::NeedApv100);
        }
    }
    if !new.two_primaries && ctx.local_primary && ctx.peer_primary {
        return Err(RetCode::NeedAllowTwoPri);
    }
    if new.two_primaries && new.wire_protocol != net_conf::PROT_C {
        return Err(RetCode::NotProtoC);
    }
    if new.wire_protocol == net_conf::PROT_A && ctx.stonith {
        return Err(RetCode::StonithAndProtA);
    }
    if ctx.local_primary && new.discard_my_data {
        return Err(RetCode::DiscardImpossible);
    }
    if new.on_congestion != net_conf::OC_BLOCK && new.wire_protocol != net_conf::PROT_A {
        return Err(RetCode::CongNotProtoA);
    }
    Ok(())
}

/// The settings both nodes must agree on, which 8.4 renegotiates on a
/// live connection with P_PROTOCOL_UPDATE (protocol 100 and later):
/// protocol, allow-two-primaries, data-integrity-alg.
pub fn protocol_settings_differ(old: &NetConf<'_>, new: &NetConf<'_>) -> bool {
    old.wire_protocol != new.wire_protocol
        || old.two_primaries != new.two_primaries
        || old.integrity_alg != new.integrity_alg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> NetConf<'static> {
        NetConf::default()
    }

    #[test]
    fn defaults_pass() {
        assert_eq!(check(None, &conf(), &NetContext::default()), Ok(()));
    }

    #[test]
    fn two_primaries_need_protocol_c() {
        let new = NetConf { two_primaries: true, wire_protocol: net_conf::PROT_A, ..conf() };
        assert_eq!(check(None, &new, &NetContext::default()), Err(RetCode::NotProtoC));
        let new = NetConf { two_primaries: true, wire_protocol: net_conf::PROT_C, ..conf() };
        assert_eq!(check(None, &new, &NetContext::default()), Ok(()));
    }

    #[test]
    fn old_peers_cannot_renegotiate() {
        let old = conf();
        let new = NetConf { wire_protocol: net_conf::PROT_B, ..conf() };
        let old_peer = NetContext { agreed_version: Some(96), ..NetContext::default() };
        assert_eq!(check(Some(&old), &new, &old_peer), Err(RetCode::NeedApv100));
        let new_peer = NetContext { agreed_version: Some(101), ..NetContext::default() };
        assert_eq!(check(Some(&old), &new, &new_peer), Ok(()));
        // Timing is not negotiated.
        let timing = NetConf { ping_int: 7, ..conf() };
        assert_eq!(check(Some(&old), &timing, &old_peer), Ok(()));
    }

    #[test]
    fn both_primary_keep_allow_two_primaries() {
        let ctx = NetContext { local_primary: true, peer_primary: true, ..NetContext::default() };
        assert_eq!(check(None, &conf(), &ctx), Err(RetCode::NeedAllowTwoPri));
        let new = NetConf { two_primaries: true, ..conf() };
        assert_eq!(check(None, &new, &ctx), Ok(()));
    }

    #[test]
    fn stonith_discard_and_congestion() {
        let stonith = NetContext { stonith: true, ..NetContext::default() };
        let prot_a = NetConf { wire_protocol: net_conf::PROT_A, ..conf() };
        assert_eq!(check(None, &prot_a, &stonith), Err(RetCode::StonithAndProtA));
        let primary = NetContext { local_primary: true, ..NetContext::default() };
        let discard = NetConf { discard_my_data: true, ..conf() };
        assert_eq!(check(None, &discard, &primary), Err(RetCode::DiscardImpossible));
        let pull_ahead = NetConf { on_congestion: 1, ..conf() };
        assert_eq!(check(None, &pull_ahead, &NetContext::default()), Err(RetCode::CongNotProtoA));
    }
}
