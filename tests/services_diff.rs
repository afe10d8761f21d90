//! Differential suite (`common::diff`): `ocf:rustha:nginx` and `ocf:rustha:mysql`
//! against the installed `ocf:heartbeat:nginx` and `ocf:heartbeat:mysql`, each side
//! with its own real server in its own network namespace and directory, one case at a
//! time. Every exit code must match except the deliberate differences listed with the
//! case; what each side leaves running after its last step is compared the same way.

mod common;

use common::diff::{self, Listed, Schedule, Script, Side, ANY_CODE};
use common::services::*;
use common::*;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 20000;

/// A step: an agent action, or `!op` done to the side's server between actions.
/// `probe` = monitor, interval 0; `monitor` = recurring; `monitor10` = depth 10;
/// `stop6` = stop with a 6 s timeout.
struct Case {
    name: &'static str,
    agent: &'static str,
    params: &'static [(&'static str, &'static str)],
    steps: &'static [&'static str],
    differs: &'static [Listed],
    /// Processes each side leaves running after the last step: (ours, upstream, why).
    left: (usize, usize, &'static str),
}

/// In `Case::left`: not compared (timing-dependent), only reported.
const ANY: usize = usize::MAX;

/// An exit code for a step that did not return within the operation timeout + 5 s
/// (Pacemaker would have killed it and counted a timeout).
const TIMED_OUT: i32 = -1;

const WHY_CONFIG: &str = "a configuration nginx -t rejects is broken on every node: the issue \
    asks for 6 with nginx's message; upstream returns 5 so that another node is tried (#978)";
const WHY_HTTPD: &str = "httpd names a binary that is not there: upstream silently starts \
    /usr/sbin/nginx instead (and would start Apache's /usr/sbin/httpd if httpd were unset, #1772); \
    ours runs only the binary it is given";
const WHY_STUB: &str = "upstream's line-based parser finds the status page only as \
    `stub_status on;` on a line of its own inside a multi-line location: with \
    `location /nginx_status { stub_status; }` its validate-all fails with 2 (\"Invalid \
    STATUSURL\") and its depth-10 monitor with 1; ours parses the configuration as nginx -T \
    dumps it";
const WHY_SAFE_LEFT: &str = "upstream: mysqld_safe restarts mysqld after the SIGKILL; whether \
    upstream's next stop finds the new mysqld depends on whether its pidfile is written yet \
    (else that stop returns 0 with the server running): not compared, reported";
const WHY_ORPHANS: &str = "the master was SIGKILLed but its workers still hold the port: ours \
    reports a failure (1) naming them, upstream looks only at the pidfile and says 7";
const WHY_ORPHANS_LEFT: &str = "upstream's stop finds nothing in the pidfile and its pkill \
    pattern (binary.*configfile) does not match the workers' command line \
    ('nginx: worker process', #1553): both workers stay, holding the port";
const WHY_RELOAD: &str = "reload of a stopped nginx: upstream starts it (reload = start), ours \
    never starts a server from a reload";
const WHY_SAFE: &str = "upstream runs mysqld under mysqld_safe, which restarts a killed mysqld \
    behind the cluster's back (#759), so its monitor says 0; ours runs mysqld itself and \
    reports the death (7), so Pacemaker recovers it and counts the failure";
const WHY_STOPPED: &str = "a SIGSTOPped mysqld: upstream waits timeout-5 s, sends SIGKILL and \
    checks at once (no wait); here it has failed the stop (1 = fencing) in every run seen, but \
    the check races the dying process, so only ours (0: it waits for the exit within the \
    timeout) is asserted";
const WHY_MY_CONFIG: &str = "an unknown server option: ours finds it with the server's own \
    option check before starting (6, with the server's message); upstream starts mysqld_safe \
    and fails when the server dies (1)";

