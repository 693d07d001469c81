//! CoAP Content-Formats used by LwM2M (RFC 7252 §12.3, OMA LwM2M 1.0–1.2).
//!
//! [`ContentFormat`] is an open newtype: unknown numbers round-trip and print
//! as numbers. Names are the original nsh's (`APPLICATION_LWM2M_TLV`), also
//! accepted case-insensitively and by short alias (`tlv`, `senml+cbor`).

use std::fmt;

/// A Content-Format number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContentFormat(pub u16);

macro_rules! formats {
    ($($konst:ident = $num:expr, $name:expr, [$($alias:expr),*];)*) => {
        impl ContentFormat {
            $(
                #[doc = concat!("`", stringify!($num), "` ", $name)]
                pub const $konst: ContentFormat = ContentFormat($num);
            )*
        }
        const TABLE: &[(ContentFormat, &str, &[&str])] = &[$((ContentFormat::$konst, $name, &[$($alias),*]),)*];
    };
}

formats! {
    TEXT_PLAIN = 0, "TEXT_PLAIN", ["text", "plain", "text/plain"];
    LINK_FORMAT = 40, "APPLICATION_LINK", ["link", "link-format", "core-link", "application/link-format"];
    OCTET_STREAM = 42, "APPLICATION_OCTET_STREAM", ["opaque", "octet-stream", "binary", "application/octet-stream"];
    CBOR = 60, "APPLICATION_CBOR", ["cbor", "application/cbor"];
    SENML_JSON = 110, "APPLICATION_LWM2M_SENML_JSON", ["senml_json", "senml+json", "lwm2m_senml_json", "application/senml+json"];
    SENML_CBOR = 112, "APPLICATION_LWM2M_SENML_CBOR", ["senml_cbor", "senml+cbor", "lwm2m_senml_cbor", "application/senml+cbor"];
    PKCS7_CERTS_ONLY = 281, "APPLICATION_PKCS7_CERTS_ONLY", ["pkcs7", "pkcs7-certs-only", "application/pkcs7-mime; smime-type=certs-only"];
    PKCS10 = 286, "APPLICATION_PKCS10", ["pkcs10", "application/pkcs10"];
    PKIX_CERT = 287, "APPLICATION_PKIX_CERT", ["pkix-cert", "application/pkix-cert"];
    SENML_ETCH_JSON = 320, "APPLICATION_LWM2M_SENML_ETCH_JSON", ["senml-etch+json", "etch+json", "lwm2m_senml_etch_json", "application/senml-etch+json"];
    SENML_ETCH_CBOR = 322, "APPLICATION_LWM2M_SENML_ETCH_CBOR", ["senml-etch+cbor", "etch+cbor", "lwm2m_senml_etch_cbor", "application/senml-etch+cbor"];
    LWM2M_TEXT_LEGACY = 1541, "APPLICATION_LWM2M_TEXT_LEGACY", ["text-legacy", "lwm2m_text_legacy"];
    LWM2M_TLV_LEGACY = 1542, "APPLICATION_LWM2M_TLV_LEGACY", ["tlv-legacy", "lwm2m_tlv_legacy"];
    LWM2M_JSON_LEGACY = 1543, "APPLICATION_LWM2M_JSON_LEGACY", ["json-legacy", "lwm2m_json_legacy"];
    LWM2M_OPAQUE_LEGACY = 1544, "APPLICATION_LWM2M_OPAQUE_LEGACY", ["opaque-legacy", "lwm2m_opaque_legacy"];
    LWM2M_TLV = 11542, "APPLICATION_LWM2M_TLV", ["tlv", "lwm2m_tlv", "lwm2m+tlv", "application/vnd.oma.lwm2m+tlv"];
    LWM2M_JSON = 11543, "APPLICATION_LWM2M_JSON", ["json", "lwm2m_json", "lwm2m+json", "application/vnd.oma.lwm2m+json"];
    LWM2M_CBOR = 11544, "APPLICATION_LWM2M_CBOR", ["lwm2m_cbor", "lwm2m+cbor", "application/vnd.oma.lwm2m+cbor"];
}

/// A spelling reduced to what tells formats apart: ASCII lower case, every
/// run of other characters (`_ - + / . ; =`, spaces) one `_`, none at the
/// ends. `SENML_CBOR`, `senml-cbor`, `senml+cbor` all become `senml_cbor`.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The spellings that name `name` beside its table name and aliases: the
/// name without `APPLICATION_` (`LWM2M_TLV`), and the MIME type's
/// subtype alone (`vnd.oma.lwm2m+tlv`, `senml+cbor`).
fn derived(name: &str, aliases: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rest) = normalize(name).strip_prefix("application_") {
        out.push(rest.to_string());
    }
    for a in aliases {
        if let Some(rest) = normalize(a).strip_prefix("application_") {
            out.push(rest.to_string());
        }
    }
    out
}

