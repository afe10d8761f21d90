//! Differential: `ocf:rustha:Filesystem` against upstream's `ocf:heartbeat:Filesystem`
//! (resource-agents, as Debian installs it), the same steps on both, each side with a
//! loop device of its own (ext4) in a mount namespace of its own, both at the same time.
//! Steps are agent actions (`probe` = a monitor without an interval) or things done
//! behind the agent's back (`!...`): unmounting it, remounting it read-only, another
//! device on the mount point, users on the mount; `!other-mounted` is a check (0: the
//! other device is still mounted, 1: it is not); `!release` ends the users (killed by
//! the test, by handle). The exit codes must match except for
//! the listed deliberate differences; after each case, no user of the mount may be left
//! alive on either side, and both sides must agree on whether the mount is still there.

mod common;

use common::diff::{self, Listed, Schedule, Script, Side};
use common::disk::{mounts, private_mountns, unique_label, unique_uuid, Loop, Mounted};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct Case {
    name: &'static str,
    /// How the device is named: "dev" (its path), "label" (-L), "uuid" (UUID=).
    naming: &'static str,
    params: &'static [(&'static str, &'static str)],
    steps: &'static [&'static str],
    differs: &'static [Listed],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "lifecycle",
            naming: "dev",
            params: &[],
            steps: &[
                "probe",
                "stop",
                "start",
                "monitor",
                "monitor10",
                "monitor20",
                "start",
                "stop",
                "probe",
                "stop",
            ],
            differs: &[],
        },
        Case {
            name: "label",
            naming: "label",
            params: &[],
            steps: &["start", "monitor", "stop", "probe"],
            differs: &[],
        },
        Case {
            name: "uuid",
            naming: "uuid",
            params: &[],
            steps: &["start", "monitor10", "stop", "probe"],
            differs: &[
                (
                    0,
                    0,
                    5,
                    "UUID=: ours resolves it through /dev/disk/by-uuid, else blkid; upstream \
                     only tests [ -b UUID=... ] and fails without udev's links (a container, \
                     an initramfs-less boot)",
                ),
                (1, 0, 7, "the same: upstream never mounted it"),
            ],
        },
        Case {
            name: "unmounted behind the cluster's back",
            naming: "dev",
            params: &[],
            steps: &["start", "!umount", "monitor", "stop", "probe"],
            differs: &[],
        },
        Case {
            name: "remounted read-only",
            naming: "dev",
            params: &[],
            steps: &["start", "!remount-ro", "monitor", "stop", "probe"],
            differs: &[(
                2,
                1,
                0,
                "check_readonly (default true): a filesystem the kernel remounted read-only \
                 (I/O errors) fails the monitor; upstream reports it running",
            )],
        },
        Case {
            name: "users at stop",
            naming: "dev",
            params: &[("signal_delay", "1")],
            steps: &["start", "!users", "stop", "probe"],
            differs: &[],
        },
        Case {
            name: "users, force_unmount=false",
            naming: "dev",
            params: &[("force_unmount", "false"), ("CRM_meta_timeout", "4000")],
            steps: &["start", "!users", "stop", "!release", "stop", "probe"],
            differs: &[],
        },
        Case {
            name: "users, force_unmount=safe",
            naming: "dev",
            params: &[("force_unmount", "safe"), ("signal_delay", "1")],
            steps: &["start", "!users", "stop", "probe"],
            differs: &[],
        },
        Case {
            name: "users, fast_stop",
            naming: "dev",
            params: &[("fast_stop", "yes")],
            steps: &["start", "!users", "stop", "probe"],
            differs: &[],
        },
        Case {
            name: "another device on the mount point",
            naming: "dev",
            params: &[],
            steps: &[
                "!mount-other",
                "probe",
                "start",
                "stop",
                "!other-mounted",
                "!umount-other",
            ],
            differs: &[
                (
                    1,
                    7,
                    0,
                    "another device on the mount point is not this resource: a probe says 7, \
                     as upstream's main since f2cfc150d (4.12: running, because something \
                     is mounted there)",
                ),
                (
                    2,
                    1,
                    0,
                    "start refuses to take another device's mount for its own, nor mounts \
                     over it: 1, as upstream's main (4.12: already mounted, 0)",
                ),
                (
                    4,
                    0,
                    1,
                    "after the stop the other device is still mounted (0) on ours, as on \
                     upstream's main (its stop sees 7 there); 4.12's stop unmounted it (1)",
                ),
            ],
        },
        Case {
            name: "bad monitor depth",
            naming: "dev",
            params: &[],
            steps: &["start", "monitor7", "stop"],
            differs: &[(
                1,
                1,
                6,
                "a recurring monitor never returns 6 (the contract's runner: 6 bans the \
                 resource cluster-wide); the exit reason names the bad depth",
            )],
        },
    ]
}

/// What a side saw: each step's code, the users still alive at the end, whether the
/// filesystem was still mounted at the end.
type Seen = (Vec<i32>, usize, bool);

