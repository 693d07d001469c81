//! Every nsh command: its parameters (names, order and defaults as in the
//! original), its help text and example, and what it does. The same table
//! drives the Rhai functions, the command-line form, `help` and completion.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rhai::{Dynamic, Map};

use super::Ctx;
use super::args::{Args, Kind as K, Param, opt, req};
use super::message::Msg;
use super::requests;
use crate::coap::{escaped, udp};
use crate::lwm2m::kind;

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

/// Finds a command by exact name (or its Rhai name).
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.rhai_name() == name)
}

macro_rules! tail {
    () => {
        [
            opt("msg_id", K::Int, "auto"),
            opt("token", K::Bytes, "8 random bytes"),
            opt("options", K::Options, "[]"),
        ]
    };
}

const ATTRS: [Param; 11] = [
    opt("lt", K::Float, "none"),
    opt("gt", K::Float, "none"),
    opt("st", K::Float, "none"),
    opt("pmin", K::Int, "none"),
    opt("pmax", K::Int, "none"),
    opt("epmin", K::Int, "none"),
    opt("epmax", K::Int, "none"),
    opt("hqmax", K::Int, "none"),
    opt("edge", K::Int, "none"),
    opt("con", K::Int, "none"),
    opt("dim", K::Int, "none"),
];

/// The server-account arguments of `bootstrap` and `bootstrap_pack`, in the
/// original's order (reference §14.1); `bootstrap` has `finish` before the
/// last one, [`CIPHERSUITES`].
const ACCOUNT: [Param; 13] = [
    req("uri", K::Str),
    opt(
        "security_mode",
        K::Str,
        "from the URI: coap → NoSec, coaps → PreSharedKey",
    ),
    opt("psk_identity", K::Bytes, "none"),
    opt("psk_key", K::Bytes, "none"),
    opt("client_cert_path", K::Str, "none"),
    opt("client_private_key_path", K::Str, "none"),
    opt("server_cert_path", K::Str, "none"),
    opt("ssid", K::Int, "1"),
    opt("is_bootstrap", K::Bool, "0"),
    opt("lifetime", K::Int, "86400"),
    opt("notification_storing", K::Bool, "0"),
    opt("binding", K::Str, "U"),
    opt("iid", K::Int, "1"),
];

/// The last account argument.
const CIPHERSUITES: Param = opt("tls_ciphersuites", K::List, "[]");

/// The arguments of the Created, Deleted and Changed responses.
const LOCATION_REPLY: [Param; 4] = [
    req("msg_id", K::Int),
    req("token", K::Bytes),
    opt("location", K::Str, "none"),
    opt("options", K::Options, "[]"),
];

/// The leading arguments of the three EST-coaps commands.
const EST_HEAD: [Param; 4] = [
    opt("msg_id", K::Int, "auto"),
    opt("token", K::Bytes, "8 random bytes"),
    opt("uri_path", K::Str, "''"),
    opt("uri_query", K::List, "none"),
];

const TIMEOUT: Param = opt("timeout_s", K::Float, "set timeout (5)");

/// Concatenates parameter lists at compile time.
macro_rules! params {
    ($($part:expr),* $(,)?) => {{
        const N: usize = 0 $(+ $part.len())*;
        const P: [Param; N] = {
            let mut out = [req("", K::Any); N];
            let mut i = 0;
            $(
                let part = $part;
                let mut j = 0;
                while j < part.len() {
                    out[i] = part[j];
                    i += 1;
                    j += 1;
                }
            )*
            let _ = i;
            out
        };
        &P
    }};
}

