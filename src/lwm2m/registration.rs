//! Reading a Register or Update (OMA-TS LwM2M Transport §6.2, Core §6.2):
//! the query parameters (`ep`, `lt`, `b`, `lwm2m`, `sms`, `Q`, others) and
//! the object links of the CoRE link-format payload (RFC 6690).
//!
//! Pure and forgiving: junk is never a panic and never silently dropped.
//! What could not be understood is listed in [`Registration::problems`] so a
//! test can assert on a client's malformed registration.

use crate::coap::{ContentFormat, Message};

/// Lifetime when a Register has no `lt` (LwM2M: 86400 s).
pub const DEFAULT_LIFETIME: u32 = 86400;
/// Binding when a Register has no `b`.
pub const DEFAULT_BINDING: &str = "U";
/// LwM2M version when a Register has no `lwm2m` (a 1.0 client).
pub const DEFAULT_VERSION: &str = "1.0";

pub use super::format::link::Link;

/// The LwM2M versions a client may register with (`lwm2m=`).
pub const VERSIONS: [&str; 3] = ["1.0", "1.1", "1.2"];

/// The letters of a binding (`b=`): UDP, MQTT, HTTP, TCP, SMS, Non-IP
/// (LwM2M 1.2 Core §6.2.1.1), and the queue mode of LwM2M 1.0.
const BINDINGS: &str = "UMHTSNQ";

/// What a Register or Update said.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Registration {
    /// `ep`: Endpoint Client Name.
    pub endpoint: Option<String>,
    /// `lt`: lifetime in seconds.
    pub lifetime: Option<u32>,
    /// `b`: binding mode.
    pub binding: Option<String>,
    /// `lwm2m`: the client's LwM2M version.
    pub version: Option<String>,
    /// `sms`: MSISDN.
    pub sms: Option<String>,
    /// `Q`: queue mode (LwM2M 1.1).
    pub queue_mode: bool,
    /// Every other query item, in order (`d`, `aid`, vendor ones).
    pub other: Vec<(String, Option<String>)>,
    /// The object links; `None` when the message has no payload (an Update
    /// that does not change them).
    pub links: Option<Vec<Link>>,
    /// What could not be understood, one sentence each.
    pub problems: Vec<String>,
}

impl Registration {
    /// Applies an Update (LwM2M Core §6.2.2): what it carries replaces what
    /// the registration had; what it leaves out stays.
    pub fn apply_update(&mut self, update: &Registration) {
        if update.lifetime.is_some() {
            self.lifetime = update.lifetime;
        }
        if update.binding.is_some() {
            self.binding.clone_from(&update.binding);
        }
        if update.sms.is_some() {
            self.sms.clone_from(&update.sms);
        }
        if update.links.is_some() {
            self.links.clone_from(&update.links);
        }
        if update.queue_mode {
            self.queue_mode = true;
        }
    }

    /// The object links (empty when none were sent).
    pub fn links(&self) -> &[Link] {
        self.links.as_deref().unwrap_or_default()
    }

    /// `lt`, or 86400.
    pub fn lifetime_or_default(&self) -> u32 {
        self.lifetime.unwrap_or(DEFAULT_LIFETIME)
    }

    /// `b`, or `U`.
    pub fn binding_or_default(&self) -> &str {
        self.binding.as_deref().unwrap_or(DEFAULT_BINDING)
    }

    /// `lwm2m`, or `1.0`.
    pub fn version_or_default(&self) -> &str {
        self.version.as_deref().unwrap_or(DEFAULT_VERSION)
    }

    /// The alternate root path: the target of the link with
    /// `rt="oma.lwm2m"`, or `/` when there is none.
    pub fn root_path(&self) -> &str {
        self.links
            .iter()
            .flatten()
            .find(|l| l.attribute("rt").flatten() == Some("oma.lwm2m"))
            .map_or("/", |l| l.target.as_str())
    }

    /// The Object and Object Instance links (below the root path), as
    /// `(object, instance)`, with the link they came from.
    pub fn objects(&self) -> Vec<(u16, Option<u16>, &Link)> {
        let root = self.root_path();
        self.links
            .iter()
            .flatten()
            .filter_map(|l| match l.ids(root)?.as_slice() {
                [o] => Some((*o, None, l)),
                [o, i] => Some((*o, Some(*i), l)),
                _ => None,
            })
            .collect()
    }
}

/// Reads a Register (`register = true`: `ep` is required) or an Update.
pub fn parse(msg: &Message, register: bool) -> Registration {
    let mut reg = parse_query(&msg.uri_query());
    if register && reg.endpoint.is_none() {
        reg.problems
            .push("Register without an endpoint name (ep)".to_string());
    }
    if !msg.payload.is_empty() {
        if let Some(f) = msg.content_format()
            && f != ContentFormat::LINK_FORMAT
        {
            reg.problems.push(format!(
                "payload has Content-Format {f}, expected 40 (APPLICATION_LINK)"
            ));
        }
        let (links, problems) = parse_links(&msg.payload);
        reg.links = Some(links);
        reg.problems.extend(problems);
    }
    reg
}

