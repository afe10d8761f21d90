//! Meta-data XML, written from the agent's declaration with quick-xml.
//!
//! The document is valid at once for ocf-tester's `ra-api-1.dtd` (DOCTYPE included, DTD
//! element order, only `name/unique/required` on parameters, content types
//! string/integer/boolean, DTD action names), for resource-agents' `metadata.rng`, for
//! pcs, and for the OCF 1.1 RNG (`<version>1.1</version>`).

use crate::{action::Action, params::ParamSpec};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::io::Cursor;

/// The OCF API version the meta-data claims.
pub const OCF_VERSION: &str = "1.1";

/// Facts about an agent that are not parameters.
#[derive(Clone, Copy, Debug)]
pub struct AgentInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub actions: &'static [ActionSpec],
}

impl AgentInfo {
    /// The first advertised entry for `action`.
    pub fn action(&self, action: Action) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.action == action)
    }
}

/// One advertised `<action>`.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    pub action: Action,
    pub timeout_s: u32,
    pub interval_s: Option<u32>,
    pub depth: Option<u32>,
}

impl ActionSpec {
    pub const fn new(action: Action, timeout_s: u32) -> Self {
        ActionSpec {
            action,
            timeout_s,
            interval_s: None,
            depth: None,
        }
    }
    pub const fn interval(mut self, s: u32) -> Self {
        self.interval_s = Some(s);
        self
    }
    pub const fn depth(mut self, d: u32) -> Self {
        self.depth = Some(d);
        self
    }
}

fn lang_text(w: &mut Writer<Cursor<Vec<u8>>>, tag: &str, text: &str) -> std::io::Result<()> {
    w.create_element(tag)
        .with_attribute(("lang", "en"))
        .write_text_content(BytesText::new(text.trim()))?;
    Ok(())
}

fn write_doc(
    w: &mut Writer<Cursor<Vec<u8>>>,
    info: &AgentInfo,
    params: &[ParamSpec],
) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
    w.write_event(Event::DocType(BytesText::from_escaped(
        r#"resource-agent SYSTEM "ra-api-1.dtd""#,
    )))?;
    w.create_element("resource-agent")
        .with_attributes([("name", info.name), ("version", info.version)])
        .write_inner_content(|w| {
            w.create_element("version")
                .write_text_content(BytesText::new(OCF_VERSION))?;
            lang_text(w, "longdesc", info.longdesc)?;
            lang_text(w, "shortdesc", info.shortdesc)?;
            w.create_element("parameters").write_inner_content(|w| {
                for p in params {
                    w.create_element("parameter")
                        .with_attributes([
                            ("name", p.name),
                            ("unique", if p.unique { "1" } else { "0" }),
                            ("required", if p.required() { "1" } else { "0" }),
                        ])
                        .write_inner_content(|w| {
                            lang_text(w, "longdesc", &p.full_longdesc())?;
                            lang_text(w, "shortdesc", p.shortdesc)?;
                            let mut c = w
                                .create_element("content")
                                .with_attribute(("type", p.content.as_str()));
                            if let Some(d) = p.default {
                                c = c.with_attribute(("default", d));
                            }
                            c.write_empty()?;
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
            w.create_element("actions").write_inner_content(|w| {
                for a in info.actions {
                    let timeout = format!("{}s", a.timeout_s);
                    let interval = a.interval_s.map(|i| format!("{i}s"));
                    let depth = a.depth.map(|d| d.to_string());
                    let mut e = w
                        .create_element("action")
                        .with_attributes([("name", a.action.as_str()), ("timeout", &timeout)]);
                    if let Some(i) = &interval {
                        e = e.with_attribute(("interval", i.as_str()));
                    }
                    if let Some(d) = &depth {
                        e = e.with_attribute(("depth", d.as_str()));
                    }
                    e.write_empty()?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

/// The agent's meta-data document.
pub fn metadata_xml(info: &AgentInfo, params: &[ParamSpec]) -> String {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    write_doc(&mut w, info, params).expect("writing XML to memory cannot fail");
    let mut s = String::from_utf8(w.into_inner().into_inner()).expect("XML is UTF-8");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    static INFO: AgentInfo = AgentInfo {
        name: "fixture",
        version: "0.1.0",
        shortdesc: "A <fixture> & friends",
        longdesc: "Long \"quoted\" text with 'apostrophes' & <tags>.",
        actions: &[
            ActionSpec::new(Action::Start, 20),
            ActionSpec::new(Action::Monitor, 20).interval(10).depth(0),
            ActionSpec::new(Action::MetaData, 5),
        ],
    };

    #[test]
    fn escapes_and_orders_like_the_dtd() {
        let p = [ParamSpec::new("A <b>", "x & y").named("a").default("1 < 2")];
        let xml = metadata_xml(&INFO, &p);
        assert!(
            xml.starts_with(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<shortdesc lang=\"en\">A &lt;fixture&gt; &amp; friends</shortdesc>"),
            "{xml}"
        );
        assert!(xml.contains("x &amp; y"));
        assert!(xml.contains("default=\"1 &lt; 2\""), "{xml}");
        assert!(!xml.contains("<b>"));
        let order: Vec<usize> = [
            "<version>1.1</version>",
            "<longdesc",
            "<shortdesc",
            "<parameters>",
            "<actions>",
        ]
        .iter()
        .map(|t| xml.find(t).unwrap_or_else(|| panic!("{t} missing")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(
            xml.contains("<action name=\"monitor\" timeout=\"20s\" interval=\"10s\" depth=\"0\"/>")
        );
        assert!(
            xml.contains("<parameter name=\"a\" unique=\"0\" required=\"0\">"),
            "{xml}"
        );
    }

    #[test]
    fn lookup_of_advertised_actions() {
        assert_eq!(INFO.action(Action::Start).map(|a| a.timeout_s), Some(20));
        assert!(INFO.action(Action::Reload).is_none());
    }
}
