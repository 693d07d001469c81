//! CoRE Link Format (content format 40), RFC 6690: the Register/Update
//! payload and Discover responses, e.g. `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1`.
//!
//! Links keep their attributes in order, with the value's quoting, so that
//! what is decoded encodes back byte for byte. Whitespace after a comma is
//! tolerated (clients emit it rarely); nothing else is guessed.

use std::fmt;

use super::ErrorKind;
use super::{Field, FormatError};
use crate::lwm2m::node::Path;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// One link-param: `name`, `name=token` or `name="quoted string"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAttribute {
    /// Parameter name (`ver`, `pmin`, `rt`, …).
    pub name: String,
    /// Value without quotes (and with `\"` escapes resolved), if any.
    pub value: Option<String>,
    /// True when the value was written as a quoted string.
    pub quoted: bool,
}

/// One link-value: `<target>` and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// URI reference between `<` and `>`.
    pub target: String,
    /// Parameters in order.
    pub attributes: Vec<LinkAttribute>,
}

impl Link {
    /// A link without attributes.
    pub fn new(target: impl Into<String>) -> Link {
        Link {
            target: target.into(),
            attributes: Vec::new(),
        }
    }

    /// Adds `name=value` (quoted when the value needs it) and returns self.
    pub fn with(mut self, name: &str, value: Option<&str>) -> Link {
        let quoted = value.is_some_and(|v| !v.chars().all(is_ptoken_char) || v.is_empty());
        self.attributes.push(LinkAttribute {
            name: name.to_owned(),
            value: value.map(str::to_owned),
            quoted,
        });
        self
    }

    /// The target as an LwM2M path, if it is one.
    pub fn path(&self) -> Option<Path> {
        self.target.parse().ok()
    }

    /// The numeric IDs of the target below `root` (`/lwm2m/3/0` with root
    /// `/lwm2m` gives `[3, 0]`); `None` when it is not such a path.
    pub fn ids(&self, root: &str) -> Option<Vec<u16>> {
        let root = root.trim_end_matches('/');
        let rest = self.target.strip_prefix(root)?;
        if rest.is_empty() || rest == "/" {
            return Some(Vec::new());
        }
        let rest = rest.strip_prefix('/')?;
        rest.split('/').map(|s| s.parse::<u16>().ok()).collect()
    }

    /// The first value of a parameter: `None` when absent, `Some(None)`
    /// when present without `=`.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_deref())
    }
}

fn is_ptoken_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'()*+-./:<=>?@[]^_`{|}~".contains(c)
}

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/// Parses a link-format payload. An empty payload is no links.
pub fn decode(bytes: &[u8]) -> Result<Vec<Link>, FormatError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FormatError::invalid(e.valid_up_to(), Field::Text, "not UTF-8"))?;
    let mut links = Vec::new();
    let b = text.as_bytes();
    let mut pos = 0;
    let partial = |links: &Vec<Link>, e: FormatError| {
        e.with_partial(super::cf::LINK_FORMAT, super::Payload::Links(links.clone()))
    };
    while pos < b.len() {
        match parse_link(text, &mut pos) {
            Ok(l) => links.push(l),
            Err(e) => return Err(partial(&links, e)),
        }
        match b.get(pos) {
            None => {}
            Some(b',') => {
                pos += 1;
                while b.get(pos).is_some_and(u8::is_ascii_whitespace) {
                    pos += 1;
                }
                if pos == b.len() {
                    let e = FormatError::invalid(pos, Field::LinkTarget, "trailing ','");
                    return Err(partial(&links, e));
                }
            }
            Some(_) => {
                let e = FormatError::invalid(pos, Field::LinkAttribute, "expected ';' or ','");
                return Err(partial(&links, e));
            }
        }
    }
    Ok(links)
}

/// Forgiving decoding for payloads that must not be lost (a Register's
/// object links): a broken link is skipped up to the next top-level comma,
/// each problem is listed (`link at byte 7: expected '<'`), and parsing goes
/// on. Whitespace around links is allowed; bytes that are not UTF-8 are
/// replaced.
pub fn decode_lenient(bytes: &[u8]) -> (Vec<Link>, Vec<String>) {
    let mut problems = Vec::new();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_owned(),
        Err(e) => {
            problems.push(format!(
                "link-format payload is not UTF-8 (at byte {})",
                e.valid_up_to()
            ));
            String::from_utf8_lossy(bytes).into_owned()
        }
    };
    let b = text.as_bytes();
    let skip_ws = |pos: &mut usize| {
        while b.get(*pos).is_some_and(u8::is_ascii_whitespace) {
            *pos += 1;
        }
    };
    let mut links = Vec::new();
    let mut pos = 0;
    loop {
        skip_ws(&mut pos);
        if pos >= b.len() {
            break;
        }
        let start = pos;
        match parse_link(&text, &mut pos) {
            Ok(l) => links.push(l),
            Err(e) => {
                let reason = match e.kind {
                    ErrorKind::Invalid { reason, .. } => reason,
                    other => other.to_string(),
                };
                problems.push(format!("link at byte {start}: {reason}"));
                pos = next_link(b, pos.max(start));
                continue;
            }
        }
        skip_ws(&mut pos);
        match b.get(pos) {
            None => break,
            Some(b',') => pos += 1,
            Some(_) => {
                problems.push(format!("byte {pos}: expected ',' between links"));
                pos = next_link(b, pos);
            }
        }
    }
    (links, problems)
}