impl ContentFormat {
    /// The table name, if known.
    pub fn name(self) -> Option<&'static str> {
        TABLE
            .iter()
            .find(|(f, _, _)| *f == self)
            .map(|(_, n, _)| *n)
    }

    /// Every named format with its aliases (for completion and help).
    pub fn all_named()
    -> impl Iterator<Item = (ContentFormat, &'static str, &'static [&'static str])> {
        TABLE.iter().copied()
    }

    /// Parses a number (`11542`), a name (`APPLICATION_LWM2M_TLV`), an
    /// alias (`tlv`, `senml+cbor`), a MIME type (`application/senml+cbor`)
    /// or a name without `APPLICATION_` (`LWM2M_TLV`), in any case and with
    /// any of `_ - + / .` between the words (`SENML_CBOR`, `senml-cbor`).
    pub fn parse(text: &str) -> Option<ContentFormat> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u16>() {
            return Some(ContentFormat(n));
        }
        let key = normalize(t);
        if key.is_empty() {
            return None;
        }
        TABLE.iter().find_map(|(f, name, aliases)| {
            let named = normalize(name) == key
                || aliases.iter().any(|a| normalize(a) == key)
                || derived(name, aliases).contains(&key);
            named.then_some(*f)
        })
    }

    /// [`parse`](Self::parse), or an error that names `text` and lists
    /// what is accepted.
    pub fn parse_or_explain(text: &str) -> Result<ContentFormat, String> {
        ContentFormat::parse(text).ok_or_else(|| {
            format!(
                "unknown content format `{}` ({})",
                text.trim(),
                ContentFormat::accepted()
            )
        })
    }

    /// What [`parse`](Self::parse) accepts, for error messages: `a number
    /// 0..65535, or a name: TEXT_PLAIN (0, text, …), …`.
    pub fn accepted() -> String {
        let names: Vec<String> = TABLE
            .iter()
            .map(|(f, name, aliases)| {
                let mut words = vec![f.0.to_string()];
                words.extend(aliases.iter().map(|a| a.to_string()));
                format!("{name} ({})", words.join(", "))
            })
            .collect();
        format!(
            "accepted: a number 0..65535, or one of {}; any case, `_ - +` alike",
            names.join("; ")
        )
    }

    /// `11542 (APPLICATION_LWM2M_TLV)` as the original's summaries print it,
    /// or `Unknown format (N)`.
    pub fn summary_name(self) -> String {
        match self.name() {
            Some(name) => name.to_string(),
            None => format!("Unknown format ({})", self.0),
        }
    }
}

