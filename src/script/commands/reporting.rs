//! Information Reporting (LwM2M TS Core §6.4): `observe`,
//! `cancel_observe`, `observe_composite`, and the client-role `notify` and
//! `send`.

use crate::coap::ContentFormat;
use crate::lwm2m::request::{self as rq, Build};
use crate::script::Ctx;
use crate::script::args::{Args, Kind as K, opt, req};
use crate::script::command::{ATTRS, CmdResult, Command, TIMEOUT, params, tail};
use crate::script::send::{go, path, payload, tail};

/// `observe`.
pub(super) const OBSERVE: Command = Command {
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
    run: observe,
};

/// `cancel_observe`.
pub(super) const CANCEL_OBSERVE: Command = Command {
    name: "cancel_observe",
    params: params!(
        [req("path", K::Str), opt("accept", K::Format, "none")],
        tail!(),
        [TIMEOUT]
    ),
    help: "Cancels the observation of PATH (GET with Observe 1 and the observation's token) and returns the response.",
    example: "cancel_observe /3303/0/5700",
    run: cancel_observe,
};

/// `observe_composite`.
pub(super) const OBSERVE_COMPOSITE: Command = Command {
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
    run: observe_composite,
};

/// `send`.
pub(super) const SEND: Command = Command {
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
    run: send,
};

/// `notify`.
pub(super) const NOTIFY: Command = Command {
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
    run: notify,
};

fn observe(ctx: &Ctx, a: &Args) -> CmdResult {
    let observe = a.int_in::<u32>("observe")?;
    let cancel = observe == Some(1);
    let token = a.bytes("token")?;
    let b = observe_params(a, observe.or(Some(0)))?;
    let r = go(ctx, a, b.build())?;
    if cancel && let Some(t) = token {
        ctx.server.forget_observation(&t);
    }
    Ok(r)
}

fn cancel_observe(ctx: &Ctx, a: &Args) -> CmdResult {
    let p = path(a)?;
    let token = match a.bytes("token")? {
        Some(t) => t,
        None => ctx.server.observation_token(&p).ok_or_else(|| {
            let active: Vec<String> = ctx
                .server
                .observations()
                .into_iter()
                .map(|(_, p)| p)
                .collect();
            format!(
                "no active observation of {p} on the current client (active: {})",
                if active.is_empty() {
                    "none".to_string()
                } else {
                    active.join(", ")
                }
            )
        })?,
    };
    let mut b = observe_params(a, Some(1))?;
    b.header.token = Some(token.clone());
    let r = go(ctx, a, b.build());
    ctx.server.forget_observation(&token);
    r
}

fn observe_composite(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::ObserveComposite {
        paths: a.list("paths")?.unwrap_or_default(),
        observe: a.int_in::<u32>("observe")?,
        accept: a.format("accept")?,
        lt: a.float("lt")?,
        gt: a.float("gt")?,
        st: a.float("st")?,
        pmin: a.int("pmin")?,
        pmax: a.int("pmax")?,
        epmin: a.int("epmin")?,
        epmax: a.int("epmax")?,
        hqmax: a.int("hqmax")?,
        header: with_attrs_12(a, t)?,
    };
    go(ctx, a, b.build())
}

fn send(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let (content, format) = payload(a, "content", a.format("format")?, ContentFormat::SENML_CBOR)?;
    let b = rq::Send {
        path: a.str("path")?,
        header: t,
        format,
        content,
    };
    go(ctx, a, b.build())
}

fn notify(ctx: &Ctx, a: &Args) -> CmdResult {
    let (content, format) = payload(a, "content", a.format("format")?, ContentFormat::LWM2M_TLV)?;
    let b = rq::Notify {
        header: rq::Header {
            msg_id: None,
            token: a.bytes("token")?,
            options: a.options("options")?,
        },
        content,
        format,
        confirmable: a.bool("confirmable")?.unwrap_or(false),
        observe: None,
    };
    go(ctx, a, b.build())
}

fn observe_params(a: &Args, observe: Option<u32>) -> Result<rq::Observe, String> {
    let t = tail(a)?;
    Ok(rq::Observe {
        path: path(a)?,
        observe,
        accept: a.format("accept")?,
        lt: a.float("lt")?,
        gt: a.float("gt")?,
        st: a.float("st")?,
        pmin: a.int("pmin")?,
        pmax: a.int("pmax")?,
        epmin: a.int("epmin")?,
        epmax: a.int("epmax")?,
        hqmax: a.int("hqmax")?,
        header: with_attrs_12(a, t)?,
    })
}

/// LwM2M 1.2 attributes the builders do not type (`edge`, `con`, `dim`),
/// appended to the extra options as Uri-Query.
fn with_attrs_12(a: &Args, mut header: rq::Header) -> Result<rq::Header, String> {
    for name in ["edge", "con", "dim"] {
        if let Some(v) = a.int(name)? {
            header.options.push(crate::coap::CoapOption::new(
                crate::coap::OptionNumber::URI_QUERY,
                format!("{name}={v}").into_bytes(),
            ));
        }
    }
    Ok(header)
}
