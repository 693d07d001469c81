//! Every nsh command, one file per LwM2M interface (`registration`,
//! `device`, `reporting`, `bootstrap`, `raw` CoAP) and two for the
//! rest (`session`: receiving, history, payload buffer; `shell`:
//! connections and settings). This file holds the table, in the order
//! `help` lists it, and `help` itself. The same table drives the Rhai
//! functions, the command-line form, `help` and completion.
//!
//! Every command is declared with `typed::command!`: its parameter table,
//! typed arguments and their parse come from one definition. Adding a command is one declaration and one function in the
//! file of its interface, and one line in [`COMMANDS`].

mod bootstrap;
mod device;
mod faults;
mod fuzz;
mod process;
mod raw;
mod registration;
mod reporting;
mod security;
mod session;
pub use session::start_capture;

/// The commands that take a message from the inbox and return it: typed
/// in the original's form, the prompt shows what they took.
pub const TAKE_MESSAGES: &[&str] = &[
    session::RECV.name,
    session::WAIT_FOR.name,
    session::EXPECT.name,
];
mod shell;

use rhai::Dynamic;

pub use super::command::{CmdResult, Command};
use super::ctx::Ctx;
use super::typed::command;

/// The command table.
pub static COMMANDS: &[Command] = &[
    device::READ,
    reporting::OBSERVE,
    reporting::CANCEL_OBSERVE,
    device::DISCOVER,
    device::WRITE,
    device::WRITE_FILE,
    device::WRITE_ATTRIBUTES,
    device::EXECUTE,
    device::CREATE,
    device::DELETE,
    device::READ_COMPOSITE,
    reporting::OBSERVE_COMPOSITE,
    device::WRITE_COMPOSITE,
    raw::COAP_GET,
    bootstrap::BOOTSTRAP,
    bootstrap::BOOTSTRAP_PACK,
    bootstrap::BOOTSTRAP_FINISH,
    registration::REGISTER,
    registration::UPDATE,
    registration::DEREGISTER,
    bootstrap::REQUEST_BOOTSTRAP,
    bootstrap::BOOTSTRAP_PACK_REQUEST,
    reporting::SEND,
    bootstrap::EST_COAPS_SIMPLE_ENROLL,
    bootstrap::EST_COAPS_SIMPLE_REENROLL,
    bootstrap::EST_COAPS_CA_CERTS,
    raw::CONTENT,
    reporting::NOTIFY,
    raw::CREATED,
    raw::DELETED,
    raw::CHANGED,
    raw::ERROR_RESPONSE,
    raw::CONTINUE,
    raw::EMPTY,
    raw::RESET,
    raw::COAP,
    raw::UDP,
    fuzz::FUZZ,
    process::PROCESS_STATS,
    session::RECV,
    session::WAIT_FOR,
    session::EXPECT,
    session::SLEEP,
    session::DETAILS,
    session::HISTORY,
    session::RESET_HISTORY,
    session::PAYLOAD_BUFFER_CLEAR,
    session::PAYLOAD_BUFFER_SHOW,
    session::PAYLOAD_BUFFER_SHOW_HEX,
    session::PAYLOAD_BUFFER_SHOW_TLV,
    session::PAYLOAD_BUFFER_SHOW_AS,
    session::PAYLOAD_BUFFER_SHOW_SENML,
    session::PAYLOAD_BUFFER_SHOW_JSON,
    session::LOAD_OBJECTS,
    session::CAPTURE,
    session::CAPTURE_STOP,
    session::COAP_DECODE,
    session::LWM2M_DECODE,
    shell::LISTEN,
    shell::FILE_SERVER,
    shell::FILE_SERVER_STOP,
    shell::CONNECT,
    shell::UNCONNECT,
    shell::CLIENTS,
    shell::USE_CLIENT,
    shell::OBSERVATIONS,
    shell::SET,
    faults::REBIND,
    shell::GET_ERROR,
    HELP,
    shell::EXIT,
];

/// Finds a command by exact name (or its Rhai name).
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.rhai_name() == name)
}

command! {
    /// `help`.
    const HELP = "help";
    /// The arguments of `help`.
    struct HelpArgs {
        topic: Option<String> = opt(Str, "none: list commands"),
    }
    help: "Lists commands, or shows one command's arguments, defaults and an example.",
    example: "help read",
    run: cmd_help,
}

