//! Connection endpoints: drbdsetup-84's `[af:]addr[:port]` syntax, turned
//! into the raw `sockaddr_in` / `sockaddr_in6` images that CFG_CONTEXT's
//! my_addr and peer_addr carry, and printed back for `show`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// Port used when an address has none.
pub const DEFAULT_PORT: u16 = 7788;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;
/// `AF_INET_SDP` (and drbd-utils' fallback for `AF_SSOCKS`).
pub const AF_INET_SDP: u16 = 27;

/// Where the SSOCKS address family number is published.
const AF_SSOCKS_FILES: [&str; 2] = ["/proc/net/af_ssocks/family", "/proc/net/af_sci/family"];

/// The SSOCKS address family, if the system has one.
fn af_ssocks() -> Option<u16> {
    AF_SSOCKS_FILES
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.trim().parse().ok())
}

/// Splits `[af:]addr[:port]` like drbd-utils' `split_address`: returns the
/// address family, the host part and the port.
fn split(text: &str) -> Result<(u16, &str, u16), String> {
    let prefixes = [
        ("ipv4:", Some(AF_INET)),
        ("ipv6:", Some(AF_INET6)),
        ("sdp:", Some(AF_INET_SDP)),
        ("ssocks:", None),
    ];
    let (af, rest) = prefixes
        .iter()
        .find_map(|(prefix, af)| text.strip_prefix(prefix).map(|rest| (*af, rest)))
        .unwrap_or((Some(AF_INET), text));
    let af = af.unwrap_or_else(|| af_ssocks().unwrap_or(AF_INET_SDP));
    let port = |digits: &str| {
        digits
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{text}: invalid port '{digits}'"))
    };
    if af == AF_INET6 && rest.starts_with('[') {
        let bad = || format!("unexpected ipv6 format: {rest}");
        let close = rest.rfind(']').ok_or_else(bad)?;
        let host = rest.get(1..close).ok_or_else(bad)?;
        let after = rest.get(close + 1..).unwrap_or_default();
        return match after {
            "" => Ok((af, host, DEFAULT_PORT)),
            _ => match after.strip_prefix(':') {
                Some(digits) => Ok((af, host, port(digits)?)),
                None => Err(bad()),
            },
        };
    }
    match rest.rsplit_once(':') {
        Some((host, digits)) => Ok((af, host, port(digits)?)),
        None => Ok((af, rest, DEFAULT_PORT)),
    }
}

fn resolve(host: &str, want_v6: bool) -> Result<IpAddr, String> {
    let literal = if want_v6 {
        host.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    };
    if let Some(ip) = literal {
        return Ok(ip);
    }
    let found = (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("can not resolve the hostname: {host}: {e}"))?
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv6() == want_v6);
    found.ok_or_else(|| format!("can not resolve the hostname: {host}: no address of that family"))
}

/// Parses an endpoint into its sockaddr image (16 bytes for IPv4-style
/// families, 28 for IPv6), as drbd-utils' `nla_put_address` builds it.
pub fn parse(text: &str) -> Result<Vec<u8>, String> {
    let (af, host, port) = split(text)?;
    let mut image = Vec::with_capacity(28);
    image.extend_from_slice(&af.to_ne_bytes());
    image.extend_from_slice(&port.to_be_bytes());
    match resolve(host, af == AF_INET6)? {
        IpAddr::V6(ip) => {
            image.extend_from_slice(&[0; 4]); // sin6_flowinfo
            image.extend_from_slice(&ip.octets());
            image.extend_from_slice(&[0; 4]); // sin6_scope_id
        }
        IpAddr::V4(ip) => {
            image.extend_from_slice(&ip.octets());
            image.extend_from_slice(&[0; 8]);
        }
    }
    Ok(image)
}

fn af_name(af: u16) -> &'static str {
    match af {
        AF_INET => "ipv4",
        AF_INET6 => "ipv6",
        _ if Some(af) == af_ssocks() => "ssocks",
        AF_INET_SDP => "sdp",
        _ => "unknown",
    }
}

