//! The original nsh's command-line form: `read /1/1 APPLICATION_LWM2M_JSON`,
//! `set auto_ack=0`, `bootstrap finish=True ssid=1 uri=coaps://…`.
//!
//! Words split on whitespace; `'…'` and `"…"` group (also after `name=`, so
//! `key="a b"` gives `a b`, not the original's quoted text). Backslashes are
//! kept for escaped-bytes values. `name=value` words are named arguments.

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// The command word.
    pub command: String,
    /// Positional words.
    pub positional: Vec<String>,
    /// `name=value` words.
    pub named: Vec<(String, String)>,
}

/// Splits into words, honouring quotes. Errors on an unclosed quote.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<(char, usize)> = None;
    for (i, c) in line.char_indices() {
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None if (c == '\'' || c == '"') && starts_quoted(&cur, in_word) => {
                quote = Some((c, i));
                in_word = true;
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some((q, at)) = quote {
        return Err(format!("unclosed {q} quote starting at column {}", at + 1));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// A quote opens a group at the start of a word or right after `name=`.
fn starts_quoted(cur: &str, in_word: bool) -> bool {
    !in_word || (cur.ends_with('=') && is_name(&cur[..cur.len() - 1]))
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a whole line.
pub fn parse(line: &str) -> Result<Option<CommandLine>, String> {
    let mut ws = words(line)?.into_iter();
    let Some(command) = ws.next() else {
        return Ok(None);
    };
    let mut positional = Vec::new();
    let mut named = Vec::new();
    for w in ws {
        match w.split_once('=') {
            Some((name, value)) if is_name(name) => {
                named.push((name.to_string(), value.to_string()))
            }
            _ => positional.push(w),
        }
    }
    Ok(Some(CommandLine {
        command,
        positional,
        named,
    }))
}

/// Rhai's own words (standard-library functions and keywords) that are
/// also the start of a command name: such a word is Rhai, never a prefix
/// (`exp 1` is Rhai's `exp`, not `expect`).
const RHAI_WORDS: &[&str] = &["exp", "get", "use"];

/// True when `word` is one of Rhai's own functions or keywords that a
/// command's name starts with.
pub fn is_rhai_word(word: &str) -> bool {
    RHAI_WORDS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_manuals_examples() {
        let c = parse("read /1/1 APPLICATION_LWM2M_JSON").unwrap().unwrap();
        assert_eq!(c.command, "read");
        assert_eq!(c.positional, vec!["/1/1", "APPLICATION_LWM2M_JSON"]);
        let c = parse("add_resource 1 type=int 11").unwrap().unwrap();
        assert_eq!(c.positional, vec!["1", "11"]);
        assert_eq!(c.named, vec![("type".to_string(), "int".to_string())]);
        let c = parse(r"make_multires (0,\x02),(1,\x05)").unwrap().unwrap();
        assert_eq!(c.positional, vec![r"(0,\x02),(1,\x05)"]);
    }

    #[test]
    fn quotes_group_words_and_are_removed() {
        let c = parse(r#"write /3/0/14 "a b" key="c d" 'x y'"#)
            .unwrap()
            .unwrap();
        assert_eq!(c.positional, vec!["/3/0/14", "a b", "x y"]);
        assert_eq!(c.named, vec![("key".to_string(), "c d".to_string())]);
        assert!(parse("write 'open").is_err());
        assert_eq!(parse("   ").unwrap(), None);
    }

    #[test]
    fn quotes_inside_a_word_stay() {
        let c = parse("coap options=[URI_PATH('rd')]").unwrap().unwrap();
        assert_eq!(
            c.named,
            vec![("options".to_string(), "[URI_PATH('rd')]".to_string())]
        );
    }
}
