//! Client Registration, client-role (LwM2M TS Core §6.2): `register`,
//! `update`, `deregister` — for testing servers, or as templates.
//!
//! Written in the single-definition form ([`command!`]): each command's
//! parameter table, typed arguments and parse come from one declaration.

use std::time::Duration;

use crate::lwm2m::request::{self as rq, Build};
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::send::{Header, SET_TIMEOUT, send};
use crate::script::typed::command;

command! {
    /// `register`.
    pub(super) const REGISTER = "register";
    /// The arguments of `register` and `update`.
    struct Registration {
        path: String = req(Str),
        query: Option<Vec<String>> = opt(List, "from PATH"),
        ..header: Header,
        content: Vec<u8> = opt(Bytes, "empty"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Register (POST, link-format) — for testing servers or as a template.",
    example: "register /rd?ep=test&lt=60 content=</1/0>,</3/0>",
    run: register,
}

command! {
    /// `update`.
    pub(super) const UPDATE = "update";
    args: Registration,
    help: "Sends an Update (POST to the registration location).",
    example: "update /rd/1?lt=60",
    run: update,
}

command! {
    /// `deregister`.
    pub(super) const DEREGISTER = "deregister";
    /// The arguments of `deregister`.
    struct Deregistration {
        path: String = req(Str),
        ..header: Header,
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a De-register (DELETE of the registration location).",
    example: "deregister /rd/1",
    run: deregister,
}

fn register(ctx: &Ctx, a: Registration) -> CmdResult {
    let b = rq::Register {
        path: a.path,
        query: a.query,
        header: a.header.into(),
        content: a.content,
    };
    send(ctx, a.timeout_s, b.build().map_err(|e| e.to_string())?)
}

fn update(ctx: &Ctx, a: Registration) -> CmdResult {
    let b = rq::Update {
        path: a.path,
        query: a.query,
        header: a.header.into(),
        content: a.content,
    };
    send(ctx, a.timeout_s, b.build().map_err(|e| e.to_string())?)
}

fn deregister(ctx: &Ctx, a: Deregistration) -> CmdResult {
    let b = rq::Deregister {
        path: a.path,
        header: a.header.into(),
    };
    send(ctx, a.timeout_s, b.build().map_err(|e| e.to_string())?)
}