/// The position after the next comma outside quotes and angle brackets.
fn next_link(b: &[u8], mut pos: usize) -> usize {
    let (mut quoted, mut angle) = (false, false);
    while let Some(&c) = b.get(pos) {
        pos += 1;
        match c {
            b'"' if !angle => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => break,
            _ => {}
        }
    }
    pos
}

fn parse_link(text: &str, pos: &mut usize) -> Result<Link, FormatError> {
    let b = text.as_bytes();
    if b.get(*pos) != Some(&b'<') {
        return Err(FormatError::invalid(
            *pos,
            Field::LinkTarget,
            "expected '<'",
        ));
    }
    let start = *pos + 1;
    let end = text[start..]
        .find('>')
        .map(|i| start + i)
        .ok_or_else(|| FormatError::invalid(*pos, Field::LinkTarget, "missing '>'"))?;
    let mut link = Link::new(&text[start..end]);
    *pos = end + 1;
    while b.get(*pos) == Some(&b';') {
        *pos += 1;
        let name_start = *pos;
        while b
            .get(*pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"!#$&+-.^_`|~*".contains(c))
        {
            *pos += 1;
        }
        if *pos == name_start {
            return Err(FormatError::invalid(
                *pos,
                Field::LinkAttribute,
                "empty parameter name",
            ));
        }
        let name = text[name_start..*pos].to_owned();
        let (value, quoted) = if b.get(*pos) == Some(&b'=') {
            *pos += 1;
            if b.get(*pos) == Some(&b'"') {
                let open = *pos;
                *pos += 1;
                let mut v = String::new();
                loop {
                    let Some(c) = text[*pos..].chars().next() else {
                        return Err(FormatError::invalid(
                            open,
                            Field::LinkAttribute,
                            "unterminated quoted string",
                        ));
                    };
                    *pos += c.len_utf8();
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = text[*pos..].chars().next() {
                                *pos += n.len_utf8();
                                v.push(n);
                            }
                        }
                        c => v.push(c),
                    }
                }
                (Some(v), true)
            } else {
                let vstart = *pos;
                while text[*pos..].chars().next().is_some_and(is_ptoken_char) {
                    *pos += 1;
                }
                (Some(text[vstart..*pos].to_owned()), false)
            }
        } else {
            (None, false)
        };
        link.attributes.push(LinkAttribute {
            name,
            value,
            quoted,
        });
    }
    Ok(link)
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// Link-format text for links, comma-separated.
pub fn encode(links: &[Link]) -> String {
    links
        .iter()
        .map(Link::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.target)?;
        for a in &self.attributes {
            write!(f, ";{}", a.name)?;
            match (&a.value, a.quoted) {
                (Some(v), true) => {
                    write!(f, "=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))?
                }
                (Some(v), false) => write!(f, "={v}")?,
                (None, _) => {}
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_register_payload() {
        // A Register payload (Core 1.1 §6.2.1 shape): rt/ct on the root
        // link, versions and attributes on others.
        let text = r#"</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1,</1/1>;pmin=10"#;
        let links = decode(text.as_bytes()).unwrap();
        assert_eq!(links.len(), 4);
        assert_eq!(links[0].attribute("rt"), Some(Some("oma.lwm2m")));
        assert_eq!(links[0].attribute("ct"), Some(Some("11543")));
        assert_eq!(links[2].path(), Some("/3/0".parse().unwrap()));
        assert_eq!(links[3].attribute("pmin"), Some(Some("10")));
        assert_eq!(encode(&links), text);
    }

    #[test]
    fn decodes_discover_with_valueless_and_quoted_attributes() {
        // Discover response shape (Core 1.1 §5.4.2): `dim`, a valueless
        // attribute, and a quoted value holding `,;\"`.
        let text = r#"</3/0/7>;dim=8;obs,</3/0>;title="a,b;c\"d""#;
        let links = decode(text.as_bytes()).unwrap();
        assert_eq!(links[0].attribute("obs"), Some(None));
        assert_eq!(links[1].attribute("title"), Some(Some("a,b;c\"d")));
        assert_eq!(encode(&links), text);
    }

    #[test]
    fn reports_errors_with_offsets_and_partial_links() {
        let e = decode(b"</1/0>,/3/0").unwrap_err();
        assert_eq!(e.offset, 7);
        assert_eq!(e.to_string(), "invalid link target: expected '<' at byte 7");
        let Some(p) = e.partial else { panic!() };
        assert_eq!(
            p.payload,
            super::super::Payload::Links(vec![Link::new("/1/0")])
        );
        assert!(decode(b"</1").is_err());
        assert!(decode(b"</1>;").is_err());
        assert!(decode(b"</1>;a=\"x").is_err());
        assert!(decode(b"</1>,").is_err());
        assert_eq!(decode(b"").unwrap(), vec![]);
    }

    #[test]
    fn builds_links_with_quoting() {
        let l = Link::new("/")
            .with("rt", Some("oma.lwm2m"))
            .with("ct", Some("110 112"));
        assert_eq!(l.to_string(), "</>;rt=oma.lwm2m;ct=\"110 112\"");
    }
}
