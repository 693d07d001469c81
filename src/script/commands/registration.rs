//! Client Registration, client-role (LwM2M TS Core §6.2): `register`,
//! `update`, `deregister` — for testing servers, or as templates.

use crate::lwm2m::request::{self as rq, Build};
use crate::script::Ctx;
use crate::script::args::{Args, Kind as K, opt, req};
use crate::script::command::{CmdResult, Command, TIMEOUT, params, tail};
use crate::script::send::{go, path, tail};

/// `register`.
pub(super) const REGISTER: Command = Command {
    name: "register",
    params: params!(
        [req("path", K::Str), opt("query", K::List, "from PATH")],
        tail!(),
        [opt("content", K::Bytes, "empty"), TIMEOUT]
    ),
    help: "Sends a Register (POST, link-format) — for testing servers or as a template.",
    example: "register /rd?ep=test&lt=60 content=</1/0>,</3/0>",
    run: register,
};

/// `update`.
pub(super) const UPDATE: Command = Command {
    name: "update",
    params: params!(
        [req("path", K::Str), opt("query", K::List, "from PATH")],
        tail!(),
        [opt("content", K::Bytes, "empty"), TIMEOUT]
    ),
    help: "Sends an Update (POST to the registration location).",
    example: "update /rd/1?lt=60",
    run: update,
};

/// `deregister`.
pub(super) const DEREGISTER: Command = Command {
    name: "deregister",
    params: params!([req("path", K::Str)], tail!(), [TIMEOUT]),
    help: "Sends a De-register (DELETE of the registration location).",
    example: "deregister /rd/1",
    run: deregister,
};

fn register(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Register {
        path: path(a)?,
        query: a.list("query")?,
        header: t,
        content: a.bytes("content")?.unwrap_or_default(),
    };
    go(ctx, a, b.build())
}

fn update(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Update {
        path: path(a)?,
        query: a.list("query")?,
        header: t,
        content: a.bytes("content")?.unwrap_or_default(),
    };
    go(ctx, a, b.build())
}

fn deregister(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Deregister {
        path: path(a)?,
        header: t,
    };
    go(ctx, a, b.build())
}
