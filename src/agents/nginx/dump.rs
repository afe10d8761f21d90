//! nginx's configuration as `nginx -T` dumps it: the pidfile, the `listen` directives
//! (the port and address to check) and a `stub_status` location.

/// A configuration as `nginx -T` dumps it: tokens with the stack of enclosing blocks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub pid: Option<String>,
    /// The first `listen` of an http server.
    pub listen: Option<String>,
    pub stub_status: Option<String>,
    /// Every `listen` value, of http and stream servers, in order; an http server
    /// without one listens on port 80 (`"80"` here).
    pub listens: Vec<String>,
}

/// One directive of a dump: the enclosing block headers, the serial number of each of
/// those blocks, and its words (none: the opening of the innermost block).
type Directive = (Vec<Vec<String>>, Vec<usize>, Vec<String>);

/// Split a dump into directives.
fn directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<String>> = Vec::new();
    let mut ids: Vec<usize> = Vec::new();
    let mut serial = 0usize;
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let flush = |cur: &mut String, words: &mut Vec<String>| {
        if !cur.is_empty() {
            words.push(std::mem::take(cur));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                flush(&mut cur, &mut words);
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e)
                            }
                        }
                        d if d == c => break,
                        d => cur.push(d),
                    }
                }
                if cur.is_empty() {
                    words.push(String::new());
                }
            }
            ';' => {
                flush(&mut cur, &mut words);
                out.push((stack.clone(), ids.clone(), std::mem::take(&mut words)));
            }
            '{' => {
                flush(&mut cur, &mut words);
                stack.push(std::mem::take(&mut words));
                serial += 1;
                ids.push(serial);
                out.push((stack.clone(), ids.clone(), vec![]));
            }
            '}' => {
                flush(&mut cur, &mut words);
                words.clear();
                stack.pop();
                ids.pop();
            }
            c if c.is_whitespace() => flush(&mut cur, &mut words),
            c => cur.push(c),
        }
    }
    out
}

impl Dump {
    pub fn parse(text: &str) -> Dump {
        let mut d = Dump::default();
        // http server blocks (by serial) and whether each has a listen.
        let mut servers: Vec<(usize, bool)> = Vec::new();
        for (stack, ids, words) in directives(text) {
            let in_block = |name: &str| stack.iter().any(|b| b.first().is_some_and(|h| h == name));
            let in_http_server = in_block("http") && in_block("server");
            let server_id = stack
                .iter()
                .zip(&ids)
                .rev()
                .find(|(b, _)| b.first().is_some_and(|h| h == "server"))
                .map(|(_, &id)| id);
            let Some(name) = words.first() else {
                // A block opens: an http server is remembered even if it holds nothing.
                if let (true, Some(id)) = (in_http_server, server_id) {
                    if !servers.iter().any(|s| s.0 == id) {
                        servers.push((id, false));
                    }
                }
                continue;
            };
            if name == "listen" && (in_http_server || in_block("stream") && in_block("server")) {
                if let Some(v) = words.get(1) {
                    d.listens.push(v.clone());
                }
                if let (true, Some(id)) = (in_http_server, server_id) {
                    if let Some(s) = servers.iter_mut().find(|s| s.0 == id) {
                        s.1 = true;
                    }
                }
            }
            match name.as_str() {
                "pid" if stack.is_empty() && d.pid.is_none() => d.pid = words.get(1).cloned(),
                "listen" if in_http_server && d.listen.is_none() => {
                    d.listen = words.get(1).cloned()
                }
                "stub_status" if in_http_server && d.stub_status.is_none() => {
                    let on = words.get(1).is_none_or(|v| v != "off");
                    let loc = stack
                        .iter()
                        .rev()
                        .find(|b| b.first().is_some_and(|h| h == "location"));
                    // `location = /x` or `location /x`; regex locations cannot be fetched.
                    let path = loc.and_then(|b| match b.get(1).map(String::as_str) {
                        Some("=") | Some("^~") => b.get(2).cloned(),
                        Some("~") | Some("~*") => None,
                        other => other.map(String::from),
                    });
                    if on {
                        d.stub_status = path;
                    }
                }
                _ => {}
            }
        }
        if servers.iter().any(|s| !s.1) {
            d.listens.push("80".into());
        }
        d
    }
}

