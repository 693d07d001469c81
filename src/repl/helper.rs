//! Completion, hints and multi-line validation for the prompt.

use std::borrow::Cow;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use crate::coap::{Code, ContentFormat, OptionNumber};
use crate::lwm2m::kind::Kind;
use crate::script::args::Kind as ParamKind;
use crate::script::commands::{self, COMMANDS};
use crate::server::Server;

/// The prompt's helper.
pub(super) struct NshHelper {
    server: Server,
    /// The functions and variables earlier prompt lines defined.
    defined: Vec<String>,
}

impl NshHelper {
    pub(super) fn new(server: Server) -> Self {
        NshHelper {
            server,
            defined: Vec::new(),
        }
    }

    /// What earlier prompt lines defined, offered beside the commands.
    pub(super) fn set_defined(&mut self, names: Vec<String>) {
        self.defined = names;
    }

    fn paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(ep) = self.server.current_client()
            && let Some(c) = self
                .server
                .clients()
                .into_iter()
                .find(|c| *c.endpoint == *ep)
        {
            for l in c.registration.links() {
                if l.target.chars().any(|ch| ch.is_ascii_digit()) {
                    out.push(l.target.clone());
                }
            }
        }
        for p in ["/0", "/1", "/3", "/3/0", "/4", "/5"] {
            if !out.iter().any(|o| o == p) {
                out.push(p.to_string());
            }
        }
        out
    }
}

/// True while brackets or a string are still open (multi-line input). A
/// command line in the original's form is always complete: it is one
/// line, and its words (escaped payload bytes) may hold any bracket.
pub(super) fn is_incomplete(text: &str) -> bool {
    let first = text.lines().next().unwrap_or_default();
    if crate::script::command_form(first).is_some() {
        return false;
    }
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escape = false;
    let mut in_comment = false;
    let mut prev = '\0';
    for c in text.chars() {
        if in_comment {
            if c == '\n' {
                in_comment = false;
            }
            prev = c;
            continue;
        }
        if let Some(q) = quote {
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == q {
                quote = None;
            } else if c == '\n' && q == '"' {
                // A "…" string ends with its line (unless continued with a
                // backslash): the text is complete, and Rhai says so.
                return false;
            }
            prev = c;
            continue;
        }
        match c {
            '"' | '`' => quote = Some(c),
            '/' if prev == '/' => in_comment = true,
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            _ => {}
        }
        prev = c;
    }
    if quote == Some('"') && !escape {
        return false;
    }
    depth > 0 || quote == Some('`')
}

impl Completer for NshHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| c.is_whitespace() || "(,\"[#{".contains(c))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        let first = before.trim_start();
        let is_first_word = !first.contains(char::is_whitespace) && !first.contains('(');
        let mut cands: Vec<String> = Vec::new();
        if is_first_word {
            cands.extend(COMMANDS.iter().map(|c| c.name.to_string()));
            cands.extend(
                ["tlv", "cbor", "let", "print"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            cands.extend(self.defined.iter().cloned());
        } else {
            let cmd_word: String = first
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let cmd = commands::find(&cmd_word);
            if word.starts_with('/') {
                cands.extend(self.paths());
            } else if let Some((name, _)) = word.split_once('=') {
                let kind = cmd
                    .and_then(|c| c.params.iter().find(|p| p.name == name))
                    .map(|p| p.kind);
                let values = values_for(kind);
                cands.extend(values.into_iter().map(|v| format!("{name}={v}")));
            } else {
                if let Some(cmd) = cmd {
                    cands.extend(cmd.params.iter().map(|p| format!("{}=", p.name)));
                    let kinds: Vec<ParamKind> = cmd.params.iter().map(|p| p.kind).collect();
                    for k in kinds {
                        cands.extend(values_for(Some(k)));
                    }
                } else {
                    cands.extend(COMMANDS.iter().map(|c| c.rhai_name().to_string()));
                    cands.extend(self.defined.iter().cloned());
                }
            }
        }
        let lower = word.to_ascii_lowercase();
        let mut out: Vec<Pair> = cands
            .into_iter()
            .filter(|c| c.to_ascii_lowercase().starts_with(&lower))
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        out.sort_by(|a, b| a.display.cmp(&b.display));
        out.dedup_by(|a, b| a.display == b.display);
        Ok((start, out))
    }
}

