//! A message's payload decoded by its Content-Format, and the decoded blocks
//! of `details`: the original's TLV/CBOR renderings, then one readable line
//! per value with object and resource names. A malformed payload shows what
//! decoded, where it stopped and why.

use super::details::{binary_block, text_block};
use super::format::{self, Decoded, FormatError, senml, tlv};
use super::node::Path;
use super::objects::Registry;
use crate::coap::{ContentFormat, Message};

/// The Content-Format a payload is read as: the option, else text/plain.
fn format_of(msg: &Message) -> ContentFormat {
    msg.content_format().unwrap_or(ContentFormat::TEXT_PLAIN)
}

/// Whether the payload of `msg` is a diagnostic message (RFC 7252
/// §5.5.2: the payload of a 4.xx or 5.xx), text for a person, not a value.
fn is_diagnostic(msg: &Message) -> bool {
    matches!(msg.code.class(), 4 | 5)
}

/// Decodes the payload of `msg`; `base` is the path of the request it
/// answers (TLV, text and opaque carry no paths). `None` when empty, and
/// for an error response's diagnostic message.
pub fn decode_payload(
    msg: &Message,
    base: Option<&str>,
    registry: &Registry,
) -> Option<Result<Decoded, FormatError>> {
    if msg.payload.is_empty() || is_diagnostic(msg) {
        return None;
    }
    let base = base.and_then(|b| b.parse::<Path>().ok());
    Some(format::decode(
        format_of(msg).0,
        &msg.payload,
        base.as_ref(),
        registry,
    ))
}

/// The decoded-payload blocks of `details` without a known request path.
pub fn render_payload(msg: &Message, registry: &Registry) -> Option<String> {
    render_payload_at(msg, None, registry)
}

/// The decoded-payload blocks of `details`, for a message answering a
/// request on `base`.
pub fn render_payload_at(msg: &Message, base: Option<&str>, registry: &Registry) -> Option<String> {
    if msg.payload.is_empty() {
        return None;
    }
    let cf = format_of(msg);
    let mut out = String::new();
    match cf {
        ContentFormat::LWM2M_TLV | ContentFormat::LWM2M_TLV_LEGACY => {
            match tlv::decode_elements(&msg.payload) {
                Ok(elements) => out.push_str(&tlv::render(&elements)),
                Err((partial, e)) => {
                    out.push_str(&format!("(malformed TLV: {e})\n"));
                    if !partial.is_empty() {
                        out.push_str("decoded before the error:\n");
                        out.push_str(&tlv::render(&partial));
                    }
                }
            }
        }
        ContentFormat::SENML_CBOR | ContentFormat::SENML_ETCH_CBOR => {
            match senml::render_original(&msg.payload) {
                Ok(text) => out.push_str(&text),
                Err(e) => out.push_str(&format!("(malformed CBOR: {e})\n")),
            }
        }
        ContentFormat::TEXT_PLAIN
        | ContentFormat::LINK_FORMAT
        | ContentFormat::LWM2M_TEXT_LEGACY => {
            out.push_str(&text_block(&msg.payload));
        }
        _ => {}
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if is_diagnostic(msg) {
        if out.is_empty() {
            out.push_str(&text_block(&msg.payload));
        }
        return Some(out);
    }
    let base_path = base.and_then(|b| b.parse::<Path>().ok());
    match format::decode(cf.0, &msg.payload, base_path.as_ref(), registry) {
        Ok(decoded) => {
            let text = decoded.render(registry);
            if !text.is_empty() {
                out.push_str(&format!("decoded ({}):\n", cf.summary_name()));
                out.push_str(&text);
            }
        }
        Err(e) if matches!(e.kind, format::ErrorKind::Unsupported(_)) => {
            if out.is_empty() {
                out.push_str(&binary_block(&msg.payload));
            }
        }
        Err(e) => {
            out.push_str(&format!("(malformed {}: {e})\n", cf.summary_name()));
            if let Some(partial) = &e.partial {
                out.push_str("decoded before the error:\n");
                out.push_str(&partial.render(registry));
            }
            out.push_str(&binary_block(&msg.payload));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{CoapOption, Code, OptionNumber, Type};

    fn content(cf: ContentFormat, payload: &[u8]) -> Message {
        let mut m = Message::new(Type::Acknowledgement, Code::CONTENT, 1);
        m.add_option(CoapOption::uint(
            OptionNumber::CONTENT_FORMAT,
            u64::from(cf.0),
        ));
        m.payload = payload.to_vec();
        m
    }

    /// The payload of a 4.xx or 5.xx is a diagnostic message (RFC 7252
    /// §5.5.2), not a value of the path asked for: coap-node's `5.00 No
    /// matching format found` was shown as `/3303/0 = "No matching format
    /// found" (type guessed)`.
    #[test]
    fn an_error_responses_diagnostic_is_no_value() {
        let mut m = content(ContentFormat::TEXT_PLAIN, b"No matching format found");
        m.code = Code::INTERNAL_SERVER_ERROR;
        let reg = Registry::builtin();
        assert!(decode_payload(&m, Some("/3303/0"), &reg).is_none());
        let shown = render_payload_at(&m, Some("/3303/0"), &reg).unwrap();
        assert!(shown.contains("No matching format found"), "{shown}");
        assert!(
            !shown.contains("decoded") && !shown.contains("/3303/0"),
            "{shown}"
        );
    }

    #[test]
    fn shows_tlv_in_the_originals_layout_and_with_names() {
        // Resource 0 "nsh" and resource 9 = 87 of /3/0 (captured shape, wakatiwai).
        let m = content(ContentFormat::LWM2M_TLV, b"\xc3\x00nsh\xc1\x09\x57");
        let text = render_payload_at(&m, Some("/3/0"), &Registry::builtin()).unwrap();
        assert!(text.starts_with("TLV (2 elements):"), "{text}");
        assert!(text.contains("/3/0/0 Manufacturer = \"nsh\""), "{text}");
        assert!(text.contains("/3/0/9 Battery Level = 87"), "{text}");
    }

    #[test]
    fn malformed_payloads_show_what_decoded_where_it_stopped_and_the_bytes() {
        // The second TLV announces 5 bytes but has 1.
        let m = content(ContentFormat::LWM2M_TLV, b"\xc1\x09\x57\xc5\x00\x01");
        let text = render_payload_at(&m, Some("/3/0"), &Registry::builtin()).unwrap();
        assert!(text.contains("(malformed TLV:"), "{text}");
        assert!(text.contains("decoded before the error:"), "{text}");
        assert!(text.contains("resource 9 = b'W' (int: 87)"), "{text}");
        assert!(
            text.contains("binary:\n\\xc1\\x09\\x57\\xc5\\x00\\x01"),
            "{text}"
        );

        let m = content(
            ContentFormat::SENML_JSON,
            b"[{\"n\":\"/3/0/0\",\"vs\":\"a\"},{\"n\":",
        );
        let text = render_payload_at(&m, None, &Registry::builtin()).unwrap();
        assert!(
            text.contains("(malformed APPLICATION_LWM2M_SENML_JSON:"),
            "{text}"
        );
    }

    #[test]
    fn formats_without_a_decoder_show_their_bytes() {
        let m = content(ContentFormat::PKCS7_CERTS_ONLY, b"\x30\x82");
        assert_eq!(
            render_payload_at(&m, None, &Registry::builtin()).unwrap(),
            "binary:\n\\x30\\x82\n"
        );
    }
}
