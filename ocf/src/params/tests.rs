//! Parameter parsing, meta-data and the lenient parse, tested through a fixture set.
// Fixture fields exist to be declared (meta-data, parsing), not all to be read.
#![allow(dead_code)]
use super::*;
use crate::ErrorKind;

crate::choice! {
    pub enum Mode { Fast = "fast", Safe = "safe" }
}

crate::params! {
    pub struct Fixture {
        port: Port => ParamSpec::new("Port", "The port.").default("61000").unique(),
        name: String => ParamSpec::new("Name", "Required name."),
        verbose: bool => ParamSpec::new("Verbose", "Talk more.").default("false"),
        mode: Mode => ParamSpec::new("Mode", "How.").default("safe"),
        limit: Option<u32> => ParamSpec::new("Limit", "Optional cap."),
        token: Option<String> => ParamSpec::new("Token", "A secret.").secret(),
        old: Option<String> => ParamSpec::new("Old", "Ignored.").deprecated("ignored since 0.1."),
        quiet: Option<String> => ParamSpec::new("Quiet", "Upstream's.").no_effect("nothing to quiet."),
        mode2: Option<String> => ParamSpec::new("Mode 2", "Upstream's.").refused("one mode only."),
    }
}

#[test]
fn lenient_drops_only_the_broken_optional_parameters() {
    let p: Fixture = lenient(&env(&[("name", "x"), ("port", "nope"), ("limit", "7")])).unwrap();
    assert_eq!(p.port, Port(61000), "broken port falls back to its default");
    assert_eq!(p.limit, Some(7), "good ones are kept");
    assert!(
        lenient::<Fixture>(&env(&[("port", "nope")])).is_none(),
        "required missing"
    );
}

fn env(p: &[(&str, &str)]) -> OcfEnv {
    OcfEnv::from_pairs(
        p.iter()
            .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
    )
}

#[test]
fn spec_is_derived_from_the_declaration() {
    let s = Fixture::SPEC;
    let names: Vec<_> = s.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        ["port", "name", "verbose", "mode", "limit", "token", "old", "quiet", "mode2"]
    );
    assert_eq!(s[0].content, ContentType::Integer);
    assert!(s[0].unique && !s[0].required());
    assert!(s[1].required());
    assert_eq!(s[2].content, ContentType::Boolean);
    assert_eq!(s[3].choices, ["fast", "safe"]);
    assert_eq!(s[3].full_longdesc(), "How. Allowed values: fast, safe.");
    assert!(!s[4].required() && s[4].optional);
    assert!(s[5].secret);
    assert_eq!(
        s[6].full_longdesc(),
        "Ignored. Deprecated: ignored since 0.1."
    );
}

#[test]
fn parses_defaults_and_values() {
    let p = Fixture::from_env(&env(&[("name", "x")])).unwrap();
    assert_eq!(p.port, Port(61000));
    assert_eq!(p.name, "x");
    assert!(!p.verbose);
    assert_eq!(p.mode, Mode::Safe);
    assert_eq!(p.limit, None);
    let p = Fixture::from_env(&env(&[
        ("name", "x"),
        ("port", "1"),
        ("verbose", "YES"),
        ("mode", "Fast"),
        ("limit", "7"),
    ]))
    .unwrap();
    assert_eq!(
        (p.port, p.verbose, p.mode, p.limit),
        (Port(1), true, Mode::Fast, Some(7))
    );
}

#[test]
fn errors_name_the_parameter_and_are_configured() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "required parameter name is not set"),
        (
            &[("name", "x"), ("port", "notaport")],
            "parameter port: 'notaport' is not a valid port (1-65535)",
        ),
        (
            &[("name", "x"), ("port", "0")],
            "parameter port: '0' is not a valid port (1-65535)",
        ),
        (
            &[("name", "x"), ("port", "65536")],
            "parameter port: '65536' is not a valid port (1-65535)",
        ),
        (
            &[("name", "x"), ("port", "0x10")],
            "parameter port: '0x10' is not a valid port (1-65535)",
        ),
        (
            &[("name", "x"), ("verbose", "maybe")],
            "parameter verbose: 'maybe' is not a boolean (use true or false)",
        ),
        (
            &[("name", "x"), ("mode", "slow")],
            "parameter mode: 'slow' is not one of: fast, safe",
        ),
        (
            &[("name", "x"), ("limit", "-1")],
            "parameter limit: '-1' is out of range (0..=4294967295)",
        ),
        (
            &[("name", "x"), ("limit", "1.5")],
            "parameter limit: '1.5' is not an integer",
        ),
        (&[("name", "x"), ("token", "s3cret")], ""),
    ];
    for (vars, want) in cases {
        match Fixture::from_env(&env(vars)) {
            Ok(_) => assert!(want.is_empty(), "{vars:?} should fail with {want}"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Configured, "{vars:?}");
                assert_eq!(&e.reason, want, "{vars:?}");
                // The error names its parameter as data, not only in the text.
                let named = vars.last().map_or("name", |(k, _)| *k);
                assert_eq!(e.param, Some(named), "{vars:?}");
            }
        }
    }
}

