//! Escaped-bytes text: how binary data is typed and shown (the original's
//! `EscapedBytes`, reference §2.5).
//!
//! `\xHH` is one byte; `\n \r \t \0 \\ \' \" \a \b \f \v` and octal `\NNN`
//! work as in a Python bytes literal; an unknown escape is kept literally.
//! Unlike the original, quotes are ordinary characters (no implicit string
//! concatenation) and non-ASCII text is taken as its UTF-8 bytes.

use std::fmt::Write as _;

/// Error in escaped-bytes text, with the character offset where it occurred.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid escaped bytes at offset {offset}: {what}")]
pub struct EscapeError {
    /// Byte offset in the input text.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Parses escaped-bytes text into bytes.
pub fn parse(text: &str) -> Result<Vec<u8>, EscapeError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = bytes.get(i + 1) else {
            return Err(EscapeError {
                offset: i,
                what: "lone backslash at end of text",
            });
        };
        match e {
            b'x' | b'X' => {
                let hex = bytes.get(i + 2..i + 4).ok_or(EscapeError {
                    offset: i,
                    what: "\\x needs two hex digits",
                })?;
                // Digits only: `from_str_radix` alone takes a sign (`\x+1`).
                let s = std::str::from_utf8(hex)
                    .ok()
                    .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()));
                let v = s
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
                    .ok_or(EscapeError {
                        offset: i,
                        what: "\\x needs two hex digits",
                    })?;
                out.push(v);
                i += 4;
            }
            b'0'..=b'7' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 3 && matches!(bytes.get(i + 1 + n), Some(b'0'..=b'7')) {
                    v = v * 8 + u32::from(bytes[i + 1 + n] - b'0');
                    n += 1;
                }
                if v > 255 {
                    return Err(EscapeError {
                        offset: i,
                        what: "octal escape above \\377",
                    });
                }
                out.push(v as u8);
                i += 1 + n;
            }
            _ => {
                let v = match e {
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'\\' => Some(b'\\'),
                    b'\'' => Some(b'\''),
                    b'"' => Some(b'"'),
                    b'a' => Some(0x07),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'v' => Some(0x0b),
                    _ => None,
                };
                match v {
                    Some(v) => out.push(v),
                    None => out.extend_from_slice(&[b'\\', e]),
                }
                i += 2;
            }
        }
    }
    Ok(out)
}

/// Every byte as `\xHH` (what `serialize` and `payload_buffer_show_hex` print).
pub fn format_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 4);
    for b in bytes {
        let _ = write!(s, "\\x{b:02x}");
    }
    s
}

/// Printable ASCII kept, everything else (and the backslash) as `\xHH`.
/// [`parse`] of the result gives the bytes back.
pub fn format_printable(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            s.push(b as char);
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

/// A Python-style bytes literal `b'…'` as the original prints payloads.
pub fn format_python_bytes(bytes: &[u8]) -> String {
    let mut s = String::from("b'");
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..0x7f => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('\'');
    s
}

/// The original's content summary: printable form, cut to 27 characters
/// plus `...` when longer than 30.
pub fn content_summary(bytes: &[u8]) -> String {
    let s = format_printable(bytes);
    if s.chars().count() > 30 {
        let cut: String = s.chars().take(27).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_hex_and_c_escapes() {
        assert_eq!(
            parse(r"\x60\x00\x13\x38").unwrap(),
            vec![0x60, 0, 0x13, 0x38]
        );
        assert_eq!(parse(r"a\nb\\c").unwrap(), b"a\nb\\c".to_vec());
        assert_eq!(parse(r"\101\q").unwrap(), b"A\\q".to_vec());
        assert_eq!(parse(r#"a" b"c"#).unwrap(), br#"a" b"c"#.to_vec());
    }

    #[test]
    fn rejects_bad_hex_with_its_offset() {
        let e = parse(r"ab\xZZ").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(parse("\\").is_err());
        assert!(parse(r"\x1").is_err());
    }

    #[test]
    fn x_takes_two_hex_digits_and_nothing_else() {
        // `u8::from_str_radix` alone would take `+1` as a number.
        for text in [r"\x+1", r"\x+f", r"\x 1", r"\x1 "] {
            let e = parse(text).unwrap_err();
            assert_eq!(
                (e.offset, e.what),
                (0, "\\x needs two hex digits"),
                "{text}"
            );
        }
        assert_eq!(parse(r"\xfF\XA0").unwrap(), vec![0xff, 0xa0]);
    }

    #[test]
    fn formats_like_the_original() {
        assert_eq!(format_hex(&[0x08, 0xc1]), r"\x08\xc1");
        assert_eq!(
            format_python_bytes(&[0x00, 0x01, b'Q', 0x80]),
            r"b'\x00\x01Q\x80'"
        );
        assert_eq!(
            content_summary(&[b'a'; 40]),
            format!("{}...", "a".repeat(27))
        );
    }

    proptest! {
        #[test]
        fn printable_form_parses_back(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(parse(&format_printable(&bytes)).unwrap(), bytes.clone());
            prop_assert_eq!(parse(&format_hex(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn parse_never_panics(text in ".*") {
            let _ = parse(&text);
        }
    }
}
