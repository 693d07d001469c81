//! What every command sees: the [`Ctx`] (the server, the output, the
//! session's flags and file servers, `test` outcomes, the last error).
//! Commands depend on this file, not on the engine in `mod.rs`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8};

use crate::server::Server;

/// What every command sees.
pub struct Ctx {
    /// The server.
    pub server: Server,
    /// Prints lines of output.
    pub out: Box<dyn Fn(&str) + Send + Sync>,
    /// IPv6 default from the command line.
    pub ipv6: bool,
    /// At a prompt rather than in a script or `nsh -c`: `listen` waits
    /// for the first client, and an armed `expect` that a message did not
    /// meet is reported after the line instead of failing the next command.
    pub interactive: bool,
    /// What the prompt prints and a script does not, also for `nsh -c`:
    /// listing commands print their tables (`clients`, `history`,
    /// `observations`, `process_stats`, `write_file`'s total), and `exit`
    /// says `exiting`; a script gets only the values.
    pub listings: bool,
    /// `exit` was called.
    pub exit: AtomicBool,
    /// The status `exit` was called with.
    pub exit_code: AtomicU8,
    /// Where in the script `exit` was called (`2:1`), once it was.
    pub exit_at: Mutex<Option<String>>,
    /// The `test(…)` case `exit` was called in, by name, once it was.
    pub exit_case: Mutex<Option<String>>,
    /// The script file running (named in the failures of its cases).
    pub script_file: Mutex<Option<String>>,
    /// File servers running in the background.
    pub file_servers: Mutex<Vec<crate::fileserver::FileServer>>,
    /// Outcomes of `test(name, || …)` blocks, in order.
    pub tests: Mutex<Vec<TestOutcome>>,
    /// How `test(…)` cases run under `nsh test` (`None`: a plain script run).
    pub suite: Mutex<Option<SuiteMode>>,
    /// Under `nsh test`: the Register the runner waited for before the
    /// script began, until `initial_register()` takes it.
    pub initial_register: Mutex<Option<crate::server::RecordRef>>,
    /// The reason `skip(reason)` gave, until the case (or the run) takes it.
    pub skip_request: Mutex<Option<String>>,
    /// Called with each case's number and outcome as it finishes (the
    /// runner prints it at once).
    pub on_case: Mutex<Option<CaseHook>>,
    /// The case an interruption of the whole script (`nsh test`'s
    /// --timeout, a signal) stopped and failed: `case 2 (reads)`.
    pub interrupted_case: Mutex<Option<String>>,
    /// The case running now (`case 2, reads`), while its block runs: a
    /// `test(…)` inside it is refused.
    pub running_case: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
}

/// How `test(…)` cases run under `nsh test`: each starts with an empty inbox
/// (what was left unread is noted on the case), the runner prints the
/// results, and failures name the file.
#[derive(Clone, Debug, Default)]
pub struct SuiteMode {
    /// The script, as failures name it (`file:line:col: message`).
    pub file: String,
    /// Only cases whose name contains this text run.
    pub filter: Option<String>,
}

impl Ctx {
    /// A context over `server` that prints to standard output.
    pub fn new(server: Server, ipv6: bool, interactive: bool) -> Ctx {
        Ctx::with_output(server, ipv6, interactive, Box::new(|s| println!("{s}")))
    }

    /// A context over `server` whose output goes to `out`.
    pub fn with_output(
        server: Server,
        ipv6: bool,
        interactive: bool,
        out: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Ctx {
        Ctx {
            server,
            out,
            ipv6,
            interactive,
            listings: interactive,
            exit: AtomicBool::new(false),
            exit_code: AtomicU8::new(0),
            exit_at: Mutex::new(None),
            exit_case: Mutex::new(None),
            script_file: Mutex::new(None),
            file_servers: Mutex::new(Vec::new()),
            tests: Mutex::new(Vec::new()),
            suite: Mutex::new(None),
            initial_register: Mutex::new(None),
            skip_request: Mutex::new(None),
            on_case: Mutex::new(None),
            interrupted_case: Mutex::new(None),
            running_case: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    /// Prints one block of output.
    pub fn say(&self, text: &str) {
        (self.out)(text);
    }

    /// The last error (for `get_error`).
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Remembers an error for `get_error`.
    pub fn set_last_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }
}

/// What [`Ctx::on_case`] calls: the case's number (1-based) and outcome.
pub type CaseHook = std::sync::Arc<dyn Fn(usize, &TestOutcome) + Send + Sync>;

/// The outcome of one `test(name, || …)` block.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// `None` when it passed (or was skipped), else the error.
    pub failure: Option<String>,
    /// The reason, when `skip(reason)` skipped it.
    pub skipped: Option<String>,
    /// Messages left unread before it began (`2 messages unread before
    /// case 5: Update, Notify`), under `nsh test`.
    pub note: Option<String>,
    /// How long it ran.
    pub duration: std::time::Duration,
    /// When it began (wall clock: reports place its messages by it).
    pub started: std::time::SystemTime,
    /// When it ended (wall clock, read then: the messages' times come
    /// from the same clock).
    pub ended: std::time::SystemTime,
    /// Observations it left active, cancelled after it (`left the
    /// observation of /3/0/13 active: cancelled`), under `nsh test`.
    pub left_active: Option<String>,
}
