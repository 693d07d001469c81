//! The multi-line `details` rendering of a message (reference §5.4): the
//! summary, the packet fields, and the payload decoded by its Content-Format.
//! Also the rendering of a datagram that could not be decoded at all.
//!
//! Pure and total: malformed payloads and options are shown, never refused.
//! Payload decoding beyond text and hex is delegated to a renderer hook so the
//! payload-format codecs can plug in without this module knowing them.

use std::fmt::Write as _;

use crate::coap::{ContentFormat, DecodeError, Message, OptionNumber, escaped};

use super::kind::Kind;
use super::summary::summary;

/// The full `details` text of `msg` read as `kind`.
///
/// `payload_renderer` may render the payload (TLV tree, SenML records, …);
/// when it returns `None` the payload is shown as `ascii-ish:` text for text,
/// link-format, JSON or no Content-Format, and as `binary:` `\xHH` bytes
/// otherwise — one block per distinct Content-Format option.
pub fn details(
    msg: &Message,
    kind: Kind,
    payload_renderer: &dyn Fn(&Message) -> Option<String>,
) -> String {
    let mut s = summary(msg, kind);
    s.push_str("\n\n");
    s.push_str(&msg.render_packet());
    s.push('\n');
    match payload_renderer(msg) {
        Some(rendered) => {
            s.push_str(&rendered);
            if !rendered.ends_with('\n') {
                s.push('\n');
            }
            s.push('\n');
        }
        None => {
            for block in fallback_blocks(msg) {
                s.push_str(&block);
                s.push('\n');
            }
        }
    }
    s
}

/// A renderer that never renders: every payload gets the fallback blocks.
pub fn no_renderer(_: &Message) -> Option<String> {
    None
}

/// The fallback payload blocks, one per distinct Content-Format option (in
/// the order they appear), each ending with a newline.
pub fn fallback_blocks(msg: &Message) -> Vec<String> {
    let mut formats: Vec<Option<u64>> = Vec::new();
    for o in msg
        .options
        .iter()
        .filter(|o| o.number == OptionNumber::CONTENT_FORMAT)
    {
        let f = o.as_uint();
        if !formats.contains(&f) {
            formats.push(f);
        }
    }
    if formats.is_empty() {
        formats.push(Some(u64::from(ContentFormat::TEXT_PLAIN.0)));
    }
    let mut blocks: Vec<String> = Vec::new();
    for f in formats {
        let textual = f
            .and_then(|v| u16::try_from(v).ok())
            .map(ContentFormat)
            .is_some_and(is_textual);
        let block = if textual {
            text_block(&msg.payload)
        } else {
            binary_block(&msg.payload)
        };
        if !blocks.contains(&block) {
            blocks.push(block);
        }
    }
    blocks
}

fn is_textual(f: ContentFormat) -> bool {
    matches!(
        f,
        ContentFormat::TEXT_PLAIN
            | ContentFormat::LINK_FORMAT
            | ContentFormat::SENML_JSON
            | ContentFormat::SENML_ETCH_JSON
            | ContentFormat::LWM2M_JSON
            | ContentFormat::LWM2M_JSON_LEGACY
            | ContentFormat::LWM2M_TEXT_LEGACY
    )
}

/// `ascii-ish:` and the payload with non-printable bytes as `\xHH`.
pub fn text_block(payload: &[u8]) -> String {
    format!("ascii-ish:\n{}\n", escaped::format_printable(payload))
}

/// `binary:` and every payload byte as `\xHH`.
pub fn binary_block(payload: &[u8]) -> String {
    format!("binary:\n{}\n", escaped::format_hex(payload))
}

/// Details of a datagram (or TCP frame) that did not decode, headed by
/// `what` (`Undecodable`): the error (field, offset, reason), then the bytes as a hex dump with offsets and a marker under the
/// offending byte, then as escaped bytes ready to be replayed with `udp`.
pub fn details_of_undecodable(what: &str, bytes: &[u8], err: &DecodeError) -> String {
    let mut s = format!("{what} ({} bytes): {err}\n\n", bytes.len());
    let _ = writeln!(s, "error: {}", err.reason);
    let _ = writeln!(s, "field: {}", err.field);
    let _ = writeln!(s, "offset: {}", err.offset);
    s.push('\n');
    s.push_str(&hex_dump(bytes, Some(err.offset)));
    s.push('\n');
    let _ = writeln!(s, "escaped: {}", escaped::format_hex(bytes));
    s
}

const ROW: usize = 16;
const HEX_START: usize = 6;

