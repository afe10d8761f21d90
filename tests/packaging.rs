//! The packages as a distribution user gets them: `make dist`, `make deb` and `make rpm`
//! build them (release build, dpkg-buildpackage + debhelper, rpmbuild); the .deb is
//! installed with dpkg on this machine, its agents are run by ocf-tester, crm_resource
//! and pcs from where the package put them, and a purge must leave nothing behind.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const VERSION: &str = env!("CARGO_PKG_VERSION");
use rustha::manpage::INSTALLED_BIN;

/// Package builds share one tarball, one unpack directory and one cargo target: one at
/// a time.
static BUILD: Mutex<()> = Mutex::new(());

fn pkgdir() -> PathBuf {
    repo().join("build")
}

/// `make <target>` in the checkout (release build: minutes when cargo's cache is cold).
fn make(target: &str) {
    let r = out(Command::new("make")
        .args(["-C", repo().to_str().unwrap(), target])
        .env("PKGDIR", pkgdir()));
    let tail = |s: &str| s.lines().rev().take(40).collect::<Vec<_>>().join("\n");
    assert_eq!(
        r.code,
        0,
        "make {target}:\n{}\n{}",
        tail(&r.stdout),
        tail(&r.stderr)
    );
}

/// The commit `rustha --version` should name, when this is a git checkout.
fn head() -> Option<String> {
    let o = Command::new("git")
        .args(["-C", repo().to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn registry_names() -> BTreeSet<String> {
    rustha::registry::AGENTS
        .iter()
        .map(|a| a.name().to_string())
        .collect()
}

/// What both packages must hold, package-manager style (directories included), with the
/// documentation's compression left open (`.gz` or not) where the tools decide it.
fn expected_paths(docs_extra: &[&str], license: Option<&str>) -> BTreeSet<String> {
    let mut want: BTreeSet<String> = [
        "/usr/libexec/rustha",
        INSTALLED_BIN,
        "/usr/sbin/rustha",
        "/usr/lib/ocf/resource.d/rustha",
        "/usr/share/doc/rustha",
        "/usr/share/doc/rustha/README.md",
        "/usr/share/man/man8/rustha.8.gz",
    ]
    .map(String::from)
    .into();
    for a in registry_names() {
        want.insert(format!("/usr/lib/ocf/resource.d/rustha/{a}"));
        want.insert(format!("/usr/share/man/man7/ocf_rustha_{a}.7.gz"));
        want.insert(format!("/usr/share/doc/rustha/{a}.md"));
        want.insert(format!("/usr/share/doc/rustha/{a}.xml"));
    }
    want.extend(docs_extra.iter().map(|s| s.to_string()));
    if let Some(l) = license {
        want.insert(l.to_string());
        want.insert(Path::new(l).parent().unwrap().display().to_string());
    }
    want
}

/// Paths without a `.gz`: which docs and manual pages get compressed is the packaging
/// tools' choice (debhelper compresses docs over 4 kB; Debian's rpm leaves man pages).
fn without_gz(paths: &BTreeSet<String>) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| p.strip_suffix(".gz").unwrap_or(p).to_string())
        .collect()
}

#[test]
fn versions_agree_everywhere() {
    let changelog = std::fs::read_to_string(repo().join("packaging/debian/changelog")).unwrap();
    let deb_version = changelog
        .lines()
        .next()
        .and_then(|l| l.split(['(', ')']).nth(1))
        .unwrap();
    assert_eq!(
        deb_version.rsplit_once('-').map(|(u, _)| u),
        Some(VERSION),
        "debian/changelog's upstream version"
    );
    let spec = std::fs::read_to_string(repo().join("packaging/rpm/rustha.spec")).unwrap();
    let spec_version = spec
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(str::trim);
    assert_eq!(spec_version, Some(VERSION), "rustha.spec Version");
    assert!(
        spec.contains(&format!("- {VERSION}-1\n")),
        "rustha.spec %changelog names {VERSION}-1"
    );
    for a in rustha::registry::AGENTS {
        assert!(
            a.metadata().contains(&format!(
                "<resource-agent name=\"{}\" version=\"{VERSION}\">",
                a.name()
            )),
            "{}: meta-data's agent version",
            a.name()
        );
        let man =
            std::fs::read_to_string(repo().join(format!("meta/man/ocf_rustha_{}.7", a.name())))
                .unwrap();
        assert!(man.contains(&format!("\"rustha {VERSION}\"")));
    }
    let v = out(Command::new(bin()).arg("--version"));
    assert!(
        v.stdout.starts_with(&format!("rustha {VERSION} (")),
        "{}",
        v.stdout
    );
}

#[test]
fn dist_tarball_is_reproducible_and_names_its_commit() {
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let tarball = pkgdir().join(format!("rustha-{VERSION}.tar.gz"));
    make("dist");
    let first = std::fs::read(&tarball).unwrap();
    std::fs::remove_file(&tarball).unwrap();
    make("dist");
    let second = std::fs::read(&tarball).unwrap();
    assert!(first == second, "two `make dist` of one commit differ");
    let list = out(Command::new("tar").arg("-tzf").arg(&tarball));
    assert_eq!(list.code, 0);
    let prefix = format!("rustha-{VERSION}/");
    let files: BTreeSet<&str> = list
        .stdout
        .lines()
        .map(|l| {
            l.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{l} outside {prefix}"))
        })
        .collect();
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "COMMIT",
        "COPYING",
        "Makefile",
        "packaging/debian/rules",
        "packaging/rpm/rustha.spec",
        "meta/man/rustha.8",
    ] {
        assert!(files.contains(f), "{f} is not in the tarball");
    }
    assert!(!files
        .iter()
        .any(|f| f.starts_with("target/") || f.starts_with("build/")));
    if let Some(head) = head() {
        let commit = out(Command::new("tar")
            .arg("-xzOf")
            .arg(&tarball)
            .arg(format!("{prefix}COMMIT")));
        assert_eq!(commit.stdout.trim(), head, "COMMIT in the tarball");
    }
}