fn cases() -> Vec<Case> {
    let life: &[&str] = &[
        "validate-all",
        "probe",
        "start",
        "probe",
        "monitor",
        "monitor10",
        "start",
        "stop",
        "stop",
        "probe",
        "monitor",
    ];
    vec![
        Case {
            name: "nginx: lifecycle, `stub_status on;` (the old form) at depth 10",
            agent: "nginx",
            params: &[],
            steps: &[
                "!stub-status-on",
                "validate-all",
                "probe",
                "start",
                "probe",
                "monitor",
                "monitor10",
                "start",
                "stop",
                "stop",
                "probe",
                "monitor",
            ],
            differs: &[],
            left: (0, 0, ""),
        },
        Case {
            name: "nginx: lifecycle, `stub_status;` (the form since nginx 1.7.5) at depth 10",
            agent: "nginx",
            params: &[],
            steps: life,
            differs: &[(0, 0, 2, WHY_STUB), (5, 0, 1, WHY_STUB)],
            left: (0, 0, ""),
        },
        Case {
            name: "nginx: broken configuration",
            agent: "nginx",
            params: &[],
            steps: &["!break-config", "probe", "start", "probe", "stop"],
            differs: &[(2, 6, 5, WHY_CONFIG)],
            left: (0, 0, ""),
        },
        Case {
            name: "nginx: binary missing",
            agent: "nginx",
            params: &[("httpd", "/nonexistent/nginx")],
            steps: &["probe", "start", "stop"],
            differs: &[(1, 5, 0, WHY_HTTPD)],
            left: (0, 0, ""),
        },
        Case {
            name: "nginx: master SIGKILLed, workers left",
            agent: "nginx",
            params: &[],
            steps: &["start", "!kill-main", "monitor", "stop", "probe"],
            differs: &[(2, 1, 7, WHY_ORPHANS)],
            left: (0, 2, WHY_ORPHANS_LEFT),
        },
        Case {
            name: "nginx: every process SIGKILLed",
            agent: "nginx",
            params: &[],
            steps: &[
                "start",
                "!kill-all",
                "monitor",
                "stop",
                "start",
                "monitor",
                "stop",
            ],
            differs: &[],
            left: (0, 0, ""),
        },
        Case {
            name: "nginx: a worker SIGSTOPped, then stop",
            agent: "nginx",
            params: &[],
            steps: &["start", "!stop-worker", "stop6", "probe"],
            differs: &[],
            left: (0, 0, ""),
        },
        Case {
            name: "nginx: reload",
            agent: "nginx",
            params: &[],
            steps: &[
                "!stub-status-on",
                "reload",
                "probe",
                "stop",
                "start",
                "reload",
                "monitor10",
                "stop",
            ],
            differs: &[(1, 1, 0, WHY_RELOAD), (2, 7, 0, WHY_RELOAD)],
            left: (0, 0, ""),
        },
        Case {
            name: "nginx: port already taken",
            agent: "nginx",
            params: &[],
            steps: &["!take-port", "start", "!free-port", "stop", "probe"],
            differs: &[],
            left: (0, 0, ""),
        },
        Case {
            name: "mysql: lifecycle with the test query at depth 10 (upstream) / greeting (ours)",
            agent: "mysql",
            params: &[],
            steps: life,
            differs: &[],
            left: (0, 0, ""),
        },
        Case {
            name: "mysql: binary missing",
            agent: "mysql",
            params: &[("binary", "/nonexistent/mysqld")],
            steps: &["probe", "start", "stop"],
            differs: &[],
            left: (0, 0, ""),
        },
        Case {
            name: "mysql: unknown server option",
            agent: "mysql",
            params: &[],
            steps: &["!break-config", "start", "probe", "stop"],
            differs: &[(1, 6, 1, WHY_MY_CONFIG)],
            left: (0, 0, ""),
        },
        Case {
            name: "mysql: mysqld SIGKILLed",
            agent: "mysql",
            params: &[],
            steps: &["start", "!kill-main", "!settle", "monitor", "stop", "probe"],
            differs: &[(3, 7, 0, WHY_SAFE)],
            left: (0, 0, ""),
        },
        Case {
            name: "mysql: mysqld SIGSTOPped, then stop",
            agent: "mysql",
            params: &[],
            steps: &["start", "!stop-worker", "stop6", "!cont", "stop", "probe"],
            differs: &[
                (2, 0, ANY_CODE, WHY_STOPPED),
                (5, 7, ANY_CODE, WHY_SAFE_LEFT),
            ],
            left: (0, ANY, WHY_SAFE_LEFT),
        },
    ]
}

/// One side of a case: an agent, its own site, state and namespace.
struct Stage {
    agent: PathBuf,
    site: Site,
    env: Env,
    _dir: TempDir,
    _state: TempDir,
    squatter: Option<TcpListener>,
    /// Server pids seen in the side's namespace (see [`reap`]).
    seen: BTreeSet<i32>,
    /// The main pid `!kill-main` killed.
    killed: i32,
}

fn upstream(agent: &str) -> PathBuf {
    Path::new("/usr/lib/ocf/resource.d/heartbeat").join(agent)
}