/// A hex dump, 16 bytes a row: `0000  60 00 13 38 …  |`..8|`. With `mark`,
/// a `^^` line points at that byte offset (or just past the end).
pub fn hex_dump(bytes: &[u8], mark: Option<usize>) -> String {
    let mut s = String::new();
    if bytes.is_empty() {
        s.push_str("(no bytes)\n");
    }
    let rows = bytes.len().div_ceil(ROW);
    let mark_row = mark.map(|m| m / ROW);
    let last_row = match mark_row {
        Some(r) if mark.is_some_and(|m| m <= bytes.len()) => rows.max(r + 1),
        _ => rows,
    };
    for row in 0..last_row {
        let start = row * ROW;
        let chunk = bytes
            .get(start..(start + ROW).min(bytes.len()))
            .unwrap_or(&[]);
        let mut line = format!("{start:04x}  ");
        for b in chunk {
            let _ = write!(line, "{b:02x} ");
        }
        if !chunk.is_empty() {
            line.push_str(&" ".repeat(3 * (ROW - chunk.len())));
            line.push_str(" |");
            for &b in chunk {
                line.push(if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                });
            }
            line.push('|');
        }
        s.push_str(line.trim_end());
        s.push('\n');
        if let (Some(m), Some(r)) = (mark, mark_row)
            && r == row
            && m <= bytes.len()
        {
            let col = HEX_START + 3 * (m % ROW);
            s.push_str(&" ".repeat(col));
            s.push_str(if m < bytes.len() {
                "^^\n"
            } else {
                "^^ (end of data)\n"
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{CoapOption, Code, Type, udp};
    use crate::lwm2m::kind::testing::arb_message;
    use crate::lwm2m::kind::{NoContext, classify};
    use proptest::prelude::*;

    fn manual_read() -> Message {
        let mut m = Message::new(Type::Confirmable, Code::GET, 4920);
        m.token = b"NbwK\x18W\xc7\xcb".to_vec();
        m.set_uri("/1/1/3/1");
        m
    }

    #[test]
    fn details_of_a_read_match_the_manual() {
        // Manual §7.1.2.4.1 `details 4`, with options indented 4 spaces as
        // the original's code prints them (the manual's copy shows 3).
        let m = manual_read();
        let expected = "Read /1/1/3/1\n\
\n\
version: 1\n\
type: CONFIRMABLE\n\
code: 0.01 (REQ_GET)\n\
msg_id: 4920\n\
token: NbwK\\x18W\\xc7\\xcb (length: 8)\n\
options:\n\
\x20   option 11 (URI_PATH), content (1 bytes): 1\n\
\x20   option 11 (URI_PATH), content (1 bytes): 1\n\
\x20   option 11 (URI_PATH), content (1 bytes): 3\n\
\x20   option 11 (URI_PATH), content (1 bytes): 1\n\
content: 0 bytes\n\
\n\
ascii-ish:\n\
\n\
\n";
        assert_eq!(details(&m, Kind::Read, &no_renderer), expected);
    }

    #[test]
    fn details_of_a_reset_match_the_manual() {
        let m = Message::new(Type::Reset, Code::EMPTY, 4922);
        let expected = "Reset, msg_id = 4922\n\nversion: 1\ntype: RESET\ncode: 0.00 (EMPTY)\n\
                        msg_id: 4922\ntoken:  (length: 0)\noptions:\n    \ncontent: 0 bytes\n\n\
                        ascii-ish:\n\n\n";
        assert_eq!(
            details(&m, classify(&m, &NoContext), &no_renderer),
            expected
        );
    }

    #[test]
    fn binary_formats_are_hex_and_duplicates_collapse() {
        let mut m = Message::new(Type::Acknowledgement, Code::CONTENT, 1);
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 42));
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 42));
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0));
        m.payload = vec![b'A', 0x00];
        assert_eq!(
            fallback_blocks(&m),
            vec!["binary:\n\\x41\\x00\n", "ascii-ish:\nA\\x00\n"]
        );
        let d = details(&m, Kind::Content, &no_renderer);
        assert!(d.ends_with("content: 2 bytes\n\nbinary:\n\\x41\\x00\n\nascii-ish:\nA\\x00\n\n"));
    }

    #[test]
    fn renderer_output_replaces_the_fallback() {
        let mut m = Message::new(Type::Acknowledgement, Code::CONTENT, 1);
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 11542));
        let d = details(&m, Kind::Content, &|_| Some("TLV (0 elements):".into()));
        assert!(d.ends_with("content: 0 bytes\n\nTLV (0 elements):\n\n"));
    }

    #[test]
    fn undecodable_datagram_shows_error_and_marked_bytes() {
        let bytes = [0x49, 0x00, 0x13, 0x38, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let err = udp::decode(&bytes).unwrap_err();
        let d = details_of_undecodable("Undecodable", &bytes, &err);
        assert!(d.starts_with("Undecodable (13 bytes): token length at byte 0"));
        assert!(d.contains("field: token length\noffset: 0\n"));
        assert!(d.contains(
            "0000  49 00 13 38 01 02 03 04 05 06 07 08 09           |I..8.........|\n      ^^\n"
        ));
        assert!(d.ends_with(
            "escaped: \\x49\\x00\\x13\\x38\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\x09\n"
        ));
    }

    #[test]
    fn hex_dump_marks_the_end_of_data() {
        let bytes = [0u8; 16];
        let d = hex_dump(&bytes, Some(16));
        assert!(d.ends_with("0010\n      ^^ (end of data)\n"), "{d}");
        assert_eq!(hex_dump(&[], None), "(no bytes)\n");
        assert_eq!(
            hex_dump(&[], Some(0)),
            "(no bytes)\n0000\n      ^^ (end of data)\n"
        );
    }

    proptest! {
        #[test]
        fn details_never_panic(m in arb_message()) {
            let k = classify(&m, &NoContext);
            let d = details(&m, k, &no_renderer);
            prop_assert!(d.starts_with(&summary(&m, k)));
        }

        #[test]
        fn undecodable_details_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Err(e) = udp::decode(&bytes) {
                let _ = details_of_undecodable("Undecodable", &bytes, &e);
            }
            let _ = hex_dump(&bytes, Some(bytes.len() + 40));
        }
    }
}
