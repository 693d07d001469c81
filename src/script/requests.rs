//! The message commands: `Args` → an `lwm2m::request` builder → the server.
//! Requests wait for their matched response and return it; responses and
//! empty messages return what was sent.

use rhai::Dynamic;

use super::Ctx;
use super::args::Args;
use super::commands::CmdResult;
use super::message::Msg;
use crate::coap::{ContentFormat, Type};
use crate::lwm2m::request::{self as rq, Build, Built, RequestError};
use crate::server::SendOptions;

/// A payload argument: bytes or escaped text as is; a map of path → value
/// encoded in `format` (or `map_default`); a `tlv()`/`senml_cbor()`
/// builder serialized. Returns the bytes and the format to announce.
fn payload(
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
            super::builders::encode_map(cf, &map).map_err(|e| format!("`{name}`: {e}"))?,
            Some(cf),
        ));
    }
    if let Some(bytes) = super::builders::builder_bytes(v) {
        let default = if v.is::<super::builders::Tlv>() {
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

fn err(e: RequestError) -> String {
    e.to_string()
}

/// The shared header: message ID, token and extra options.
fn tail(a: &Args) -> Result<rq::Header, String> {
    Ok(rq::Header {
        msg_id: a.int_in::<u16>("msg_id")?,
        token: a.bytes("token")?,
        options: a.options("options")?,
    })
}

fn path(a: &Args) -> Result<String, String> {
    Ok(a.str("path")?.unwrap_or_default())
}

/// How long a request waits for its response: `timeout_s`, or `set timeout`.
fn wait(ctx: &Ctx, a: &Args) -> Result<std::time::Duration, String> {
    Ok(a.seconds("timeout_s")?
        .unwrap_or_else(|| ctx.server.default_timeout()))
}

/// Sends a built message; waits for the response of requests and CON messages.
fn go(ctx: &Ctx, a: &Args, built: Result<Built, RequestError>) -> CmdResult {
    let built = built.map_err(err)?;
    let msg = built.message;
    let waits = msg.code.is_request() || msg.mtype == Type::Confirmable;
    let wait = if waits { Some(wait(ctx, a)?) } else { None };
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

pub(super) fn read(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Read {
        path: path(a)?,
        accept: a.format("accept")?,
        header: t,
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

pub(super) fn observe(ctx: &Ctx, a: &Args) -> CmdResult {
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

pub(super) fn cancel_observe(ctx: &Ctx, a: &Args) -> CmdResult {
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

pub(super) fn discover(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Discover {
        path: path(a)?,
        depth: a.int("depth")?,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn write(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let (content, format) = payload(a, "content", a.format("format")?, ContentFormat::LWM2M_TLV)?;
    let b = rq::Write {
        path: path(a)?,
        content,
        format,
        update: a.bool("update")?.unwrap_or(false),
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn write_attributes(ctx: &Ctx, a: &Args) -> CmdResult {
    let mut t = tail(a)?;
    if let Some(v) = a.int("dim")? {
        t.options.push(crate::coap::CoapOption::new(
            crate::coap::OptionNumber::URI_QUERY,
            format!("dim={v}").into_bytes(),
        ));
    }
    let b = rq::WriteAttributes {
        path: path(a)?,
        lt: a.float("lt")?,
        gt: a.float("gt")?,
        st: a.float("st")?,
        pmin: a.int("pmin")?,
        pmax: a.int("pmax")?,
        epmin: a.int("epmin")?,
        epmax: a.int("epmax")?,
        hqmax: a.int("hqmax")?,
        edge: a.int("edge")?,
        con: a.int("con")?,
        query: a.list("query")?,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn execute(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Execute {
        path: path(a)?,
        content: a.bytes("content")?.unwrap_or_default(),
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn create(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let (content, format) = payload(a, "content", a.format("format")?, ContentFormat::LWM2M_TLV)?;
    let b = rq::Create {
        path: path(a)?,
        content,
        format,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn delete(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Delete {
        path: path(a)?,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn read_composite(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::ReadComposite {
        paths: a.list("paths")?.unwrap_or_default(),
        accept: a.format("accept")?,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn observe_composite(ctx: &Ctx, a: &Args) -> CmdResult {
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

pub(super) fn write_composite(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let (content, format) = payload(a, "content", a.format("format")?, ContentFormat::SENML_CBOR)?;
    let format = format.ok_or("missing value for `format`")?;
    let b = rq::WriteComposite {
        content,
        format,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn coap_get(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::CoapGet {
        path: path(a)?,
        accept: a.format("accept")?,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn bootstrap_finish(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::BootstrapFinish {
        header: t,
        content: a.bytes("content")?.unwrap_or_default(),
    };
    go(ctx, a, b.build())
}

pub(super) fn register(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Register {
        path: path(a)?,
        query: a.list("query")?,
        header: t,
        content: a.bytes("content")?.unwrap_or_default(),
    };
    go(ctx, a, b.build())
}

pub(super) fn update(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Update {
        path: path(a)?,
        query: a.list("query")?,
        header: t,
        content: a.bytes("content")?.unwrap_or_default(),
    };
    go(ctx, a, b.build())
}

pub(super) fn deregister(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Deregister {
        path: path(a)?,
        header: t,
    };
    go(ctx, a, b.build())
}

pub(super) fn request_bootstrap(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::RequestBootstrap {
        endpoint_name: a.str("endpoint_name")?.unwrap_or_default(),
        preferred_content_format: a.int("preferred_content_format")?,
        header: t,
        uri_path: a.str("uri_path")?.unwrap_or_default(),
        uri_query: a.list("uri_query")?,
        content: a.bytes("content")?.unwrap_or_default(),
    };
    go(ctx, a, b.build())
}

pub(super) fn bootstrap_pack_request(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::BootstrapPackRequest {
        endpoint_name: a.str("endpoint_name")?.unwrap_or_default(),
        accept: a.format("accept")?,
        header: t,
        uri_path: a.str("uri_path")?.unwrap_or_default(),
        uri_query: a.list("uri_query")?,
    };
    go(ctx, a, b.build())
}

pub(super) fn send(ctx: &Ctx, a: &Args) -> CmdResult {
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

fn est(a: &Args) -> Result<rq::Est, String> {
    let t = tail(a)?;
    Ok(rq::Est {
        header: t,
        uri_path: a.str("uri_path")?.unwrap_or_default(),
        uri_query: a.list("uri_query")?,
        content: a.bytes("content")?.unwrap_or_default(),
    })
}

pub(super) fn est_simple_enroll(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::EstCoapsSimpleEnroll(est(a)?).build())
}

pub(super) fn est_simple_reenroll(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::EstCoapsSimpleReenroll(est(a)?).build())
}

pub(super) fn est_ca_certs(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::EstCoapsCaCerts(est(a)?).build())
}

pub(super) fn content(ctx: &Ctx, a: &Args) -> CmdResult {
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

pub(super) fn notify(ctx: &Ctx, a: &Args) -> CmdResult {
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

fn location_response(a: &Args) -> Result<rq::LocationResponse, String> {
    let t = tail(a)?;
    Ok(rq::LocationResponse {
        header: t,
        location: a.str("location")?,
        content: a.bytes("content").ok().flatten().unwrap_or_default(),
    })
}

pub(super) fn created(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::Created(location_response(a)?).build())
}

pub(super) fn deleted(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::Deleted(location_response(a)?).build())
}

pub(super) fn changed(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::Changed(location_response(a)?).build())
}

pub(super) fn error_response(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::ErrorResponse {
        code: a.code("code")?.unwrap_or_default(),
        header: t,
        content: Vec::new(),
    };
    go(ctx, a, b.build())
}

pub(super) fn continue_(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::Continue {
        header: t,
        r#type: a.mtype("type")?,
    };
    go(ctx, a, b.build())
}

pub(super) fn empty(ctx: &Ctx, a: &Args) -> CmdResult {
    let b = rq::Empty {
        r#type: a.mtype("type")?,
        msg_id: a.int_in::<u16>("msg_id")?,
    };
    go(ctx, a, b.build())
}

pub(super) fn reset(ctx: &Ctx, a: &Args) -> CmdResult {
    let b = rq::Reset {
        msg_id: a.int_in::<u16>("msg_id")?,
    };
    go(ctx, a, b.build())
}

pub(super) fn coap(ctx: &Ctx, a: &Args) -> CmdResult {
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

/// The server account the `bootstrap` commands write, from their arguments.
fn account_from_args(a: &Args) -> Result<crate::lwm2m::bootstrap::ServerAccount, String> {
    use crate::lwm2m::bootstrap::{SecurityMode, ServerAccount};
    let uri = a.str("uri")?.unwrap_or_default();
    let read_file = |name: &str| -> Result<Option<Vec<u8>>, String> {
        match a.str(name)? {
            Some(p) => std::fs::read(&p)
                .map(Some)
                .map_err(|e| format!("`{name}`: cannot read {p}: {e}")),
            None => Ok(None),
        }
    };
    let psk_identity = a.bytes("psk_identity")?;
    let psk_key = a.bytes("psk_key")?;
    let client_cert = read_file("client_cert_path")?;
    let client_key = read_file("client_private_key_path")?;
    let server_cert = read_file("server_cert_path")?;
    if (psk_identity.is_some() || psk_key.is_some())
        && (client_cert.is_some() || client_key.is_some() || server_cert.is_some())
    {
        return Err("Cannot set both PSK and cert mode at the same time".into());
    }
    let security_mode = match a.str("security_mode")? {
        Some(m) => SecurityMode::parse(&m)
            .ok_or_else(|| format!("`security_mode`: `{m}` is not one of PreSharedKey, RawPublicKey, Certificate, NoSec, CertificateWithEst"))?,
        None => SecurityMode::for_uri(&uri)
            .ok_or_else(|| format!("`uri`: cannot tell the security mode from `{uri}`: give security_mode="))?,
    };
    Ok(ServerAccount {
        uri,
        security_mode,
        identity: psk_identity.or(client_cert).unwrap_or_default(),
        server_public_key: server_cert.unwrap_or_default(),
        secret_key: psk_key.or(client_key).unwrap_or_default(),
        ssid: a.int("ssid")?.unwrap_or(1),
        is_bootstrap: a.bool("is_bootstrap")?.unwrap_or(false),
        lifetime: a.int("lifetime")?.unwrap_or(86400),
        notification_storing: a.bool("notification_storing")?.unwrap_or(false),
        binding: a.str("binding")?.unwrap_or_else(|| "U".into()),
        iid: a.int_in::<u16>("iid")?.unwrap_or(1),
        tls_ciphersuites: a
            .list("tls_ciphersuites")?
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let t = s.trim();
                let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    Some(h) => i64::from_str_radix(h, 16),
                    None => t.parse(),
                };
                parsed.map_err(|_| format!("`tls_ciphersuites`: `{t}` is not a number"))
            })
            .collect::<Result<_, _>>()?,
    })
}

/// `bootstrap`: Bootstrap-Write of a Security and a Server instance, then
/// Bootstrap-Finish (reference §14.1). Returns the responses in order.
pub(super) fn bootstrap(ctx: &Ctx, a: &Args) -> CmdResult {
    let account = account_from_args(a)?;
    let tlv = |r: Result<Vec<u8>, String>| r.map_err(|e| format!("cannot encode: {e}"));
    let write = |path: &str, content: Vec<u8>| {
        let b = rq::Write {
            path: path.into(),
            content,
            format: Some(ContentFormat::LWM2M_TLV),
            update: false,
            header: rq::Header::default(),
        };
        go(ctx, a, b.build())
    };
    let mut responses = vec![write("/0", tlv(account.security_instance())?)?];
    if !account.is_bootstrap {
        responses.push(write("/1", tlv(account.server_instance())?)?);
    }
    if a.bool("finish")?.unwrap_or(true) {
        let b = rq::BootstrapFinish {
            header: rq::Header::default(),
            content: Vec::new(),
        };
        responses.push(go(ctx, a, b.build())?);
    }
    Ok(Dynamic::from_array(responses))
}

/// `write_file`: pushes a file with Block1 (RFC 7959 §2.5), one block at a
/// time, following the block size the server asks for, with Size1 on the
/// first block. Prints progress; returns the final response.
pub(super) fn write_file(ctx: &Ctx, a: &Args) -> CmdResult {
    let fname = a.str("fname")?.unwrap_or_default();
    let data = std::fs::read(&fname).map_err(|e| format!("cannot read {fname}: {e}"))?;
    let path = path(a)?;
    let format = a.format("format")?.unwrap_or(ContentFormat::OCTET_STREAM);
    let mut size = a.int_in::<u32>("chunksize")?.unwrap_or(1024);
    if crate::coap::BlockValue::new(0, false, size).is_none() {
        return Err(format!(
            "`chunksize`: {size} is not a block size (16, 32, … 1024)"
        ));
    }
    let timeout = wait(ctx, a)?;
    let extra = a.options("options")?;
    let total = data.len();
    let mut offset = 0usize;
    let mut blocks = 0u32;
    let mut next_report = 10;
    loop {
        let num = u32::try_from(offset / size as usize).map_err(|_| "file too large for Block1")?;
        let end = (offset + size as usize).min(total);
        let more = end < total;
        let block =
            crate::coap::BlockValue::new(num, more, size).ok_or("file too large for Block1")?;
        let mut options = extra.clone();
        options.push(crate::coap::CoapOption::new(
            crate::coap::OptionNumber::BLOCK1,
            block.encode(),
        ));
        if num == 0 {
            options.push(crate::coap::CoapOption::uint(
                crate::coap::OptionNumber::SIZE1,
                total as u64,
            ));
        }
        let b = rq::Write {
            path: path.clone(),
            content: data[offset..end].to_vec(),
            format: Some(format),
            update: a.bool("update")?.unwrap_or(false),
            header: rq::Header {
                options,
                ..rq::Header::default()
            },
        };
        let built = b.build().map_err(err)?;
        let opts = SendOptions {
            fill_message_id: true,
            fill_token: true,
            wait: Some(timeout),
        };
        let sent = ctx
            .server
            .send(built.message, opts)
            .map_err(|e| format!("block {num} ({offset}/{total} bytes sent): {e}"))?;
        let response = sent.response.ok_or("no response")?;
        let msg = response.message.as_ref().map_err(|e| e.to_string())?;
        blocks += 1;
        if msg.code.is_error() {
            return Err(format!(
                "block {num} answered {}: {}",
                msg.code,
                response.summary()
            ));
        }
        if !more {
            if total > 0 && ctx.interactive {
                ctx.say(&format!("write_file: {total} bytes in {blocks} blocks"));
            }
            return Ok(Dynamic::from(Msg(response)));
        }
        if msg.code != crate::coap::Code::CONTINUE {
            return Err(format!(
                "block {num} answered {} before the last block (expected 2.31 Continue)",
                msg.code
            ));
        }
        // The server may ask for smaller blocks (RFC 7959 §2.5).
        if let Some(b1) = msg.block1()
            && b1.size() < size
        {
            size = b1.size();
        }
        offset = end;
        let percent = offset * 100 / total.max(1);
        if percent >= next_report {
            ctx.say(&format!("write_file: {offset}/{total} bytes ({percent}%)"));
            next_report = percent / 10 * 10 + 10;
        }
    }
}

/// `bootstrap_pack`: answers the cached Bootstrap-Pack-Request (LwM2M 1.2,
/// reference §14.2) with the account as SenML CBOR.
pub(super) fn bootstrap_pack(ctx: &Ctx, a: &Args) -> CmdResult {
    let Some(request) = ctx.server.take_bootstrap_pack_request() else {
        ctx.say("Skipping - no BootstrapPackRequest is cached (set auto_bspack_error=0 before the client asks).");
        return Ok(Dynamic::UNIT);
    };
    let req = request.message.as_ref().map_err(|e| e.to_string())?;
    let account = account_from_args(a)?;
    let mtype = if req.mtype == Type::Confirmable {
        Type::Acknowledgement
    } else {
        Type::NonConfirmable
    };
    let mut reply = crate::coap::Message::new(mtype, crate::coap::Code::CONTENT, req.message_id);
    reply.token = req.token.clone();
    let accepted = req.accept();
    let opts = SendOptions {
        fill_message_id: mtype == Type::NonConfirmable,
        fill_token: false,
        wait: None,
    };
    if !accepted.is_empty() && !accepted.contains(&ContentFormat::SENML_CBOR) {
        reply.code = crate::coap::Code::NOT_ACCEPTABLE;
        ctx.server
            .send_to(request.peer, reply, opts)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = accepted.iter().map(|f| f.summary_name()).collect();
        return Err(format!(
            "the request accepts only {}; nsh sends SenML CBOR (answered 4.06)",
            names.join(", ")
        ));
    }
    let payload = crate::lwm2m::format::senml::encode_cbor(&account.pack_records())
        .map_err(|e| e.to_string())?;
    reply.add_option(crate::coap::CoapOption::uint(
        crate::coap::OptionNumber::CONTENT_FORMAT,
        u64::from(ContentFormat::SENML_CBOR.0),
    ));
    reply.payload = payload;
    let sent = ctx
        .server
        .send_to(request.peer, reply, opts)
        .map_err(|e| e.to_string())?;
    Ok(sent.sent.map_or(Dynamic::UNIT, |r| Dynamic::from(Msg(r))))
}