impl Dump {
    /// The TCP ports of every `listen`.
    pub fn ports(&self) -> Vec<u16> {
        self.listens.iter().filter_map(|l| listen_port(l)).collect()
    }

    /// The `listen` the port is checked on: the one with `port` when given, else the
    /// first of an http server.
    pub fn listen_for(&self, port: Option<u16>) -> Option<&str> {
        match port {
            Some(port) => self
                .listens
                .iter()
                .find(|l| listen_port(l) == Some(port))
                .map(String::as_str),
            None => self.listen.as_deref(),
        }
    }
}

/// The port of a `listen` value: `8080`, `127.0.0.1:8080`, `[::]:80`, `*:80`, `host`.
pub fn listen_port(v: &str) -> Option<u16> {
    if v.starts_with("unix:") {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    let tail = match v.rfind(']') {
        Some(i) => &v[i + 1..],
        None => v,
    };
    match tail.rsplit_once(':') {
        Some((_, p)) => p.parse().ok(),
        None => Some(80),
    }
}

/// The address of a `listen` value, when it names one (`127.0.0.1:8080`, `[::1]:80`).
pub fn listen_ip(v: &str) -> Option<std::net::IpAddr> {
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    v.rsplit_once(':')
        .map_or(v, |(h, _)| h)
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_parsing() {
        let t = r#"# configuration file /etc/nginx/nginx.conf:
user www-data;
pid /run/nginx.pid; # the pid
events { worker_connections 768; }
http {
    server {
        listen 127.0.0.1:8080 default_server;
        listen [::]:8080;
        location / { root /var/www; }
        location = /basic_status { stub_status; }
        location /other { stub_status off; }
    }
}
"#;
        assert_eq!(
            Dump::parse(t),
            Dump {
                pid: Some("/run/nginx.pid".into()),
                listen: Some("127.0.0.1:8080".into()),
                stub_status: Some("/basic_status".into()),
                listens: vec!["127.0.0.1:8080".into(), "[::]:8080".into()],
            }
        );
        let t = "http { server { location ~ ^/s$ { stub_status on; } listen 81; } }";
        let d = Dump::parse(t);
        assert_eq!(
            (d.pid, d.listen.as_deref(), d.stub_status),
            (None, Some("81"), None)
        );
        // A `listen` of the stream module is not the web port.
        let t = "stream { server { listen 12345; } } http { server { listen 8443 ssl; } }";
        assert_eq!(Dump::parse(t).listen.as_deref(), Some("8443"));
        assert_eq!(Dump::parse(t).listens, ["12345", "8443"]);
        // A server without listen listens on 80, even an empty one.
        let t = "http { server { listen 81; } server { } server { root /x; } }";
        assert_eq!(Dump::parse(t).listens, ["81", "80"]);
        // The listen a port is checked on: the one with that port, else the first.
        let d = Dump::parse("http { server { listen 127.0.0.1:81; listen [::1]:82; } }");
        assert_eq!(d.ports(), [81, 82]);
        assert_eq!(d.listen_for(Some(82)), Some("[::1]:82"));
        assert_eq!(d.listen_for(None), Some("127.0.0.1:81"));
        assert_eq!(d.listen_for(Some(83)), None);
    }

    #[test]
    fn listen_ports() {
        assert_eq!(listen_port("8080"), Some(8080));
        assert_eq!(listen_port("127.0.0.1:81"), Some(81));
        assert_eq!(listen_port("[::]:82"), Some(82));
        assert_eq!(listen_port("[::1]"), Some(80));
        assert_eq!(listen_port("*:83"), Some(83));
        assert_eq!(listen_port("localhost"), Some(80));
        assert_eq!(listen_port("unix:/run/x.sock"), None);
        assert_eq!(
            listen_ip("127.0.0.1:81"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(listen_ip("192.0.2.5"), Some("192.0.2.5".parse().unwrap()));
        assert_eq!(
            listen_ip("[2001:db8::1]:80"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(listen_ip("8080"), None);
        assert_eq!(listen_ip("*:80"), None);
        assert_eq!(listen_ip("localhost:80"), None);
    }
}
