//! The glue between a message command and the server: payload arguments
//! (bytes, maps of values, builders), the shared header, how long to wait,
//! and sending a built message. Requests wait for their matched response
//! and return it; responses and empty messages return what was sent.

use rhai::Dynamic;

use super::Ctx;
use super::args::Args;
use super::command::CmdResult;
use super::message::Msg;
use crate::coap::{ContentFormat, Type};
use crate::lwm2m::request::{self as rq, Built, RequestError};
use crate::server::SendOptions;

/// A payload argument: bytes or escaped text as is; a map of path → value
/// encoded in `format` (or `map_default`); a `tlv()`/`senml_cbor()`
/// builder serialized. Returns the bytes and the format to announce.
pub(super) fn payload(
    a: &Args,
    name: &str,
    format: Option<ContentFormat>,
    map_default: ContentFormat,
) -> Result<(Vec<u8>, Option<ContentFormat>), String> {
    let Some(v) = a.raw(name) else {
        return Ok((Vec::new(), format));
    };
    if let Some(map) = v.read_lock::<rhai::Map>() {
        let cf = format.unwrap_or(map_default);
        return Ok((
            crate::script::builders::encode_map(cf, &map).map_err(|e| format!("`{name}`: {e}"))?,
            Some(cf),
        ));
    }
    if let Some(bytes) = crate::script::builders::builder_bytes(v) {
        let default = if v.is::<crate::script::builders::Tlv>() {
            ContentFormat::LWM2M_TLV
        } else {
            ContentFormat::SENML_CBOR
        };
        return Ok((
            bytes.map_err(|e| format!("`{name}`: {e}"))?,
            Some(format.unwrap_or(default)),
        ));
    }
    Ok((a.bytes(name)?.unwrap_or_default(), format))
}

pub(super) fn err(e: RequestError) -> String {
    e.to_string()
}

crate::arguments! {
    /// The shared header of typed arguments: message ID, token and extra
    /// options (`..header: Header,`).
    pub(super) struct Header {
        msg_id: Option<u16> = opt(Int, "auto"),
        token: Option<Vec<u8>> = opt(Bytes, "8 random bytes"),
        options: Vec<crate::coap::CoapOption> = opt(Options, "[]"),
    }
}

impl From<Header> for rq::Header {
    fn from(h: Header) -> rq::Header {
        rq::Header {
            msg_id: h.msg_id,
            token: h.token,
            options: h.options,
        }
    }
}

/// The shared header: message ID, token and extra options.
pub(super) fn tail(a: &Args) -> Result<rq::Header, String> {
    Ok(rq::Header {
        msg_id: a.int_in::<u16>("msg_id")?,
        token: a.bytes("token")?,
        options: a.options("options")?,
    })
}

pub(super) fn path(a: &Args) -> Result<String, String> {
    Ok(a.str("path")?.unwrap_or_default())
}

/// How long a request waits for its response: `timeout_s`, or `set timeout`.
pub(super) fn wait(ctx: &Ctx, a: &Args) -> Result<std::time::Duration, String> {
    Ok(a.seconds("timeout_s")?
        .unwrap_or_else(|| ctx.server.default_timeout()))
}

/// Sends a built message; waits for the response of requests and CON
/// messages, up to `timeout_s` of the arguments (or `set timeout`).
pub(super) fn go(ctx: &Ctx, a: &Args, built: Result<Built, RequestError>) -> CmdResult {
    let built = built.map_err(err)?;
    let msg = &built.message;
    let waits = msg.code.is_request() || msg.mtype == Type::Confirmable;
    let timeout = if waits { a.seconds("timeout_s")? } else { None };
    send(ctx, timeout, built)
}

/// Sends a built message; waits for the response of requests and CON
/// messages, up to `timeout` (`None`: `set timeout`).
pub(super) fn send(ctx: &Ctx, timeout: Option<std::time::Duration>, built: Built) -> CmdResult {
    let msg = built.message;
    let waits = msg.code.is_request() || msg.mtype == Type::Confirmable;
    let wait = waits.then(|| timeout.unwrap_or_else(|| ctx.server.default_timeout()));
    let opts = SendOptions {
        fill_message_id: built.needs_msg_id,
        fill_token: built.needs_token,
        wait,
    };
    let sent = ctx.server.send(msg, opts).map_err(|e| e.to_string())?;
    Ok(sent
        .response
        .or(sent.sent)
        .map_or(Dynamic::UNIT, |r| Dynamic::from(Msg(r))))
}

/// A record as a Rhai `Message`.
pub(super) fn msg(r: crate::server::RecordRef) -> Dynamic {
    Dynamic::from(Msg(r))
}
