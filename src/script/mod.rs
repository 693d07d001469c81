//! The Rhai side of nsh: every command registered as a function over one
//! shared [`Server`] handle, the `Message` type, assertions, the stdlib
//! module resolver, and the runners for script files and prompt lines.
//!
//! Knows nothing of the line editor: the prompt hands lines to
//! [`Shell::eval_line`], scripts go through [`Shell::run_file`].
//!
//! Where things are: the commands in `commands/`, one file per LwM2M
//! interface, each declared once with [`typed`]'s `command!` (table, typed
//! arguments, parse); what a command is in [`command`]; argument
//! conversion, and the one conversion of seconds, in [`args`]; the glue
//! from a built message to the server in `send`; what commands see in
//! [`Ctx`]. This file registers the table with Rhai and runs lines and
//! files.

pub mod args;
pub mod builders;
pub mod cmdline;
pub mod command;
pub mod commands;
mod ctx;
pub mod heap;
pub mod junit;
pub mod message;
pub mod pattern;
mod send;
pub mod stdlib;
pub mod typed;
pub mod values;

use std::any::TypeId;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rhai::{Dynamic, Engine, EvalAltResult, Map, ModuleResolver, Position, Scope};

use crate::server::Server;
use args::Args;
use commands::{COMMANDS, Command};
pub use ctx::{CaseHook, Ctx, SuiteMode, TestOutcome};

/// Why a script run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// An uncaught error (`file:line:col: message`), or an unreadable file.
    Script(String),
    /// `skip(reason)` was called outside a `test(…)` block: the script
    /// stopped there, skipped.
    Skipped(String),
    /// `exit(CODE)` with a status other than 0 ended the script.
    Exit {
        /// The script.
        file: String,
        /// Where `exit` was called (`2:1`; empty when not known).
        at: String,
        /// The status.
        code: u8,
        /// The `test(…)` case it was called in, by name.
        case: Option<String>,
    },
    /// The script completed but some `test(…)` blocks failed.
    TestsFailed {
        /// The script.
        file: String,
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Script(e) => f.write_str(e),
            RunError::Skipped(reason) => write!(f, "skipped: {reason}"),
            RunError::Exit {
                file,
                at,
                code,
                case,
            } => {
                if at.is_empty() {
                    write!(f, "{file}: exit({code})")?;
                } else {
                    write!(f, "{file}:{at}: exit({code})")?;
                }
                match case {
                    Some(case) => write!(f, " in case `{case}`"),
                    None => Ok(()),
                }
            }
            RunError::TestsFailed {
                file,
                failed,
                total,
            } => write!(f, "{file}: {failed} of {total} tests failed"),
        }
    }
}

/// The most items `pad` and `blob` make an array or a blob hold, and the
/// most characters `pad` makes a string hold (16 Mi: a firmware image
/// read into a blob fits).
const MAX_SIZE: usize = 16 << 20;

/// Rhai's `pad` (arrays, blobs, strings) and `blob(n)`, with the size
/// asked for checked against [`MAX_SIZE`] before anything is allocated.
fn register_size_guards(engine: &mut Engine) {
    fn size(what: &str, n: rhai::INT) -> Result<usize, Box<EvalAltResult>> {
        match usize::try_from(n) {
            Err(_) => Ok(0),
            Ok(n) if n <= MAX_SIZE => Ok(n),
            Ok(n) => Err(Box::new(EvalAltResult::ErrorDataTooLarge(
                format!("Size of {what} ({n}, more than the {MAX_SIZE} nsh allows)"),
                Position::NONE,
            ))),
        }
    }
    engine.register_fn(
        "pad",
        |a: &mut rhai::Array, len: rhai::INT, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let len = size("array", len)?;
            if len > a.len() {
                a.resize(len, item);
            }
            Ok(())
        },
    );
    engine.register_fn(
        "pad",
        |b: &mut rhai::Blob, len: rhai::INT, item: rhai::INT| -> Result<(), Box<EvalAltResult>> {
            let len = size("blob", len)?;
            if len > b.len() {
                b.resize(len, (item & 0xff) as u8);
            }
            Ok(())
        },
    );
    engine.register_fn(
        "pad",
        |s: &mut rhai::ImmutableString,
         len: rhai::INT,
         ch: char|
         -> Result<(), Box<EvalAltResult>> {
            let len = size("string", len)?;
            let have = s.chars().count();
            if len > have {
                let mut t = s.to_string();
                t.extend(std::iter::repeat_n(ch, len - have));
                *s = t.into();
            }
            Ok(())
        },
    );
    engine.register_fn(
        "pad",
        |s: &mut rhai::ImmutableString,
         len: rhai::INT,
         fill: &str|
         -> Result<(), Box<EvalAltResult>> {
            let len = size("string", len)?;
            let have = s.chars().count();
            if len > have && !fill.is_empty() {
                let t: String = s.chars().chain(fill.chars().cycle()).take(len).collect();
                *s = t.into();
            }
            Ok(())
        },
    );
    engine.register_fn(
        "blob",
        |len: rhai::INT| -> Result<rhai::Blob, Box<EvalAltResult>> {
            Ok(vec![0; size("blob", len)?])
        },
    );
    engine.register_fn(
        "blob",
        |len: rhai::INT, value: rhai::INT| -> Result<rhai::Blob, Box<EvalAltResult>> {
            Ok(vec![(value & 0xff) as u8; size("blob", len)?])
        },
    );
}

/// The Rhai engine with nsh's functions, and the variables of a session.
pub struct Shell {
    /// The engine.
    pub engine: Engine,
    /// Variables kept between prompt lines.
    pub scope: Scope<'static>,
    /// Shared command context.
    pub ctx: Arc<Ctx>,
    /// The `tlv`/`cbor` subshell the prompt is in, if any.
    pub subshell: Option<builders::Subshell>,
    /// Functions defined at the prompt (`fn name(…) { … }`), for later
    /// lines.
    functions: rhai::AST,
    /// The heap when the running script or prompt line began.
    heap: Arc<heap::Baseline>,
}

/// Outcome of one prompt line.
#[derive(Debug)]
pub enum LineResult {
    /// The line's value (`()` for a command line, which printed its own
    /// output); [`value_text`] is how the prompt shows it.
    Value(Dynamic),
    /// An error, already worded.
    Error(String),
    /// `exit` was called, with this status.
    Exit(u8),
}

