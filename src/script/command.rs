//! What a command is: its name, parameter table, help, example and
//! implementation ([`Command`]); each command derives its table and the
//! parse of its arguments from one definition (`typed::command!`). Knows
//! no particular command: those live in `commands/`, one file per LwM2M
//! interface.

use rhai::Dynamic;

use super::args::{Args, Param};
use super::ctx::Ctx;

/// What a command returns to Rhai, or its error text.
pub type CmdResult = Result<Dynamic, String>;

/// One command.
pub struct Command {
    /// Name at the prompt and in Rhai (`continue` is `continue_` in Rhai).
    pub name: &'static str,
    /// Parameters in order.
    pub params: &'static [Param],
    /// One line of help.
    pub help: &'static str,
    /// An example (command-line form or Rhai).
    pub example: &'static str,
    /// Implementation.
    pub run: fn(&Ctx, &Args) -> CmdResult,
}

impl Command {
    /// The name Rhai knows it by.
    pub fn rhai_name(&self) -> &'static str {
        if self.name == "continue" {
            "continue_"
        } else {
            self.name
        }
    }

    /// `read PATH [ACCEPT] [MSG_ID] …`
    pub fn signature(&self) -> String {
        let mut s = self.name.to_string();
        for p in self.params {
            let n = p.name.to_ascii_uppercase();
            if p.default.is_some() {
                s.push_str(&format!(" [{n}]"));
            } else {
                s.push_str(&format!(" {n}"));
            }
        }
        s
    }

    /// The full `help CMD` text.
    pub fn help_text(&self) -> String {
        let mut s = format!("{}\n\n{}\n", self.signature(), self.help);
        if !self.params.is_empty() {
            s.push_str("\narguments (optional ones marked ?):\n");
            for p in self.params {
                let d = p
                    .default
                    .map(|d| format!(", default {d}"))
                    .unwrap_or_default();
                let q = if p.default.is_some() { "?" } else { "" };
                s.push_str(&format!("  {}{q}  {}{d}\n", p.name, p.kind.name()));
            }
        }
        s.push_str(&format!("\nexample:\n  {}\n", self.example));
        if self.name != self.rhai_name() {
            s.push_str(&format!(
                "\n(in Rhai this command is `{}`)\n",
                self.rhai_name()
            ));
        }
        s
    }
}