fn values_for(kind: Option<ParamKind>) -> Vec<String> {
    match kind {
        Some(ParamKind::Format) => ContentFormat::all_named()
            .flat_map(|(_, n, aliases)| {
                std::iter::once(n.to_string()).chain(aliases.iter().map(|a| a.to_string()))
            })
            .collect(),
        Some(ParamKind::Code) => Code::all_named().map(|(_, n)| n.to_string()).collect(),
        Some(ParamKind::Type) => ["CONFIRMABLE", "NON_CONFIRMABLE", "ACKNOWLEDGEMENT", "RESET"]
            .map(String::from)
            .to_vec(),
        Some(ParamKind::Options) => OptionNumber::all_named()
            .map(|(_, n)| format!("{n}("))
            .collect(),
        Some(ParamKind::Any) => Kind::ALL
            .iter()
            .map(|k| k.name().to_string())
            .chain(["ANY".into(), "None".into()])
            .collect(),
        Some(ParamKind::Bool) => vec!["1".into(), "0".into()],
        _ => Vec::new(),
    }
}

impl Hinter for NshHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() {
            return None;
        }
        let t = line.trim_start();
        let word: String = t
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let cmd = commands::find(&word)?;
        let rest = &t[word.len()..];
        if rest.is_empty() {
            let sig = cmd.signature();
            return Some(sig[cmd.name.len()..].to_string());
        }
        if rest.trim().is_empty() || rest.starts_with('(') {
            return None;
        }
        let given = rest.split_whitespace().count();
        let named: Vec<&str> = rest
            .split_whitespace()
            .filter_map(|w| w.split_once('=').map(|(n, _)| n))
            .collect();
        let left: Vec<String> = cmd
            .params
            .iter()
            .filter(|p| !named.contains(&p.name))
            .skip(given - named.len())
            .map(|p| {
                if p.default.is_some() {
                    format!("[{}]", p.name.to_ascii_uppercase())
                } else {
                    p.name.to_ascii_uppercase()
                }
            })
            .collect();
        if left.is_empty() || line.ends_with(' ') {
            return if left.is_empty() {
                None
            } else {
                Some(left.join(" "))
            };
        }
        None
    }
}

impl Highlighter for NshHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for NshHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        if is_incomplete(ctx.input()) {
            Ok(ValidationResult::Incomplete)
        } else {
            Ok(ValidationResult::Valid(None))
        }
    }
}

impl Helper for NshHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_blocks_are_incomplete() {
        assert!(is_incomplete("for i in 0..3 {"));
        assert!(is_incomplete("let x = [1,"));
        assert!(!is_incomplete("read /3/0"));
        assert!(!is_incomplete("print(\"{\")"));
        assert!(!is_incomplete("let s = \"a\\\"b\"; // {"));
        assert!(!is_incomplete("make_multires (0,\\x02),(1,\\x05)"));
        // A command line in the original's form is one line, whatever
        // brackets its payload holds.
        assert!(!is_incomplete(
            "lwm2m_decode \\x60\\xff{\"bn\":\"/1/1\",\"e\":[{"
        ));
        assert!(!is_incomplete("write /3/0/0 [abc"));
        // A "…" string cannot span lines: left open, the line is complete
        // (and its error shows at once), unless a backslash continues it.
        assert!(!is_incomplete("read(\"/3/0"));
        assert!(!is_incomplete("let x = [\"a\nb\"]"));
        assert!(is_incomplete("let x = [\"a\\\nb\","));
    }
}