impl Shell {
    /// A shell over `server`.
    pub fn new(server: Server, ipv6: bool, interactive: bool) -> Shell {
        Shell::with_ctx(Ctx::new(server, ipv6, interactive))
    }

    /// A shell for `nsh -c LINE`: a script's rules (`listen` does not
    /// wait, an unmet `expect` fails the line), but listing commands print
    /// their tables and `exit` says `exiting`, as at the prompt.
    pub fn for_one_line(server: Server, ipv6: bool) -> Shell {
        let mut ctx = Ctx::new(server, ipv6, false);
        ctx.listings = true;
        Shell::with_ctx(ctx)
    }

    /// A shell whose output (commands' lines and Rhai's `print`) goes to
    /// `out` rather than to standard output.
    pub fn with_output(server: Server, ipv6: bool, out: Arc<dyn Fn(&str) + Send + Sync>) -> Shell {
        let said = out.clone();
        let ctx = Ctx::with_output(server, ipv6, false, Box::new(move |s| said(s)));
        let mut shell = Shell::with_ctx(ctx);
        shell.engine.on_print(move |s| out(s));
        shell
    }

    fn with_ctx(ctx: Ctx) -> Shell {
        let ctx = Arc::new(ctx);
        let mut engine = Engine::new();
        engine.set_max_expr_depths(256, 256);
        // A script asking for more memory than a machine has gets an error
        // it can catch, not an abort that ends the shell with its history.
        // Rhai's own size limits would walk a whole array after each push
        // (a loop that collects N results costs N² steps): the functions
        // that allocate a size they are given are checked instead.
        register_size_guards(&mut engine);
        args::register_option_constructors(&mut engine);
        message::register(&mut engine);
        register_commands(&mut engine, &ctx);
        register_assertions(&mut engine);
        register_tests(&mut engine, &ctx);
        engine.set_module_resolver(stdlib::resolver());
        let flag = ctx.server.interrupt_flag();
        let heap = Arc::new(heap::Baseline::default());
        let grown = heap.clone();
        engine.on_progress(move |_| {
            if flag.load(Ordering::SeqCst) {
                Some(Dynamic::from("interrupted"))
            } else {
                grown.exceeded().map(Dynamic::from)
            }
        });
        builders::register(&mut engine, ctx.server.objects());
        Shell {
            engine,
            scope: Scope::new(),
            ctx,
            subshell: None,
            functions: rhai::AST::empty(),
            heap,
        }
    }

