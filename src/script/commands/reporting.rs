//! Information Reporting (LwM2M TS Core §6.4): `observe`,
//! `cancel_observe`, `observe_composite`, and the client-role `notify` and
//! `send`. In the single-definition form ([`command!`]).

use std::time::Duration;

use crate::coap::{CoapOption, ContentFormat};
use crate::lwm2m::request::{self as rq, Build};
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::send::{Attributes, Header, Payload, SET_TIMEOUT, err, send as send_built};
use crate::script::typed::command;

command! {
    /// `observe`.
    pub(super) const OBSERVE = "observe";
    /// The arguments of `observe`.
    struct ObserveArgs {
        path: String = req(Str),
        observe: Option<u32> = opt(Int, "0"),
        accept: Option<ContentFormat> = opt(Format, "none"),
        ..attributes: Attributes,
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends an Observe (GET with Observe 0) and returns the first response; observe=1 with the same token cancels.",
    example: "observe /3303/0/5700 pmin=1 pmax=5  |  let first = observe(\"/3/0/13\", #{pmax: 5});",
    run: observe,
}

command! {
    /// `cancel_observe`.
    pub(super) const CANCEL_OBSERVE = "cancel_observe";
    /// The arguments of `cancel_observe`.
    struct CancelObserveArgs {
        path: String = req(Str),
        accept: Option<ContentFormat> = opt(Format, "none"),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Cancels the observation of PATH (GET with Observe 1 and the observation's token) and returns the response.",
    example: "cancel_observe /3303/0/5700",
    run: cancel_observe,
}

command! {
    /// `observe_composite`.
    pub(super) const OBSERVE_COMPOSITE = "observe_composite";
    /// The arguments of `observe_composite`.
    struct ObserveCompositeArgs {
        paths: Option<Vec<String>> = req(List),
        observe: Option<u32> = opt(Int, "0"),
        accept: Option<ContentFormat> = opt(Format, "none"),
        ..attributes: Attributes,
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends an Observe-Composite (FETCH with Observe).",
    example: "observe_composite [/3/0/13,/3303/0/5700]",
    run: observe_composite,
}

command! {
    /// `send`.
    pub(super) const SEND = "send";
    /// The arguments of `send` (the header's parts are apart: `format`
    /// comes between the token and the options, as in the original).
    struct SendArgs {
        path: Option<String> = opt(Str, "/dp"),
        msg_id: Option<u16> = opt(Int, "auto"),
        token: Option<Vec<u8>> = opt(Bytes, "8 random bytes"),
        format: Option<ContentFormat> = opt(Format, "APPLICATION_LWM2M_SENML_CBOR"),
        options: Vec<CoapOption> = opt(Options, "[]"),
        content: Payload = opt(Bytes, "empty"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Send (POST /dp) — LwM2M 1.1 client-role message.",
    example: "send content=\\x81\\xa2\\x00\\x66/3/0/0\\x03\\x61x",
    run: send,
}

command! {
    /// `notify`.
    pub(super) const NOTIFY = "notify";
    /// The arguments of `notify`.
    struct NotifyArgs {
        token: Option<Vec<u8>> = req(Bytes),
        content: Payload = opt(Bytes, "empty"),
        format: Option<ContentFormat> = opt(Format, "none"),
        confirmable: Option<bool> = opt(Bool, "0"),
        options: Vec<CoapOption> = opt(Options, "[]"),
    }
    help: "Sends a 2.05 notification (NON, or CON with confirmable=1).",
    example: "notify \\x01\\x02 22.5 options=[OBSERVE(3)]",
    run: notify,
}

fn observe(ctx: &Ctx, a: ObserveArgs) -> CmdResult {
    let cancel = a.observe == Some(1);
    let token = a.header.token().cloned();
    let b = a
        .attributes
        .observe(a.path, a.observe.or(Some(0)), a.accept, a.header);
    let r = send_built(ctx, a.timeout_s, b.build().map_err(err)?)?;
    if cancel && let Some(t) = token {
        ctx.server.forget_observation(&t);
    }
    Ok(r)
}

fn cancel_observe(ctx: &Ctx, a: CancelObserveArgs) -> CmdResult {
    let p = a.path;
    let mut header = rq::Header::from(a.header);
    let token = match header.token.take() {
        Some(t) => t,
        None => ctx.server.observation_token(&p).ok_or_else(|| {
            let active: Vec<String> = ctx
                .server
                .observations()
                .iter()
                .map(|o| format!("{} of {}", o.path, super::shell::observer(o)))
                .collect();
            let current = match (ctx.server.current_client(), ctx.server.target()) {
                (Some(e), Some(a)) => format!(" {e} ({a})"),
                (None, Some(a)) => format!(" {a}"),
                (Some(e), None) => format!(" {e}"),
                (None, None) => String::new(),
            };
            format!(
                "no active observation of {p} on the current client{current} (active: {})",
                if active.is_empty() {
                    "none".to_string()
                } else {
                    active.join(", ")
                }
            )
        })?,
    };
    header.token = Some(token.clone());
    let b = rq::Observe {
        path: p,
        observe: Some(1),
        accept: a.accept,
        header,
        ..rq::Observe::default()
    };
    let r = b
        .build()
        .map_err(err)
        .and_then(|built| send_built(ctx, a.timeout_s, built));
    ctx.server.forget_observation(&token);
    r
}

fn observe_composite(ctx: &Ctx, a: ObserveCompositeArgs) -> CmdResult {
    let b =
        a.attributes
            .observe_composite(a.paths.unwrap_or_default(), a.observe, a.accept, a.header);
    send_built(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn send(ctx: &Ctx, a: SendArgs) -> CmdResult {
    let (content, format) = a.content.encode(
        a.format,
        ContentFormat::SENML_CBOR,
        &ctx.server.objects().read(),
    )?;
    let b = rq::Send {
        path: a.path,
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        format,
        content,
    };
    send_built(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn notify(ctx: &Ctx, a: NotifyArgs) -> CmdResult {
    let (content, format) = a.content.encode(
        a.format,
        ContentFormat::LWM2M_TLV,
        &ctx.server.objects().read(),
    )?;
    let b = rq::Notify {
        header: rq::Header {
            msg_id: None,
            token: a.token,
            options: a.options,
        },
        content,
        format,
        confirmable: a.confirmable.unwrap_or(false),
        observe: None,
    };
    send_built(ctx, None, b.build().map_err(err)?)
}
