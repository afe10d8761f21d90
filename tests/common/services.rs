//! Real nginx, lighttpd and MariaDB instances for the tests: each in its own directory
//! (configuration, document root, pidfile, logs, data), listening on loopback of the
//! calling thread's private network namespace.

use super::*;

/// The page every test site serves.
pub const PAGE: &str = "<html><body>rustha test page</body></html>\n";
pub const HTTP_PORT: u16 = 8080;

/// One server's files and the agent parameters that point at them.
pub struct Site {
    pub dir: TempDir,
    pub params: Vec<(String, String)>,
}

impl Site {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// The agent's environment for this site.
    pub fn env(&self, instance: &str, state: &Path) -> Env {
        self.params
            .iter()
            .fold(Env::pacemaker(instance, state), |e, (k, v)| e.param(k, v))
    }
    pub fn set_page(&self, text: &str) {
        std::fs::write(self.path("www/index.html"), text).unwrap();
    }
}

fn site_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    super::world_readable(dir.path());
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), PAGE).unwrap();
    dir
}

pub fn nginx_conf(d: &Path, port: u16) -> String {
    nginx_conf_listen(d, &format!("127.0.0.1:{port}"))
}

/// As [`nginx_conf`], with any `listen` value (e.g. `8080` for every address).
pub fn nginx_conf_listen(d: &Path, listen: &str) -> String {
    let d = d.display();
    format!(
        r#"worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen {listen};
        root {d}/www;
        location /nginx_status {{ stub_status; }}
    }}
}}
"#
    )
}

pub fn nginx_site(tag: &str) -> Site {
    nginx_site_listen(tag, &format!("127.0.0.1:{HTTP_PORT}"))
}

pub fn nginx_site_listen(tag: &str, listen: &str) -> Site {
    require_tool("nginx");
    let dir = site_dir(tag);
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf_listen(dir.path(), listen)).unwrap();
    Site {
        params: vec![("configfile".into(), conf.display().to_string())],
        dir,
    }
}

pub fn lighttpd_conf(d: &Path, port: u16) -> String {
    let d = d.display();
    format!(
        r#"server.document-root = "{d}/www"
server.port = {port}
server.bind = "127.0.0.1"
server.pid-file = "{d}/lighttpd.pid"
server.errorlog = "{d}/error.log"
server.modules += ( "mod_status" )
status.status-url = "/server-status"
index-file.names = ( "index.html" )
"#
    )
}

pub fn lighttpd_site(tag: &str) -> Site {
    lighttpd_site_port(tag, HTTP_PORT)
}

pub fn lighttpd_site_port(tag: &str, port: u16) -> Site {
    require_tool("lighttpd");
    let dir = site_dir(tag);
    let conf = dir.path().join("lighttpd.conf");
    std::fs::write(&conf, lighttpd_conf(dir.path(), port)).unwrap();
    Site {
        params: vec![("configfile".into(), conf.display().to_string())],
        dir,
    }
}

/// A MariaDB instance that the agent initialises on its first start
/// (`enable_creation=true`); networking off, the unix socket in the site's directory.
pub fn mysql_site(tag: &str) -> Site {
    require_tool("mariadbd");
    let dir = site_dir(tag);
    let d = dir.path();
    // A tmpdir of its own: a starting server deletes every `#sql*` file in its tmpdir,
    // including the temporary tables of another instance bootstrapping meanwhile.
    let tmp = d.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mysql = nix::unistd::User::from_name("mysql")
        .unwrap()
        .expect("user mysql");
    nix::unistd::chown(&tmp, Some(mysql.uid), Some(mysql.gid)).unwrap();
    std::fs::write(
        d.join("my.cnf"),
        format!(
            "[mysqld]\nskip-networking\ninnodb_buffer_pool_size=16M\ntmpdir={}\n",
            tmp.display()
        ),
    )
    .unwrap();
    let p = |k: &str, v: PathBuf| (k.to_string(), v.display().to_string());
    Site {
        params: vec![
            p("config", d.join("my.cnf")),
            p("datadir", d.join("data")),
            p("pid", d.join("run/mysqld.pid")),
            p("socket", d.join("run/mysqld.sock")),
            p("log", d.join("log/error.log")),
            ("enable_creation".into(), "true".into()),
        ],
        dir,
    }
}

pub fn site(agent: &str, tag: &str) -> Option<Site> {
    match agent {
        "nginx" => Some(nginx_site(tag)),
        "lighttpd" => Some(lighttpd_site(tag)),
        "mysql" => Some(mysql_site(tag)),
        _ => None,
    }
}

/// Run SQL through the client as root (unix_socket authentication) on a site's socket.
pub fn sql(site: &Site, stmt: &str) -> Run {
    let sock = site.path("run/mysqld.sock");
    Run::from(
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", sock.display()))
            .args(["-u", "root", "--batch", "--skip-column-names", "-e", stmt])
            .output()
            .unwrap(),
    )
}

/// One HTTP GET on loopback: (status, body), or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, body.to_string()))
}

/// Processes whose executable is `exe` (e.g. /usr/sbin/nginx), by pid.
pub fn pids_of_exe(exe: &str) -> Vec<i32> {
    procfs::pids()
        .into_iter()
        .filter(|&p| procfs::exe(p).is_some_and(|e| e == Path::new(exe)))
        .collect()
}

/// The processes of the session led by `leader` (the leader included).
pub fn session_members(leader: i32) -> Vec<i32> {
    procfs::pids()
        .into_iter()
        .filter(|&p| procfs::stat(p).is_some_and(|s| s.session == leader && s.state != 'Z'))
        .collect()
}

/// The leader pid an agent recorded for `instance`.
pub fn recorded_pid(state: &Path, agent: &str, instance: &str) -> Option<i32> {
    let text = std::fs::read_to_string(state.join(agent).join(instance)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
}

/// Stops the instance when dropped (a failed assertion must not leave a server
/// running): the agent's own stop, then SIGKILL by pid for anything of its session.
pub struct Running {
    pub link: PathBuf,
    pub env: Env,
    pub state: PathBuf,
    pub agent: String,
    pub instance: String,
}

impl Running {
    pub fn pid(&self) -> Option<i32> {
        recorded_pid(&self.state, &self.agent, &self.instance)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let leader = self.pid();
        let _ = self.env.run(&self.link, "stop");
        if let Some(l) = leader {
            for p in session_members(l) {
                kill(p);
            }
        }
    }
}
