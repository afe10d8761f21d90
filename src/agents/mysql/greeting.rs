//! The server's protocol greeting, read from its unix socket (what `mysqladmin ping`
//! relies on): no fork, no credentials, and an error greeting ("Too many connections")
//! is a failure with its text.

use ocf::Deadline;
use std::io::Read;
use std::path::Path;

/// Read the server's protocol greeting from its unix socket. `Ok(version)`.
pub fn greeting(sock: &Path, deadline: &Deadline) -> Result<String, String> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let s = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| format!("socket: {e}"))?;
    let addr = SockAddr::unix(sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    // Non-blocking: a full backlog must not hang us.
    s.set_nonblocking(true).ok();
    s.connect(&addr)
        .map_err(|e| format!("connect to {}: {e}", sock.display()))?;
    s.set_nonblocking(false).ok();
    let mut s: std::os::unix::net::UnixStream =
        std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(s));
    let left = deadline.remaining();
    if left.is_zero() {
        return Err("no time left for the check".into());
    }
    s.set_read_timeout(Some(left)).ok();
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr)
        .map_err(|e| format!("no greeting from {}: {e}", sock.display()))?;
    let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], 0]) as usize;
    if len == 0 || len > 1 << 16 {
        return Err(format!("not a MySQL greeting (length {len})"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("short greeting from {}: {e}", sock.display()))?;
    parse_greeting(&body)
}

fn parse_greeting(body: &[u8]) -> Result<String, String> {
    match body.first() {
        Some(0x0a) => {
            let v = &body[1..];
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            Ok(String::from_utf8_lossy(&v[..end]).into_owned())
        }
        Some(0xff) if body.len() >= 3 => {
            let code = u16::from_le_bytes([body[1], body[2]]);
            let mut msg = &body[3..];
            if msg.first() == Some(&b'#') && msg.len() >= 6 {
                msg = &msg[6..];
            }
            Err(format!(
                "the server refused the connection: error {code}: {}",
                String::from_utf8_lossy(msg)
            ))
        }
        _ => Err("not a MySQL protocol-10 greeting".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        let mut g = vec![0x0a];
        g.extend_from_slice(b"10.11.19-MariaDB\0rest");
        assert_eq!(parse_greeting(&g).unwrap(), "10.11.19-MariaDB");
        let mut e = vec![0xff, 0x10, 0x04, b'#'];
        e.extend_from_slice(b"08004Too many connections");
        assert_eq!(
            parse_greeting(&e).unwrap_err(),
            "the server refused the connection: error 1040: Too many connections"
        );
        assert!(parse_greeting(b"HTTP/1.1").is_err());
        assert!(parse_greeting(b"").is_err());
    }
}
