//! The meta-data document in fence-agents' format, the one `stonith_admin --metadata`
//! and `pcs stonith describe` read: `<getopt mixed=...>` per parameter, `plug` with the
//! deprecated `port` alias, the protocol's actions.

use crate::action::Action;
use crate::params::FenceParam;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::io::Cursor;

/// What a fence agent says of itself.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub name: &'static str,
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub vendor_url: &'static str,
}

/// Which standard options are required: `action` always; `plug` (and its `port` alias)
/// for agents that act on one machine of several, which is every agent here.
fn required(p: &FenceParam) -> bool {
    p.required || matches!(p.name, "action" | "plug" | "port")
}

fn write(
    w: &mut Writer<Cursor<Vec<u8>>>,
    info: &Info,
    params: &[&FenceParam],
) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
    w.create_element("resource-agent")
        .with_attributes([("name", info.name), ("shortdesc", info.shortdesc)])
        .write_inner_content(|w| {
            w.create_element("longdesc")
                .write_text_content(BytesText::new(info.longdesc.trim()))?;
            w.create_element("vendor-url")
                .write_text_content(BytesText::new(info.vendor_url))?;
            w.create_element("parameters").write_inner_content(|w| {
                for p in params {
                    let mut attrs: Vec<(&str, &str)> = vec![
                        ("name", p.name),
                        ("unique", "0"),
                        ("required", if required(p) { "1" } else { "0" }),
                    ];
                    if let Some(o) = p.obsoletes {
                        attrs.push(("obsoletes", o));
                    }
                    if p.deprecated {
                        attrs.push(("deprecated", "1"));
                    }
                    let getopt = p.getopt();
                    let desc = match p.no_effect {
                        Some(why) => format!("{} (no effect in rustha: {why})", p.shortdesc),
                        None => p.shortdesc.to_string(),
                    };
                    w.create_element("parameter")
                        .with_attributes(attrs)
                        .write_inner_content(|w| {
                            w.create_element("getopt")
                                .with_attribute(("mixed", getopt.as_str()))
                                .write_empty()?;
                            let mut c = w
                                .create_element("content")
                                .with_attribute(("type", p.content.as_str()));
                            if let Some(d) = p.default {
                                c = c.with_attribute(("default", d));
                            }
                            c.write_empty()?;
                            w.create_element("shortdesc")
                                .with_attribute(("lang", "en"))
                                .write_text_content(BytesText::new(&desc))?;
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
            w.create_element("actions").write_inner_content(|w| {
                for a in Action::ALL {
                    let mut e = w
                        .create_element("action")
                        .with_attribute(("name", a.as_str()));
                    if *a == Action::On {
                        e = e.with_attribute(("automatic", "0"));
                    }
                    e.write_empty()?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

/// The agent's meta-data: the standard options first, then its own.
pub fn metadata_xml(info: &Info, params: &[&FenceParam]) -> String {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b'\t', 1);
    write(&mut w, info, params).expect("writing XML to memory cannot fail");
    let mut s = String::from_utf8(w.into_inner().into_inner()).expect("XML is UTF-8");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::STANDARD;

    #[test]
    fn fence_agents_layout() {
        let info = Info {
            name: "fence_x",
            version: "0",
            shortdesc: "X & Y",
            longdesc: "Long <text>.",
            vendor_url: "https://example.org",
        };
        let own = FenceParam::new("region", "Region.").short('r');
        let all: Vec<&FenceParam> = STANDARD.iter().chain([&own]).collect();
        let xml = metadata_xml(&info, &all);
        assert!(xml.starts_with("<?xml version=\"1.0\"?>\n<resource-agent name=\"fence_x\" shortdesc=\"X &amp; Y\">"), "{xml}");
        assert!(
            xml.contains(
                "<parameter name=\"plug\" unique=\"0\" required=\"1\" obsoletes=\"port\">"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<parameter name=\"port\" unique=\"0\" required=\"1\" deprecated=\"1\">")
        );
        assert!(xml.contains("<getopt mixed=\"-n, --plug=[id]\"/>"), "{xml}");
        assert!(xml.contains("<getopt mixed=\"-r, --region=[value]\"/>"));
        assert!(xml.contains("<content type=\"second\" default=\"60\"/>"));
        assert!(xml.contains("<action name=\"on\" automatic=\"0\"/>"));
        assert!(xml.contains("<action name=\"list-status\"/>"));
        assert!(xml.contains("Long &lt;text&gt;."));
    }
}