fn cmd_help(ctx: &Ctx, args: HelpArgs) -> CmdResult {
    match args.topic {
        None => ctx.say(&general_help()),
        Some(t) if t == "tlv" || t == "cbor" => ctx.say(&subshell_help(&t)),
        Some(t) => match find(&t) {
            Some(c) => ctx.say(&c.help_text()),
            None => {
                let mut close: Vec<&str> =
                    crate::server::names::near(&t, COMMANDS.iter().map(|c| c.name));
                let containing: Vec<&str> = COMMANDS
                    .iter()
                    .map(|c| c.name)
                    .filter(|n| n.contains(t.as_str()) && !close.contains(n))
                    .collect();
                close.extend(containing);
                let hint = if close.is_empty() {
                    String::new()
                } else {
                    format!(" (did you mean: {})", close.join(", "))
                };
                return Err(format!("no such command: {t}{hint}"));
            }
        },
    }
    Ok(Dynamic::UNIT)
}

fn subshell_help(which: &str) -> String {
    let (cmds, what, ctor) = if which == "tlv" {
        (
            crate::script::builders::TLV_COMMANDS,
            "TLV (application/vnd.oma.lwm2m+tlv)",
            "tlv",
        )
    } else {
        (
            crate::script::builders::CBOR_COMMANDS,
            "SenML CBOR",
            "senml_cbor",
        )
    };
    let mut s = format!(
        "{which}\n\nEnters a subshell that builds a {what} payload; `exit` prints it as escaped bytes\n\
         and keeps it in the variable `{which}_data`. In Rhai: `let t = {ctor}();` with the same methods.\n\ncommands:\n"
    );
    for c in cmds {
        s.push_str(&format!("  {:<24} {}\n", c.name, c.help));
    }
    s
}

/// `help` with no topic.
pub fn general_help() -> String {
    let mut s = String::from("nsh commands (`help CMD` for arguments and an example):\n");
    for c in COMMANDS {
        s.push_str(&format!("  {:<26} {}\n", c.name, c.help));
    }
    // The original's two subshells, listed as it listed them.
    for (name, what) in [
        (
            "tlv",
            "Opens a subshell that builds a TLV payload (`help tlv`).",
        ),
        (
            "cbor",
            "Opens a subshell that builds a SenML CBOR payload (`help cbor`).",
        ),
    ] {
        s.push_str(&format!("  {name:<26} {what}\n"));
    }
    s.push_str(
        "\nAt the prompt type commands as in the original nsh (`read /3/0 tlv`) or Rhai (`let r = read(\"/3/0\"); print(r.value)`).\n\
         Message fields in Rhai: kind type code code_name msg_id token options path query location content_format accept\n\
         observe block1 block2 payload text value peer; methods summary() details(). Assertions: assert(c, msg) assert_eq(a, b)\n\
         assert_ne(a, b) assert_match(msg, pattern). `tlv` and `cbor` open payload builders.",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manual's `tlv` and `cbor` are commands too (its §7.1.2.3).
    #[test]
    fn help_lists_the_subshells_among_the_commands() {
        let h = general_help();
        assert!(h.contains("\n  tlv "), "{h}");
        assert!(h.contains("\n  cbor "), "{h}");
    }

    #[test]
    fn every_command_is_found_by_its_names() {
        for c in COMMANDS {
            assert!(std::ptr::eq(find(c.name).unwrap(), c), "{}", c.name);
            assert!(std::ptr::eq(find(c.rhai_name()).unwrap(), c), "{}", c.name);
        }
    }

    #[test]
    fn no_two_commands_or_parameters_share_a_name() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        for c in COMMANDS {
            let mut params: Vec<&str> = c.params.iter().map(|p| p.name).collect();
            params.sort_unstable();
            params.dedup();
            assert_eq!(params.len(), c.params.len(), "{}", c.name);
            assert!(c.params.iter().all(|p| !p.name.is_empty()), "{}", c.name);
        }
    }

    #[test]
    fn message_commands_share_the_header_and_timeout_texts() {
        // The typed groups keep the texts the hand-written lists had.
        let read = find("read").unwrap();
        let shown: Vec<(&str, Option<&str>)> =
            read.params.iter().map(|p| (p.name, p.default)).collect();
        assert_eq!(
            shown,
            [
                ("path", None),
                ("accept", Some("none")),
                ("msg_id", Some("auto")),
                ("token", Some("8 random bytes")),
                ("options", Some("[]")),
                ("timeout_s", Some("set timeout, else until CoAP gives up")),
            ]
        );
    }
}
