//! Fuzzes the escaped-bytes parser (`\xHH`, C escapes, octal): it must
//! never panic, an error must point inside the text, and each of the three
//! printed forms of what it parsed must parse back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsh::coap::escaped;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match escaped::parse(text) {
        Ok(bytes) => {
            assert!(bytes.len() <= text.len(), "more bytes than characters");
            assert_eq!(
                escaped::parse(&escaped::format_printable(&bytes)).as_ref(),
                Ok(&bytes)
            );
            assert_eq!(
                escaped::parse(&escaped::format_hex(&bytes)).as_ref(),
                Ok(&bytes)
            );
            let py = escaped::format_python_bytes(&bytes);
            let inner = &py[2..py.len() - 1];
            assert_eq!(escaped::parse(inner).as_ref(), Ok(&bytes));
            drop(escaped::content_summary(&bytes));
        }
        Err(e) => assert!(
            e.offset < text.len(),
            "error offset {} past the end",
            e.offset
        ),
    }
});