impl fmt::Display for ContentFormat {
    /// `11542 (APPLICATION_LWM2M_TLV)`, or just the number when unnamed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Debug for ContentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentFormat({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling a user would try, for every format.
    const SPELLINGS: &[(u16, &[&str])] = &[
        (
            0,
            &[
                "0",
                "TEXT_PLAIN",
                "text_plain",
                "text/plain",
                "text",
                "TEXT",
                "plain",
            ],
        ),
        (
            40,
            &[
                "40",
                "APPLICATION_LINK",
                "link",
                "link-format",
                "link_format",
                "application/link-format",
                "LINK_FORMAT",
                "core-link",
            ],
        ),
        (
            42,
            &[
                "42",
                "APPLICATION_OCTET_STREAM",
                "opaque",
                "OPAQUE",
                "octet-stream",
                "octet_stream",
                "application/octet-stream",
                "binary",
            ],
        ),
        (
            60,
            &["60", "APPLICATION_CBOR", "cbor", "CBOR", "application/cbor"],
        ),
        (
            110,
            &[
                "110",
                "APPLICATION_LWM2M_SENML_JSON",
                "senml_json",
                "senml-json",
                "SENML_JSON",
                "senml+json",
                "application/senml+json",
                "lwm2m_senml_json",
                "LWM2M_SENML_JSON",
            ],
        ),
        (
            112,
            &[
                "112",
                "APPLICATION_LWM2M_SENML_CBOR",
                "senml_cbor",
                "senml-cbor",
                "SENML_CBOR",
                "senml+cbor",
                "application/senml+cbor",
                "lwm2m_senml_cbor",
                " Senml+Cbor ",
            ],
        ),
        (
            281,
            &[
                "281",
                "APPLICATION_PKCS7_CERTS_ONLY",
                "pkcs7",
                "pkcs7-certs-only",
                "application/pkcs7-mime; smime-type=certs-only",
            ],
        ),
        (
            286,
            &["286", "APPLICATION_PKCS10", "pkcs10", "application/pkcs10"],
        ),
        (
            287,
            &[
                "287",
                "APPLICATION_PKIX_CERT",
                "pkix-cert",
                "pkix_cert",
                "application/pkix-cert",
            ],
        ),
        (
            320,
            &[
                "320",
                "APPLICATION_LWM2M_SENML_ETCH_JSON",
                "senml-etch+json",
                "senml_etch_json",
                "etch+json",
                "application/senml-etch+json",
            ],
        ),
        (
            322,
            &[
                "322",
                "APPLICATION_LWM2M_SENML_ETCH_CBOR",
                "senml-etch+cbor",
                "senml_etch_cbor",
                "etch+cbor",
                "application/senml-etch+cbor",
            ],
        ),
        (
            1541,
            &[
                "1541",
                "APPLICATION_LWM2M_TEXT_LEGACY",
                "text-legacy",
                "lwm2m_text_legacy",
            ],
        ),
        (
            1542,
            &[
                "1542",
                "APPLICATION_LWM2M_TLV_LEGACY",
                "tlv-legacy",
                "lwm2m_tlv_legacy",
            ],
        ),
        (
            1543,
            &[
                "1543",
                "APPLICATION_LWM2M_JSON_LEGACY",
                "json-legacy",
                "lwm2m_json_legacy",
            ],
        ),
        (
            1544,
            &[
                "1544",
                "APPLICATION_LWM2M_OPAQUE_LEGACY",
                "opaque-legacy",
                "lwm2m_opaque_legacy",
            ],
        ),
        (
            11542,
            &[
                "11542",
                "APPLICATION_LWM2M_TLV",
                "application_lwm2m_tlv",
                "tlv",
                "TLV",
                "lwm2m_tlv",
                "lwm2m-tlv",
                "LWM2M_TLV",
                "lwm2m+tlv",
                "application/vnd.oma.lwm2m+tlv",
                "vnd.oma.lwm2m+tlv",
            ],
        ),
        (
            11543,
            &[
                "11543",
                "APPLICATION_LWM2M_JSON",
                "json",
                "JSON",
                "lwm2m_json",
                "lwm2m-json",
                "LWM2M_JSON",
                "lwm2m+json",
                "application/vnd.oma.lwm2m+json",
            ],
        ),
        (
            11544,
            &[
                "11544",
                "APPLICATION_LWM2M_CBOR",
                "lwm2m_cbor",
                "lwm2m-cbor",
                "LWM2M_CBOR",
                "lwm2m+cbor",
                "application/vnd.oma.lwm2m+cbor",
                "vnd.oma.lwm2m+cbor",
            ],
        ),
    ];

    #[test]
    fn every_spelling_of_every_format_parses() {
        for (number, spellings) in SPELLINGS {
            for s in *spellings {
                assert_eq!(
                    ContentFormat::parse(s),
                    Some(ContentFormat(*number)),
                    "`{s}`"
                );
            }
        }
        // Every named format is in the table above.
        for (f, _, _) in ContentFormat::all_named() {
            assert!(SPELLINGS.iter().any(|(n, _)| *n == f.0), "{f} not tested");
        }
    }

    #[test]
    fn no_spelling_names_two_formats() {
        let mut seen = std::collections::BTreeMap::new();
        for (f, name, aliases) in ContentFormat::all_named() {
            let mut keys = vec![normalize(name)];
            keys.extend(aliases.iter().map(|a| normalize(a)));
            keys.extend(derived(name, aliases));
            for k in keys {
                if let Some(other) = seen.insert(k.clone(), f) {
                    assert_eq!(other, f, "`{k}` names {other} and {f}");
                }
            }
        }
    }

    #[test]
    fn unknown_spellings_are_refused_with_the_accepted_names() {
        for bad in [
            "nope",
            "",
            "  ",
            "65536",
            "-1",
            "senml",
            "application/",
            "tlv2",
        ] {
            assert_eq!(ContentFormat::parse(bad), None, "`{bad}`");
        }
        assert_eq!(ContentFormat::parse("65000"), Some(ContentFormat(65000)));
        let e = ContentFormat::parse_or_explain("senml").unwrap_err();
        assert!(e.starts_with("unknown content format `senml` ("), "{e}");
        for (_, name, aliases) in ContentFormat::all_named() {
            assert!(e.contains(name), "{e} lacks {name}");
            for a in aliases {
                assert!(e.contains(a), "{e} lacks {a}");
            }
        }
    }

    #[test]
    fn unknown_formats_print_as_numbers() {
        assert_eq!(ContentFormat(9999).to_string(), "9999");
        assert_eq!(ContentFormat(9999).summary_name(), "Unknown format (9999)");
        assert_eq!(
            ContentFormat::LWM2M_TLV.to_string(),
            "11542 (APPLICATION_LWM2M_TLV)"
        );
    }
}
