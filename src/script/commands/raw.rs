//! Raw CoAP: responses (`content`, `created`, `deleted`, `changed`,
//! `error_response`, `continue`), `empty` and `reset`, `coap_get`, `coap`
//! (any message exactly as given) and `udp` (any datagram). In the
//! single-definition form ([`command!`]).

use std::time::Duration;

use rhai::Dynamic;

use crate::coap::{CoapOption, Code, ContentFormat, Type};
use crate::lwm2m::request::{self as rq, Build};
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::message::Msg;
use crate::script::send::{Header, Payload, SET_TIMEOUT, err, msg, send};
use crate::script::typed::command;
use crate::server::SendOptions;

command! {
    /// `coap_get`.
    pub(super) const COAP_GET = "coap_get";
    /// The arguments of `coap_get`.
    struct CoapGetArgs {
        path: String = req(Str),
        accept: Option<ContentFormat> = opt(Format, "none"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a plain CoAP GET to any path.",
    example: "coap_get /.well-known/core",
    run: coap_get,
}

command! {
    /// `content`.
    pub(super) const CONTENT = "content";
    /// The arguments of `content`.
    struct ContentArgs {
        msg_id: Option<u16> = req(Int),
        token: Option<Vec<u8>> = req(Bytes),
        content: Payload = opt(Bytes, "empty"),
        format: Option<ContentFormat> = opt(Format, "none"),
        r#type: Option<Type> = opt(Type, "ACKNOWLEDGEMENT"),
        options: Vec<CoapOption> = opt(Options, "[]"),
    }
    help: "Sends a 2.05 Content response.",
    example: "content 4920 \\x01\\x02 hello TEXT_PLAIN",
    run: content,
}

command! {
    /// `created`.
    pub(super) const CREATED = "created";
    /// The arguments of `created` and `deleted`.
    struct LocationReply {
        msg_id: Option<u16> = req(Int),
        token: Option<Vec<u8>> = req(Bytes),
        location: Option<String> = opt(Str, "none"),
        options: Vec<CoapOption> = opt(Options, "[]"),
    }
    help: "Sends a 2.01 Created response (ACK).",
    example: "created 4920 \\x01\\x02 /rd/demo",
    run: created,
}

command! {
    /// `deleted`.
    pub(super) const DELETED = "deleted";
    args: LocationReply,
    help: "Sends a 2.02 Deleted response (ACK).",
    example: "deleted 4920 \\x01\\x02",
    run: deleted,
}

command! {
    /// `changed`.
    pub(super) const CHANGED = "changed";
    /// The arguments of `changed`.
    struct ChangedArgs {
        ..reply: LocationReply,
        content: Vec<u8> = opt(Bytes, "empty"),
    }
    help: "Sends a 2.04 Changed response (ACK).",
    example: "changed 4920 \\x01\\x02",
    run: changed,
}

command! {
    /// `error_response`.
    pub(super) const ERROR_RESPONSE = "error_response";
    /// The arguments of `error_response`.
    struct ErrorResponseArgs {
        code: Option<Code> = req(Code),
        msg_id: Option<u16> = req(Int),
        token: Option<Vec<u8>> = req(Bytes),
        options: Vec<CoapOption> = opt(Options, "[]"),
    }
    help: "Sends an error response (class 4 or 5, ACK).",
    example: "error_response 4.04 4920 \\x01\\x02",
    run: error_response,
}

command! {
    /// `continue`.
    pub(super) const CONTINUE = "continue";
    /// The arguments of `continue`.
    struct ContinueArgs {
        msg_id: Option<u16> = req(Int),
        token: Option<Vec<u8>> = req(Bytes),
        r#type: Option<Type> = opt(Type, "ACKNOWLEDGEMENT"),
        options: Vec<CoapOption> = opt(Options, "[]"),
    }
    help: "Sends a 2.31 Continue response.",
    example: "continue 4920 \\x01\\x02 options=[BLOCK1(0,1,1024)]",
    run: continue_,
}

command! {
    /// `empty`.
    pub(super) const EMPTY = "empty";
    /// The arguments of `empty`.
    struct EmptyArgs {
        r#type: Option<Type> = opt(Type, "ACKNOWLEDGEMENT"),
        msg_id: Option<u16> = opt(Int, "auto"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends an Empty message; type=CONFIRMABLE is a CoAP ping and waits for the RST.",
    example: "empty type=CONFIRMABLE",
    run: empty,
}

command! {
    /// `reset`.
    pub(super) const RESET = "reset";
    /// The arguments of `reset`.
    struct ResetArgs {
        msg_id: Option<u16> = opt(Int, "auto"),
    }
    help: "Sends a Reset (RST) message.",
    example: "reset 4920",
    run: reset,
}

command! {
    /// `coap`.
    pub(super) const COAP = "coap";
    /// The arguments of `coap`.
    struct CoapArgs {
        r#type: Option<Type> = opt(Type, "CONFIRMABLE"),
        code: Option<Code> = opt(Code, "REQ_GET"),
        msg_id: Option<u16> = opt(Int, "auto"),
        token: Option<Vec<u8>> = opt(Bytes, "''"),
        options: Vec<CoapOption> = opt(Options, "[]"),
        content: Vec<u8> = opt(Bytes, "''"),
        respond: Option<bool> = opt(Bool, "1"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a custom CoAP message. With a response code and no msg_id/token it answers the last request received (respond=0 to prevent).",
    example: "coap code=2.05 content=hello  |  coap type=NON_CONFIRMABLE code=GET options=[URI_PATH('3'),URI_PATH('0')] token=\\x01",
    run: coap,
}

command! {
    /// `udp`.
    pub(super) const UDP = "udp";
    /// The arguments of `udp`.
    struct UdpArgs {
        content: Vec<u8> = req(Bytes),
    }
    help: "Sends a raw UDP datagram to the current client.",
    example: "udp \\x40\\x01\\x00\\x01",
    run: udp,
}

fn coap_get(ctx: &Ctx, a: CoapGetArgs) -> CmdResult {
    let b = rq::CoapGet {
        path: a.path,
        accept: a.accept,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn content(ctx: &Ctx, a: ContentArgs) -> CmdResult {
    let (content, format) = a.content.encode(
        a.format,
        ContentFormat::LWM2M_TLV,
        &ctx.server.objects().read(),
    )?;
    let b = rq::Content {
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        content,
        format,
        r#type: a.r#type,
    };
    send(ctx, None, b.build().map_err(err)?)
}

impl LocationReply {
    fn response(self, content: Vec<u8>) -> rq::LocationResponse {
        rq::LocationResponse {
            header: rq::Header {
                msg_id: self.msg_id,
                token: self.token,
                options: self.options,
            },
            location: self.location,
            content,
        }
    }
}

fn created(ctx: &Ctx, a: LocationReply) -> CmdResult {
    let b = rq::Created(a.response(Vec::new()));
    send(ctx, None, b.build().map_err(err)?)
}

fn deleted(ctx: &Ctx, a: LocationReply) -> CmdResult {
    let b = rq::Deleted(a.response(Vec::new()));
    send(ctx, None, b.build().map_err(err)?)
}

fn changed(ctx: &Ctx, a: ChangedArgs) -> CmdResult {
    let b = rq::Changed(a.reply.response(a.content));
    send(ctx, None, b.build().map_err(err)?)
}

fn error_response(ctx: &Ctx, a: ErrorResponseArgs) -> CmdResult {
    let b = rq::ErrorResponse {
        code: a.code.unwrap_or_default(),
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        content: Vec::new(),
    };
    send(ctx, None, b.build().map_err(err)?)
}

fn continue_(ctx: &Ctx, a: ContinueArgs) -> CmdResult {
    let b = rq::Continue {
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        r#type: a.r#type,
    };
    send(ctx, None, b.build().map_err(err)?)
}

fn empty(ctx: &Ctx, a: EmptyArgs) -> CmdResult {
    let b = rq::Empty {
        r#type: a.r#type,
        msg_id: a.msg_id,
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn reset(ctx: &Ctx, a: ResetArgs) -> CmdResult {
    let b = rq::Reset { msg_id: a.msg_id };
    send(ctx, None, b.build().map_err(err)?)
}

fn coap(ctx: &Ctx, a: CoapArgs) -> CmdResult {
    let b = rq::Coap {
        r#type: a.r#type,
        code: a.code,
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        content: a.content,
        respond: a.respond,
    };
    if b.should_respond() {
        let request = ctx
            .server
            .last_received_request()
            .ok_or("no request to respond to")?;
        let req_msg = request.message.as_ref().map_err(|e| e.to_string())?;
        ctx.say(&format!("responding to: {}", request.summary()));
        let built = b.respond_to(req_msg);
        let to = request.peer;
        let opts = SendOptions {
            fill_message_id: built.needs_msg_id,
            fill_token: false,
            wait: None,
        };
        let sent = ctx
            .server
            .send_to(to, built.message, opts)
            .map_err(|e| e.to_string())?;
        return Ok(sent.sent.map_or(Dynamic::UNIT, |r| Dynamic::from(Msg(r))));
    }
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn udp(ctx: &Ctx, a: UdpArgs) -> CmdResult {
    ctx.server
        .send_raw(&a.content)
        .map(msg)
        .map_err(|e| e.to_string())
}