/// The command table.
pub static COMMANDS: &[Command] = &[
    // ---- server-role requests (reference §6.2)
    Command {
        name: "read",
        params: params!(
            [req("path", K::Str), opt("accept", K::Format, "none")],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends a Read (GET) and returns the response.",
        example: "read /3/0 APPLICATION_LWM2M_TLV      |  let r = read(\"/3/0\", #{accept: \"tlv\"});",
        run: requests::read,
    },
    Command {
        name: "observe",
        params: params!(
            [
                req("path", K::Str),
                opt("observe", K::Int, "0"),
                opt("accept", K::Format, "none")
            ],
            ATTRS,
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends an Observe (GET with Observe 0) and returns the first response; observe=1 with the same token cancels.",
        example: "observe /3303/0/5700 pmin=1 pmax=5  |  let first = observe(\"/3/0/13\", #{pmax: 5});",
        run: requests::observe,
    },
    Command {
        name: "cancel_observe",
        params: params!(
            [req("path", K::Str), opt("accept", K::Format, "none")],
            tail!(),
            [TIMEOUT]
        ),
        help: "Cancels the observation of PATH (GET with Observe 1 and the observation's token) and returns the response.",
        example: "cancel_observe /3303/0/5700",
        run: requests::cancel_observe,
    },
    Command {
        name: "discover",
        params: params!(
            [req("path", K::Str), opt("depth", K::Int, "none")],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends a Discover (GET, Accept link-format) and returns the response.",
        example: "discover /3",
        run: requests::discover,
    },
    Command {
        name: "write",
        params: params!(
            [
                req("path", K::Str),
                req("content", K::Bytes),
                opt("format", K::Format, "TEXT_PLAIN"),
                opt("update", K::Bool, "0 (replace: PUT)")
            ],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends a Write: PUT (replace), or POST with update=1 (partial update).",
        example: "write /3/0/14 +02:00  |  write(\"/1/0/1\", \"60\")",
        run: requests::write,
    },
    Command {
        name: "write_file",
        params: params!(
            [
                req("fname", K::Str),
                req("path", K::Str),
                opt("format", K::Format, "APPLICATION_OCTET_STREAM"),
                opt("chunksize", K::Int, "1024")
            ],
            [
                opt("timeout_s", K::Float, "set timeout (5)"),
                opt("update", K::Bool, "0"),
                opt("options", K::Options, "[]")
            ]
        ),
        help: "Pushes a file with Block1 (a Write per block, following the block size the client asks for, Size1 on the first), printing progress; returns the final response.",
        example: "write_file firmware.bin /5/0/0",
        run: requests::write_file,
    },
    Command {
        name: "write_attributes",
        params: params!(
            [req("path", K::Str)],
            ATTRS,
            [opt("query", K::List, "none")],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends a Write-Attributes (PUT with the attributes as Uri-Query); LwM2M 1.2 edge, con, hqmax included.",
        example: "write_attributes /3/0/13 pmin=1 pmax=5",
        run: requests::write_attributes,
    },
    Command {
        name: "execute",
        params: params!(
            [req("path", K::Str), opt("content", K::Bytes, "empty")],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends an Execute (POST, arguments as payload).",
        example: "execute /3/0/4",
        run: requests::execute,
    },
    Command {
        name: "create",
        params: params!(
            [req("path", K::Str), opt("content", K::Bytes, "empty")],
            tail!(),
            [opt("format", K::Format, "APPLICATION_LWM2M_TLV"), TIMEOUT]
        ),
        help: "Sends a Create (POST to an Object path).",
        example: "create /1 \\x08\\x02\\x03\\xc1\\x00\\x02",
        run: requests::create,
    },
    Command {
        name: "delete",
        params: params!([req("path", K::Str)], tail!(), [TIMEOUT]),
        help: "Sends a Delete.",
        example: "delete /1/2",
        run: requests::delete,
    },
    Command {
        name: "read_composite",
        params: params!(
            [req("paths", K::List), opt("accept", K::Format, "none")],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends a Read-Composite (FETCH with a SenML CBOR path list).",
        example: "read_composite [/3/0/0,/1/1]",
        run: requests::read_composite,
    },
    Command {
        name: "observe_composite",
        params: params!(
            [
                req("paths", K::List),
                opt("observe", K::Int, "0"),
                opt("accept", K::Format, "none")
            ],
            ATTRS,
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends an Observe-Composite (FETCH with Observe).",
        example: "observe_composite [/3/0/13,/3303/0/5700]",
        run: requests::observe_composite,
    },
    Command {
        name: "write_composite",
        params: params!(
            [req("content", K::Bytes), req("format", K::Format)],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends a Write-Composite (iPATCH).",
        example: "write_composite \\x81\\xa2\\x00\\x66/1/1/1\\x02\\x18\\x3c senml+cbor",
        run: requests::write_composite,
    },
    Command {
        name: "coap_get",
        params: params!(
            [req("path", K::Str), opt("accept", K::Format, "none")],
            tail!(),
            [TIMEOUT]
        ),
        help: "Sends a plain CoAP GET to any path.",
        example: "coap_get /.well-known/core",
        run: requests::coap_get,
    },
    Command {
        name: "bootstrap",
        params: params!(
            ACCOUNT,
            [opt("finish", K::Bool, "1"), CIPHERSUITES, TIMEOUT]
        ),
        help: "Bootstrap-Writes a Security (/0) and a Server (/1) instance for an LwM2M server, then sends Bootstrap-Finish; returns the responses. PSK identity and key are literal text (or \\x bytes); certificate paths are DER files.",
        example: "bootstrap finish=True ssid=1 uri=coaps://127.0.0.1:9500 security_mode=PreSharedKey psk_identity=user psk_key=password",
        run: requests::bootstrap,
    },
    Command {
        name: "bootstrap_pack",
        params: params!(ACCOUNT, [CIPHERSUITES]),
        help: "Answers the Bootstrap-Pack-Request kept while auto_bspack_error=0 (LwM2M 1.2) with a Security and a Server instance as SenML CBOR.",
        example: "set auto_bspack_error=0  …  bootstrap_pack coap://127.0.0.1:5683 ssid=1",
        run: requests::bootstrap_pack,
    },
    Command {
        name: "bootstrap_finish",
        params: params!(tail!(), [opt("content", K::Bytes, "empty"), TIMEOUT]),
        help: "Sends a Bootstrap-Finish (POST /bs).",
        example: "bootstrap_finish",
        run: requests::bootstrap_finish,
    },
    // ---- client-role requests (§6.1)
    Command {
        name: "register",
        params: params!(
            [req("path", K::Str), opt("query", K::List, "from PATH")],
            tail!(),
            [opt("content", K::Bytes, "empty"), TIMEOUT]
        ),
        help: "Sends a Register (POST, link-format) — for testing servers or as a template.",
        example: "register /rd?ep=test&lt=60 content=</1/0>,</3/0>",
        run: requests::register,
    },
    Command {
        name: "update",
        params: params!(
            [req("path", K::Str), opt("query", K::List, "from PATH")],
            tail!(),
            [opt("content", K::Bytes, "empty"), TIMEOUT]
        ),
        help: "Sends an Update (POST to the registration location).",
        example: "update /rd/1?lt=60",
        run: requests::update,
    },
    Command {
        name: "deregister",
        params: params!([req("path", K::Str)], tail!(), [TIMEOUT]),
        help: "Sends a De-register (DELETE of the registration location).",
        example: "deregister /rd/1",
        run: requests::deregister,
    },
    Command {
        name: "request_bootstrap",
        params: params!(
            [
                req("endpoint_name", K::Str),
                opt("preferred_content_format", K::Int, "none")
            ],
            [
                opt("msg_id", K::Int, "auto"),
                opt("token", K::Bytes, "8 random bytes")
            ],
            [
                opt("uri_path", K::Str, "''"),
                opt("uri_query", K::List, "none"),
                opt("options", K::Options, "[]"),
                opt("content", K::Bytes, "empty"),
                TIMEOUT
            ]
        ),
        help: "Sends a Bootstrap-Request (POST /bs?ep=…).",
        example: "request_bootstrap my_endpoint",
        run: requests::request_bootstrap,
    },
    Command {
        name: "bootstrap_pack_request",
        params: params!(
            [
                req("endpoint_name", K::Str),
                opt("accept", K::Format, "none")
            ],
            [
                opt("msg_id", K::Int, "auto"),
                opt("token", K::Bytes, "8 random bytes")
            ],
            [
                opt("uri_path", K::Str, "''"),
                opt("uri_query", K::List, "none"),
                opt("options", K::Options, "[]"),
                TIMEOUT
            ]
        ),
        help: "Sends a Bootstrap-Pack-Request (GET /bspack?ep=…).",
        example: "bootstrap_pack_request my_endpoint accept=senml+cbor",
        run: requests::bootstrap_pack_request,
    },
    Command {
        name: "send",
        params: params!(
            [
                opt("path", K::Str, "/dp"),
                opt("msg_id", K::Int, "auto"),
                opt("token", K::Bytes, "8 random bytes"),
                opt("format", K::Format, "APPLICATION_LWM2M_SENML_CBOR")
            ],
            [
                opt("options", K::Options, "[]"),
                opt("content", K::Bytes, "empty"),
                TIMEOUT
            ]
        ),
        help: "Sends a Send (POST /dp) — LwM2M 1.1 client-role message.",
        example: "send content=\\x81\\xa2\\x00\\x66/3/0/0\\x03\\x61x",
        run: requests::send,
    },
    Command {
        name: "est_coaps_simple_enroll",
        params: params!(
            EST_HEAD,
            [
                opt("options", K::Options, "[]"),
                opt("content", K::Bytes, "empty"),
                TIMEOUT
            ]
        ),
        help: "Sends an EST-coaps Simple Enroll (POST /est/sen).",
        example: "est_coaps_simple_enroll content=\\x30\\x82",
        run: requests::est_simple_enroll,
    },
    Command {
        name: "est_coaps_simple_reenroll",
        params: params!(
            EST_HEAD,
            [
                opt("options", K::Options, "[]"),
                opt("content", K::Bytes, "empty"),
                TIMEOUT
            ]
        ),
        help: "Sends an EST-coaps Simple Re-enroll (POST /est/sren).",
        example: "est_coaps_simple_reenroll",
        run: requests::est_simple_reenroll,
    },
    Command {
        name: "est_coaps_ca_certs",
        params: params!(EST_HEAD, [opt("options", K::Options, "[]"), TIMEOUT]),
        help: "Sends an EST-coaps CA certs request (GET /est/crts).",
        example: "est_coaps_ca_certs",
        run: requests::est_ca_certs,
    },
    // ---- responses and empty messages (§6.3)
    Command {
        name: "content",
        params: params!(
            [
                req("msg_id", K::Int),
                req("token", K::Bytes),
                opt("content", K::Bytes, "empty"),
                opt("format", K::Format, "none"),
                opt("type", K::Type, "ACKNOWLEDGEMENT")
            ],
            [opt("options", K::Options, "[]")]
        ),
        help: "Sends a 2.05 Content response.",
        example: "content 4920 \\x01\\x02 hello TEXT_PLAIN",
        run: requests::content,
    },
    Command {
        name: "notify",
        params: params!(
            [
                req("token", K::Bytes),
                opt("content", K::Bytes, "empty"),
                opt("format", K::Format, "none"),
                opt("confirmable", K::Bool, "0")
            ],
            [opt("options", K::Options, "[]")]
        ),
        help: "Sends a 2.05 notification (NON, or CON with confirmable=1).",
        example: "notify \\x01\\x02 22.5 options=[OBSERVE(3)]",
        run: requests::notify,
    },
    Command {
        name: "created",
        params: &LOCATION_REPLY,
        help: "Sends a 2.01 Created response (ACK).",
        example: "created 4920 \\x01\\x02 /rd/demo",
        run: requests::created,
    },
    Command {
        name: "deleted",
        params: &LOCATION_REPLY,
        help: "Sends a 2.02 Deleted response (ACK).",
        example: "deleted 4920 \\x01\\x02",
        run: requests::deleted,
    },
    Command {
        name: "changed",
        params: params!(LOCATION_REPLY, [opt("content", K::Bytes, "empty")]),
        help: "Sends a 2.04 Changed response (ACK).",
        example: "changed 4920 \\x01\\x02",
        run: requests::changed,
    },
    Command {
        name: "error_response",
        params: params!([
            req("code", K::Code),
            req("msg_id", K::Int),
            req("token", K::Bytes),
            opt("options", K::Options, "[]")
        ]),
        help: "Sends an error response (class 4 or 5, ACK).",
        example: "error_response 4.04 4920 \\x01\\x02",
        run: requests::error_response,
    },
    Command {
        name: "continue",
        params: params!([
            req("msg_id", K::Int),
            req("token", K::Bytes),
            opt("type", K::Type, "ACKNOWLEDGEMENT"),
            opt("options", K::Options, "[]")
        ]),
        help: "Sends a 2.31 Continue response.",
        example: "continue 4920 \\x01\\x02 options=[BLOCK1(0,1,1024)]",
        run: requests::continue_,
    },
    Command {
        name: "empty",
        params: params!([
            opt("type", K::Type, "ACKNOWLEDGEMENT"),
            opt("msg_id", K::Int, "auto"),
            TIMEOUT
        ]),
        help: "Sends an Empty message; type=CONFIRMABLE is a CoAP ping and waits for the RST.",
        example: "empty type=CONFIRMABLE",
        run: requests::empty,
    },
    Command {
        name: "reset",
        params: params!([opt("msg_id", K::Int, "auto")]),
        help: "Sends a Reset (RST) message.",
        example: "reset 4920",
        run: requests::reset,
    },
    Command {
        name: "coap",
        params: params!(
            [
                opt("type", K::Type, "CONFIRMABLE"),
                opt("code", K::Code, "REQ_GET"),
                opt("msg_id", K::Int, "auto"),
                opt("token", K::Bytes, "''")
            ],
            [
                opt("options", K::Options, "[]"),
                opt("content", K::Bytes, "''"),
                opt("respond", K::Bool, "1"),
                TIMEOUT
            ]
        ),
        help: "Sends a custom CoAP message. With a response code and no msg_id/token it answers the last request received (respond=0 to prevent).",
        example: "coap code=2.05 content=hello  |  coap type=NON_CONFIRMABLE code=GET options=[URI_PATH('3'),URI_PATH('0')] token=\\x01",
        run: requests::coap,
    },
    Command {
        name: "udp",
        params: &[req("content", K::Bytes)],
        help: "Sends a raw UDP datagram to the current client.",
        example: "udp \\x40\\x01\\x00\\x01",
        run: cmd_udp,
    },
    // ---- receiving and testing
    Command {
        name: "recv",
        params: &[opt("timeout_s", K::Float, "set timeout (5)")],
        help: "Returns the next incoming message not yet taken (or () after the timeout).",
        example: "recv 10  |  let m = recv(10);",
        run: cmd_recv,
    },
    Command {
        name: "wait_for",
        params: &[
            req("pattern", K::Any),
            opt("timeout_s", K::Float, "set timeout (5)"),
        ],
        help: "Returns the first incoming message matching PATTERN (a kind name, or a map of fields); others stay queued. Throws, listing what arrived instead, on timeout.",
        example: "let n = wait_for(\"Notify\", 10);  |  wait_for(#{kind: \"Update\", path: \"/rd/1\"}, 30)",
        run: cmd_wait_for,
    },
    Command {
        name: "expect",
        params: &[
            req("msg_code", K::Any),
            opt(
                "timeout_s",
                K::Float,
                "none: check the next message as it arrives",
            ),
        ],
        help: "Arms a check of the next received message: a kind name (Update), a map of fields, None (nothing may arrive) or ANY. With TIMEOUT_S it waits and fails at once.",
        example: "expect Update  |  expect(#{kind: \"Notify\"}, 5)",
        run: cmd_expect,
    },
    Command {
        name: "sleep",
        params: &[req("timeout_s", K::Float)],
        help: "Waits; messages keep being received and auto-answered meanwhile.",
        example: "sleep 2.5",
        run: cmd_sleep,
    },
    // ---- history and payloads
    Command {
        name: "details",
        params: &[opt("idx", K::Int, "1 (the last message)")],
        help: "Shows the N-th last message sent or received in full.",
        example: "details 4",
        run: cmd_details,
    },
    Command {
        name: "history",
        params: &[opt("count", K::Int, "20")],
        help: "Lists the last COUNT messages sent and received (numbered for `details`); returns them, oldest first.",
        example: "history 10",
        run: cmd_history,
    },
    Command {
        name: "reset_history",
        params: &[],
        help: "Clears the message history and the queue of unread messages.",
        example: "reset_history",
        run: cmd_reset_history,
    },
    Command {
        name: "payload_buffer_clear",
        params: &[],
        help: "Clears the payload buffer.",
        example: "payload_buffer_clear",
        run: cmd_pb_clear,
    },
    Command {
        name: "payload_buffer_show",
        params: &[],
        help: "Shows the payload buffer (payloads received since the last clear) as a bytes literal.",
        example: "payload_buffer_show",
        run: cmd_pb_show,
    },
    Command {
        name: "payload_buffer_show_hex",
        params: &[],
        help: "Shows the payload buffer as \\x-escaped hex.",
        example: "payload_buffer_show_hex",
        run: cmd_pb_show_hex,
    },
    Command {
        name: "payload_buffer_show_tlv",
        params: &[],
        help: "Shows the payload buffer decoded as TLV (the original's layout, integers signed).",
        example: "payload_buffer_clear\nread /1/1 APPLICATION_LWM2M_TLV\npayload_buffer_show_tlv",
        run: cmd_pb_show_tlv,
    },
    Command {
        name: "payload_buffer_show_as",
        params: &[req("format", K::Format)],
        help: "Shows the payload buffer decoded as FORMAT, one value a line with object and resource names.",
        example: "payload_buffer_show_as senml+cbor",
        run: cmd_pb_show_as,
    },
    Command {
        name: "payload_buffer_show_senml",
        params: &[],
        help: "Shows the payload buffer decoded as SenML (CBOR, or JSON when it starts with `[`).",
        example: "payload_buffer_show_senml",
        run: cmd_pb_show_senml,
    },
    Command {
        name: "payload_buffer_show_json",
        params: &[],
        help: "Shows the payload buffer decoded as LwM2M JSON (or SenML JSON when it is an array).",
        example: "payload_buffer_show_json",
        run: cmd_pb_show_json,
    },
    Command {
        name: "load_objects",
        params: &[req("path", K::Str)],
        help: "Loads OMA object definitions (LwM2M XML/DDF) from a directory or one file, so values decode with names and types.",
        example: "load_objects ./objects",
        run: cmd_load_objects,
    },
    Command {
        name: "coap_decode",
        params: &[req("data", K::Bytes)],
        help: "Decodes a CoAP datagram and shows its fields.",
        example: "coap_decode \\x60\\x00\\x13\\x38",
        run: cmd_coap_decode,
    },
    Command {
        name: "lwm2m_decode",
        params: &[req("data", K::Bytes)],
        help: "Decodes a CoAP datagram as an LwM2M message and shows it in full.",
        example: "lwm2m_decode \\x40\\x01\\x12\\x34\\xb1\\x33\\x01\\x30",
        run: cmd_lwm2m_decode,
    },
    // ---- connections and clients
    Command {
        name: "listen",
        params: &[
            opt("port", K::Int, "5683, or 5684 with a PSK"),
            opt("psk_identity", K::Str, "command line -i"),
            opt("psk_key", K::Str, "command line -k"),
            opt("ca_path", K::Str, "none"),
            opt("ca_file", K::Str, "none"),
            opt("crt_file", K::Str, "none"),
            opt("key_file", K::Str, "none"),
            opt("ipv6", K::Bool, "command line -6"),
            opt("tcp", K::Bool, "0"),
            opt("debug", K::Bool, "0"),
            opt("connection_id", K::Str, "''"),
        ],
        help: "Listens on PORT for any number of clients: plain UDP, or DTLS 1.2 with a pre-shared key when PSK_IDENTITY and PSK_KEY (literal text) are given. Certificates, Connection ID and TCP are not available yet.",
        example: "listen 9000",
        run: cmd_listen,
    },
    Command {
        name: "file_server",
        params: &[
            opt("root_directory", K::Str, "."),
            opt("port", K::Int, "5683, or 5684 with a PSK"),
            opt("psk_identity", K::Str, "command line -i"),
            opt("psk_key", K::Str, "command line -k"),
            opt("ca_path", K::Str, "none"),
            opt("ca_file", K::Str, "none"),
            opt("crt_file", K::Str, "none"),
            opt("key_file", K::Str, "none"),
            opt("ipv6", K::Bool, "command line -6"),
            opt("debug", K::Bool, "0"),
            opt("background", K::Bool, "0: serve until Ctrl-C"),
        ],
        help: "Serves the files below ROOT_DIRECTORY over CoAP with Block2, until Ctrl-C; with background=1 it serves while the shell goes on (file_server_stop ends it). DTLS arguments are not available yet.",
        example: "file_server . 9000  |  file_server(\"fw\", #{port: 5700, background: true})",
        run: cmd_file_server,
    },
    Command {
        name: "file_server_stop",
        params: &[],
        help: "Stops file servers started with background=1.",
        example: "file_server_stop",
        run: cmd_file_server_stop,
    },
    Command {
        name: "connect",
        params: &[
            opt("host", K::Str, "127.0.0.1"),
            opt("port", K::Int, "5683"),
            opt("bind", K::Int, "0 (any)"),
        ],
        help: "Sends future messages to HOST:PORT (e.g. a client that never registered).",
        example: "connect 127.0.0.1 56830",
        run: cmd_connect,
    },
    Command {
        name: "unconnect",
        params: &[],
        help: "Forgets the current target; the next command needs a registration or `connect`.",
        example: "unconnect",
        run: cmd_unconnect,
    },
    Command {
        name: "clients",
        params: &[],
        help: "Lists registered clients (endpoint, address, location, lifetime, binding, version, seconds since last heard); returns them as maps.",
        example: "clients  |  for c in clients() { print(c.endpoint) }",
        run: cmd_clients,
    },
    Command {
        name: "use_client",
        params: &[req("endpoint", K::Str)],
        help: "Makes ENDPOINT the client that commands go to.",
        example: "use_client sensor-2",
        run: cmd_use_client,
    },
    Command {
        name: "observations",
        params: &[],
        help: "Lists active observations (token, path).",
        example: "observations",
        run: cmd_observations,
    },
    // ---- shell
    Command {
        name: "set",
        params: &[
            opt("auto_update", K::Bool, "unchanged"),
            opt("auto_reregister", K::Bool, "unchanged"),
            opt("auto_bspack_error", K::Bool, "unchanged"),
            opt("auto_ack", K::Bool, "unchanged"),
            opt("auto_deregister", K::Bool, "unchanged"),
            opt("auto_send", K::Bool, "unchanged"),
            opt("print_messages", K::Bool, "unchanged"),
            opt("history_limit", K::Int, "unchanged (100000)"),
            opt("timeout", K::Float, "unchanged (5 s)"),
            opt("retransmit", K::Bool, "unchanged (1)"),
            opt("ack_timeout", K::Float, "unchanged (2 s)"),
            opt("max_retransmit", K::Int, "unchanged (4)"),
        ],
        help: "Switches auto-responses and settings; with no arguments shows the current values.",
        example: "set auto_ack=0  |  set(#{auto_update: false})",
        run: cmd_set,
    },
    Command {
        name: "get_error",
        params: &[],
        help: "Shows the last error in full.",
        example: "get_error",
        run: cmd_get_error,
    },
    Command {
        name: "help",
        params: &[opt("topic", K::Str, "none: list commands")],
        help: "Lists commands, or shows one command's arguments, defaults and an example.",
        example: "help read",
        run: cmd_help,
    },
    Command {
        name: "exit",
        params: &[],
        help: "Leaves nsh (Ctrl-D too).",
        example: "exit",
        run: cmd_exit,
    },
];

fn timeout_arg(ctx: &Ctx, args: &Args, name: &str) -> Result<Duration, String> {
    Ok(args
        .seconds(name)?
        .unwrap_or_else(|| ctx.server.default_timeout()))
}

fn msg(r: crate::server::RecordRef) -> Dynamic {
    Dynamic::from(Msg(r))
}

fn cmd_udp(ctx: &Ctx, args: &Args) -> CmdResult {
    let bytes = args.bytes("content")?.unwrap_or_default();
    ctx.server
        .send_raw(&bytes)
        .map(msg)
        .map_err(|e| e.to_string())
}

fn cmd_recv(ctx: &Ctx, args: &Args) -> CmdResult {
    let timeout = timeout_arg(ctx, args, "timeout_s")?;
    match ctx.server.recv(timeout).map_err(|e| e.to_string())? {
        Some(r) => Ok(msg(r)),
        None => Ok(Dynamic::UNIT),
    }
}

/// A pattern for `wait_for`/`expect`: a kind name, or a map of fields.
pub fn pattern_matcher(pattern: &Dynamic) -> Result<(String, super::pattern::Pattern), String> {
    super::pattern::Pattern::from_dynamic(pattern).map(|p| (p.describe(), p))
}

fn cmd_wait_for(ctx: &Ctx, args: &Args) -> CmdResult {
    let pattern = args.raw("pattern").cloned().unwrap_or_default();
    let (text, p) = pattern_matcher(&pattern)?;
    let timeout = timeout_arg(ctx, args, "timeout_s")?;
    match ctx
        .server
        .wait_inbox(timeout, |r| p.matches(r).is_ok())
        .map_err(|e| e.to_string())?
    {
        Ok(r) => Ok(msg(r)),
        Err(others) => {
            let mut s = format!(
                "wait_for: no message matching {text} within {:.1} s",
                timeout.as_secs_f64()
            );
            if others.is_empty() {
                s.push_str("; nothing else arrived");
            } else {
                s.push_str("; arrived instead:");
                for r in others.iter().take(10) {
                    s.push_str(&format!("\n  {}", r.line()));
                    if let Err(why) = p.matches(r) {
                        s.push_str(&format!("  [{}]", why.join("; ")));
                    }
                }
            }
            Err(s)
        }
    }
}

fn cmd_expect(ctx: &Ctx, args: &Args) -> CmdResult {
    let pattern = args.raw("msg_code").cloned().unwrap_or_default();
    let text = super::args::dyn_text(&pattern);
    if args.has("timeout_s") {
        return cmd_wait_for(
            ctx,
            &Args::bind(
                "wait_for",
                find("wait_for").map_or(&[], |c| c.params),
                vec![pattern, args.raw("timeout_s").cloned().unwrap_or_default()],
                vec![],
            )?,
        );
    }
    match text.trim() {
        "ANY" | "any" => {
            ctx.server.expect(None);
            ctx.say("Expecting: ANY");
        }
        "None" | "none" if pattern.is_string() || pattern.is_unit() => {
            ctx.server.expect(Some(crate::server::Expectation::Nothing));
            ctx.say("Expecting: None");
        }
        _ => {
            let (desc, p) = pattern_matcher(&pattern)?;
            let p = std::sync::Arc::new(p);
            ctx.say(&format!("Expecting: {desc}"));
            ctx.server.expect(Some(crate::server::Expectation::Matching(
                desc,
                std::sync::Arc::new(move |r: &crate::server::Record| p.matches(r)),
            )));
        }
    }
    Ok(Dynamic::UNIT)
}

fn cmd_sleep(ctx: &Ctx, args: &Args) -> CmdResult {
    let d = timeout_arg(ctx, args, "timeout_s")?;
    let end = std::time::Instant::now() + d;
    let flag = ctx.server.interrupt_flag();
    while std::time::Instant::now() < end {
        if flag.load(Ordering::SeqCst) {
            return Err("interrupted".into());
        }
        std::thread::sleep((end - std::time::Instant::now()).min(Duration::from_millis(20)));
    }
    Ok(Dynamic::UNIT)
}

fn cmd_details(ctx: &Ctx, args: &Args) -> CmdResult {
    let n = args.int("idx")?.unwrap_or(1);
    match usize::try_from(n)
        .ok()
        .and_then(|n| ctx.server.history_entry(n))
    {
        Some(r) => {
            ctx.say(&r.details());
            Ok(Dynamic::UNIT)
        }
        None => Err("message not found".into()),
    }
}

fn cmd_history(ctx: &Ctx, args: &Args) -> CmdResult {
    let count = args.int("count")?.unwrap_or(20).max(0) as usize;
    let all = ctx.server.history();
    let total = all.len();
    let recent = &all[total.saturating_sub(count)..];
    if ctx.interactive {
        for (i, r) in recent.iter().enumerate() {
            ctx.say(&format!(
                "{:>4}  {}  {}",
                recent.len() - i,
                r.peer,
                r.line()
            ));
        }
    }
    Ok(Dynamic::from_array(
        recent.iter().cloned().map(msg).collect(),
    ))
}

fn cmd_reset_history(ctx: &Ctx, _: &Args) -> CmdResult {
    ctx.server.reset_history();
    Ok(Dynamic::UNIT)
}

fn cmd_pb_clear(ctx: &Ctx, _: &Args) -> CmdResult {
    ctx.server.payload_buffer_clear();
    Ok(Dynamic::UNIT)
}

fn cmd_pb_show(ctx: &Ctx, _: &Args) -> CmdResult {
    let b = ctx.server.payload_buffer();
    ctx.say(&escaped::format_python_bytes(&b));
    Ok(Dynamic::from_blob(b))
}

fn cmd_pb_show_hex(ctx: &Ctx, _: &Args) -> CmdResult {
    let b = ctx.server.payload_buffer();
    ctx.say(&escaped::format_hex(&b));
    Ok(Dynamic::from_blob(b))
}

fn cmd_pb_show_tlv(ctx: &Ctx, _: &Args) -> CmdResult {
    let b = ctx.server.payload_buffer();
    match crate::lwm2m::format::tlv::decode_elements(&b) {
        Ok(elements) => {
            ctx.say(&crate::lwm2m::format::tlv::render(&elements));
            Ok(Dynamic::UNIT)
        }
        Err((_, e)) => Err(format!(
            "not TLV: {e} (payload_buffer_clear, then read with APPLICATION_LWM2M_TLV)"
        )),
    }
}

fn show_buffer_as(ctx: &Ctx, format: crate::coap::ContentFormat) -> CmdResult {
    let b = ctx.server.payload_buffer();
    let registry = crate::lwm2m::registry();
    match crate::lwm2m::format::decode(format.0, &b, None, &registry) {
        Ok(d) => {
            let text = d.render(&registry);
            ctx.say(&format!(
                "{} ({} bytes):\n{}",
                format.summary_name(),
                b.len(),
                text.trim_end()
            ));
            Ok(Dynamic::UNIT)
        }
        Err(e) => {
            let mut msg = format!("not {}: {e}", format.summary_name());
            if let Some(p) = &e.partial {
                msg.push_str(&format!(
                    "\ndecoded before the error:\n{}",
                    p.render(&registry).trim_end()
                ));
            }
            Err(msg)
        }
    }
}

fn cmd_pb_show_as(ctx: &Ctx, args: &Args) -> CmdResult {
    let f = args.format("format")?.unwrap_or_default();
    show_buffer_as(ctx, f)
}

fn starts_with_bracket(ctx: &Ctx) -> bool {
    ctx.server
        .payload_buffer()
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'[')
}

fn cmd_pb_show_senml(ctx: &Ctx, _: &Args) -> CmdResult {
    use crate::coap::ContentFormat as F;
    show_buffer_as(
        ctx,
        if starts_with_bracket(ctx) {
            F::SENML_JSON
        } else {
            F::SENML_CBOR
        },
    )
}

fn cmd_pb_show_json(ctx: &Ctx, _: &Args) -> CmdResult {
    use crate::coap::ContentFormat as F;
    show_buffer_as(
        ctx,
        if starts_with_bracket(ctx) {
            F::SENML_JSON
        } else {
            F::LWM2M_JSON
        },
    )
}

fn cmd_load_objects(ctx: &Ctx, args: &Args) -> CmdResult {
    let path = args.str("path")?.unwrap_or_default();
    let p = std::path::Path::new(&path);
    let mut registry = crate::lwm2m::registry_mut();
    let loaded = if p.is_dir() {
        registry.load_dir(p)
    } else {
        registry.load_file(p)
    }
    .map_err(|e| format!("{}: {}", e.source_name, e.reason))?;
    drop(registry);
    ctx.say(&format!(
        "loaded {} object definition(s): {:?}",
        loaded.len(),
        loaded
    ));
    Ok(Dynamic::from_array(
        loaded
            .into_iter()
            .map(|id| Dynamic::from_int(i64::from(id)))
            .collect(),
    ))
}

fn cmd_coap_decode(ctx: &Ctx, args: &Args) -> CmdResult {
    let data = args.bytes("data")?.unwrap_or_default();
    let m = udp::decode(&data).map_err(|e| format!("invalid CoAP message: {e}"))?;
    ctx.say(&m.render_packet());
    Ok(Dynamic::UNIT)
}

fn cmd_lwm2m_decode(ctx: &Ctx, args: &Args) -> CmdResult {
    let data = args.bytes("data")?.unwrap_or_default();
    match udp::decode(&data) {
        Ok(m) => {
            let k = kind::classify(&m, &kind::NoContext);
            ctx.say(&crate::lwm2m::details::details(
                &m,
                k,
                &crate::lwm2m::render_payload,
            ));
            Ok(Dynamic::UNIT)
        }
        Err(e) => Err(crate::lwm2m::details::details_of_undecodable(&data, &e)),
    }
}

fn cmd_listen(ctx: &Ctx, args: &Args) -> CmdResult {
    for p in ["ca_path", "ca_file", "crt_file", "key_file"] {
        if args.str(p)?.is_some_and(|s| !s.is_empty()) {
            return Err(format!(
                "listen: `{p}`: DTLS with certificates is not available in this version of nsh (PSK is)"
            ));
        }
    }
    if args.str("connection_id")?.is_some_and(|s| !s.is_empty()) {
        return Err(
            "listen: `connection_id`: DTLS Connection ID is not available in this version of nsh"
                .into(),
        );
    }
    // Like the original: each falls back to the command line's value.
    let default = ctx.server.default_psk();
    let identity = args
        .str("psk_identity")?
        .filter(|s| !s.is_empty())
        .or_else(|| default.as_ref().map(|p| p.identity.clone()));
    let key = args
        .str("psk_key")?
        .filter(|s| !s.is_empty())
        .map(String::into_bytes)
        .or_else(|| default.as_ref().map(|p| p.key.clone()));
    let psk = match (identity, key) {
        (Some(identity), Some(key)) => Some(crate::transport::Psk { identity, key }),
        (None, None) => None,
        (Some(_), None) => return Err("listen: `psk_identity` needs `psk_key` too".into()),
        (None, Some(_)) => return Err("listen: `psk_key` needs `psk_identity` too".into()),
    };
    // Like the original, the command line's --tcp cannot be turned off.
    let tcp = args.bool("tcp")? == Some(true) || ctx.server.default_tcp();
    if tcp && psk.is_some() {
        return Err(
            "listen: `tcp` cannot be used with a PSK: CoAP over TLS is not available in this version of nsh"
                .into(),
        );
    }
    if args.bool("debug")? == Some(true) {
        return Err("listen: `debug`: there is no DTLS debug output without DTLS".into());
    }
    let port = args
        .int_in::<u16>("port")?
        .unwrap_or(if psk.is_some() { 5684 } else { 5683 });
    let ipv6 = args.bool("ipv6")?.unwrap_or(ctx.ipv6);
    let bound = if tcp {
        ctx.server.listen_tcp(port, ipv6)
    } else {
        ctx.server.listen_secure(port, ipv6, psk.as_ref())
    }
    .map_err(|e| format!("could not listen on port {port} ({e})"))?;
    ctx.say(&format!(
        "listening on {} port {bound}{}",
        match &psk {
            Some(p) => format!("DTLS (PSK identity `{}`)", p.identity),
            None if tcp => "TCP".into(),
            None => "UDP".into(),
        },
        if ipv6 { " (IPv6 and IPv4)" } else { "" }
    ));
    Ok(Dynamic::from_int(i64::from(bound)))
}

fn cmd_file_server(ctx: &Ctx, args: &Args) -> CmdResult {
    for p in [
        "psk_identity",
        "psk_key",
        "ca_path",
        "ca_file",
        "crt_file",
        "key_file",
    ] {
        if args.str(p)?.is_some_and(|s| !s.is_empty()) {
            return Err(format!(
                "`{p}`: DTLS is not available in this version of nsh"
            ));
        }
    }
    if args.bool("debug")? == Some(true) {
        return Err("`debug`: there is no DTLS debug output without DTLS".into());
    }
    let root = args.str("root_directory")?.unwrap_or_else(|| ".".into());
    let port = args.int_in::<u16>("port")?.unwrap_or(5683);
    let ipv6 = args.bool("ipv6")?.unwrap_or(ctx.ipv6);
    let server = ctx.server.clone();
    let print: std::sync::Arc<dyn Fn(&str) + Send + Sync> =
        std::sync::Arc::new(move |l: &str| server.print(l));
    let fs = crate::fileserver::FileServer::start(std::path::Path::new(&root), port, ipv6, print)
        .map_err(|e| format!("cannot serve {root} on port {port}: {e}"))?;
    let shown = std::fs::canonicalize(&root).map_or(root.clone(), |p| p.display().to_string());
    ctx.say(&format!(
        "Serving directory {shown} on port {}...",
        fs.port()
    ));
    let bound = i64::from(fs.port());
    if args.bool("background")?.unwrap_or(false) {
        ctx.file_servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fs);
        return Ok(Dynamic::from_int(bound));
    }
    ctx.say("Press CTRL-C to stop");
    let flag = ctx.server.interrupt_flag();
    while !flag.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    flag.store(false, Ordering::SeqCst);
    fs.stop();
    ctx.say("file server stopped");
    Ok(Dynamic::from_int(bound))
}

fn cmd_file_server_stop(ctx: &Ctx, _: &Args) -> CmdResult {
    let servers: Vec<_> = ctx
        .file_servers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .collect();
    let n = servers.len();
    for s in servers {
        s.stop();
    }
    ctx.say(&format!("stopped {n} file server(s)"));
    Ok(Dynamic::UNIT)
}

fn cmd_connect(ctx: &Ctx, args: &Args) -> CmdResult {
    let host = args.str("host")?.unwrap_or_else(|| {
        if ctx.ipv6 {
            "::1".into()
        } else {
            "127.0.0.1".into()
        }
    });
    let port = args.int_in::<u16>("port")?.unwrap_or(5683);
    let bind = args.int_in::<u16>("bind")?.unwrap_or(0);
    let addr = ctx
        .server
        .connect(&host, port, bind)
        .map_err(|e| e.to_string())?;
    ctx.say(&format!("new remote endpoint: {addr}"));
    Ok(Dynamic::UNIT)
}

fn cmd_unconnect(ctx: &Ctx, _: &Args) -> CmdResult {
    ctx.server.unconnect();
    Ok(Dynamic::UNIT)
}

fn client_map(c: &crate::server::Client, current: bool) -> Dynamic {
    let mut m = Map::new();
    let r = &c.registration;
    m.insert("endpoint".into(), c.endpoint.clone().into());
    m.insert("peer".into(), c.peer.to_string().into());
    m.insert("location".into(), c.location.clone().into());
    m.insert(
        "lifetime".into(),
        Dynamic::from_int(i64::from(r.lifetime_or_default())),
    );
    m.insert("binding".into(), r.binding_or_default().to_string().into());
    m.insert("version".into(), r.version_or_default().to_string().into());
    m.insert("current".into(), Dynamic::from_bool(current));
    let ago = |t: std::time::SystemTime| t.elapsed().map_or(0.0, |d| d.as_secs_f64());
    m.insert("last_seen_s".into(), Dynamic::from_float(ago(c.last_seen)));
    m.insert(
        "registered_s".into(),
        Dynamic::from_float(ago(c.registered_at)),
    );
    m.insert(
        "links".into(),
        Dynamic::from_array(r.links().iter().map(super::values::link_map).collect()),
    );
    Dynamic::from_map(m)
}

fn cmd_clients(ctx: &Ctx, _: &Args) -> CmdResult {
    let current = ctx.server.current_client();
    let clients = ctx.server.clients();
    if ctx.interactive {
        if clients.is_empty() {
            ctx.say("no registered clients");
        }
        for c in &clients {
            let mark = if current.as_deref() == Some(c.endpoint.as_str()) {
                "*"
            } else {
                " "
            };
            let r = &c.registration;
            ctx.say(&format!(
                "{mark} {}  {}  {}  lt={} b={} lwm2m={}  {} object links, last heard {:.0} s ago",
                c.endpoint,
                c.peer,
                c.location,
                r.lifetime_or_default(),
                r.binding_or_default(),
                r.version_or_default(),
                r.links().len(),
                c.last_seen.elapsed().map_or(0.0, |d| d.as_secs_f64())
            ));
        }
    }
    Ok(Dynamic::from_array(
        clients
            .iter()
            .map(|c| client_map(c, current.as_deref() == Some(c.endpoint.as_str())))
            .collect(),
    ))
}

fn cmd_use_client(ctx: &Ctx, args: &Args) -> CmdResult {
    let ep = args.str("endpoint")?.unwrap_or_default();
    let c = ctx.server.use_client(&ep).map_err(|e| e.to_string())?;
    ctx.say(&format!("current client: {} ({})", c.endpoint, c.peer));
    Ok(client_map(&c, true))
}

fn cmd_observations(ctx: &Ctx, _: &Args) -> CmdResult {
    let obs = ctx.server.observations();
    if ctx.interactive {
        if obs.is_empty() {
            ctx.say("no active observations");
        }
        for (token, path) in &obs {
            ctx.say(&format!("{path}  token {}", escaped::format_hex(token)));
        }
    }
    Ok(Dynamic::from_array(
        obs.into_iter()
            .map(|(t, p)| {
                let mut m = Map::new();
                m.insert("token".into(), Dynamic::from_blob(t));
                m.insert("path".into(), p.into());
                Dynamic::from_map(m)
            })
            .collect(),
    ))
}

fn cmd_set(ctx: &Ctx, args: &Args) -> CmdResult {
    let mut f = ctx.server.flags();
    let mut any = false;
    let mut announce = Vec::new();
    for (name, slot, label) in [
        (
            "auto_reregister",
            &mut f.auto_reregister as &mut bool,
            "Auto register responses",
        ),
        ("auto_update", &mut f.auto_update, "Auto update responses"),
        (
            "auto_bspack_error",
            &mut f.auto_bspack_error,
            "Auto Bootstrap Pack error responses",
        ),
        ("auto_ack", &mut f.auto_ack, "Auto 0.00 ACK responses"),
        (
            "auto_deregister",
            &mut f.auto_deregister,
            "Auto de-register responses",
        ),
        ("auto_send", &mut f.auto_send, "Auto send responses"),
        (
            "print_messages",
            &mut f.print_messages,
            "Printing of messages",
        ),
    ] {
        if let Some(v) = args.bool(name)? {
            *slot = v;
            any = true;
            announce.push(format!(
                "{label} {}",
                if v { "enabled" } else { "disabled" }
            ));
        }
    }
    ctx.server.set_flags(f);
    if let Some(t) = args.seconds("timeout")? {
        ctx.server.set_default_timeout(t);
        announce.push(format!("Request timeout {} s", t.as_secs_f64()));
        any = true;
    }
    if let Some(n) = args.int("history_limit")? {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("set: `history_limit`: {n} must be at least 1"))?;
        ctx.server.set_history_limit(n);
        announce.push(format!("History keeps the last {n} messages"));
        any = true;
    }
    let mut tp = ctx.server.transmission();
    let mut tp_changed = false;
    if let Some(r) = args.bool("retransmit")? {
        tp.retransmit = r;
        tp_changed = true;
    }
    if let Some(a) = args.seconds("ack_timeout")? {
        if a.is_zero() {
            return Err("set: `ack_timeout`: 0 must be a positive number of seconds".into());
        }
        tp.ack_timeout = a;
        tp_changed = true;
    }
    if let Some(m) = args.int_in::<u32>("max_retransmit")? {
        tp.max_retransmit = m;
        tp_changed = true;
    }
    if tp_changed {
        ctx.server.set_transmission(tp.clone());
        announce.push(format!(
            "Retransmission {} (ACK_TIMEOUT {} s, MAX_RETRANSMIT {})",
            if tp.retransmit { "enabled" } else { "disabled" },
            tp.ack_timeout.as_secs_f64(),
            tp.max_retransmit
        ));
        any = true;
    }
    if !any {
        let f = ctx.server.flags();
        let tp = ctx.server.transmission();
        let on = |b: bool| if b { 1 } else { 0 };
        ctx.say(&format!(
            "auto_update={} auto_reregister={} auto_bspack_error={} auto_ack={} auto_deregister={} auto_send={} print_messages={}\ntimeout={} retransmit={} ack_timeout={} max_retransmit={} history_limit={}",
            on(f.auto_update),
            on(f.auto_reregister),
            on(f.auto_bspack_error),
            on(f.auto_ack),
            on(f.auto_deregister),
            on(f.auto_send),
            on(f.print_messages),
            ctx.server.default_timeout().as_secs_f64(),
            on(tp.retransmit),
            tp.ack_timeout.as_secs_f64(),
            tp.max_retransmit,
            ctx.server.history_limit()
        ));
    }
    for line in announce {
        ctx.say(&line);
    }
    Ok(Dynamic::UNIT)
}

fn cmd_get_error(ctx: &Ctx, _: &Args) -> CmdResult {
    let e = ctx.last_error();
    ctx.say(e.as_deref().unwrap_or("no errors"));
    Ok(e.map_or(Dynamic::UNIT, Into::into))
}

fn cmd_help(ctx: &Ctx, args: &Args) -> CmdResult {
    match args.str("topic")? {
        None => ctx.say(&general_help()),
        Some(t) if t == "tlv" || t == "cbor" => ctx.say(&subshell_help(&t)),
        Some(t) => match find(&t) {
            Some(c) => ctx.say(&c.help_text()),
            None => {
                let close: Vec<&str> = COMMANDS
                    .iter()
                    .map(|c| c.name)
                    .filter(|n| n.contains(t.as_str()))
                    .collect();
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
            super::builders::TLV_COMMANDS,
            "TLV (application/vnd.oma.lwm2m+tlv)",
            "tlv",
        )
    } else {
        (super::builders::CBOR_COMMANDS, "SenML CBOR", "senml_cbor")
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
    s.push_str(
        "\nAt the prompt type commands as in the original nsh (`read /3/0 tlv`) or Rhai (`let r = read(\"/3/0\"); print(r.value)`).\n\
         Message fields in Rhai: kind type code code_name msg_id token options path query location content_format accept\n\
         observe block1 block2 payload text value peer; methods summary() details(). Assertions: assert(c, msg) assert_eq(a, b)\n\
         assert_ne(a, b) assert_match(msg, pattern). `tlv` and `cbor` open payload builders.",
    );
    s
}

fn cmd_exit(ctx: &Ctx, _: &Args) -> CmdResult {
    ctx.exit.store(true, Ordering::SeqCst);
    ctx.say("exiting");
    Ok(Dynamic::UNIT)
}
