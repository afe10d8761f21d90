//! The parts of a Pacemaker CIB that `rustha migrate` reads: every `ocf` primitive with
//! the resources that contain it (group, clone, promotable clone, bundle), its instance
//! and meta attributes, and where its opening tag sits in the text so that the provider
//! swap changes those bytes and nothing else.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::BTreeMap;
use std::ops::Range;

/// One element of the document, with the byte range of its opening tag.
#[derive(Clone, Debug, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// `<name ...>` or `<name .../>` in the source text.
    pub tag: Range<usize>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn id(&self) -> &str {
        self.attr("id").unwrap_or("")
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Element)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }
}

fn element(e: &BytesStart, tag: Range<usize>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| format!("<{name}>: {err}"))?;
        let v = a
            .unescape_value()
            .map_err(|err| format!("<{name}>: {err}"))?;
        attrs.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            v.into_owned(),
        ));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        tag,
    })
}

/// Parse a whole document (the CIB as `cibadmin -Q` prints it, or a file).
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut r = Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let start = r.buffer_position() as usize;
        let ev = r
            .read_event()
            .map_err(|e| format!("not XML at byte {}: {e}", r.error_position()))?;
        let end = r.buffer_position() as usize;
        match ev {
            Event::Start(e) => stack.push(element(&e, start..end)?),
            Event::Empty(e) => {
                let el = element(&e, start..end)?;
                stack.last_mut().expect("root").children.push(el);
            }
            Event::End(_) => {
                let done = stack.pop().expect("balanced");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Err("unbalanced XML".into()),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().expect("root");
    if !stack.is_empty() {
        return Err("truncated XML (an element is not closed)".into());
    }
    match root.children.len() {
        1 => Ok(root.children.remove(0)),
        _ => Err("not one document element".into()),
    }
}

/// What contains a primitive, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// group, clone, master (a promotable clone, Pacemaker < 2.0 syntax) or bundle.
    pub kind: String,
    pub id: String,
}

/// An `ocf` primitive of the configuration.
#[derive(Clone, Debug)]
pub struct Primitive {
    pub id: String,
    pub provider: String,
    pub agent: String,
    /// Instance attributes (the parameters), merged over every set; `rules` when a set
    /// has a rule (the values then depend on the node or time).
    pub params: BTreeMap<String, String>,
    pub rules: bool,
    /// Meta attributes of the primitive and every parent (the innermost wins), names as
    /// written (`clone-max`).
    pub meta: BTreeMap<String, String>,
    pub parents: Vec<Parent>,
    /// The primitive takes its definition from this `<template>`.
    pub template: Option<String>,
    pub tag: Range<usize>,
}

impl Primitive {
    /// `group g1`, `clone c1 > group g1`: where it sits, outermost first.
    pub fn place(&self) -> String {
        if self.parents.is_empty() {
            return "the top level".into();
        }
        self.parents
            .iter()
            .rev()
            .map(|p| format!("{} {}", p.kind, p.id))
            .collect::<Vec<_>>()
            .join(" > ")
    }
    pub fn in_clone(&self) -> bool {
        self.parents
            .iter()
            .any(|p| matches!(p.kind.as_str(), "clone" | "master"))
    }
    pub fn in_bundle(&self) -> bool {
        self.parents.iter().any(|p| p.kind == "bundle")
    }
}

/// The `nvpair`s of every `kind` set of `e` (references resolved through `ids`).
fn nvpairs(
    e: &Element,
    kind: &str,
    ids: &BTreeMap<&str, &Element>,
    into: &mut BTreeMap<String, String>,
) -> bool {
    let mut rules = false;
    for set in e.children_named(kind) {
        let set = set.attr("id-ref").and_then(|r| ids.get(r)).unwrap_or(&set);
        rules |= set.child("rule").is_some();
        for nv in set.children_named("nvpair") {
            let nv = nv.attr("id-ref").and_then(|r| ids.get(r)).unwrap_or(&nv);
            if let (Some(k), Some(v)) = (nv.attr("name"), nv.attr("value")) {
                into.entry(k.to_string()).or_insert_with(|| v.to_string());
            }
        }
    }
    rules
}

