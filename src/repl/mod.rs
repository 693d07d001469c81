//! The interactive prompt: rustyline with a history file, completion, hints,
//! multi-line Rhai blocks and messages printed above the line being typed.
//! Piped standard input is read line by line without a terminal, so a file
//! of command lines replays a session.

mod helper;

use std::io::{BufRead, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustyline::error::ReadlineError;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter, history::FileHistory};

use crate::script::{LineResult, Shell};
use crate::server::Printer;
use helper::NshHelper;

/// Runs the prompt until `exit` or end of input.
pub fn run(mut shell: Shell) -> i32 {
    if std::io::stdin().is_terminal() {
        run_terminal(&mut shell)
    } else {
        run_piped(&mut shell)
    }
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("NSH_HISTORY")
        .map(Into::into)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".nsh_history")))
}

fn prompt(shell: &Shell) -> String {
    let status = shell.ctx.server.prompt_status();
    let tag = shell
        .subshell_tag()
        .map(|t| format!("/{t}"))
        .unwrap_or_default();
    if status.is_empty() {
        format!("[nsh{tag}] $ ")
    } else {
        format!("[nsh{tag}] {status} $ ")
    }
}

fn run_terminal(shell: &mut Shell) -> i32 {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(true)
        .max_history_size(10_000)
        .unwrap_or_default()
        .build();
    let mut editor: Editor<NshHelper, FileHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the line editor ({e}); reading plain lines");
            return run_piped(shell);
        }
    };
    editor.set_helper(Some(NshHelper::new(shell.ctx.server.clone())));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    // Messages arriving while a line is being edited go through the
    // external printer (above the prompt); while a command runs they are
    // printed directly, in order with the command's own output.
    let reading = Arc::new(AtomicBool::new(false));
    if let Ok(ext) = editor.create_external_printer() {
        let ext = Arc::new(Mutex::new(ext));
        let reading = reading.clone();
        let printer: Printer = Arc::new(move |line: &str| {
            if reading.load(Ordering::SeqCst)
                && let Ok(mut p) = ext.lock()
                && p.print(format!("{line}\n")).is_ok()
            {
                return;
            }
            println!("{line}");
        });
        shell.ctx.server.set_printer(printer);
    }
    let code = loop {
        reading.store(true, Ordering::SeqCst);
        let line = editor.readline(&prompt(shell));
        reading.store(false, Ordering::SeqCst);
        match line {
            Ok(line) => {
                if let Some(code) = handle_input(shell, &line) {
                    break code;
                }
                if let Some(helper) = editor.helper_mut() {
                    helper.set_defined(shell.defined_names());
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break 0,
            Err(e) => {
                eprintln!("error: {e}");
                break 1;
            }
        }
    };
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    code
}

fn run_piped(shell: &mut Shell) -> i32 {
    let stdin = std::io::stdin();
    let lines = stdin
        .lock()
        .split(b'\n')
        .map_while(Result::ok)
        .enumerate()
        .filter_map(|(i, line)| text_line(i + 1, line));
    run_lines(shell, lines).unwrap_or(0)
}

/// Line `n` of piped input as text (without its `\r\n` or `\n`); a line
/// that is not UTF-8 is not run, and a line says so (the lines after it
/// still run).
fn text_line(n: usize, mut line: Vec<u8>) -> Option<String> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    match String::from_utf8(line) {
        Ok(text) => Some(text),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes().get(at).copied().unwrap_or_default();
            println!(
                "line {n}: not valid UTF-8 (byte 0x{byte:02x} at column {}); the line was not run",
                at + 1
            );
            None
        }
    }
}

/// Runs `lines` as piped input is run: line by line, a block left open
/// spanning the lines up to its end; an unclosed block at the end still
/// runs, so its error shows. `Some(code)` when the shell should end.
fn run_lines(shell: &mut Shell, lines: impl Iterator<Item = String>) -> Option<i32> {
    let mut blocks = Blocks::default();
    for line in lines {
        if let Some(block) = blocks.push(line)
            && let Some(code) = handle_line(shell, &block)
        {
            return Some(code);
        }
    }
    blocks.rest().and_then(|block| handle_line(shell, &block))
}

/// What the editor returned, one line or several (pasted, or a block
/// continued over lines): run line by line as piped input is, a block
/// left open spanning the lines up to its end. Blank lines among several
/// are skipped; a lone empty line shows what is pending.
fn handle_input(shell: &mut Shell, input: &str) -> Option<i32> {
    if !input.contains('\n') {
        return handle_line(shell, input);
    }
    let lines = input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string);
    run_lines(shell, lines)
}

/// Lines gathered into what runs at once: a line by itself, or the lines
/// of a block from the one that opens it to the one that closes it.
#[derive(Default)]
struct Blocks {
    pending: String,
}

impl Blocks {
    /// Takes `line`; returns what is ready to run.
    fn push(&mut self, line: String) -> Option<String> {
        if self.pending.is_empty() && !helper::is_incomplete(&line) {
            return Some(line);
        }
        self.pending.push_str(&line);
        self.pending.push('\n');
        if helper::is_incomplete(&self.pending) {
            return None;
        }
        Some(std::mem::take(&mut self.pending))
    }

    /// A block still open at the end.
    fn rest(self) -> Option<String> {
        (!self.pending.is_empty()).then_some(self.pending)
    }
}

/// Runs one line; `Some(code)` when the shell should end.
fn handle_line(shell: &mut Shell, line: &str) -> Option<i32> {
    if line.trim().is_empty() {
        if line.is_empty() {
            show_pending(shell);
        }
        return None;
    }
    match shell.eval_line(line) {
        LineResult::Exit(code) => Some(i32::from(code)),
        LineResult::Value(v) => {
            if let Some(text) = crate::script::value_text(&v) {
                println!("{text}");
            }
            if let Some(report) = shell.ctx.server.take_expectation_report() {
                println!("{report}");
            }
            None
        }
        LineResult::Error(e) => {
            println!("{e} (try \"get_error\" for details)");
            None
        }
    }
}

/// The empty line: what arrived and is not yet taken by `recv`.
fn show_pending(shell: &Shell) {
    if let Some(report) = shell.ctx.server.take_expectation_report() {
        println!("{report}");
    }
    let pending = shell.ctx.server.pending();
    if pending.is_empty() {
        println!("nothing pending");
        return;
    }
    println!(
        "{} message(s) pending (take them with recv):",
        pending.len()
    );
    for r in pending {
        println!("  {}", r.line());
    }
}