fn upstream() -> PathBuf {
    PathBuf::from("/usr/lib/ocf/resource.d/heartbeat/Filesystem")
}

fn sh_in(cwd: &Path, script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn behind(what: &str, cmd: &mut Command) {
    let r = out(cmd);
    assert_eq!(r.code, 0, "{what}: {}{}", r.stdout, r.stderr);
}

fn play(case: &Case, side: Side) -> Seen {
    private_mountns();
    let tag = match side {
        Side::Ours => "o",
        Side::Upstream => "u",
    };
    let disk = Loop::new(32);
    let other = Loop::new(32);
    let i = instance(tag);
    let (label, uuid) = (unique_label(tag), unique_uuid());
    disk.mkfs("ext4", Some(&label), Some(&uuid));
    other.mkfs("ext4", None, None);
    let work = TempDir::new(&format!("fsdiff-{tag}"));
    let point = work.path().join("mnt");
    let agent = match side {
        Side::Ours => agent_link(work.path(), "Filesystem"),
        Side::Upstream => upstream(),
    };
    let device = match case.naming {
        "label" => format!("-L {label}"),
        "uuid" => format!("UUID={uuid}"),
        _ => disk.dev.display().to_string(),
    };
    let state = work.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut env = Env::pacemaker(&i, &state)
        .param("device", &device)
        .param("directory", point.to_str().unwrap())
        .param("fstype", "ext4");
    for (k, v) in case.params {
        env = env.param(k, v);
    }
    let mut procs = Children::default();
    let mut others: Option<Mounted> = None;
    let mut codes = vec![];
    for step in case.steps {
        let e = env.clone();
        let code = match *step {
            "probe" => e.run(&agent, "monitor").code,
            "monitor" => e.interval(10000).run(&agent, "monitor").code,
            "monitor10" | "monitor20" | "monitor7" => {
                e.interval(10000)
                    .var("OCF_CHECK_LEVEL", &step[7..])
                    .run(&agent, "monitor")
                    .code
            }
            "!release" => {
                // The users go away by themselves (killed here, by handle, and reaped).
                procs.end_all();
                0
            }
            "!umount" => {
                behind(step, Command::new("umount").arg(&point));
                0
            }
            "!remount-ro" => {
                behind(
                    step,
                    Command::new("mount").args(["-o", "remount,ro"]).arg(&point),
                );
                0
            }
            "!mount-other" => {
                others = Some(Mounted::new(&[], &other.dev, &point));
                0
            }
            "!other-mounted" => {
                let t = mounts();
                i32::from(!t.iter().any(|m| m.dev == other.devno()))
            }
            "!umount-other" => {
                others = None;
                0
            }
            "!users" => {
                for _ in 0..5 {
                    procs.0.push(sh_in(&point, "exec sleep 3600"));
                }
                // One that ignores SIGTERM (the kill phase must get it).
                // (spawn returns once sh runs, its cwd on the mount; the trap may come
                // after a signal, and then sh dies of it: a user gone either way.)
                procs.0.push(sh_in(&point, "trap '' TERM; exec sleep 3600"));
                0
            }
            action => e.run(&agent, action).code,
        };
        codes.push(code);
    }
    let mut left = 0;
    for c in procs.0.iter_mut() {
        if c.try_wait().unwrap().is_none() {
            left += 1;
        }
    }
    let t = mounts();
    let mounted = t.iter().any(|m| m.dev == disk.devno());
    if mounted {
        let _ = Command::new("umount").arg(&point).status();
    }
    drop(others);
    (codes, left, mounted)
}

impl diff::Case for Case {
    type Seen = Seen;
    fn script(&self) -> Script<'_> {
        Script::new(self.name, self.steps, self.differs)
    }
    fn play(&self, side: Side) -> Seen {
        play(self, side)
    }
    fn codes(seen: &Seen) -> Vec<i32> {
        seen.0.clone()
    }
    fn compare(&self, ours: &Seen, upstream: &Seen) -> Vec<String> {
        let mut f = vec![];
        if ours.1 != 0 || upstream.1 != 0 {
            f.push(format!(
                "{}: users of the mount left alive: ours {}, upstream {}",
                self.name, ours.1, upstream.1
            ));
        }
        if ours.2 != upstream.2 {
            f.push(format!(
                "{}: mounted at the end: ours {}, upstream {}",
                self.name, ours.2, upstream.2
            ));
        }
        f
    }
}

#[test]
fn filesystem_matches_upstream_except_for_documented_differences() {
    require_root();
    assert!(upstream().exists(), "resource-agents is not installed");
    for t in ["blkid", "fuser", "modprobe"] {
        require_tool(t);
    }
    let cases = cases();
    let cmp = diff::compare(&cases, Schedule::AllAtOnce);
    let report = cmp.step_report(|_| String::new());
    cmp.finish("filesystem.txt", &report);
}