#[test]
fn control_characters_and_non_utf8_are_refused_naming_the_parameter() {
    for bad in ["x\n", "\tx", "a\rb", "x\u{1b}[0m", "a\u{7f}"] {
        for field in ["name", "token", "limit", "mode"] {
            let mut vars = vec![("name", "x")];
            vars.retain(|(k, _)| *k != field);
            vars.push((field, bad));
            let e = Fixture::from_env(&env(&vars)).err().expect(bad);
            assert_eq!(e.kind, ErrorKind::Configured);
            assert!(
                e.reason.starts_with(&format!("parameter {field}: ")),
                "{}",
                e.reason
            );
            assert!(!e.reason.contains(bad), "the raw value is not echoed");
        }
    }
    use std::os::unix::ffi::OsStringExt;
    let os = |s: &[u8]| std::ffi::OsString::from_vec(s.to_vec());
    let e = OcfEnv::from_os_pairs([
        (os(b"OCF_RESKEY_name"), os(b"x")),
        (os(b"OCF_RESKEY_limit"), os(b"\xff\xfe\x01")),
    ]);
    let err = Fixture::from_env(&e).err().unwrap();
    assert_eq!(err.reason, "parameter limit: the value is not valid UTF-8");
    // A broken optional value is dropped by the lenient parse (as a stop uses it).
    let p: Fixture = lenient(&e).unwrap();
    assert_eq!(p.limit, None);
    // Spaces are not control characters.
    assert!(Fixture::from_env(&env(&[("name", "a b")])).is_ok());
}

#[test]
fn booleans() {
    for t in ["yes", "Y", "true", "TRUE", "1", "on", "ON", "ja"] {
        assert_eq!(bool::parse_value(t), Ok(true), "{t}");
    }
    for f in ["no", "N", "false", "0", "off", "nein"] {
        assert_eq!(bool::parse_value(f), Ok(false), "{f}");
    }
    assert!(bool::parse_value("2").is_err());
}

#[test]
fn shown_is_one_bounded_line() {
    assert_eq!(shown("a\nb"), "'a b'");
    assert_eq!(shown(&"x".repeat(100)).len(), 64 + 5);
}

#[test]
fn support_is_published_and_refused_values_are_named() {
    let quiet = Fixture::SPEC.iter().find(|p| p.name == "quiet").unwrap();
    assert_eq!(quiet.support, Support::NoEffect("nothing to quiet."));
    assert!(quiet
        .full_longdesc()
        .ends_with("No effect in rustha: nothing to quiet."));
    let mode2 = Fixture::SPEC.iter().find(|p| p.name == "mode2").unwrap();
    assert!(
        mode2.full_longdesc().contains("Not supported by rustha"),
        "{}",
        mode2.full_longdesc()
    );
    assert!(refused_set(&env(&[("name", "x")]), Fixture::SPEC).is_ok());
    assert!(
        refused_set(&env(&[("mode2", "")]), Fixture::SPEC).is_ok(),
        "empty = unset"
    );
    let e = refused_set(&env(&[("mode2", "b")]), Fixture::SPEC).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Configured);
    assert_eq!(e.param, Some("mode2"));
    assert!(e.reason.contains("one mode only"), "{}", e.reason);
    // A refused parameter parses (a CIB holding it loads): only validation refuses it.
    assert!(Fixture::from_env(&env(&[("name", "x"), ("mode2", "b")])).is_ok());
}
