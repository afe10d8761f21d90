//! The smallest HTTP/1.0 client that a health check needs: one GET over a TCP
//! connection, bounded by the action's deadline; no redirects, no TLS, no proxies.
//! (Upstream forks curl or wget for this, and the nginx agent ignores its own
//! `testclient` parameter.)

use ocf::Deadline;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The most of a body a check reads.
pub const BODY_LIMIT: usize = 1 << 20;

/// An `http://` URL, or a path relative to where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `None`: the server's own listening address.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: String,
}

/// A URL path (and query) as it goes on the request line: `/` then RFC 3986 path and
/// query characters, percent-escapes well formed; none of the characters a shell or a
/// request line would take for something else (space, control characters, `;`, `$`,
/// backquote, quotes, parentheses, `\`, `#`, ...). Non-ASCII must be percent-encoded.
fn path_ok(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
                continue;
            }
            c if c.is_ascii_alphanumeric() || b"-._~/?&=+,:@!*".contains(&c) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// A host name (letters, digits, `-`, `.`) or an IPv4 address.
fn host_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        && !h.starts_with(['-', '.'])
}

impl Url {
    pub fn parse(raw: &str) -> Result<Url, String> {
        if raw.starts_with('/') {
            if !path_ok(raw) {
                return Err(format!(
                    "{} is not a URL path (only /, letters, digits, -._~?&=+,:@!* and %XX)",
                    ocf::params::shown(raw)
                ));
            }
            return Ok(Url {
                host: None,
                port: None,
                path: raw.to_string(),
            });
        }
        let Some(rest) = raw
            .strip_prefix("http://")
            .or_else(|| raw.strip_prefix("HTTP://"))
        else {
            let shown = ocf::params::shown(raw);
            return Err(if raw.to_ascii_lowercase().starts_with("https://") {
                format!("{shown}: https is not supported; check an http location on loopback")
            } else {
                format!("{shown} is neither an http:// URL nor a path starting with /")
            });
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let shown = ocf::params::shown(raw);
        if authority.contains('@') {
            return Err(format!("{shown}: credentials in URLs are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{shown}: unterminated [IPv6] host"))?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{shown}: [{h}] is not an IPv6 address"));
            }
            if !after.is_empty() && !after.starts_with(':') {
                return Err(format!("{shown} is not a valid URL"));
            }
            (h, after.strip_prefix(':'))
        } else {
            let (h, p) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if !host_ok(h) {
                return Err(format!("{shown}: {h:?} is not a host name"));
            }
            (h, p)
        };
        if !path_ok(path) {
            return Err(format!(
                "{shown}: the path is not a URL path (only /, letters, digits, -._~?&=+,:@!* \
                 and %XX)"
            ));
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("{shown}: bad port"))?,
            ),
        };
        Ok(Url {
            host: Some(host.to_string()),
            port,
            path: path.to_string(),
        })
    }

    /// Where to connect: the URL's host (resolved) or the server's own address, with
    /// wildcards turned into loopback.
    pub fn target(&self, listening: Option<SocketAddr>) -> Result<(SocketAddr, String), String> {
        match &self.host {
            Some(h) => {
                let port = self.port.unwrap_or(80);
                let addr = (h.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {h}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{h} has no address"))?;
                let hosthdr = if h.contains(':') {
                    format!("[{h}]:{port}")
                } else {
                    format!("{h}:{port}")
                };
                Ok((addr, hosthdr))
            }
            None => {
                let l = listening.ok_or("the server's listening address is not known")?;
                let ip = match l.ip() {
                    IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                let a = SocketAddr::new(ip, self.port.unwrap_or(l.port()));
                Ok((a, a.to_string()))
            }
        }
    }
}

/// A response: status code and (lossy UTF-8) body, at most [`BODY_LIMIT`] bytes.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

fn budget(deadline: &Deadline) -> Result<Duration, String> {
    let left = deadline.remaining();
    if left.is_zero() {
        return Err("no time left for the request".into());
    }
    Ok(left)
}

/// GET `path` from `addr`, the whole exchange bounded by `deadline`.
pub fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    deadline: &Deadline,
) -> Result<Response, String> {
    let mut s = TcpStream::connect_timeout(&addr, budget(deadline)?)
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_write_timeout(Some(budget(deadline)?)).ok();
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: rustha/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        s.set_read_timeout(Some(budget(deadline).map_err(|_| {
            format!("no complete answer from {addr} before the timeout")
        })?))
        .ok();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > BODY_LIMIT + 16384 {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no complete answer from {addr} before the timeout"))
            }
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
    }
    parse_response(&buf).map_err(|e| format!("{addr}: {e}"))
}

fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .ok_or("not an HTTP response (no header end)")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(format!("not an HTTP response: '{}'", status_line.trim()));
    }
    let status = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line '{}'", status_line.trim()))?;
    let body = &buf[head_end..];
    let body = &body[..body.len().min(BODY_LIMIT)];
    Ok(Response {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("/nginx_status").unwrap(),
            Url {
                host: None,
                port: None,
                path: "/nginx_status".into()
            }
        );
        let u = Url::parse("http://127.0.0.1:8080/s?auto").unwrap();
        assert_eq!(
            (u.host.as_deref(), u.port, u.path.as_str()),
            (Some("127.0.0.1"), Some(8080), "/s?auto")
        );
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!((u.host.as_deref(), u.port), (Some("::1"), None));
        assert_eq!(
            u.target(None).unwrap(),
            ("[::1]:80".parse().unwrap(), "[::1]:80".to_string())
        );
        assert_eq!(Url::parse("http://localhost").unwrap().path, "/");
        assert_eq!(
            Url::parse("/server-status?auto&x=%2F").unwrap().path,
            "/server-status?auto&x=%2F"
        );
        for bad in [
            "https://x/",
            "ftp://x",
            "x/y",
            "http://:80/",
            "http://h:0/",
            "http://u@h/",
            "/nginx_status\nextra",
            "/x\r\n",
            " /x",
            "/a b",
            "/a`id`",
            "/a;b",
            "/$(id)",
            "/a'b",
            "/%zz",
            "/%4",
            "/é",
            "http://h/a;b",
            "http://h$(id)/",
            "http://h;x/",
            "http://[::1x]/",
            "http://[::1]x/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let rel = Url::parse("/").unwrap();
        assert_eq!(
            rel.target(Some("0.0.0.0:8080".parse().unwrap())).unwrap().0,
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            rel.target(Some("[::]:81".parse().unwrap())).unwrap().0,
            "[::1]:81".parse().unwrap()
        );
    }

    #[test]
    fn responses() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nActive connections: 1\n").unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "Active connections: 1\n")
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n")
                .unwrap()
                .status,
            404
        );
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn get_against_a_local_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = c.read(&mut req).unwrap();
            c.write_all(b"HTTP/1.1 200 OK\r\n\r\nhello").unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        let dl = Deadline::after(Duration::from_secs(5));
        let r = get(addr, "h:1", "/x", &dl).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hello"));
        let req = t.join().unwrap();
        assert!(req.starts_with("GET /x HTTP/1.0\r\nHost: h:1\r\n"), "{req}");
    }
}
