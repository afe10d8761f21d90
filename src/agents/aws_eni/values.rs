//! aws-eni's parameter values, each checked whole when the parameters are parsed, so a
//! bad one is 6 at validate/start (before any network call) and, at stop and monitor, the
//! runner's "act on the record" policy; it never reaches the SDK.
//!
//! Why this is enough to keep the SDK's own `unwrap`s away from what an admin types: the
//! strings that reach an HTTP header are the access key id and the region (both in the
//! SigV4 `Authorization` header; aws-runtime inserts signing headers with
//! `HeaderValue::from_str(..).unwrap()`), the endpoint's host and port (the `Host` header;
//! aws-sigv4 `expect`s an authority and a valid header value), and the session token
//! (`X-Amz-Security-Token`, from IMDS or a profile, checked after it is fetched, see
//! `credentials_usable`). `HeaderValue` refuses the control characters but tab (0x00-0x1f)
//! and DEL (0x7f), which is what made stop panic; every value here is a strict subset of
//! what it accepts: `[A-Z0-9]`, `[a-z0-9-]`, a DNS name / IP literal and
//! digits, `0x21..=0x7e`. URLs are checked as URLs (scheme, host, port, plain path), so
//! the SDK's `Uri` parsing and its `expect`s on authority and host cannot fail on them.

use ocf::params::{shown, ContentType, ParamValue};
use std::fmt;
use std::net::Ipv4Addr;

macro_rules! text_value {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn blank(raw: &str) -> bool {
    raw.trim().is_empty()
}

/// `eni-` and 8 or 17 lowercase hex digits, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EniId(String);
text_value!(EniId);

impl ParamValue for EniId {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        let ok = raw.strip_prefix("eni-").is_some_and(|h| {
            (h.len() == 8 || h.len() == 17)
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(EniId(raw.to_string()))
        } else {
            Err(format!(
                "{} is not an ENI id (eni- and 8 or 17 lowercase hex digits)",
                shown(raw)
            ))
        }
    }
}

/// An AWS region name as AWS spells them: `us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`.
pub fn region_ok(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    s.len() <= 32
        && parts.len() >= 3
        && parts[0].len() == 2
        && lower(parts[0])
        && parts[1..parts.len() - 1].iter().all(|p| lower(p))
        && parts
            .last()
            .is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionName(String);
text_value!(RegionName);

impl ParamValue for RegionName {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        if region_ok(raw) {
            Ok(RegionName(raw.to_string()))
        } else {
            Err(format!(
                "{} is not an AWS region name (like eu-west-1)",
                shown(raw)
            ))
        }
    }
}

/// An access key id: `AKIA…`/`ASIA…` style, 16 to 128 of `[A-Z0-9]` (AWS: 16..128).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyId(String);
text_value!(AccessKeyId);

impl ParamValue for AccessKeyId {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        if blank(raw) {
            return Err("is blank".into());
        }
        if (16..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            Ok(AccessKeyId(raw.to_string()))
        } else {
            Err(format!(
                "{} is not an access key id (16 to 128 of A-Z and 0-9, like AKIAIOSFODNN7EXAMPLE)",
                shown(raw)
            ))
        }
    }
}

/// A secret access key: 1 to 256 printable ASCII characters, no whitespace. Shown nowhere
/// (its `Debug` is redacted; `lookup` never echoes a secret's value either).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(**redacted**)")
    }
}

impl ParamValue for SecretKey {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        if blank(raw) {
            Err("is blank".into())
        } else if raw.len() > 256 || !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            Err("is not 1 to 256 printable ASCII characters without whitespace".into())
        } else {
            Ok(SecretKey(raw.to_string()))
        }
    }
}

/// A profile name of `~/.aws/config`: 1 to 64 of `[A-Za-z0-9_.@+-]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileName(String);
text_value!(ProfileName);

impl ParamValue for ProfileName {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        if (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.@+-".contains(&b))
        {
            Ok(ProfileName(raw.to_string()))
        } else {
            Err(format!(
                "{} is not a profile name (1 to 64 of A-Z a-z 0-9 _ . @ + -)",
                shown(raw)
            ))
        }
    }
}

/// A private IPv4 address an ENI can carry: unicast, not 0/8, loopback, link-local,
/// multicast, reserved (240/4) or broadcast. aws-eni moves IPv4 addresses only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateIpv4(pub Ipv4Addr);

impl ParamValue for PrivateIpv4 {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        let t = raw.trim();
        let ip: Ipv4Addr = match t.parse() {
            Ok(ip) => ip,
            Err(_) if t.parse::<std::net::Ipv6Addr>().is_ok() => {
                return Err(format!(
                    "{} is IPv6: aws-eni moves an ENI's private IPv4 addresses",
                    shown(raw)
                ))
            }
            Err(_) => return Err(format!("{} is not an IPv4 address", shown(raw))),
        };
        let o = ip.octets();
        let why = if o[0] == 0 {
            Some("in 0.0.0.0/8 (this network)")
        } else if ip.is_loopback() {
            Some("a loopback address")
        } else if ip.is_link_local() {
            Some("link-local")
        } else if ip.is_multicast() {
            Some("multicast")
        } else if ip.is_broadcast() {
            Some("the broadcast address")
        } else if o[0] >= 240 {
            Some("reserved (240.0.0.0/4)")
        } else {
            None
        };
        match why {
            Some(w) => Err(format!(
                "{} is {w}, not a private address an ENI can carry",
                shown(raw)
            )),
            None => Ok(PrivateIpv4(ip)),
        }
    }
}

