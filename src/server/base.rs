//! The server's shared vocabulary: its errors, the auto-responder flags,
//! where output lines go, deadlines that cannot overflow, the wire form of
//! a message and the classification context backed by the registration
//! table. Every other file of the server builds on this one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::registry::Registry;
use crate::coap::{Message, tcp, udp};
use crate::lwm2m::kind;

/// Where output lines (`<- …`, `-> …`) go.
pub type Printer = Arc<dyn Fn(&str) + Send + Sync>;

/// Why waits were interrupted, as [`Server::interrupt`](super::Server::interrupt)
/// was told: what the interrupted case or script fails with, and what the
/// error of the command interrupted adds after `interrupted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interruption {
    /// What the case (or the script) running fails with: `timed out after
    /// 2 s (--timeout)`, `interrupted by SIGTERM`.
    pub failure: String,
    /// What follows `interrupted` in the interrupted command's error: `by
    /// the --timeout`, `because the client exited (exit status: 1)`.
    pub cause: String,
    /// Only the waits for the network end (and every later one, at once):
    /// the script goes on.
    pub waits_only: bool,
}

/// Errors of server operations, worded for the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No socket yet.
    #[error("not listening: use `listen` (or `connect HOST PORT`) first")]
    NotListening,
    /// Nobody to send to.
    #[error("no client to send to: none has registered and no `connect` target is set")]
    NoPeer,
    /// Nobody to send to: the target's connection closed (`the TCP
    /// connection with … closed at … (… ago): closed by the peer; …`).
    #[error("no client to send to: {0}")]
    TargetClosed(String),
    /// Socket trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No response in time.
    #[error("no response to `{summary}` within {timeout:.1} s{also}")]
    Timeout {
        /// What was sent.
        summary: String,
        /// How long nsh waited.
        timeout: f64,
        /// What else is known (an empty ACK announced a separate
        /// response; nothing came from a DTLS server nsh connected to,
        /// which may have lost the session), or empty.
        also: String,
    },
    /// CON retransmissions exhausted.
    #[error("no response to `{summary}` after {attempts} transmissions{also}")]
    GaveUp {
        /// What was sent.
        summary: String,
        /// How many times.
        attempts: u32,
        /// What else is known (answers with another token; nothing came
        /// from a DTLS server nsh connected to), or empty.
        also: String,
    },
    /// The connection closed while the request waited for its answer.
    #[error("no response to `{summary}`: the {why}")]
    Closed {
        /// What was sent.
        summary: String,
        /// The transport's line: `TCP connection with … closed: closed by
        /// the peer`.
        why: String,
    },
    /// A block-wise transfer stopped by `error`, `at` a block: `at block
    /// 57 (58368 of 200000 bytes received)`.
    #[error("{error}, {at}")]
    Stopped {
        /// What stopped it.
        error: Box<ServerError>,
        /// Where.
        at: String,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// A name that is not a client, and who is registered (worded by
    /// `unknown_client`).
    #[error("no client with endpoint name `{0}`{1}")]
    UnknownClient(String, String),
    /// Bad address.
    #[error("cannot resolve `{0}`")]
    Resolve(String),
    /// A block-wise transfer went wrong.
    #[error("block-wise transfer: {0}")]
    Block(String),
    /// The transport refused the datagram; nothing was sent.
    #[error("{0}")]
    SendFailed(String),
}

/// The auto-responder switches (`set`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// Answer Update with Changed.
    pub auto_update: bool,
    /// Answer Register with Created.
    pub auto_reregister: bool,
    /// Answer Bootstrap-Pack-Request with 4.04.
    pub auto_bspack_error: bool,
    /// Answer any other CON with an empty ACK (and a ping with RST).
    pub auto_ack: bool,
    /// Answer De-register with Deleted.
    pub auto_deregister: bool,
    /// Answer Send with Changed.
    pub auto_send: bool,
    /// Print `->`/`<-` lines.
    pub print_messages: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            auto_update: true,
            auto_reregister: true,
            auto_bspack_error: true,
            auto_ack: true,
            auto_deregister: true,
            auto_send: true,
            print_messages: true,
        }
    }
}

/// `now + d`, or `None` (no deadline) when that instant is not
/// representable: every wait of the server computes its deadline here, so
/// no timeout a user gives can overflow.
pub fn deadline_after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// The wire form of a message: an RFC 8323 frame when it is `reliable`.
pub(crate) fn encode(msg: &Message) -> Vec<u8> {
    if msg.reliable {
        tcp::encode(msg)
    } else {
        udp::encode(msg)
    }
}

/// Classification context backed by the registration table.
pub(crate) struct RegistryContext<'a>(pub(crate) &'a Registry);

impl kind::ClassifyContext for RegistryContext<'_> {
    fn is_registration_location(&self, segments: &[String]) -> bool {
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        self.0.is_location(&path)
    }
}
