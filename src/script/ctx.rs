//! What every command sees: the [`Ctx`] (the server, the output, the
//! session's flags and file servers, `test` outcomes, the last error).
//! Commands depend on this file, not on the engine in `mod.rs`.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use crate::server::Server;

/// What every command sees.
pub struct Ctx {
    /// The server.
    pub server: Server,
    /// Prints lines of output.
    pub out: Box<dyn Fn(&str) + Send + Sync>,
    /// IPv6 default from the command line.
    pub ipv6: bool,
    /// At a prompt (tables are printed) rather than in a script.
    pub interactive: bool,
    /// `exit` was called.
    pub exit: AtomicBool,
    /// File servers running in the background.
    pub file_servers: Mutex<Vec<crate::fileserver::FileServer>>,
    /// Outcomes of `test(name, || …)` blocks, in order.
    pub tests: Mutex<Vec<TestOutcome>>,
    last_error: Mutex<Option<String>>,
}

impl Ctx {
    /// A context over `server` that prints to standard output.
    pub fn new(server: Server, ipv6: bool, interactive: bool) -> Ctx {
        Ctx {
            server,
            out: Box::new(|s| println!("{s}")),
            ipv6,
            interactive,
            exit: AtomicBool::new(false),
            file_servers: Mutex::new(Vec::new()),
            tests: Mutex::new(Vec::new()),
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

/// The outcome of one `test(name, || …)` block.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// `None` when it passed, else the error.
    pub failure: Option<String>,
    /// How long it ran.
    pub duration: std::time::Duration,
}