/// Prints a sockaddr image as drbd-utils' `sprint_address` does:
/// `ipv4 10.0.0.1:7789`, `ipv6 [fd00::1]:7789`.
pub fn format(image: &[u8]) -> String {
    let u16_at = |at: usize| {
        image
            .get(at..at + 2)
            .map(|b| [b[0], b[1]])
            .unwrap_or_default()
    };
    let af = u16::from_ne_bytes(u16_at(0));
    let port = u16::from_be_bytes(u16_at(2));
    let octets = |from: usize, n: usize| {
        let mut out = vec![0u8; n];
        for (o, b) in out.iter_mut().zip(image.iter().skip(from)) {
            *o = *b;
        }
        out
    };
    match af {
        AF_INET6 => {
            let mut addr = [0u8; 16];
            addr.copy_from_slice(&octets(8, 16));
            let scope = octets(24, 4);
            let scope = u32::from_ne_bytes([scope[0], scope[1], scope[2], scope[3]]);
            let ip = Ipv6Addr::from(addr);
            let host = if scope == 0 {
                ip.to_string()
            } else {
                format!("{ip}%{scope}")
            };
            format!("{} [{host}]:{port}", af_name(af))
        }
        AF_INET | AF_INET_SDP => ipv4(af, port, &octets(4, 4)),
        _ if Some(af) == af_ssocks() => ipv4(af, port, &octets(4, 4)),
        _ => format!("[unknown af={af}, len={}]", image.len()),
    }
}

fn ipv4(af: u16, port: u16, octets: &[u8]) -> String {
    let ip = Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]);
    format!("{} {ip}:{port}", af_name(af))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn images() {
        assert_eq!(
            hex(&parse("10.0.0.1").unwrap()),
            "02001e6c0a0000010000000000000000"
        );
        assert_eq!(
            hex(&parse("ipv4:10.0.0.1:7789").unwrap()),
            "02001e6d0a0000010000000000000000"
        );
        assert_eq!(
            hex(&parse("sdp:10.0.0.2:7001").unwrap()),
            "1b001b590a0000020000000000000000"
        );
        assert_eq!(
            hex(&parse("ipv6:[fd00::1]:7790").unwrap()),
            "0a001e6e00000000fd000000000000000000000000000001 00000000".replace(' ', "")
        );
        assert_eq!(parse("ipv6:[fd00::2]").unwrap()[2..4], [0x1e, 0x6c]);
        // Without brackets the last colon starts the port, as in drbd-utils.
        let unbracketed = parse("ipv6:fd00::1:7789").unwrap();
        assert_eq!(
            (unbracketed.len(), &unbracketed[2..4]),
            (28, &[0x1e, 0x6d][..])
        );
        assert!(
            parse("ipv6:fd00::3").is_err(),
            "host fd00: does not resolve"
        );
        assert_eq!(parse("localhost:1").unwrap()[4..8], [127, 0, 0, 1]);
    }

    #[test]
    fn bad_endpoints() {
        assert!(parse("10.0.0.1:0").is_err());
        assert!(parse("10.0.0.1:65536").is_err());
        assert!(parse("10.0.0.1:x").is_err());
        assert!(parse("ipv6:[fd00::1").is_err());
        assert!(parse("ipv6:[fd00::1]x").is_err());
        assert!(parse("ipv6:[fd00::1]:").is_err());
        assert!(parse("ipv4:no-such-host.invalid").is_err());
        assert!(parse("ipv6:[10.0.0.1]").is_err());
    }

    #[test]
    fn printing() {
        for text in ["ipv4:10.0.0.1:7789", "sdp:1.2.3.4:5", "ipv6:[fd00::1]:7790"] {
            let printed = format(&parse(text).unwrap());
            assert_eq!(printed, text.replacen(':', " ", 1));
        }
        assert_eq!(format(&[1, 0, 0, 0]), "[unknown af=1, len=4]");
        assert_eq!(format(&[]), "[unknown af=0, len=0]");
        let mut scoped = parse("ipv6:[fe80::1]:1").unwrap();
        scoped[24] = 2;
        assert_eq!(format(&scoped), "ipv6 [fe80::1%2]:1");
    }
}