/// Reads registration query items (`ep=x`, `lt=60`, `Q`, …).
pub fn parse_query(items: &[String]) -> Registration {
    let mut reg = Registration::default();
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (item.as_str(), None),
        };
        let known = matches!(key, "ep" | "lt" | "b" | "lwm2m" | "sms" | "Q");
        if known && seen.contains(&key) {
            reg.problems
                .push(format!("query parameter {key} given more than once"));
        }
        seen.push(key);
        let need_value = |reg: &mut Registration, v: Option<String>| {
            if v.is_none() {
                reg.problems
                    .push(format!("query parameter {key} has no value"));
            }
            v
        };
        match key {
            "ep" => {
                reg.endpoint = need_value(&mut reg, value);
                if reg.endpoint.as_deref() == Some("") {
                    reg.problems.push("endpoint name (ep) is empty".to_string());
                }
            }
            "b" => {
                reg.binding = need_value(&mut reg, value);
                if let Some(b) = &reg.binding
                    && let Some(bad) = b.chars().find(|c| !BINDINGS.contains(*c))
                {
                    reg.problems.push(format!(
                        "binding b={b} has {bad}, which is no binding (U, M, H, T, S, N, Q)"
                    ));
                }
            }
            "lwm2m" => {
                reg.version = need_value(&mut reg, value);
                if let Some(v) = &reg.version
                    && !VERSIONS.contains(&v.as_str())
                {
                    reg.problems.push(format!(
                        "LwM2M version lwm2m={v} is none of {}",
                        VERSIONS.join(", ")
                    ));
                }
            }
            "sms" => reg.sms = need_value(&mut reg, value),
            "lt" => {
                if let Some(v) = need_value(&mut reg, value) {
                    // Digits only: `parse` alone takes a sign (`+5`).
                    match v.parse::<u32>().ok().filter(|_| v.bytes().all(|b| b.is_ascii_digit())) {
                        Some(lt) => reg.lifetime = Some(lt),
                        None => reg.problems.push(format!(
                            "lifetime is not a number of seconds: lt={v} (taken as {DEFAULT_LIFETIME})"
                        )),
                    }
                }
            }
            "Q" => {
                reg.queue_mode = true;
                if let Some(v) = value {
                    reg.problems
                        .push(format!("queue mode parameter Q takes no value: Q={v}"));
                }
            }
            _ => reg.other.push((key.to_string(), value)),
        }
    }
    reg
}

