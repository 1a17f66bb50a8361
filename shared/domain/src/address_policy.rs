//! The SSRF guard. Users hand us URLs; without this a URL could make the analyzer read the
//! cloud metadata service or a private network. The check is on IP addresses, so callers apply
//! it to IP literals when cleaning URLs and to every resolved address at connect time (which
//! is what defeats DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused: the range it falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockedAddress {
    pub range: &'static str,
}

impl std::fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} address blocked by policy", self.range)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Local development only: private and loopback targets are allowed.
    pub allow_private: bool,
    /// One address allowed whatever its range, everything else as the policy says: lets a
    /// test serve hostile redirects from a local site while the policy stays strict.
    pub exempt: Option<IpAddr>,
}

impl AddressPolicy {
    /// Every non-public address refused: the deployed default.
    pub const STRICT: AddressPolicy = AddressPolicy { allow_private: false, exempt: None };
    /// Private and loopback targets allowed: local development only.
    pub const LOCAL: AddressPolicy = AddressPolicy { allow_private: true, exempt: None };

    pub fn new(allow_private: bool) -> Self {
        if allow_private { Self::LOCAL } else { Self::STRICT }
    }

    pub fn exempting(self, ip: IpAddr) -> Self {
        AddressPolicy { exempt: Some(ip), ..self }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedAddress> {
        match special_range(ip) {
            Some(_) if self.exempt == Some(ip) => Ok(()),
            Some(range) if !self.allow_private => Err(BlockedAddress { range }),
            _ => Ok(()),
        }
    }
}

/// The non-public range `ip` belongs to, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (169, 254, 169) if ip.octets()[3] == 254 => "cloud metadata",
        (0, ..) => "unspecified (0.0.0.0/8)",
        (10, ..) => "private",
        (127, ..) => "loopback",
        (169, 254, _) => "link-local",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return v4_range(v4);
    }
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_unspecified() => "unspecified (::)",
        _ if ip.is_loopback() => "loopback",
        x if x & 0xfe00 == 0xfc00 => "private (unique local)",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    })
}

/// IPv4 addresses that an IPv6 address carries and that a connection would reach: mapped
/// (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(tail),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(ip: &str) -> Option<&'static str> {
        special_range(ip.parse().unwrap())
    }

    #[test]
    fn refuses_every_non_public_range() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified (::)"),
            ("fd00::1", "private (unique local)"),
            ("fc00::1", "private (unique local)"),
            ("fd00:ec2::254", "private (unique local)"), // the EC2 IPv6 metadata address
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("::7f00:1", "loopback"),
            ("2001:db8::1", "documentation"),
        ];
        for (ip, range) in cases {
            assert_eq!(blocked(ip), Some(range), "{ip}");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "100.128.0.1"] {
            assert_eq!(blocked(ip), None, "{ip}");
        }
    }

    #[test]
    fn local_development_may_allow_private_targets() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(AddressPolicy::STRICT.check(ip).is_err());
        assert!(AddressPolicy::LOCAL.check(ip).is_ok());
        let exempt = AddressPolicy::STRICT.exempting(ip);
        assert!(exempt.check(ip).is_ok());
        assert!(exempt.check("127.0.0.2".parse().unwrap()).is_err(), "only the one address");
        let err = AddressPolicy::default().check(ip).unwrap_err();
        assert_eq!(err.to_string(), "loopback address blocked by policy");
    }
}