/// Every `ocf` primitive under `configuration/resources`, in document order.
pub fn primitives(cib: &Element) -> Result<Vec<Primitive>, String> {
    let resources = cib
        .child("configuration")
        .and_then(|c| c.child("resources"))
        .ok_or("no configuration/resources section: is this a CIB?")?;
    Ok(primitives_under(resources, cib))
}

/// The same for a resources section on its own (`cibadmin --query --scope resources`).
pub fn primitives_in(resources: &Element) -> Vec<Primitive> {
    primitives_under(resources, resources)
}

/// The `ocf` primitives under `resources`, references resolved anywhere in `root`.
fn primitives_under(resources: &Element, root: &Element) -> Vec<Primitive> {
    let mut ids: BTreeMap<&str, &Element> = BTreeMap::new();
    root.walk(&mut |e| {
        if let Some(id) = e.attr("id") {
            ids.entry(id).or_insert(e);
        }
    });
    let mut out = Vec::new();
    let mut stack: Vec<(&Element, Vec<Parent>)> = vec![(resources, Vec::new())];
    // Depth-first, children in order: the stack holds what is still to visit, reversed.
    let mut order: Vec<(&Element, Vec<Parent>)> = Vec::new();
    while let Some((e, parents)) = stack.pop() {
        order.push((e, parents.clone()));
        let mut inner = parents.clone();
        if matches!(e.name.as_str(), "group" | "clone" | "master" | "bundle") {
            inner.insert(
                0,
                Parent {
                    kind: e.name.clone(),
                    id: e.id().to_string(),
                },
            );
        }
        for c in e.children.iter().rev() {
            if matches!(
                c.name.as_str(),
                "primitive" | "group" | "clone" | "master" | "bundle"
            ) {
                stack.push((c, inner.clone()));
            }
        }
    }
    for (e, parents) in order {
        if e.name != "primitive" {
            continue;
        }
        let template = e.attr("template").map(String::from);
        let def = template
            .as_deref()
            .and_then(|t| ids.get(t).copied())
            .unwrap_or(e);
        if def.attr("class") != Some("ocf") {
            continue;
        }
        let mut params = BTreeMap::new();
        let mut rules = nvpairs(e, "instance_attributes", &ids, &mut params);
        if !std::ptr::eq(def, e) {
            rules |= nvpairs(def, "instance_attributes", &ids, &mut params);
        }
        let mut meta = BTreeMap::new();
        nvpairs(e, "meta_attributes", &ids, &mut meta);
        for p in &parents {
            if let Some(pe) = find(resources, &p.kind, &p.id) {
                nvpairs(pe, "meta_attributes", &ids, &mut meta);
            }
        }
        out.push(Primitive {
            id: e.id().to_string(),
            provider: def.attr("provider").unwrap_or("").to_string(),
            agent: def.attr("type").unwrap_or("").to_string(),
            params,
            rules,
            meta,
            parents,
            template,
            tag: e.tag.clone(),
        });
    }
    out
}

fn find<'a>(e: &'a Element, name: &str, id: &str) -> Option<&'a Element> {
    if e.name == name && e.id() == id {
        return Some(e);
    }
    e.children.iter().find_map(|c| find(c, name, id))
}

/// The number of cluster nodes the CIB knows (`configuration/nodes`); 0 for a CIB file
/// written before any node joined (`pcs -f` on `cibadmin --empty`).
pub fn node_count(cib: &Element) -> usize {
    cib.child("configuration")
        .and_then(|c| c.child("nodes"))
        .map(|n| n.children_named("node").count())
        .unwrap_or(0)
}

