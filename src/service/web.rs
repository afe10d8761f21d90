//! What the web servers (nginx, lighttpd) share: the advertised actions, the URL and
//! regex parameters, the port the configuration must listen on, the depth-10 status
//! page and the depth-20 content check.

use super::{http, key};
use crate::state::Record;
use ocf::{Action, Deadline, OcfError};
use std::net::SocketAddr;
use std::path::Path;

/// The actions a web server agent advertises (only depth 0 as a default monitor: pcs
/// creates a recurring monitor for every advertised depth).
pub const ACTIONS: &[ocf::ActionSpec] = &[
    ocf::ActionSpec::new(Action::Start, 60),
    ocf::ActionSpec::new(Action::Stop, 60),
    ocf::ActionSpec::new(Action::Monitor, 20)
        .interval(10)
        .depth(0),
    ocf::ActionSpec::new(Action::Reload, 30),
    ocf::ActionSpec::new(Action::MetaData, 5),
    ocf::ActionSpec::new(Action::ValidateAll, 30),
];

/// `port` must be one the web server's configuration listens on (`ports`, read from
/// it): otherwise start would wait its whole timeout for a listener that never comes.
pub fn port_in_config(port: u16, config: &Path, ports: &[u16]) -> Result<(), OcfError> {
    if ports.contains(&port) {
        return Ok(());
    }
    let listens = if ports.is_empty() {
        "no TCP port".to_string()
    } else {
        format!("port(s) {ports:?} only")
    };
    Err(OcfError::invalid_param(
        "port",
        format!(
            "{port} but the configuration {} listens on {listens}",
            config.display()
        ),
    ))
}

/// A URL parameter (unset or empty: none).
pub fn url_param(name: &'static str, v: &Option<String>) -> Result<Option<http::Url>, OcfError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| http::Url::parse(s).map_err(|e| OcfError::invalid_param(name, e)))
        .transpose()
}

/// Record the depth-10 status page: the URL parameter `url` when set, else the page
/// the configuration names (`configured`) when it is a plain URL path that can be
/// fetched (else none: the site root is checked); and the regex it must match.
pub fn record_status(
    rec: &mut Record,
    url: (&'static str, &Option<String>),
    configured: Option<String>,
    regex: Option<&str>,
) -> Result<(), OcfError> {
    if url_param(url.0, url.1)?.is_some() {
        rec.set(key::STATUS_URL, url.1.as_deref().unwrap_or_default());
    } else if let Some(u) = configured.filter(|u| http::Url::parse(u).is_ok()) {
        rec.set(key::STATUS_URL, u);
    }
    if let Some(r) = regex {
        rec.set(key::STATUS_REGEX, r);
    }
    Ok(())
}

/// A case-insensitive regex from a parameter (upstream greps with `-Ei`).
pub fn regex_param(name: &'static str, raw: &str) -> Result<regex_lite::Regex, OcfError> {
    regex_lite::RegexBuilder::new(raw)
        .case_insensitive(true)
        .build()
        .map_err(|e| OcfError::invalid_param(name, format!("bad regular expression: {e}")))
}

/// Check an HTTP answer: 2xx, and the body matches `regex` when given.
pub fn http_check(
    url: &http::Url,
    regex: Option<&regex_lite::Regex>,
    listening: Option<SocketAddr>,
    deadline: &Deadline,
) -> Result<(), String> {
    let (addr, host) = url.target(listening)?;
    let r = http::get(addr, &host, &url.path, deadline)?;
    if !(200..300).contains(&r.status) {
        return Err(format!("GET {} answered HTTP {}", url.path, r.status));
    }
    if let Some(re) = regex {
        if !re.is_match(&r.body) {
            return Err(format!(
                "GET {} answered HTTP {} but the page does not match /{}/",
                url.path,
                r.status,
                re.as_str()
            ));
        }
    }
    Ok(())
}

/// A web server's depth-10 check (and start's readiness): the plan's status page, which
/// must answer 2xx (and match its regex when one is set); without one, the site root,
/// where any answer below 500 shows the server serves.
pub fn ping(
    plan: &Record,
    listening: Option<SocketAddr>,
    deadline: &Deadline,
) -> Result<(), String> {
    match plan.get(key::STATUS_URL) {
        Some(u) => {
            let url = http::Url::parse(u)?;
            let re = plan
                .get(key::STATUS_REGEX)
                .map(|r| regex_param("status regex", r).map_err(|e| e.reason))
                .transpose()?;
            http_check(&url, re.as_ref(), listening, deadline)
        }
        None => {
            let (addr, host) = http::Url::parse("/")?.target(listening)?;
            let r = http::get(addr, &host, "/", deadline)?;
            if r.status >= 500 {
                return Err(format!("GET / answered HTTP {}", r.status));
            }
            Ok(())
        }
    }
}

/// A web server's depth-20 check: the URL parameter `url` (when set) answers 2xx and
/// matches the regex parameter `regex` (when set).
pub fn content(
    url: (&'static str, &Option<String>),
    regex: (&'static str, &Option<String>),
    listening: Option<SocketAddr>,
    deadline: &Deadline,
) -> Result<(), OcfError> {
    if let Some(u) = url_param(url.0, url.1)? {
        let re = regex
            .1
            .as_deref()
            .map(|r| regex_param(regex.0, r))
            .transpose()?;
        http_check(&u, re.as_ref(), listening, deadline)
            .map_err(|e| OcfError::generic(format!("depth-20 check: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(
        url: Option<&str>,
        configured: Option<&str>,
        regex: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let mut rec = Record::default();
        let url = url.map(String::from);
        record_status(&mut rec, ("u", &url), configured.map(String::from), regex).unwrap();
        (
            rec.get(key::STATUS_URL).map(String::from),
            rec.get(key::STATUS_REGEX).map(String::from),
        )
    }

    #[test]
    fn the_status_page_is_the_parameter_else_a_fetchable_configured_one() {
        assert_eq!(
            recorded(Some("/s"), Some("/c"), Some("ok")),
            (Some("/s".into()), Some("ok".into()))
        );
        assert_eq!(
            recorded(Some(""), Some("/c"), None),
            (Some("/c".into()), None)
        );
        assert_eq!(recorded(None, Some("/c"), None), (Some("/c".into()), None));
        // A location that is not a plain URL path cannot be fetched: the site root.
        assert_eq!(recorded(None, Some("/a b"), None), (None, None));
        assert_eq!(recorded(None, None, Some("x")), (None, Some("x".into())));
        let bad = Some("/a`id`".to_string());
        let e = record_status(&mut Record::default(), ("u", &bad), None, None).unwrap_err();
        assert!(e.reason.starts_with("parameter u:"), "{e:?}");
    }
}
