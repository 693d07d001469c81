//! Fuzzes the command-line form parser (`read /3/0 key="a b"`): it must
//! never panic, it fails exactly when the word splitter fails (an unclosed
//! quote, reported with its column), and a parsed line keeps every word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsh::script::cmdline;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let words = cmdline::words(line);
    match (cmdline::parse(line), words) {
        (Ok(None), Ok(w)) => assert!(w.is_empty(), "words but no command"),
        (Ok(Some(c)), Ok(w)) => {
            assert_eq!(
                1 + c.positional.len() + c.named.len(),
                w.len(),
                "a word was lost"
            );
            assert_eq!(c.command, w[0]);
        }
        (Err(e), Err(f)) => {
            assert_eq!(e, f);
            assert!(e.contains("column"), "error without a place: {e}");
        }
        (p, w) => panic!("parse {p:?} but words {w:?}"),
    }
    let _ = cmdline::is_rhai_word(line);
});