/// `xml` with the `provider` of each primitive whose opening tag is in `tags` set to
/// `to`: only the attribute's value changes, every other byte stays.
pub fn with_provider(xml: &str, tags: &[Range<usize>], to: &str) -> Result<String, String> {
    let re = regex_lite::Regex::new(r#"(\sprovider\s*=\s*)("[^"]*"|'[^']*')"#).expect("regex");
    let mut sorted: Vec<&Range<usize>> = tags.iter().collect();
    sorted.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(xml.len());
    let mut at = 0;
    for t in sorted {
        let tag = xml.get(t.clone()).ok_or("tag range outside the document")?;
        let m = re
            .captures(tag)
            .ok_or_else(|| format!("no provider attribute in {tag}"))?;
        let value = m.get(2).expect("group 2");
        out.push_str(&xml[at..t.start + value.start()]);
        out.push('"');
        out.push_str(to);
        out.push('"');
        at = t.start + value.end();
    }
    out.push_str(&xml[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIB: &str = r#"<cib epoch="3"><configuration><nodes><node id="1" uname="a"/><node id="2" uname="b"/></nodes>
<resources>
  <primitive id="vip" class="ocf" type="IPaddr2" provider="heartbeat">
    <instance_attributes id="vip-ia"><nvpair id="vip-ip" name="ip" value="192.0.2.10"/></instance_attributes>
  </primitive>
  <group id="g"><meta_attributes id="g-m"><nvpair id="g-t" name="target-role" value="Started"/></meta_attributes>
    <primitive id="web" class="ocf" provider='heartbeat' type="nginx"><instance_attributes id-ref="shared"/></primitive>
    <primitive id="st" class="stonith" type="fence_x"/>
  </group>
  <clone id="c"><meta_attributes id="c-m"><nvpair id="c-max" name="clone-max" value="2"/></meta_attributes>
    <group id="cg"><primitive id="fs" class="ocf" type="Filesystem" provider="heartbeat"/></group>
  </clone>
  <template id="t" class="ocf" provider="heartbeat" type="IPaddr2"/>
  <primitive id="vip2" template="t"/>
</resources></configuration>
<x><instance_attributes id="shared"><nvpair id="s1" name="port" value="8080"/></instance_attributes></x>
</cib>"#;

    #[test]
    fn finds_primitives_with_their_parents_and_attributes() {
        let cib = parse(CIB).unwrap();
        let p = primitives(&cib).unwrap();
        let ids: Vec<&str> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["vip", "web", "fs", "vip2"], "stonith is not ocf");
        assert_eq!(p[0].params["ip"], "192.0.2.10");
        assert_eq!(p[0].place(), "the top level");
        assert_eq!(p[1].params["port"], "8080", "id-ref resolved");
        assert_eq!(p[1].meta["target-role"], "Started", "group meta inherited");
        assert_eq!(p[2].place(), "clone c > group cg");
        assert!(p[2].in_clone());
        assert_eq!(p[2].meta["clone-max"], "2");
        assert_eq!(p[3].template.as_deref(), Some("t"));
        assert_eq!(p[3].agent, "IPaddr2");
        assert_eq!(node_count(&cib), 2);
    }

    #[test]
    fn provider_swap_changes_only_the_attribute_value() {
        let cib = parse(CIB).unwrap();
        let p = primitives(&cib).unwrap();
        let tags = vec![p[0].tag.clone(), p[1].tag.clone()];
        let out = with_provider(CIB, &tags, "rustha").unwrap();
        assert_eq!(
            out,
            CIB.replacen(
                r#"type="IPaddr2" provider="heartbeat">"#,
                r#"type="IPaddr2" provider="rustha">"#,
                1
            )
            .replacen("provider='heartbeat'", r#"provider="rustha""#, 1)
        );
        let again = primitives(&parse(&out).unwrap()).unwrap();
        assert_eq!(again[0].provider, "rustha");
        assert_eq!(again[2].provider, "heartbeat");
    }

    #[test]
    fn broken_documents_are_errors_not_panics() {
        for bad in [
            "",
            "<cib>",
            "<cib></x>",
            "not xml <",
            "<a/><b/>",
            "<cib a='1' a='2'/>",
        ] {
            let r = parse(bad).and_then(|c| primitives(&c).map(drop));
            assert!(r.is_err(), "{bad:?}");
        }
    }
}
