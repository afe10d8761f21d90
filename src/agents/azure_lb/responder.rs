//! The probe responder: bind, report ready, detach, then accept and close forever.
//!
//! No async runtime and no threads: one blocking accept loop. Each probe costs one
//! `accept4` and one `close`, so probes are answered as fast as they arrive, and no
//! connection is ever held open (so a client that holds its end open ties up nothing).
//! SIGTERM keeps its default action: the process ends at once.

use crate::daemon::{self, Ready};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// Hidden argv[1] of the responder.
pub const ENTRY: &str = "__azure-lb-responder";

fn listen(addr: SocketAddr, v6only: bool, backlog: i32) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(v6only)?;
    }
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    Ok(s)
}

/// `rustha __azure-lb-responder <addr:port> <v6only|dual> <backlog>`
pub fn main(args: &[String]) -> u8 {
    let ready = Ready::from_env();
    let (Some(addr), Some(mode), Some(backlog)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1),
        args.get(2).and_then(|b| b.parse::<i32>().ok()),
    ) else {
        ready.fail("usage: __azure-lb-responder <addr:port> <v6only|dual> <backlog>");
        return 2;
    };
    let sock = match listen(addr, mode == "v6only", backlog) {
        Ok(s) => s,
        Err(e) => {
            let mut why = format!("cannot listen on port {} ({addr}): {e}", addr.port());
            if e.kind() == std::io::ErrorKind::AddrInUse {
                let owners = crate::procfs::listening_owners(addr.port());
                if !owners.is_empty() {
                    why = format!(
                        "port {} is already in use by {}",
                        addr.port(),
                        owners.join(", ")
                    );
                } else {
                    why = format!("port {} is already in use ({addr})", addr.port());
                }
            }
            ready.fail(&why);
            return 1;
        }
    };
    ready.ok();
    daemon::detach();
    loop {
        match sock.accept() {
            Ok((conn, _)) => drop(conn),
            // Out of descriptors or memory: back off briefly instead of spinning.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(_) => {}
        }
    }
}
