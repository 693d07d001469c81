//! Raw CoAP: responses (`content`, `created`, `deleted`, `changed`,
//! `error_response`, `continue`), `empty` and `reset`, `coap_get`, `coap`
//! (any message exactly as given) and `udp` (any datagram).

use rhai::Dynamic;

use crate::coap::ContentFormat;
use crate::lwm2m::request::{self as rq, Build};
use crate::script::Ctx;
use crate::script::args::{Args, Kind as K, opt, req};
use crate::script::command::{CmdResult, Command, LOCATION_REPLY, TIMEOUT, params, tail};
use crate::script::message::Msg;
use crate::script::send::{go, msg, path, payload, tail};
use crate::server::SendOptions;

/// `coap_get`.
pub(super) const COAP_GET: Command = Command {
    name: "coap_get",
    params: params!(
        [req("path", K::Str), opt("accept", K::Format, "none")],
        tail!(),
        [TIMEOUT]
    ),
    help: "Sends a plain CoAP GET to any path.",
    example: "coap_get /.well-known/core",
    run: coap_get,
};

/// `content`.
pub(super) const CONTENT: Command = Command {
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
    run: content,
};

/// `created`.
pub(super) const CREATED: Command = Command {
    name: "created",
    params: &LOCATION_REPLY,
    help: "Sends a 2.01 Created response (ACK).",
    example: "created 4920 \\x01\\x02 /rd/demo",
    run: created,
};

/// `deleted`.
pub(super) const DELETED: Command = Command {
    name: "deleted",
    params: &LOCATION_REPLY,
    help: "Sends a 2.02 Deleted response (ACK).",
    example: "deleted 4920 \\x01\\x02",
    run: deleted,
};

/// `changed`.
pub(super) const CHANGED: Command = Command {
    name: "changed",
    params: params!(LOCATION_REPLY, [opt("content", K::Bytes, "empty")]),
    help: "Sends a 2.04 Changed response (ACK).",
    example: "changed 4920 \\x01\\x02",
    run: changed,
};

/// `error_response`.
pub(super) const ERROR_RESPONSE: Command = Command {
    name: "error_response",
    params: params!([
        req("code", K::Code),
        req("msg_id", K::Int),
        req("token", K::Bytes),
        opt("options", K::Options, "[]")
    ]),
    help: "Sends an error response (class 4 or 5, ACK).",
    example: "error_response 4.04 4920 \\x01\\x02",
    run: error_response,
};

/// `continue`.
pub(super) const CONTINUE: Command = Command {
    name: "continue",
    params: params!([
        req("msg_id", K::Int),
        req("token", K::Bytes),
        opt("type", K::Type, "ACKNOWLEDGEMENT"),
        opt("options", K::Options, "[]")
    ]),
    help: "Sends a 2.31 Continue response.",
    example: "continue 4920 \\x01\\x02 options=[BLOCK1(0,1,1024)]",
    run: continue_,
};

/// `empty`.
pub(super) const EMPTY: Command = Command {
    name: "empty",
    params: params!([
        opt("type", K::Type, "ACKNOWLEDGEMENT"),
        opt("msg_id", K::Int, "auto"),
        TIMEOUT
    ]),
    help: "Sends an Empty message; type=CONFIRMABLE is a CoAP ping and waits for the RST.",
    example: "empty type=CONFIRMABLE",
    run: empty,
};

/// `reset`.
pub(super) const RESET: Command = Command {
    name: "reset",
    params: params!([opt("msg_id", K::Int, "auto")]),
    help: "Sends a Reset (RST) message.",
    example: "reset 4920",
    run: reset,
};

/// `coap`.
pub(super) const COAP: Command = Command {
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
    run: coap,
};

/// `udp`.
pub(super) const UDP: Command = Command {
    name: "udp",
    params: &[req("content", K::Bytes)],
    help: "Sends a raw UDP datagram to the current client.",
    example: "udp \\x40\\x01\\x00\\x01",
    run: cmd_udp,
};

fn coap_get(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::CoapGet {
        path: path(a)?,
        accept: a.format("accept")?,
        header: t,
    };
    go(ctx, a, b.build())
}

fn content(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let (content, format) = payload(a, "content", a.format("format")?, ContentFormat::LWM2M_TLV)?;
    let b = rq::Content {
        header: t,
        content,
        format,
        r#type: a.mtype("type")?,
    };
    go(ctx, a, b.build())
}

fn created(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::Created(location_response(a)?).build())
}

fn deleted(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::Deleted(location_response(a)?).build())
}

fn changed(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::Changed(location_response(a)?).build())
}

fn error_response(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::ErrorResponse {
        code: a.code("code")?.unwrap_or_default(),
        header: t,
        content: Vec::new(),
    };
    go(ctx, a, b.build())
}

fn continue_(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Continue {
        header: t,
        r#type: a.mtype("type")?,
    };
    go(ctx, a, b.build())
}

fn empty(ctx: &Ctx, a: &Args) -> CmdResult {
    let b = rq::Empty {
        r#type: a.mtype("type")?,
        msg_id: a.int_in::<u16>("msg_id")?,
    };
    go(ctx, a, b.build())
}

fn reset(ctx: &Ctx, a: &Args) -> CmdResult {
    let b = rq::Reset {
        msg_id: a.int_in::<u16>("msg_id")?,
    };
    go(ctx, a, b.build())
}

fn coap(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Coap {
        r#type: a.mtype("type")?,
        code: a.code("code")?,
        header: t,
        content: a.bytes("content")?.unwrap_or_default(),
        respond: a.bool("respond")?,
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
    go(ctx, a, b.build())
}

fn cmd_udp(ctx: &Ctx, args: &Args) -> CmdResult {
    let bytes = args.bytes("content")?.unwrap_or_default();
    ctx.server
        .send_raw(&bytes)
        .map(msg)
        .map_err(|e| e.to_string())
}

fn location_response(a: &Args) -> Result<rq::LocationResponse, String> {
    let t = tail(a)?;
    Ok(rq::LocationResponse {
        header: t,
        location: a.str("location")?,
        content: a.bytes("content").ok().flatten().unwrap_or_default(),
    })
}
