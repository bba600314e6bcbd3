//! Client addresses: CIDR ranges (IPv4 and IPv6) and the client IP behind trusted reverse proxies.
//!
//! The brute-force limiter keys everything on the client IP, so the IP must not be spoofable: it is
//! the TCP peer, and `X-Forwarded-For` is read only when that peer is a configured trusted proxy.
//! Then the right-most address that is not itself a trusted proxy is the client (entries to its
//! left were written by the client and prove nothing).

use axum::http::HeaderMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A single address (`203.0.113.7`, `2001:db8::1`) or a range (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits cleared).
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address or range \"{0}\": expected an IP address or CIDR such as 10.0.0.0/8 or 2001:db8::/32")]
pub struct InvalidCidr(pub String);

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, what a dual-stack socket reports) become IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn mask_v4(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let bits = u32::from(ip);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    Ipv4Addr::from(bits & mask)
}

fn mask_v6(ip: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let bits = u128::from(ip);
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    };
    Ipv6Addr::from(bits & mask)
}

impl Cidr {
    /// The range of exactly one address.
    pub fn host(ip: IpAddr) -> Cidr {
        let ip = canonical(ip);
        Cidr {
            network: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip, self.prefix) == net,
            _ => false,
        }
    }

    pub fn is_single_address(&self) -> bool {
        self.prefix == if self.network.is_ipv4() { 32 } else { 128 }
    }
}

impl FromStr for Cidr {
    type Err = InvalidCidr;

    /// Host bits are cleared (`10.1.2.3/8` → `10.0.0.0/8`); IPv4-mapped IPv6 becomes IPv4.
    fn from_str(text: &str) -> Result<Cidr, InvalidCidr> {
        let invalid = || InvalidCidr(text.to_owned());
        let trimmed = text.trim();
        let (addr, prefix) = match trimmed.split_once('/') {
            Some((addr, prefix)) => {
                if prefix.is_empty()
                    || !prefix.bytes().all(|b| b.is_ascii_digit())
                    || prefix.len() > 3
                {
                    return Err(invalid());
                }
                (addr, Some(prefix.parse::<u8>().map_err(|_| invalid())?))
            }
            None => (trimmed, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| invalid())?;
        match (ip, prefix) {
            (IpAddr::V6(v6), Some(prefix)) if v6.to_ipv4_mapped().is_some() => {
                // ::ffff:a.b.c.d/p covers IPv4 addresses only when p ≥ 96.
                let v4 = v6.to_ipv4_mapped().ok_or_else(invalid)?;
                let prefix = prefix
                    .checked_sub(96)
                    .filter(|p| *p <= 32)
                    .ok_or_else(invalid)?;
                Ok(Cidr {
                    network: IpAddr::V4(mask_v4(v4, prefix)),
                    prefix,
                })
            }
            (ip, None) => Ok(Cidr::host(ip)),
            (IpAddr::V4(v4), Some(prefix)) if prefix <= 32 => Ok(Cidr {
                network: IpAddr::V4(mask_v4(v4, prefix)),
                prefix,
            }),
            (IpAddr::V6(v6), Some(prefix)) if prefix <= 128 => Ok(Cidr {
                network: IpAddr::V6(mask_v6(v6, prefix)),
                prefix,
            }),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single_address() {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// Parses one `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry.parse::<SocketAddr>().ok().map(|addr| addr.ip())
}

/// The client's IP: the TCP peer, unless the peer is a trusted proxy; then the right-most entry of
/// `X-Forwarded-For` (all header lines, in order) that is not a trusted proxy. An entry that is not
/// an address stops the walk and the last trusted hop is used (never a client-chosen value).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|cidr| cidr.contains(ip));
    if !trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded_entry(entry).map(canonical) else {
            return client;
        };
        client = ip;
        if !trusted(ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_matching() {
        assert_eq!(cidr("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr(" 203.0.113.7 ").to_string(), "203.0.113.7");
        assert_eq!(cidr("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("::ffff:192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(cidr("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        for bad in [
            "",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "host.example",
            "1.2.3.4/+1",
            "::ffff:1.2.3.4/95",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
        }
        assert!(cidr("10.0.0.0/8").contains(ip("10.255.0.1")));
        assert!(!cidr("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!cidr("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(!cidr("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("198.51.100.1")));
        assert!(!cidr("0.0.0.0/0").contains(ip("::1")));
        assert!(cidr("::/0").contains(ip("::1")));
        assert!(
            cidr("192.0.2.5").contains(ip("192.0.2.5"))
                && !cidr("192.0.2.5").contains(ip("192.0.2.6"))
        );
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let proxies = [cidr("10.0.0.0/8"), cidr("fd00::/8")];
        // An untrusted peer: its header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.9"), &xff(&["203.0.113.1"]), &proxies),
            ip("198.51.100.9")
        );
        assert_eq!(
            client_ip(ip("198.51.100.9"), &xff(&["203.0.113.1"]), &[]),
            ip("198.51.100.9")
        );
        // Trusted: right-most untrusted entry; entries left of it are the client's own claims.
        let headers = xff(&["1.1.1.1, 203.0.113.1", "10.0.0.2"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &proxies),
            ip("203.0.113.1")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &xff(&["203.0.113.1:4444"]), &proxies),
            ip("203.0.113.1")
        );
        assert_eq!(
            client_ip(ip("fd00::1"), &xff(&["[2001:db8::7]:80"]), &proxies),
            ip("2001:db8::7")
        );
        // No header, garbage, or only proxies.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &proxies),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff(&["203.0.113.1, garbage"]), &proxies),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &xff(&["203.0.113.1, garbage, 10.0.0.3"]),
                &proxies
            ),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff(&["10.0.0.5, 10.0.0.3"]), &proxies),
            ip("10.0.0.5")
        );
    }
}