/// Initialise a MariaDB datadir once per site (both sides start from the same state).
fn init_datadir(site: &Site) {
    let data = site.path("data");
    std::fs::create_dir_all(&data).unwrap();
    // Upstream creates the pid and socket directory but not the log's.
    std::fs::create_dir_all(site.path("log")).unwrap();
    let st = Command::new("chown")
        .args(["-R", "mysql:mysql"])
        .arg(&data)
        .arg(site.path("log"))
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new("mariadb-install-db")
        .arg(format!("--defaults-file={}", site.path("my.cnf").display()))
        .arg(format!("--datadir={}", data.display()))
        .arg("--user=mysql")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mariadb-install-db: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stage(case: &Case, side: Side) -> Stage {
    let ours = side == Side::Ours;
    let tag = if ours { "diff-ours" } else { "diff-up" };
    let dir = TempDir::new(tag);
    let state = TempDir::new(tag);
    let mut site = site(case.agent, tag).unwrap();
    if case.agent == "mysql" {
        init_datadir(&site);
        site.params.retain(|(k, _)| k != "enable_creation");
        // Upstream creates the pid/socket/log directories itself as well.
    }
    let agent = if ours {
        agent_link(dir.path(), case.agent)
    } else {
        upstream(case.agent)
    };
    let inst = instance(tag);
    let mut env = site
        .env(&inst, state.path())
        .var("OCF_RESKEY_CRM_meta_timeout", &TIMEOUT_MS.to_string())
        .var("HA_RSCTMP", state.path().to_str().unwrap());
    for (k, v) in case.params {
        env = env.param(k, v);
    }
    Stage {
        agent,
        site,
        env,
        _dir: dir,
        _state: state,
        squatter: None,
        seen: BTreeSet::new(),
        killed: 0,
    }
}

/// Processes in this thread's network namespace (the side's own), other than us,
/// zombies included.
fn in_my_netns_all() -> Vec<i32> {
    pids_in_netns(thread_netns())
}

/// The live ones.
fn in_my_netns() -> Vec<i32> {
    in_my_netns_all()
        .into_iter()
        .filter(|&p| rustha::procfs::stat(p).is_some_and(|s| s.state != 'Z'))
        .collect()
}

/// Reap this side's server processes that died after being re-parented to us. The test
/// process is a child subreaper, standing in for an init that reaps at once (as systemd
/// does), so that a killed daemon is gone, not a zombie that `kill -0` or `/proc/<pid>`
/// still finds. Only pids seen alive in the side's namespace between steps are reaped
/// (never an agent process: those are waited for by whoever ran them).
fn reap(seen: &mut BTreeSet<i32>) {
    seen.extend(in_my_netns());
    let me = std::process::id() as i32;
    seen.retain(|&p| match rustha::procfs::stat(p) {
        Some(s) if s.state == 'Z' && s.ppid == me => {
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(p),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            false
        }
        Some(_) => true,
        None => false,
    });
}

/// Wait (up to 2 s) until `pids` have died, then reap them.
fn wait_dead(pids: &[i32], seen: &mut BTreeSet<i32>) {
    let end = Instant::now() + Duration::from_secs(2);
    while pids
        .iter()
        .any(|&p| rustha::procfs::stat(p).is_some_and(|s| s.state != 'Z'))
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    reap(seen);
}

/// Run an action with a hard limit (upstream's nginx start has no timeout of its own):
/// on overrun, the whole process group is killed, as Pacemaker's executor does.
fn run_bounded(side: &Stage, action: &str, env: &Env) -> i32 {
    let mut c = agent_command(None, &side.agent, action, &env.0);
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    let end = Instant::now() + Duration::from_millis(TIMEOUT_MS + 5000);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-2);
        }
        if Instant::now() > end {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            return TIMED_OUT;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's main pid from its pidfile (0 when there is none: the op then does nothing).
fn main_pid(side: &Stage, agent: &str) -> i32 {
    let pf = if agent == "nginx" {
        side.site.path("nginx.pid")
    } else {
        side.site.path("run/mysqld.pid")
    };
    std::fs::read_to_string(&pf)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn op(side: &mut Stage, agent: &str, what: &str) {
    use nix::sys::signal::Signal::*;
    match what {
        "!break-config" => {
            let (file, junk) = if agent == "nginx" {
                ("nginx.conf", "\nbogus_directive on;\n")
            } else {
                ("my.cnf", "bogus-option=1\n")
            };
            let mut c = std::fs::read_to_string(side.site.path(file)).unwrap();
            c.push_str(junk);
            std::fs::write(side.site.path(file), c).unwrap();
        }
        "!kill-main" => {
            let main = main_pid(side, agent);
            if main > 0 {
                signal(main, SIGKILL);
            }
            side.killed = main;
            wait_dead(&[main], &mut side.seen);
        }
        "!kill-all" => {
            let all = in_my_netns();
            for &p in &all {
                signal(p, SIGKILL);
            }
            wait_dead(&all, &mut side.seen);
        }
        "!stop-worker" => {
            let main = main_pid(side, agent);
            let victim = in_my_netns()
                .into_iter()
                .find(|&p| rustha::procfs::stat(p).is_some_and(|s| s.ppid == main))
                .filter(|_| agent == "nginx")
                .unwrap_or(main);
            signal(victim, SIGSTOP);
        }
        "!cont" => {
            for p in in_my_netns() {
                signal(p, SIGCONT);
            }
        }
        // Let a supervisor (mysqld_safe) notice a death and act on it: wait (up to 10 s)
        // for a new live main process in the pidfile; with no supervisor none comes.
        "!settle" => {
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                let now = main_pid(side, agent);
                if now > 0 && now != side.killed && rustha::procfs::stat(now).is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        "!take-port" => {
            side.squatter = Some(TcpListener::bind(("127.0.0.1", HTTP_PORT)).unwrap());
        }
        "!free-port" => side.squatter = None,
        // The form older configurations use, which upstream's line-based parser needs.
        "!stub-status-on" => {
            let c = std::fs::read_to_string(side.site.path("nginx.conf")).unwrap();
            let c = c.replace(
                "location /nginx_status { stub_status; }",
                "location /nginx_status {\n            stub_status on;\n        }",
            );
            std::fs::write(side.site.path("nginx.conf"), c).unwrap();
        }
        other => panic!("unknown op {other}"),
    }
}

/// Play a case on one side, in a fresh namespace: the codes, and what is left running.
fn play(case: &Case, who: Side) -> (Vec<i32>, usize) {
    private_netns();
    let mut side = stage(case, who);
    let mut codes = vec![];
    for step in case.steps {
        reap(&mut side.seen);
        if step.starts_with('!') {
            op(&mut side, case.agent, step);
            codes.push(0);
            continue;
        }
        let (action, env) = match *step {
            "probe" => ("monitor", side.env.clone()),
            "monitor" => ("monitor", side.env.clone().interval(10000)),
            "monitor10" => (
                "monitor",
                side.env
                    .clone()
                    .interval(30000)
                    .var("OCF_CHECK_LEVEL", "10"),
            ),
            "stop6" => (
                "stop",
                side.env.clone().var("OCF_RESKEY_CRM_meta_timeout", "6000"),
            ),
            a => (a, side.env.clone()),
        };
        codes.push(run_bounded(&side, action, &env));
    }
    // Whatever is left: counted, then killed (by PID: everything in this namespace is
    // this side's).
    std::thread::sleep(Duration::from_millis(300));
    reap(&mut side.seen);
    let left = in_my_netns();
    for &p in &left {
        eprintln!(
            "{} left pid {p}: {}",
            who.name(),
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ")
        );
    }
    for &p in &left {
        signal(p, nix::sys::signal::Signal::SIGCONT);
        signal(p, nix::sys::signal::Signal::SIGKILL);
    }
    wait_dead(&left, &mut side.seen);
    (codes, left.len())
}

impl diff::Case for Case {
    /// Each step's exit code, and how many processes were left running.
    type Seen = (Vec<i32>, usize);
    fn script(&self) -> Script<'_> {
        Script::new(self.name, self.steps, self.differs)
    }
    fn play(&self, side: Side) -> Self::Seen {
        play(self, side)
    }
    fn codes(seen: &Self::Seen) -> Vec<i32> {
        seen.0.clone()
    }
    fn compare(&self, ours: &Self::Seen, upstream: &Self::Seen) -> Vec<String> {
        let (lo, lu, why) = self.left;
        if ours.1 != lo || (lu != ANY && upstream.1 != lu) {
            vec![format!(
                "{}: processes left: ours {} upstream {} (expected {lo} / {lu}: {why})",
                self.name, ours.1, upstream.1
            )]
        } else {
            vec![]
        }
    }
}

#[test]
fn nginx_and_mysql_match_upstream_except_for_documented_differences() {
    require_root();
    // SAFETY: plain prctl; this binary has this one test.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    for a in ["nginx", "mysql"] {
        assert!(upstream(a).exists(), "resource-agents is not installed");
    }
    let cases = cases();
    // One case at a time: both sides' servers listen on the same ports (in their own
    // namespaces) and mariadb-install-db is heavy.
    let cmp = diff::compare(&cases, Schedule::OneCaseAtATime);
    let report = cmp.step_report(|p| {
        format!(
            "  left running: ours {}, upstream {}\n",
            p.ours.1, p.upstream.1
        )
    });
    cmp.finish("services.txt", &report);
}
