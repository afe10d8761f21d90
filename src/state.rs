//! Per-instance state records under `/run/rustha/<agent>/<instance>`.
//!
//! `start` decides and records; `monitor` and `stop` act on the record. The format is
//! `key=value` lines, written atomically (temporary file + rename).

use ocf::{OcfEnv, OcfError};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Where records live unless `RUSTHA_STATE_DIR` says otherwise (tests).
pub const DEFAULT_STATE_DIR: &str = "/run/rustha";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record(BTreeMap<String, String>);

impl Record {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    pub fn parsed<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.get(key)?.parse().ok()
    }
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        let v = value.to_string().replace(['\n', '\r'], " ");
        self.0.insert(key.to_string(), v);
        self
    }
    pub fn parse(text: &str) -> Record {
        Record(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
    pub fn render(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }
}

/// A file name for an instance id: clone suffixes (`:1`) kept, anything odd replaced.
pub fn sanitize(instance: &str) -> String {
    let mut s: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:@+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

pub struct StateFile {
    pub path: PathBuf,
}

impl StateFile {
    pub fn new(env: &OcfEnv, agent: &str, instance: &str) -> StateFile {
        let dir = env
            .var("RUSTHA_STATE_DIR")
            .filter(|d| !d.is_empty())
            .unwrap_or(DEFAULT_STATE_DIR);
        StateFile {
            path: PathBuf::from(dir).join(agent).join(sanitize(instance)),
        }
    }

    pub fn for_ctx(ctx: &ocf::Ctx) -> StateFile {
        Self::new(&ctx.env, ctx.agent, &ctx.instance)
    }

    /// The record, if any. An unreadable directory is an error; a missing file is `None`.
    pub fn load(&self) -> Result<Option<Record>, OcfError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(Record::parse(&t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OcfError::generic(format!(
                "cannot read state {}: {e}",
                self.path.display()
            ))),
        }
    }

    pub fn save(&self, rec: &Record) -> Result<(), OcfError> {
        let fail = |what: &str, e: std::io::Error| {
            let err = format!("cannot {what} state {}: {e}", self.path.display());
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                OcfError::perm(err)
            } else {
                OcfError::generic(err)
            }
        };
        let dir = self.path.parent().expect("state path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| fail("create directory for", e))?;
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(rec.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail("write", e)
        })
    }

    pub fn remove(&self) -> Result<(), OcfError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OcfError::generic(format!(
                "cannot remove state {}: {e}",
                self.path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_instances() {
        assert_eq!(sanitize("lb"), "lb");
        assert_eq!(sanitize("lb:1"), "lb:1");
        assert_eq!(sanitize("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("a b/c"), "a_b_c");
    }

    #[test]
    fn round_trip_and_atomic_save() {
        let dir = std::env::temp_dir().join(format!("rustha-state-{}", std::process::id()));
        let env = OcfEnv::from_pairs([("RUSTHA_STATE_DIR", dir.to_str().unwrap())]);
        let sf = StateFile::new(&env, "azure-lb", "lb:0");
        assert_eq!(sf.load().unwrap(), None);
        let mut r = Record::default();
        r.set("pid", 42).set("note", "two\nlines");
        sf.save(&r).unwrap();
        let back = sf.load().unwrap().unwrap();
        assert_eq!(back.parsed::<i32>("pid"), Some(42));
        assert_eq!(back.get("note"), Some("two lines"));
        assert_eq!(
            std::fs::read_dir(sf.path.parent().unwrap())
                .unwrap()
                .count(),
            1
        );
        sf.remove().unwrap();
        sf.remove().unwrap();
        assert_eq!(sf.load().unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