/// An http(s) endpoint URL: `http://` or `https://`, a host (DNS name, IPv4 or `[IPv6]`),
/// an optional port 1-65535, an optional plain path; no user info, query or fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(String);
text_value!(HttpUrl);

fn dns_name_ok(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

pub fn check_url(raw: &str) -> Result<(), String> {
    if raw.len() > 1024 {
        return Err(format!("{} is longer than 1024 characters", shown(raw)));
    }
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
        .ok_or_else(|| format!("{} is not an http:// or https:// URL", shown(raw)))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(format!(
            "{}: user info (user@) does not belong in the URL",
            shown(raw)
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{}: unclosed [ in the host", shown(raw)))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{}: [{}] is not an IPv6 address", shown(raw), h));
        }
        match after {
            "" => (h, None),
            a => match a.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Err(format!("{} is not a URL", shown(raw))),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{} has no host", shown(raw)));
    }
    if !authority.starts_with('[') && !dns_name_ok(host) {
        return Err(format!(
            "{}: '{}' is not a host name or IPv4 address",
            shown(raw),
            shown(host).trim_matches('\'')
        ));
    }
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
        if !ok {
            return Err(format!("{}: the port is not 1-65535", shown(raw)));
        }
    }
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~%".contains(&b));
    if !path_ok {
        return Err(format!(
            "{}: only a plain path may follow the host (no query, fragment, spaces or shell characters)",
            shown(raw)
        ));
    }
    Ok(())
}

impl ParamValue for HttpUrl {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        check_url(raw).map(|()| HttpUrl(raw.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eni_ids_are_checked_whole() {
        for ok in ["eni-0123456789abcdef0", "eni-0123abcd"] {
            assert!(EniId::parse_value(ok).is_ok(), "{ok}");
        }
        for bad in [
            "eni-0123456789abcdef0\nextra",
            "eni-0123456789abcdef0;reboot",
            "eni-$(reboot)",
            "eni-0123456789abcdef",   // 16
            "eni-0123456789abcdef01", // 18
            "eni-",
            "eni-0123456789ABCDEF0",
            " eni-0123abcd",
            "0123abcd",
        ] {
            assert!(EniId::parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-west-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-isoe-west-1",
            "il-central-1",
        ] {
            assert!(region_ok(ok), "{ok}");
        }
        let huge = "a".repeat(64 * 1024);
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-1\n",
            "us-east-1 ",
            "us--1",
            "u-east-1",
            "us-east-1a",
            "us-east-$(x)",
            huge.as_str(),
        ] {
            assert!(!region_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn credentials_and_profiles() {
        assert!(AccessKeyId::parse_value("AKIAIOSFODNN7EXAMPLE").is_ok());
        assert_eq!(
            AccessKeyId::parse_value("   ").unwrap_err(),
            "is blank",
            "a blank key says so"
        );
        for bad in [
            "AKIAEXAMPLE\n",
            "AKIAIOSFODNN7EXAMPLE\n",
            "AKIAIOSFODNN7EXAMPLE ",
            "akiaiosfodnn7example",
            "AKIA",
            "AKIAIOSFODNN7EXAMPL\u{c4}",
        ] {
            assert!(AccessKeyId::parse_value(bad).is_err(), "{bad:?}");
        }
        assert!(AccessKeyId::parse_value(&"A".repeat(129)).is_err());
        assert!(SecretKey::parse_value("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_ok());
        for bad in ["", "  ", "abc def", "abc\n", "abc\t", "\u{e9}t\u{e9}"] {
            assert!(SecretKey::parse_value(bad).is_err(), "{bad:?}");
        }
        assert!(SecretKey::parse_value(&"x".repeat(257)).is_err());
        assert!(!format!("{:?}", SecretKey::parse_value("s3cr3t").unwrap()).contains("s3cr3t"));
        for ok in ["default", "prod-eu", "a.b_c@d+e"] {
            assert!(ProfileName::parse_value(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "../x", "a/b", "x\n", "[x]"] {
            assert!(ProfileName::parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn private_ipv4_only() {
        for ok in ["10.0.1.100", "172.31.0.5", "192.0.2.10", "100.64.1.1"] {
            assert!(PrivateIpv4::parse_value(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.1.2.3",
            "127.0.0.1",
            "169.254.169.254",
            "240.0.0.1",
            "::",
            "2001:db8::1",
            "10.0.1.300",
            "10.0.1",
            "10.0.1.100/24",
        ] {
            assert!(PrivateIpv4::parse_value(bad).is_err(), "{bad:?}");
        }
        assert!(PrivateIpv4::parse_value("2001:db8::1")
            .unwrap_err()
            .contains("IPv6"));
    }

    #[test]
    fn endpoint_urls() {
        for ok in [
            "http://127.0.0.1:5000",
            "http://169.254.169.254",
            "https://ec2.eu-west-1.amazonaws.com",
            "https://vpce-0123-abcd.ec2.eu-west-1.vpce.amazonaws.com/",
            "http://[fd00:ec2::254]",
            "http://[::1]:5001/",
            "https://proxy.example/ec2/",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://",
            "https://",
            "http:///x",
            "ftp://x",
            "127.0.0.1:5000",
            "http://x\r\nHost: y",
            "http://x/\r\n",
            "http://$(reboot)",
            "http://`id`",
            "http://x/$(reboot)",
            "http://x/a b",
            "http://user:pw@x",
            "http://x:0",
            "http://x:65536",
            "http://x:",
            "http://x:80a",
            "http://[::1",
            "http://[zz]:80",
            "http://x?y=1",
            "http://x/#f",
            "http://-x-",
            "http://a..b",
            " http://x",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
        assert!(check_url(&format!("http://x/{}", "a".repeat(1100))).is_err());
    }
}