#[test]
fn rpm_holds_exactly_the_installed_files() {
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("rpmbuild");
    make("rpm");
    let rpm = std::fs::read_dir(pkgdir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("rustha-{VERSION}-1")) && n.ends_with(".rpm")
        })
        .expect("make rpm made no rustha-<version>-1.*.rpm");
    let q = |args: &[&str]| {
        let r = out(Command::new("rpm").args(args).arg(&rpm));
        assert_eq!(r.code, 0, "rpm {args:?}: {}", r.stderr);
        r.stdout
    };
    let files: BTreeSet<String> = q(&["-qlp"]).lines().map(String::from).collect();
    let want = expected_paths(&[], Some("/usr/share/licenses/rustha/COPYING"));
    assert_eq!(without_gz(&files), without_gz(&want), "rpm -qlp");
    assert_eq!(q(&["-qp", "--qf", "%{VERSION}"]), VERSION);
    // Every agent is a link to the one binary.
    let long = q(&["-qlvp"]);
    for a in registry_names() {
        assert!(
            long.contains(&format!(
                "/usr/lib/ocf/resource.d/rustha/{a} -> {INSTALLED_BIN}"
            )),
            "{a}: {long}"
        );
    }
    assert!(q(&["-qp", "--recommends"]).contains("iproute"));
    let requires = q(&["-qp", "--requires"]);
    assert!(!requires.to_lowercase().contains("aws"), "{requires}");
    println!(
        "{}: {} bytes, {} paths",
        rpm.display(),
        std::fs::metadata(&rpm).unwrap().len(),
        files.len()
    );
}

