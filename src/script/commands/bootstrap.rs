//! Bootstrap (LwM2M TS Core §6.1): `bootstrap` (Security and Server
//! instances, then Finish), `bootstrap_pack`, `bootstrap_finish`, the
//! client-role `request_bootstrap` and `bootstrap_pack_request`, and the
//! EST-coaps enrollment requests.

use rhai::Dynamic;

use crate::coap::{ContentFormat, Type};
use crate::lwm2m::request::{self as rq, Build};
use crate::script::Ctx;
use crate::script::args::{Args, Kind as K, opt, req};
use crate::script::command::{
    ACCOUNT, CIPHERSUITES, CmdResult, Command, EST_HEAD, TIMEOUT, params, tail,
};
use crate::script::message::Msg;
use crate::script::send::{go, tail};
use crate::server::SendOptions;

/// `bootstrap`.
pub(super) const BOOTSTRAP: Command = Command {
    name: "bootstrap",
    params: params!(
        ACCOUNT,
        [opt("finish", K::Bool, "1"), CIPHERSUITES, TIMEOUT]
    ),
    help: "Bootstrap-Writes a Security (/0) and a Server (/1) instance for an LwM2M server, then sends Bootstrap-Finish; returns the responses. PSK identity and key are literal text (or \\x bytes); certificate paths are DER files.",
    example: "bootstrap finish=True ssid=1 uri=coaps://127.0.0.1:9500 security_mode=PreSharedKey psk_identity=user psk_key=password",
    run: bootstrap,
};

/// `bootstrap_pack`.
pub(super) const BOOTSTRAP_PACK: Command = Command {
    name: "bootstrap_pack",
    params: params!(ACCOUNT, [CIPHERSUITES]),
    help: "Answers the Bootstrap-Pack-Request kept while auto_bspack_error=0 (LwM2M 1.2) with a Security and a Server instance as SenML CBOR.",
    example: "set auto_bspack_error=0  …  bootstrap_pack coap://127.0.0.1:5683 ssid=1",
    run: bootstrap_pack,
};

/// `bootstrap_finish`.
pub(super) const BOOTSTRAP_FINISH: Command = Command {
    name: "bootstrap_finish",
    params: params!(tail!(), [opt("content", K::Bytes, "empty"), TIMEOUT]),
    help: "Sends a Bootstrap-Finish (POST /bs).",
    example: "bootstrap_finish",
    run: bootstrap_finish,
};

/// `request_bootstrap`.
pub(super) const REQUEST_BOOTSTRAP: Command = Command {
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
    run: request_bootstrap,
};

/// `bootstrap_pack_request`.
pub(super) const BOOTSTRAP_PACK_REQUEST: Command = Command {
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
    run: bootstrap_pack_request,
};

/// `est_coaps_simple_enroll`.
pub(super) const EST_COAPS_SIMPLE_ENROLL: Command = Command {
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
    run: est_simple_enroll,
};

/// `est_coaps_simple_reenroll`.
pub(super) const EST_COAPS_SIMPLE_REENROLL: Command = Command {
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
    run: est_simple_reenroll,
};

/// `est_coaps_ca_certs`.
pub(super) const EST_COAPS_CA_CERTS: Command = Command {
    name: "est_coaps_ca_certs",
    params: params!(EST_HEAD, [opt("options", K::Options, "[]"), TIMEOUT]),
    help: "Sends an EST-coaps CA certs request (GET /est/crts).",
    example: "est_coaps_ca_certs",
    run: est_ca_certs,
};

/// `bootstrap`: Bootstrap-Write of a Security and a Server instance, then
/// Bootstrap-Finish (reference §14.1). Returns the responses in order.
fn bootstrap(ctx: &Ctx, a: &Args) -> CmdResult {
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

/// `bootstrap_pack`: answers the cached Bootstrap-Pack-Request (LwM2M 1.2,
/// reference §14.2) with the account as SenML CBOR.
fn bootstrap_pack(ctx: &Ctx, a: &Args) -> CmdResult {
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

fn bootstrap_finish(ctx: &Ctx, a: &Args) -> CmdResult {
    let t = tail(a)?;
    let b = rq::BootstrapFinish {
        header: t,
        content: a.bytes("content")?.unwrap_or_default(),
    };
    go(ctx, a, b.build())
}

fn request_bootstrap(ctx: &Ctx, a: &Args) -> CmdResult {
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

fn bootstrap_pack_request(ctx: &Ctx, a: &Args) -> CmdResult {
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

fn est_simple_enroll(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::EstCoapsSimpleEnroll(est(a)?).build())
}

fn est_simple_reenroll(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::EstCoapsSimpleReenroll(est(a)?).build())
}

fn est_ca_certs(ctx: &Ctx, a: &Args) -> CmdResult {
    go(ctx, a, rq::EstCoapsCaCerts(est(a)?).build())
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

fn est(a: &Args) -> Result<rq::Est, String> {
    let t = tail(a)?;
    Ok(rq::Est {
        header: t,
        uri_path: a.str("uri_path")?.unwrap_or_default(),
        uri_query: a.list("uri_query")?,
        content: a.bytes("content")?.unwrap_or_default(),
    })
}
