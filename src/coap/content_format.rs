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
    LINK_FORMAT = 40, "APPLICATION_LINK", ["link", "link-format", "application/link-format"];
    OCTET_STREAM = 42, "APPLICATION_OCTET_STREAM", ["opaque", "octet-stream", "binary", "application/octet-stream"];
    CBOR = 60, "APPLICATION_CBOR", ["cbor", "application/cbor"];
    SENML_JSON = 110, "APPLICATION_LWM2M_SENML_JSON", ["senml+json", "senml-json", "application/senml+json"];
    SENML_CBOR = 112, "APPLICATION_LWM2M_SENML_CBOR", ["senml+cbor", "senml-cbor", "application/senml+cbor"];
    PKCS7_CERTS_ONLY = 281, "APPLICATION_PKCS7_CERTS_ONLY", ["pkcs7"];
    PKCS10 = 286, "APPLICATION_PKCS10", ["pkcs10"];
    PKIX_CERT = 287, "APPLICATION_PKIX_CERT", ["pkix-cert"];
    SENML_ETCH_JSON = 320, "APPLICATION_LWM2M_SENML_ETCH_JSON", ["senml-etch+json", "etch+json"];
    SENML_ETCH_CBOR = 322, "APPLICATION_LWM2M_SENML_ETCH_CBOR", ["senml-etch+cbor", "etch+cbor"];
    LWM2M_TEXT_LEGACY = 1541, "APPLICATION_LWM2M_TEXT_LEGACY", ["text-legacy"];
    LWM2M_TLV_LEGACY = 1542, "APPLICATION_LWM2M_TLV_LEGACY", ["tlv-legacy"];
    LWM2M_JSON_LEGACY = 1543, "APPLICATION_LWM2M_JSON_LEGACY", ["json-legacy"];
    LWM2M_OPAQUE_LEGACY = 1544, "APPLICATION_LWM2M_OPAQUE_LEGACY", ["opaque-legacy"];
    LWM2M_TLV = 11542, "APPLICATION_LWM2M_TLV", ["tlv", "application/vnd.oma.lwm2m+tlv"];
    LWM2M_JSON = 11543, "APPLICATION_LWM2M_JSON", ["lwm2m+json", "json", "application/vnd.oma.lwm2m+json"];
    LWM2M_CBOR = 11544, "APPLICATION_LWM2M_CBOR", ["lwm2m+cbor", "application/vnd.oma.lwm2m+cbor"];
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

    /// Parses a number (`11542`), a name (`APPLICATION_LWM2M_TLV`, any case)
    /// or an alias (`tlv`, `senml+cbor`).
    pub fn parse(text: &str) -> Option<ContentFormat> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u16>() {
            return Some(ContentFormat(n));
        }
        TABLE.iter().find_map(|(f, name, aliases)| {
            (name.eq_ignore_ascii_case(t) || aliases.iter().any(|a| a.eq_ignore_ascii_case(t)))
                .then_some(*f)
        })
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

    #[test]
    fn parses_numbers_names_and_aliases() {
        assert_eq!(
            ContentFormat::parse("11542"),
            Some(ContentFormat::LWM2M_TLV)
        );
        assert_eq!(
            ContentFormat::parse("application_lwm2m_json"),
            Some(ContentFormat::LWM2M_JSON)
        );
        assert_eq!(ContentFormat::parse("TLV"), Some(ContentFormat::LWM2M_TLV));
        assert_eq!(
            ContentFormat::parse("senml+cbor"),
            Some(ContentFormat::SENML_CBOR)
        );
        assert_eq!(ContentFormat::parse("nope"), None);
        assert_eq!(ContentFormat::parse("65000"), Some(ContentFormat(65000)));
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