/// `/usr/lib/ocf/resource.d/rustha` as the other tests leave it: links to a test build.
/// They are removed so that dpkg finds the place free; anything else there (a
/// `make install`) stops the test instead of being overwritten.
fn clear_test_links() {
    let dir = Path::new(PROVIDER_DIR);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        let target = std::fs::read_link(&p).ok();
        // A link into a cargo target directory (this build's or another checkout's).
        let ours = target.as_deref().is_some_and(|t| {
            t == bin() || t.ends_with("debug/rustha") || t.ends_with("release/rustha")
        });
        assert!(
            ours,
            "{} is not a test link (a `make install`? run `make uninstall` first)",
            p.display()
        );
        std::fs::remove_file(&p).unwrap();
    }
    std::fs::remove_dir(dir).unwrap();
}

/// Purges the package if the test stops half-way.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "rustha"]).output();
    }
}

fn deb_paths(deb: &Path) -> BTreeSet<String> {
    let r = out(Command::new("dpkg-deb").arg("-c").arg(deb));
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let path = l.split_whitespace().nth(5).unwrap();
            let p = path.trim_start_matches('.').trim_end_matches('/');
            p.to_string()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn deb_installs_serves_the_real_tools_and_purges_clean() {
    require_root();
    for t in [
        "dpkg-buildpackage",
        "dh",
        "ocf-tester",
        "crm_resource",
        "pcs",
        "man",
    ] {
        require_tool(t);
    }
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    make("deb");
    let deb = pkgdir().join(format!(
        "rustha_{VERSION}-1_{}.deb",
        String::from_utf8(
            Command::new("dpkg")
                .arg("--print-architecture")
                .output()
                .unwrap()
                .stdout
        )
        .unwrap()
        .trim()
    ));
    assert!(deb.exists(), "{} was not built", deb.display());
    let field = |f: &str| {
        out(Command::new("dpkg-deb").args(["-f"]).arg(&deb).arg(f))
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(field("Version"), format!("{VERSION}-1"));
    assert!(field("Recommends").contains("iproute2"));
    let depends = field("Depends");
    assert!(!depends.to_lowercase().contains("aws"), "{depends}");
    let paths = deb_paths(&deb);
    let want = without_gz(&expected_paths(
        &[
            "/usr/share/doc/rustha/changelog.Debian.gz",
            "/usr/share/doc/rustha/copyright",
        ],
        None,
    ));
    // Every path but the shared parent directories (/usr, /usr/lib/ocf, ...).
    let files: BTreeSet<String> = without_gz(&paths)
        .into_iter()
        .filter(|p| want.contains(p) || !want.iter().any(|w| w.starts_with(&format!("{p}/"))))
        .collect();
    assert_eq!(files, want, "dpkg-deb -c");

    clear_test_links();
    let existed: BTreeSet<String> = paths
        .iter()
        .filter(|p| Path::new(p).exists())
        .cloned()
        .collect();
    let run_existed = Path::new("/run/rustha").exists();

    let r = out(Command::new("dpkg").arg("-i").arg(&deb));
    let installed = Installed;
    assert_eq!(r.code, 0, "dpkg -i: {}{}", r.stdout, r.stderr);

    // The binary names its version and commit.
    let v = out(Command::new(INSTALLED_BIN).arg("--version"));
    assert_eq!(v.code, 0);
    let first = v.stdout.lines().next().unwrap_or_default().to_string();
    match head() {
        Some(h) => assert_eq!(first, format!("rustha {VERSION} ({})", &h[..12])),
        None => assert!(first.starts_with(&format!("rustha {VERSION} ("))),
    }
    // One link per agent, to the binary, and nothing else.
    let links: BTreeSet<String> = std::fs::read_dir(PROVIDER_DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(links, registry_names());
    for a in &links {
        // (debhelper makes the links relative, as Debian policy asks.)
        assert_eq!(
            std::fs::canonicalize(Path::new(PROVIDER_DIR).join(a)).unwrap(),
            Path::new(INSTALLED_BIN)
        );
    }
    // The manual pages are where man finds them, and render without a warning.
    for (page, file) in std::iter::once((
        "rustha".to_string(),
        "/usr/share/man/man8/rustha.8.gz".to_string(),
    ))
    .chain(links.iter().map(|a| {
        (
            format!("ocf_rustha_{a}"),
            format!("/usr/share/man/man7/ocf_rustha_{a}.7.gz"),
        )
    })) {
        let w = out(Command::new("man").args(["-w", &page]));
        assert_eq!(w.stdout.trim(), file, "man -w {page}");
        let r = out(Command::new("man")
            .args(["--warnings", &page])
            .env("MANPAGER", "cat")
            .env("LC_ALL", "C"));
        assert_eq!(r.code, 0, "man {page}");
        assert!(r.stderr.is_empty(), "man {page}: {}", r.stderr);
        assert!(r.stdout.contains(&format!("rustha {VERSION}")), "{page}");
    }
    for a in &links {
        let agent = format!("ocf:rustha:{a}");
        let r = out(Command::new("crm_resource").args(["--show-metadata", &agent]));
        assert_eq!(
            r.code, 0,
            "crm_resource --show-metadata {agent}: {}",
            r.stderr
        );
        let committed = std::fs::read_to_string(repo().join(format!("meta/{a}.xml"))).unwrap();
        assert_eq!(r.stdout.trim(), committed.trim(), "{agent}");
        assert!(r.stdout.contains(&format!("version=\"{VERSION}\"")));
        let r = out(Command::new("pcs").args(["resource", "describe", &agent]));
        assert_eq!(r.code, 0, "pcs resource describe {agent}: {}", r.stderr);
        for p in rustha::registry::find(a).unwrap().params() {
            assert!(
                r.stdout.contains(p.name),
                "pcs describe {agent} lacks {}",
                p.name
            );
        }
    }
    // ocf-tester on every installed agent, with the real state directory, in a private
    // network namespace (a thread of its own).
    let tested = links.clone();
    std::thread::spawn(move || {
        private_netns();
        for a in &tested {
            let path = Path::new(PROVIDER_DIR).join(a);
            let r = ocf_tester(a, &path, None);
            assert_eq!(r.code, 0, "ocf-tester {a}: {}\n{}", r.stdout, r.stderr);
            assert!(r.stdout.contains("passed all tests"), "{a}: {}", r.stdout);
            let left = std::fs::read_dir(Path::new("/run/rustha").join(a))
                .map(|d| d.count())
                .unwrap_or(0);
            assert_eq!(left, 0, "{a}: state left in /run/rustha/{a}");
        }
    })
    .join()
    .expect("ocf-tester on the installed agents");

    let r = out(Command::new("dpkg").args(["--purge", "rustha"]));
    assert_eq!(r.code, 0, "dpkg --purge: {}{}", r.stdout, r.stderr);
    std::mem::forget(installed);
    let status = out(Command::new("dpkg-query").args(["-W", "-f=${Status}", "rustha"]));
    assert!(
        !status.stdout.contains("installed") || status.stdout.contains("not-installed"),
        "{}",
        status.stdout
    );
    let left: Vec<&String> = paths
        .iter()
        .filter(|p| !existed.contains(*p) && std::fs::symlink_metadata(p).is_ok())
        .collect();
    assert!(left.is_empty(), "left behind by the purge: {left:?}");
    for p in [PROVIDER_DIR, "/usr/libexec/rustha", "/usr/share/doc/rustha"] {
        assert!(!Path::new(p).exists(), "{p} left behind");
    }
    if !run_existed {
        assert!(
            !Path::new("/run/rustha").exists(),
            "/run/rustha left behind"
        );
    }
    let running: Vec<i32> = rustha::procfs::pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|e| e.to_string_lossy().starts_with(INSTALLED_BIN))
        })
        .collect();
    assert!(
        running.is_empty(),
        "processes of the package still run: {running:?}"
    );
    println!(
        "{}: {} bytes, {} paths; ocf-tester, crm_resource and pcs passed for {} agents",
        deb.display(),
        std::fs::metadata(&deb).unwrap().len(),
        paths.len(),
        links.len()
    );
}