/// Parses a CoRE link-format payload (RFC 6690 §2) into links, with a list
/// of what could not be parsed (see [`super::format::link::decode_lenient`]).
pub fn parse_links(payload: &[u8]) -> (Vec<Link>, Vec<String>) {
    super::format::link::decode_lenient(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{CoapOption, Code, OptionNumber, Type};
    use proptest::prelude::*;

    fn register(uri: &str, payload: &[u8]) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::POST, 1);
        m.set_uri(uri);
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 40));
        m.payload = payload.to_vec();
        m
    }

    fn link(target: &str, attrs: &[(&str, Option<&str>)]) -> Link {
        attrs
            .iter()
            .fold(Link::new(target), |l, (n, v)| l.with(n, *v))
    }

    /// A link as its target and attribute names/values.
    type Plain = (String, Vec<(String, Option<String>)>);

    /// Target and attribute names/values (not how values were quoted).
    fn plain(links: &[Link]) -> Vec<Plain> {
        links
            .iter()
            .map(|l| {
                let attrs = l
                    .attributes
                    .iter()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect();
                (l.target.clone(), attrs)
            })
            .collect()
    }

    /// Parameters a client gets wrong are named, with what nsh took
    /// instead (they used to be taken without a word).
    #[test]
    fn wrong_parameters_are_named_with_what_was_taken() {
        for (query, says) in [
            (
                "ep=a&lt=abc",
                "lifetime is not a number of seconds: lt=abc (taken as 86400)",
            ),
            (
                "ep=a&lt=-1",
                "lifetime is not a number of seconds: lt=-1 (taken as 86400)",
            ),
            (
                "ep=a&lt=+5",
                "lifetime is not a number of seconds: lt=+5 (taken as 86400)",
            ),
            ("ep=a&lt=4294967296", "lt=4294967296"),
            (
                "ep=a&lwm2m=9.9",
                "LwM2M version lwm2m=9.9 is none of 1.0, 1.1, 1.2",
            ),
            (
                "ep=a&b=ZZ",
                "binding b=ZZ has Z, which is no binding (U, M, H, T, S, N, Q)",
            ),
            ("ep=", "endpoint name (ep) is empty"),
            ("lt=60", "Register without an endpoint name (ep)"),
        ] {
            let r = parse(&register(&format!("/rd?{query}"), b"</3/0>"), true);
            assert!(
                r.problems.iter().any(|p| p.contains(says)),
                "{query}: {:?}",
                r.problems
            );
        }
        for query in [
            "ep=a&lt=60&b=UQ&lwm2m=1.1",
            "ep=a&b=UQS&lwm2m=1.0",
            "ep=a&b=T&lwm2m=1.2",
        ] {
            let r = parse(&register(&format!("/rd?{query}"), b"</3/0>"), true);
            assert!(r.problems.is_empty(), "{query}: {:?}", r.problems);
        }
    }

    #[test]
    fn reads_the_docs_register() {
        let m = register(
            "/rd?lwm2m=1.1&ep=my_endpoint&lt=86400",
            b"</1/1>,</2>,</3/0>,</4/0>",
        );
        let r = parse(&m, true);
        assert_eq!(r.endpoint.as_deref(), Some("my_endpoint"));
        assert_eq!(r.lifetime, Some(86400));
        assert_eq!(r.version_or_default(), "1.1");
        assert_eq!(r.binding_or_default(), "U");
        assert!(!r.queue_mode);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let objs: Vec<(u16, Option<u16>)> = r.objects().iter().map(|(o, i, _)| (*o, *i)).collect();
        assert_eq!(
            objs,
            vec![(1, Some(1)), (2, None), (3, Some(0)), (4, Some(0))]
        );
    }

    #[test]
    fn applies_defaults_and_keeps_other_queries() {
        let r = parse_query(&["ep=x".into(), "Q".into(), "b=UQ".into(), "d=dom".into()]);
        assert_eq!(r.lifetime_or_default(), 86400);
        assert_eq!(r.version_or_default(), "1.0");
        assert_eq!(r.binding_or_default(), "UQ");
        assert!(r.queue_mode);
        assert_eq!(r.other, vec![("d".to_string(), Some("dom".to_string()))]);
        assert!(r.problems.is_empty());
    }

    #[test]
    fn reads_versions_alternate_root_and_content_types() {
        let (links, problems) = parse_links(
            br#"</>;rt="oma.lwm2m";ct=11543, </1/0>,</3/0>;ver=1.1 ,</3442>;ver="2.0""#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            plain(&links),
            plain(&[
                link("/", &[("rt", Some("oma.lwm2m")), ("ct", Some("11543"))]),
                link("/1/0", &[]),
                link("/3/0", &[("ver", Some("1.1"))]),
                link("/3442", &[("ver", Some("2.0"))]),
            ])
        );
        let mut m = register("/rd?ep=a", br#"</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>"#);
        m.remove_option(OptionNumber::CONTENT_FORMAT);
        let r = parse(&m, true);
        assert_eq!(r.root_path(), "/lwm2m");
        assert_eq!(r.objects().len(), 1);
        assert_eq!(r.objects()[0].0, 3);
    }

    #[test]
    fn quoted_values_may_hold_commas_and_semicolons() {
        let (links, problems) = parse_links(br#"</a>;title="x, y; \"z\"",</b>"#);
        assert!(problems.is_empty());
        assert_eq!(links[0].attribute("title").flatten(), Some("x, y; \"z\""));
        assert_eq!(links[1].target, "/b");
    }

    #[test]
    fn reports_junk_and_keeps_what_it_can() {
        let (links, problems) = parse_links(b"</1/0>,garbage,</3/0>;ver=1.0 </4>,<unterminated");
        assert_eq!(links.len(), 2, "{links:?}");
        assert_eq!(links[0].target, "/1/0");
        assert_eq!(links[1].target, "/3/0");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(problems[0], "link at byte 7: expected '<'");
        assert!(problems[1].contains("expected ','"));
        assert!(problems[2].contains("missing '>'"));
    }

    #[test]
    fn reports_bad_queries() {
        let r = parse_query(&["lt=soon".into(), "ep".into(), "Q=1".into(), "lt=5".into()]);
        assert_eq!(r.lifetime, Some(5));
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        let m = register("/rd?lt=5", b"</1>");
        assert_eq!(
            parse(&m, true).problems,
            vec!["Register without an endpoint name (ep)"]
        );
        let mut update = register("/rd/5?lt=5", b"");
        update.remove_option(OptionNumber::CONTENT_FORMAT);
        let r = parse(&update, false);
        assert!(r.problems.is_empty() && r.links.is_none());
    }

    #[test]
    fn wrong_content_format_and_non_utf8_are_reported() {
        let mut m = register("/rd?ep=a", b"</1>\xff");
        m.set_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0));
        let r = parse(&m, true);
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
    }

    proptest! {
        #[test]
        fn link_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = parse_links(&bytes);
        }

        #[test]
        fn link_parsing_never_panics_on_link_like_text(text in "[<>;=,\"\\\\/a-z0-9 ]{0,80}") {
            let (links, _) = parse_links(text.as_bytes());
            for l in &links {
                let _ = l.ids("/");
            }
        }
    }
}