    /// Runs a script file with `args` bound to the array `ARGS`. Returns the
    /// error text (`file:line:col: message`) on failure.
    pub fn run_file(&mut self, path: &Path, script_args: Vec<String>) -> Result<(), RunError> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| RunError::Script(format!("{}: cannot read: {e}", path.display())))?;
        self.run_named(&path.display().to_string(), &source, script_args)
    }

    /// Runs `source` as the script named `file` (shown in errors), as
    /// [`Shell::run_file`] runs a file's text.
    pub fn run_named(
        &mut self,
        file: &str,
        source: &str,
        script_args: Vec<String>,
    ) -> Result<(), RunError> {
        let source = without_shebang(source);
        let args: rhai::Array = script_args.into_iter().map(Dynamic::from).collect();
        self.scope.push("ARGS", args);
        let file = file.to_string();
        *self
            .ctx
            .script_file
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(file.clone());
        self.heap.begin();
        let outcome = self.run_source(&file, &source).and_then(|()| {
            // An armed `expect` that the last message did not meet.
            match expectation_failed(&self.ctx) {
                Some(e) => Err(RunError::Script(format!("{file}: {e}"))),
                None => Ok(()),
            }
        });
        // `skip(reason)` outside a case: the script is skipped.
        let skipped = self
            .ctx
            .skip_request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let outcome = match (outcome, skipped) {
            (Err(_), Some(reason)) => Err(RunError::Skipped(reason)),
            (other, _) => other,
        };
        let suite = self
            .ctx
            .suite
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        let tests = self
            .ctx
            .tests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if tests.is_empty() {
            return outcome;
        }
        let failed = tests.iter().filter(|t| t.failure.is_some()).count();
        let skipped = tests.iter().filter(|t| t.skipped.is_some()).count();
        if !suite {
            let mut line = format!("{} passed, {failed} failed", tests.len() - failed - skipped);
            if skipped > 0 {
                line.push_str(&format!(", {skipped} skipped"));
            }
            self.ctx.say(&line);
        }
        match outcome {
            Ok(()) if failed > 0 => Err(RunError::TestsFailed {
                file,
                failed,
                total: tests.len(),
            }),
            other => other,
        }
    }

    /// Compiles `source` as the script named `file` without running it:
    /// its syntax error as `file:line:col: syntax error: …`.
    pub fn check_syntax(&self, file: &str, source: &str) -> Result<(), RunError> {
        self.compile(file, &without_shebang(source)).map(|_| ())
    }

    fn compile(&self, file: &str, source: &str) -> Result<rhai::AST, RunError> {
        self.engine
            .compile(source)
            .map_err(|e| RunError::Script(format!("{file}:{}: syntax error: {}", pos(e.1), e.0)))
    }

    /// Where the script called `exit(0)` (`2:1`), when it ended so.
    pub fn exited_at(&self) -> Option<String> {
        let exited =
            self.ctx.exit.load(Ordering::SeqCst) && self.ctx.exit_code.load(Ordering::SeqCst) == 0;
        exited.then(|| {
            self.ctx
                .exit_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default()
        })
    }

    /// The case the script called `exit` in, by name, when it did so in one.
    pub fn exit_case(&self) -> Option<String> {
        self.ctx
            .exit_case
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn run_source(&mut self, file: &str, source: &str) -> Result<(), RunError> {
        let ast = self.compile(file, source)?;
        match self.engine.run_ast_with_scope(&mut self.scope, &ast) {
            // Rhai ends the run without an error at `exit`: its status is
            // the command's.
            Ok(()) if self.ctx.exit.load(Ordering::SeqCst) => {
                match self.ctx.exit_code.load(Ordering::SeqCst) {
                    0 => Ok(()),
                    code => Err(RunError::Exit {
                        file: file.to_string(),
                        at: self
                            .ctx
                            .exit_at
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .clone()
                            .unwrap_or_default(),
                        code,
                        case: self.exit_case(),
                    }),
                }
            }
            Ok(()) => Ok(()),
            Err(e) => match *e {
                EvalAltResult::ErrorTerminated(t, p) if t.is::<heap::Exceeded>() => Err(
                    RunError::Script(format!("{file}:{}: {}", pos(p), terminated(&t))),
                ),
                EvalAltResult::ErrorTerminated(..) => Err(RunError::Script(with_cause(
                    &self.ctx,
                    format!("{file}: interrupted"),
                ))),
                EvalAltResult::Exit(v, p) => match exit_status(&v) {
                    Some(0) => Ok(()),
                    Some(code) => Err(RunError::Exit {
                        file: file.to_string(),
                        at: if p.is_none() { String::new() } else { pos(p) },
                        code,
                        case: self.exit_case(),
                    }),
                    None => Err(RunError::Script(format!(
                        "{file}: exit({v}): the exit status is 0 to 255"
                    ))),
                },
                other => Err(RunError::Script(format!(
                    "{file}:{}",
                    describe_error(&other)
                ))),
            },
        }
    }

    /// Evaluates one line (or block) typed at the prompt: the original's
    /// command-line form when the first word is a command and the rest is not
    /// a Rhai call, Rhai otherwise.
    pub fn eval_line(&mut self, line: &str) -> LineResult {
        self.ctx
            .server
            .interrupt_flag()
            .store(false, Ordering::SeqCst);
        self.heap.begin();
        if self.subshell.is_some() {
            return self.eval_subshell_line(line);
        }
        match line.trim() {
            "tlv" => {
                self.subshell = Some(builders::Subshell::Tlv(builders::Tlv::default()));
                return LineResult::Value(Dynamic::UNIT);
            }
            "cbor" => {
                self.subshell = Some(builders::Subshell::Cbor(builders::SenmlCbor::default()));
                return LineResult::Value(Dynamic::UNIT);
            }
            _ => {}
        }
        // A command prints its own output: its value is not shown again,
        // except the message taken from the inbox by `recv` and the like
        // (shown when it arrived, and taken now).
        let shown = |cmd: &Command, v: Dynamic| {
            if commands::TAKE_MESSAGES.contains(&cmd.name) {
                v
            } else {
                Dynamic::UNIT
            }
        };
        let result = match self.line_form(line) {
            LineForm::Command(cmd) => self.run_command_line(cmd, line).map(|v| shown(cmd, v)),
            LineForm::Prefix(cmd) => {
                self.ctx.say(&format!("* prefix: {}", cmd.name));
                self.run_command_line(cmd, line).map(|v| shown(cmd, v))
            }
            LineForm::Ambiguous(word, names) => Err(format!(
                "ambiguous command: {word} (possible: {})",
                names.join(" ")
            )),
            LineForm::Rhai => self
                .eval_rhai_line(line)
                .map_err(|e| prompt_error(&e, line.trim_end().contains('\n'))),
        };
        if self.ctx.exit.load(Ordering::SeqCst) {
            return LineResult::Exit(self.ctx.exit_code.load(Ordering::SeqCst));
        }
        match result {
            Ok(v) => {
                self.ctx.set_last_error(None);
                LineResult::Value(v)
            }
            Err(e) => {
                self.ctx.set_last_error(Some(error_details(line, &e)));
                LineResult::Error(e)
            }
        }
    }

    /// Evaluates the line of `nsh -c LINE` as [`Shell::eval_line`] does,
    /// then settles it as a script's end is settled: an armed `expect` that
    /// a message did not meet (one that arrived after the line's last
    /// command too) fails the line, with the report a script gets. Only an
    /// `exit` with a nonzero status keeps its own.
    pub fn eval_one_line(&mut self, line: &str) -> LineResult {
        let result = self.eval_line(line);
        if matches!(result, LineResult::Value(_) | LineResult::Exit(0))
            && let Some(e) = expectation_failed(&self.ctx)
        {
            return LineResult::Error(e);
        }
        result
    }

    /// The functions and variables earlier prompt lines defined (for
    /// completion), sorted, each once.
    pub fn defined_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .functions
            .iter_functions()
            .map(|f| f.name.to_string())
            .chain(self.scope.iter_raw().map(|(name, _, _)| name.to_string()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Runs a prompt line as Rhai, with the functions earlier lines
    /// defined; those it defines (anew or again) stay for later lines.
    fn eval_rhai_line(&mut self, line: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let ast = self.engine.compile_with_scope(&self.scope, line)?;
        let ast = self.functions.merge(&ast);
        self.functions = ast.clone_functions_only();
        let value = self.engine.eval_ast_with_scope(&mut self.scope, &ast)?;
        // An `import … as name` lasts for the later lines too, as variables
        // and functions do: the module is kept under its name.
        for (path, name) in imports(line) {
            let module = stdlib::resolver().resolve(&self.engine, None, &path, Position::NONE)?;
            self.engine.register_static_module(name, module);
        }
        Ok(value)
    }

    /// `TLV` or `CBOR` while in a subshell.
    pub fn subshell_tag(&self) -> Option<&'static str> {
        self.subshell.as_ref().map(builders::Subshell::tag)
    }

    fn eval_subshell_line(&mut self, line: &str) -> LineResult {
        let Some(sub) = &self.subshell else {
            return LineResult::Value(Dynamic::UNIT);
        };
        match sub.run_line(line, self.ctx.last_error()) {
            Ok(builders::SubOutcome::Output(text)) => {
                if !text.is_empty() {
                    self.ctx.say(&text);
                }
                self.ctx.set_last_error(None);
                LineResult::Value(Dynamic::UNIT)
            }
            Ok(builders::SubOutcome::Exit(bytes)) => {
                let var = if matches!(sub, builders::Subshell::Tlv(_)) {
                    "tlv_data"
                } else {
                    "cbor_data"
                };
                self.ctx.say("exiting");
                self.ctx.say(&crate::coap::escaped::format_hex(&bytes));
                self.scope.set_value(var, Dynamic::from_blob(bytes));
                self.subshell = None;
                LineResult::Value(Dynamic::UNIT)
            }
            Err(e) => {
                self.ctx.set_last_error(Some(error_details(line, &e)));
                LineResult::Error(e)
            }
        }
    }

    /// How a prompt line is taken: the command-line form of a command
    /// named in full or by a unique prefix of its name (as the original's
    /// powercmd allowed), or Rhai. A prefix counts only when it is a whole
    /// word, not a Rhai variable, function or keyword, and the line is not a
    /// Rhai call, assignment or method call of it.
    fn line_form(&self, line: &str) -> LineForm {
        if let Some(cmd) = command_form(line) {
            return LineForm::Command(cmd);
        }
        let t = line.trim_start();
        let word: String = t
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &t[word.len()..];
        if word.is_empty()
            || !(after.is_empty() || after.starts_with(char::is_whitespace))
            || !takes_command_form(after.trim_start())
            || self.scope.contains(&word)
            || cmdline::is_rhai_word(&word)
        {
            return LineForm::Rhai;
        }
        let mut names: Vec<&'static str> = COMMANDS
            .iter()
            .map(|c| c.name)
            .filter(|n| n.starts_with(word.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        match names.as_slice() {
            [] => LineForm::Rhai,
            [one] => commands::find(one).map_or(LineForm::Rhai, LineForm::Prefix),
            _ => LineForm::Ambiguous(word, names),
        }
    }

    fn run_command_line(&mut self, cmd: &'static Command, line: &str) -> Result<Dynamic, String> {
        let parsed = cmdline::parse(line)?.ok_or("empty line")?;
        let positional = parsed.positional.into_iter().map(Dynamic::from).collect();
        let named = parsed
            .named
            .into_iter()
            .map(|(k, v)| (k, Dynamic::from(v)))
            .collect();
        let args = Args::bind(cmd.name, cmd.params, positional, named)?;
        (cmd.run)(&self.ctx, &args).map_err(|e| prefixed(cmd.name, e))
    }
}

/// The command a line invokes in the original's form, if it is one: the
/// first word is a command, and the line is not a Rhai call of it.
pub fn command_form(line: &str) -> Option<&'static Command> {
    let t = line.trim_start();
    let word: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let cmd = commands::find(&word)?;
    takes_command_form(t[word.len()..].trim_start()).then_some(cmd)
}

/// Whether what follows a command word leaves the line in the command-line
/// form: not a Rhai call, assignment or method call of the word. A `.` that
/// starts a path (`load_objects ./objects`, `file_server . 9000`) is no
/// method call.
fn takes_command_form(rest: &str) -> bool {
    let method_call = rest
        .strip_prefix('.')
        .and_then(|r| r.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    !(rest.starts_with('(') || rest.starts_with('=') && !rest.starts_with("==") || method_call)
}

/// How a prompt line is taken.
enum LineForm {
    /// A command named in full.
    Command(&'static Command),
    /// A command named by a unique prefix.
    Prefix(&'static Command),
    /// A prefix of several commands: the word and their names, sorted.
    Ambiguous(String, Vec<&'static str>),
    /// Rhai.
    Rhai,
}

/// The text shown at the prompt for the value of a line, if any: nothing
/// for `()`, a Message as its summary line and its decoded values, an array
/// of Messages as one summary line each, anything else as Rhai prints it.
pub fn value_text(v: &Dynamic) -> Option<String> {
    if v.is_unit() {
        return None;
    }
    if let Some(m) = v.read_lock::<message::Msg>() {
        return Some(m.at_prompt());
    }
    if let Some(items) = v.read_lock::<rhai::Array>()
        && !items.is_empty()
        && items.iter().all(|i| i.is::<message::Msg>())
    {
        let lines: Vec<String> = items
            .iter()
            .filter_map(|i| i.read_lock::<message::Msg>().map(|m| m.0.line()))
            .collect();
        return Some(lines.join("\n"));
    }
    Some(v.to_string())
}

fn pos(p: Position) -> String {
    match (p.line(), p.position()) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        (Some(l), None) => format!("{l}"),
        _ => "?".into(),
    }
}

/// `line:col: message` for a Rhai error, unwrapping function-call layers so
/// the innermost cause and its position show.
pub fn describe_error(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorInFunctionCall(name, source, inner, p) => {
            let inner_text = describe_error(inner);
            // Closures (`|| …`) have generated names: their inner position says enough.
            if name.is_empty() || name.starts_with("anon$") {
                inner_text
            } else if source.is_empty() {
                format!("{}: in `{name}`: {inner_text}", pos(*p))
            } else {
                // A module's function: its lines are the module's file's.
                let file = if source.ends_with(".rhai") {
                    source.clone()
                } else {
                    format!("{source}.rhai")
                };
                format!("{}: in `{name}`, {file}:{inner_text}", pos(*p))
            }
        }
        EvalAltResult::ErrorInModule(name, inner, p) => {
            format!("{}: in module `{name}`: {}", pos(*p), describe_error(inner))
        }
        EvalAltResult::ErrorRuntime(v, p) => format!("{}: {}", pos(*p), args::dyn_text(v)),
        // Ctrl-C while Rhai itself runs (a loop, not a waiting command).
        EvalAltResult::ErrorTerminated(t, p) => format!("{}: {}", pos(*p), terminated(t)),
        other => format!(
            "{}: {}{}",
            pos(other.position()),
            strip_position(&other.to_string()),
            command_hint(other)
        ),
    }
}

/// Why Rhai stopped a script between operations: Ctrl-C (or a cause the
/// server knows), or the heap limit ([`heap::Exceeded`]).
fn terminated(token: &Dynamic) -> String {
    match token.clone().try_cast::<heap::Exceeded>() {
        Some(e) => e.to_string(),
        None => "interrupted".to_string(),
    }
}

/// How nsh's script helpers (not commands: those name a missing argument
/// themselves) are called, for a call Rhai found no function for.
const USAGES: &[(&str, &str)] = &[
    ("test", "test(name, || { … })"),
    ("skip", "skip(reason)"),
    ("before_each", "before_each(|| { … })"),
    ("after_each", "after_each(|| { … })"),
    ("assert", "assert(condition[, message])"),
    ("assert_eq", "assert_eq(a, b[, message])"),
    ("assert_ne", "assert_ne(a, b)"),
    ("assert_match", "assert_match(message, pattern)"),
    ("fail", "fail(message)"),
    ("encode", "encode(format, #{\"/3/0/1\": value, …})"),
    ("decode", "decode(format, blob[, base path])"),
];

/// ` (did you mean `read`?)` when a name Rhai did not find is close to a
/// command's; ` (usage: …)` when it is a script helper called wrongly.
fn command_hint(e: &EvalAltResult) -> String {
    let name = match e {
        EvalAltResult::ErrorVariableNotFound(name, _) => name.as_str(),
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            let name = signature.split([' ', '(']).next().unwrap_or_default();
            if let Some((_, usage)) = USAGES.iter().find(|(n, _)| *n == name) {
                return format!(" (usage: {usage})");
            }
            name
        }
        _ => return String::new(),
    };
    match crate::server::names::near(name, COMMANDS.iter().map(|c| c.rhai_name())).as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        several => format!(" (did you mean one of: {}?)", several.join(", ")),
    }
}

fn strip_position(s: &str) -> String {
    match s.rfind(" (line ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// A Rhai error at the prompt: where it is within a block of several
/// lines (`line 3, column 5: …`); a single line needs no position.
fn prompt_error(e: &EvalAltResult, block: bool) -> String {
    let text = describe_error(e);
    if !block {
        let what = clean_error(text.trim_start_matches("1:"));
        // Where in the line a syntax error is: the line alone does not say.
        return match (e, e.position().position()) {
            (EvalAltResult::ErrorParsing(..), Some(c)) => format!("column {c}: {what}"),
            _ => what,
        };
    }
    let what = clean_error(&text);
    match (e.position().line(), e.position().position()) {
        (Some(line), Some(c)) => format!("line {line}, column {c}: {what}"),
        (Some(line), None) => format!("line {line}: {what}"),
        _ => what,
    }
}

fn clean_error(e: &str) -> String {
    e.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == '?')
        .trim_start()
        .chars()
        .map(|c| {
            // A control character typed or piped in is shown, not sent raw
            // to the terminal.
            if c.is_control() && c != '\n' {
                format!("\\x{:02x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Rhai's own functions that share a name with a command, and the argument
/// types of theirs: a call with exactly these types would reach Rhai's
/// function (typed signatures win over the `Dynamic` ones of commands), so
/// the command is registered with them too. Rhai's `sleep` blocks without
/// Ctrl-C and panics on `sleep(1e300)`.
fn shadowed(name: &str) -> Vec<Vec<TypeId>> {
    match name {
        "sleep" => vec![
            vec![TypeId::of::<rhai::FLOAT>()],
            vec![TypeId::of::<rhai::INT>()],
        ],
        _ => Vec::new(),
    }
}

fn register_commands(engine: &mut Engine, ctx: &Arc<Ctx>) {
    for cmd in COMMANDS {
        // Fewer arguments than required reach the command too, which
        // names the one missing (Rhai would say only "Function not found").
        let mut signatures: Vec<Vec<TypeId>> = (0..=cmd.params.len() + 1)
            .map(|arity| vec![TypeId::of::<Dynamic>(); arity])
            .collect();
        signatures.extend(shadowed(cmd.rhai_name()));
        for types in signatures {
            let ctx = ctx.clone();
            engine.register_raw_fn(cmd.rhai_name(), types, move |nc, call_args| {
                let values: Vec<Dynamic> = call_args.iter().map(|a| (**a).clone()).collect();
                let value = call_command(&ctx, cmd, values);
                if let Err(e) = &value
                    && matches!(**e, EvalAltResult::Exit(..))
                {
                    // Rhai ends the script without saying where: kept for
                    // the reports.
                    ctx.exit_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(|| pos(nc.call_position()));
                }
                value
            });
        }
    }
}

/// Calls `cmd` with the values of a Rhai call.
fn call_command(
    ctx: &Ctx,
    cmd: &'static Command,
    mut values: Vec<Dynamic>,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let mut named = Vec::new();
    // A trailing map holds the optional arguments, unless the parameter in
    // that position takes a map (a pattern), or the map is payload data
    // keyed by LwM2M paths (bound to the payload by `Args::bind`).
    let path_map = values.last().is_some_and(args::is_path_map);
    let takes_map_last = values.len() <= cmd.params.len()
        && (cmd
            .params
            .get(values.len().wrapping_sub(1))
            .is_some_and(|p| {
                p.kind == args::Kind::Any || (p.kind == args::Kind::Bytes && path_map)
            })
            || (path_map && cmd.params.iter().any(args::is_payload)));
    if values.last().is_some_and(Dynamic::is_map) && !takes_map_last {
        let map = values
            .pop()
            .and_then(|m| m.try_cast::<Map>())
            .unwrap_or_default();
        named = map.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    }
    let bound = Args::bind(cmd.name, cmd.params, values, named)
        .map_err(|e| Box::new(EvalAltResult::ErrorRuntime(e.into(), Position::NONE)))?;
    let value = (cmd.run)(ctx, &bound).map_err(|e| {
        Box::new(EvalAltResult::ErrorRuntime(
            with_cause(ctx, prefixed(cmd.name, e)).into(),
            Position::NONE,
        ))
    })?;
    if ctx.exit.load(Ordering::SeqCst) {
        // `exit` ends the script (or the prompt's line) here.
        let code = ctx.exit_code.load(Ordering::SeqCst);
        return Err(Box::new(EvalAltResult::Exit(
            Dynamic::from_int(i64::from(code)),
            Position::NONE,
        )));
    }
    // In a script an armed `expect` that a message did not meet fails it
    // at the next command; the prompt prints the report after the line.
    if !ctx.interactive
        && let Some(e) = expectation_failed(ctx)
    {
        return Err(Box::new(EvalAltResult::ErrorRuntime(
            e.into(),
            Position::NONE,
        )));
    }
    Ok(value)
}

/// The report of an armed `expect` that a message did not meet, as a
/// script's error.
fn expectation_failed(ctx: &Ctx) -> Option<String> {
    ctx.server
        .take_expectation_report()
        .map(|report| format!("expect: a message did not match what `expect` armed\n{report}"))
}

/// What `get_error` shows of a failed line: the line, the error, and how
/// the command it names is called (its signature and example).
fn error_details(line: &str, error: &str) -> String {
    let mut s = format!("the line: {}\nthe error: {error}", line.trim());
    let word: String = line
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if let Some(cmd) = commands::find(&word).or_else(|| {
        // The command named first in the error (`read: …`), for a Rhai line.
        error
            .split(':')
            .next()
            .and_then(|w| commands::find(w.trim()))
    }) {
        s.push_str(&format!(
            "\nusage: {}\nexample: {}\n(`help {}` for every argument)",
            cmd.signature(),
            cmd.example,
            cmd.name
        ));
    }
    s
}

/// The `import "PATH" as NAME` statements of a line: (PATH, NAME).
fn imports(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("import") {
        let after = &rest[at + "import".len()..];
        rest = after;
        let starts_word = line[..line.len() - after.len() - "import".len()]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let Some(quoted) = after.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some((path, tail)) = quoted.split_once('"') else {
            continue;
        };
        let Some(alias) = tail.trim_start().strip_prefix("as") else {
            continue;
        };
        let name: String = alias
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if starts_word && !name.is_empty() {
            out.push((path.to_string(), name));
        }
    }
    out
}

/// `source` with its `#!` line, if any, kept as an empty line so positions
/// stay right.
fn without_shebang(source: &str) -> String {
    match source.strip_prefix("#!") {
        Some(rest) => format!("\n{}", rest.split_once('\n').map_or("", |(_, r)| r)),
        None => source.to_string(),
    }
}

/// The status of `exit(v)`: `()` is 0; `None` when out of 0..=255.
fn exit_status(v: &Dynamic) -> Option<u8> {
    if v.is_unit() {
        return Some(0);
    }
    v.as_int().ok().and_then(|c| u8::try_from(c).ok())
}

/// `text` saying what interrupted it (`sleep: interrupted by the
/// --timeout`) when it tells of an interruption the server knows the
/// cause of ([`crate::server::Server::interrupt`]).
fn with_cause(ctx: &Ctx, text: String) -> String {
    match ctx.server.interruption() {
        Some(why) if text.contains("interrupted") && !text.contains(&why.cause) => {
            format!("{text} {}", why.cause)
        }
        _ => text,
    }
}

/// `cmd: error`, unless the error already names the command.
fn prefixed(name: &str, e: String) -> String {
    if e.starts_with(&format!("{name}:")) {
        e
    } else {
        format!("{name}: {e}")
    }
}

/// `test(name, || { … })`: runs the block, records pass, fail (with the
/// error) or skip (`skip(reason)` inside it) and goes on; a script with a
/// failed test exits 1 after printing `N passed, M failed`. Under `nsh test`
/// ([`SuiteMode`]) each case starts with an empty inbox, what was left
/// unread noted on it, observations it left active are cancelled and noted
/// on it, and the runner prints the results. `exit` inside a case ends the
/// case so too, and the script with the case named. `before_each(|| …)` and
/// `after_each(|| …)` set blocks run around every later case: a failure in
/// either fails the case, and `after_each` runs even after a failed body.
fn register_tests(engine: &mut Engine, ctx: &Arc<Ctx>) {
    type Hook = Arc<std::sync::Mutex<Option<rhai::FnPtr>>>;
    let before: Hook = Arc::default();
    let after: Hook = Arc::default();
    for (name, hook) in [("before_each", &before), ("after_each", &after)] {
        let hook = hook.clone();
        engine.register_fn(name, move |block: rhai::FnPtr| {
            *hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(block);
        });
    }
    let for_test = ctx.clone();
    engine.register_fn(
        "test",
        move |nc: rhai::NativeCallContext, name: &str, body: rhai::FnPtr| {
            let ctx = &for_test;
            let around = ctx
                .running_case
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(around) = around {
                return Err(fail(format!(
                    "test(\"{name}\"): a case cannot run inside another ({around}): write it after that one"
                )));
            }
            let suite = ctx.suite.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(f) = suite.as_ref().and_then(|s| s.filter.as_deref())
                && !name.contains(f)
            {
                return Ok(true);
            }
            let n = ctx.tests.lock().unwrap_or_else(|p| p.into_inner()).len() + 1;
            let note = suite.as_ref().and_then(|_| {
                let unread = ctx.server.take_inbox();
                unread_note(&unread, &format!("before case {n}"))
            });
            let observed_before: Vec<Vec<u8>> = ctx
                .server
                .observations()
                .into_iter()
                .map(|o| o.token)
                .collect();
            *ctx.skip_request.lock().unwrap_or_else(|p| p.into_inner()) = None;
            let started = std::time::Instant::now();
            let started_at = std::time::SystemTime::now();
            let run = |hook: &Hook| -> Result<(), Box<EvalAltResult>> {
                let block = hook.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match block {
                    Some(f) => f.call_within_context::<Dynamic>(&nc, ()).map(|_| ()),
                    None => Ok(()),
                }
            };
            // Until the case returns, after_each included.
            let _running = RunningCase::enter(ctx, format!("case {n}, {name}"));
            let result = run(&before)
                .and_then(|()| body.call_within_context::<Dynamic>(&nc, ()).map(|_| ()));
            let skip = ctx
                .skip_request
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let ends_all = |e: &EvalAltResult| {
                matches!(
                    e,
                    EvalAltResult::ErrorTerminated(..) | EvalAltResult::Exit(..)
                )
            };
            let file = match &suite {
                Some(s) => Some(s.file.clone()),
                None => ctx
                    .script_file
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            };
            let at = |e: &EvalAltResult| match &file {
                Some(f) => with_cause(ctx, format!("{f}:{}", describe_error(e))),
                None => with_cause(ctx, describe_error(e)),
            };
            // However the case ends: the observations it left are cancelled
            // (under `nsh test`) and it is recorded. True when it passed.
            let finish = |failure: Option<String>, skipped: Option<String>, note: Option<String>| {
                let left_active = suite
                    .as_ref()
                    .and_then(|_| cancel_left_observations(ctx, &observed_before));
                let passed = failure.is_none();
                record_case(
                    ctx,
                    n,
                    TestOutcome {
                        name: name.to_string(),
                        failure,
                        skipped,
                        note,
                        duration: started.elapsed(),
                        started: started_at,
                        ended: std::time::SystemTime::now(),
                        left_active,
                    },
                    suite.is_none(),
                );
                passed
            };
            // Interrupted with a cause (`nsh test`'s --timeout, a signal,
            // the device's exit): the case fails with it first.
            let interrupted = match (&result, ctx.server.interruption()) {
                (Err(e), Some(why))
                    if skip.is_none() && !matches!(**e, EvalAltResult::Exit(..)) =>
                {
                    Some(why)
                }
                _ => None,
            };
            if let (Err(e), Some(why)) = (&result, interrupted.as_ref().filter(|w| !w.waits_only)) {
                // The whole script stops: no after_each (it could only be
                // interrupted too), the case recorded, the script ended.
                let failure = format!("{}\n{}", why.failure, at(e));
                *ctx.interrupted_case
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(format!("case {n} ({name})"));
                finish(Some(failure), None, note);
                return Err(Box::new(EvalAltResult::ErrorTerminated(
                    Dynamic::from("interrupted"),
                    Position::NONE,
                )));
            }
            // `exit` in the case (its body, before_each or after_each) ends
            // the script there, and the case as any case ends: recorded
            // (passed with `exit(0)`, failed with another status, the exit
            // naming the case) and the observations it left cancelled.
            // `earlier`: the case's failure before an after_each exited.
            let end_by_exit = |exit: Box<EvalAltResult>,
                               note: Option<String>,
                               earlier: Option<String>| {
                *ctx.exit_case.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(name.to_string());
                let code = ctx.exit_code.load(Ordering::SeqCst);
                let exited = (code != 0).then(|| {
                    let at = ctx
                        .exit_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                        .unwrap_or_default();
                    match &file {
                        Some(f) => format!("{f}:{at}: exit({code}) in case `{name}`"),
                        None => format!("{at}: exit({code}) in case `{name}`"),
                    }
                });
                let failure = match (earlier, exited) {
                    (Some(e), Some(x)) => Some(format!("{e}\nand in after_each: {x}")),
                    (Some(e), None) => Some(e),
                    (None, x) => x,
                };
                finish(failure, None, note);
                Err(exit)
            };
            let mut result = match result {
                Err(e) if matches!(*e, EvalAltResult::Exit(..)) => {
                    return end_by_exit(e, note, None);
                }
                other => other,
            };
            if matches!(&result, Err(e) if ends_all(e)) {
                return result.map(|()| false);
            }
            if result.is_ok()
                && let Some(e) = expectation_failed(ctx)
            {
                result = Err(fail(e));
            }
            let mut teardown = None;
            if let Err(e) = run(&after) {
                if matches!(*e, EvalAltResult::Exit(..)) {
                    let earlier = match (&result, &skip) {
                        (Err(b), None) => Some(at(b)),
                        _ => None,
                    };
                    return end_by_exit(e, note, earlier);
                }
                if ends_all(&e) {
                    return Err(e);
                }
                teardown = Some(e);
            }
            let (mut failure, skipped) = match (result, skip, teardown) {
                (Err(_), Some(reason), None) => (None, Some(reason)),
                (Ok(()), _, None) => (None, None),
                (Ok(()), _, Some(e)) => (Some(format!("in after_each: {}", at(&e))), None),
                (Err(e), _, teardown) => {
                    let mut failure = at(&e);
                    if let Some(t) = teardown {
                        failure.push_str(&format!("\nand in after_each: {}", at(&t)));
                    }
                    (Some(failure), None)
                }
            };
            if let (Some(why), Some(f)) = (&interrupted, &mut failure) {
                *f = format!("{}\n{f}", why.failure);
            }
            Ok(finish(failure, skipped, note))
        },
    );
    // Under `nsh test` the client registered before the script began;
    // `reg::await_registration` takes that Register first.
    let for_register = ctx.clone();
    engine.register_fn("initial_register", move || -> Dynamic {
        for_register
            .initial_register
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map_or(Dynamic::UNIT, send::msg)
    });
    let for_skip = ctx.clone();
    engine.register_fn(
        "skip",
        move |reason: &str| -> Result<(), Box<EvalAltResult>> {
            *for_skip
                .skip_request
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
            Err(fail(format!("skipped: {reason}")))
        },
    );
}

/// Marks a case as running (`Ctx::running_case`) until dropped.
struct RunningCase<'a>(&'a Ctx);

impl<'a> RunningCase<'a> {
    fn enter(ctx: &'a Ctx, case: String) -> RunningCase<'a> {
        *ctx.running_case.lock().unwrap_or_else(|p| p.into_inner()) = Some(case);
        RunningCase(ctx)
    }
}

impl Drop for RunningCase<'_> {
    fn drop(&mut self) {
        *self
            .0
            .running_case
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Keeps case `n`'s outcome, printing its line (`say`: a plain script run)
/// or handing it to the runner's hook.
fn record_case(ctx: &Ctx, n: usize, outcome: TestOutcome, say: bool) {
    if say {
        ctx.say(&case_line(n, &outcome));
    }
    let hook = ctx
        .on_case
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(hook) = hook {
        hook(n, &outcome);
    }
    ctx.tests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(outcome);
}

/// The lines of one case: `ok N - name`, `not ok N - name` with the error
/// on `  # ` lines, `skip N - name # reason`; a note on unread messages
/// first, as a `# ` line.
pub fn case_line(n: usize, t: &TestOutcome) -> String {
    let mut s = String::new();
    if let Some(note) = &t.note {
        s.push_str(&format!("# {note}\n"));
    }
    match (&t.failure, &t.skipped) {
        (Some(f), _) => s.push_str(&format!(
            "not ok {n} - {}\n  # {}",
            t.name,
            f.replace('\n', "\n  # ")
        )),
        (None, Some(reason)) => s.push_str(&format!("skip {n} - {} # {reason}", t.name)),
        (None, None) => s.push_str(&format!("ok {n} - {}", t.name)),
    }
    if let Some(left) = &t.left_active {
        s.push_str(&format!("\n  # {left}"));
    }
    s
}

/// Cancels the observations that are active now and were not in `before`
/// (their tokens): `left the observation of /3/0/13 active: cancelled`, or
/// `None` when there were none. One whose cancel fails is forgotten (its
/// next notification is answered with a Reset).
fn cancel_left_observations(ctx: &Ctx, before: &[Vec<u8>]) -> Option<String> {
    let left: Vec<(Vec<u8>, String)> = ctx
        .server
        .observations()
        .into_iter()
        .filter(|o| !before.contains(&o.token))
        .map(|o| (o.token, o.path))
        .collect();
    if left.is_empty() {
        return None;
    }
    let mut said = Vec::new();
    for (token, path) in left {
        let cancel = commands::find("cancel_observe");
        let by_path = ctx.server.observation_token(&path).as_ref() == Some(&token);
        let outcome = match cancel {
            Some(cmd) if by_path => match call_command(ctx, cmd, vec![path.clone().into()]) {
                Ok(_) => "cancelled".to_string(),
                // After `exit` in the case: the cancel ran, and says the
                // script ends.
                Err(e) if matches!(*e, EvalAltResult::Exit(..)) => "cancelled".to_string(),
                Err(e) => {
                    ctx.server.forget_observation(&token);
                    format!("cancel failed ({e}), forgotten")
                }
            },
            _ => {
                ctx.server.forget_observation(&token);
                "forgotten".to_string()
            }
        };
        said.push(format!("left the observation of {path} active: {outcome}"));
    }
    Some(said.join("; "))
}

/// `2 messages unread before case 5: Update, Notify` (`when` is what
/// follows "unread"), or `None` when nothing was left.
pub fn unread_note(unread: &[crate::server::RecordRef], when: &str) -> Option<String> {
    if unread.is_empty() {
        return None;
    }
    let kinds: Vec<String> = unread
        .iter()
        .map(|r| message::View(r).kind_name())
        .collect();
    let noun = if unread.len() == 1 {
        "message"
    } else {
        "messages"
    };
    Some(format!(
        "{} {noun} unread {when}: {}",
        unread.len(),
        kinds.join(", ")
    ))
}

fn fail(text: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(text.into(), Position::NONE))
}

fn register_assertions(engine: &mut Engine) {
    engine.register_fn("assert", |c: bool| {
        if c {
            Ok(())
        } else {
            Err(fail("assertion failed".into()))
        }
    });
    engine.register_fn("assert", |c: bool, m: &str| {
        if c {
            Ok(())
        } else {
            Err(fail(format!("assertion failed: {m}")))
        }
    });
    engine.register_fn("assert_eq", |a: Dynamic, b: Dynamic| {
        if pattern::values_eq(&a, &b) {
            Ok(())
        } else {
            Err(fail(format!(
                "assert_eq failed\n  left:  {}\n  right: {}",
                pattern::show(&a),
                pattern::show(&b)
            )))
        }
    });
    engine.register_fn("assert_eq", |a: Dynamic, b: Dynamic, m: &str| {
        if pattern::values_eq(&a, &b) {
            Ok(())
        } else {
            Err(fail(format!(
                "assert_eq failed: {m}\n  left:  {}\n  right: {}",
                pattern::show(&a),
                pattern::show(&b)
            )))
        }
    });
    engine.register_fn("assert_ne", |a: Dynamic, b: Dynamic| {
        if pattern::values_eq(&a, &b) {
            Err(fail(format!(
                "assert_ne failed: both are {}",
                pattern::show(&a)
            )))
        } else {
            Ok(())
        }
    });
    engine.register_fn("assert_match", |m: message::Msg, p: Dynamic| {
        let pat = pattern::Pattern::from_dynamic(&p).map_err(fail)?;
        pat.matches(&m.0).map_err(|d| {
            fail(format!(
                "assert_match failed: {} does not match {}\n  {}",
                m.0.line(),
                pat.describe(),
                d.join("\n  ")
            ))
        })
    });
    engine.register_fn("fail", |m: &str| -> Result<(), Box<EvalAltResult>> {
        Err(fail(m.to_string()))
    });
    engine.register_fn("hex", |b: rhai::Blob| crate::coap::escaped::format_hex(&b));
    engine.register_fn("bytes", |s: &str| {
        crate::coap::escaped::parse(s).map_err(|e| fail(e.to_string()))
    });
    engine.register_fn("now_ms", || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    });
}

#[cfg(test)]
mod tests {
    use super::imports;

    #[test]
    fn imports_are_found_in_a_line() {
        assert_eq!(
            imports("import \"stdlib/firmware\" as fw; fw::state()"),
            vec![("stdlib/firmware".to_string(), "fw".to_string())]
        );
        assert_eq!(
            imports("let reimport = 1; import \"a\" as b_2;"),
            vec![("a".to_string(), "b_2".to_string())]
        );
        assert!(imports("print(\"import\")").is_empty());
        assert!(imports("import \"x\"").is_empty());
    }

    use super::*;

    #[test]
    fn ctrl_c_in_a_rhai_loop_says_interrupted() {
        let mut shell = Shell::new(Server::new(), false, false);
        let flag = shell.ctx.server.interrupt_flag();
        let pressed = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
        });
        let result = shell.eval_line("let n = 0; loop { n += 1; }");
        pressed.join().unwrap();
        match result {
            LineResult::Error(e) => assert_eq!(e, "interrupted"),
            other => panic!("expected an interruption, got {other:?}"),
        }
    }

    fn form(shell: &Shell, line: &str) -> String {
        match shell.line_form(line) {
            LineForm::Command(c) => format!("command {}", c.name),
            LineForm::Prefix(c) => format!("prefix {}", c.name),
            LineForm::Ambiguous(w, names) => format!("ambiguous {w}: {}", names.join(" ")),
            LineForm::Rhai => "rhai".into(),
        }
    }

    #[test]
    fn prefixes_are_taken_only_where_the_line_is_not_rhai() {
        let mut shell = Shell::new(Server::new(), false, false);
        assert_eq!(form(&shell, "read /3/0"), "command read");
        assert_eq!(form(&shell, "reset"), "command reset");
        assert_eq!(
            form(&shell, "read_c /3/0/0 /1/1/1"),
            "prefix read_composite"
        );
        assert_eq!(form(&shell, "  coap_d \\x60"), "prefix coap_decode");
        assert_eq!(form(&shell, "rese"), "ambiguous rese: reset reset_history");
        // Rhai calls, assignments, method calls, operators glued to the word.
        for line in [
            "read_c(\"/3\")",
            "read_c = 1",
            "read_c.len()",
            "read_c+1",
            "bs::x()",
        ] {
            assert_eq!(form(&shell, line), "rhai", "{line}");
        }
        // Rhai's own functions and keywords, and variables.
        for line in ["exp 1", "get", "use x", "let x = 1", "x"] {
            assert_eq!(form(&shell, line), "rhai", "{line}");
        }
        // A path after the word is an argument, not a method call.
        for (line, cmd) in [
            ("load_objects ./objects", "command load_objects"),
            ("file_server . 9000", "command file_server"),
            ("file_server .. 9000", "command file_server"),
            ("load_o ./objects", "prefix load_objects"),
        ] {
            assert_eq!(form(&shell, line), cmd, "{line}");
        }
        shell.scope.push("discov", 7_i64);
        assert_eq!(form(&shell, "discov"), "rhai");
        assert_eq!(form(&shell, "disc"), "prefix discover");
    }

    #[test]
    fn plain_values_show_as_rhai_prints_them() {
        assert_eq!(value_text(&Dynamic::UNIT), None);
        assert_eq!(value_text(&Dynamic::from_int(42)).as_deref(), Some("42"));
        assert_eq!(
            value_text(&Dynamic::from_array(Vec::new())).as_deref(),
            Some("[]")
        );
    }

    #[test]
    fn rhai_words_are_prefixes_of_commands() {
        for w in ["exp", "get", "use"] {
            assert!(cmdline::is_rhai_word(w));
            assert!(
                COMMANDS
                    .iter()
                    .any(|c| c.name.starts_with(w) && c.name != w),
                "{w}"
            );
        }
    }
}
