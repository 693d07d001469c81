//! Bootstrap (LwM2M TS Core §6.1): `bootstrap` (Security and Server
//! instances, then Finish), `bootstrap_pack`, `bootstrap_finish`, the
//! client-role `request_bootstrap` and `bootstrap_pack_request`, and the
//! EST-coaps enrollment requests. In the single-definition form
//! ([`command!`]).

use std::time::Duration;

use rhai::Dynamic;

use crate::coap::{CoapOption, ContentFormat, Type};
use crate::lwm2m::bootstrap::{SecurityMode, ServerAccount};
use crate::lwm2m::request::{self as rq, Build};
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::message::Msg;
use crate::script::send::{Header, SET_TIMEOUT, err, send};
use crate::script::typed::command;
use crate::server::SendOptions;
use crate::transport::dtls::{CredentialKind, der_of};

crate::arguments! {
    /// The server account `bootstrap` and `bootstrap_pack` write, in the
    /// original's order (reference §14.1); `tls_ciphersuites`, the last
    /// one, comes after `bootstrap`'s `finish`.
    struct Account {
        uri: String = req(Str),
        security_mode: Option<String> = opt(Str, "from the URI: coap → NoSec, coaps → PreSharedKey"),
        psk_identity: Option<Vec<u8>> = opt(Bytes, "none"),
        psk_key: Option<Vec<u8>> = opt(Bytes, "none"),
        client_cert_path: Option<String> = opt(Str, "none"),
        client_private_key_path: Option<String> = opt(Str, "none"),
        server_cert_path: Option<String> = opt(Str, "none"),
        ssid: Option<i64> = opt(Int, "1"),
        is_bootstrap: Option<bool> = opt(Bool, "0"),
        lifetime: Option<i64> = opt(Int, "86400"),
        notification_storing: Option<bool> = opt(Bool, "0"),
        binding: Option<String> = opt(Str, "U"),
        iid: Option<u16> = opt(Int, "1"),
    }
}

command! {
    /// `bootstrap`.
    pub(super) const BOOTSTRAP = "bootstrap";
    /// The arguments of `bootstrap`.
    struct BootstrapArgs {
        ..account: Account,
        finish: Option<bool> = opt(Bool, "1"),
        tls_ciphersuites: Option<Vec<String>> = opt(List, "[]"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Bootstrap-Writes a Security (/0) and a Server (/1) instance for an LwM2M server, then sends Bootstrap-Finish; returns the responses. PSK identity and key are literal text (or \\x bytes); certificate and key files are PEM or DER, written as DER.",
    example: "bootstrap finish=True ssid=1 uri=coaps://127.0.0.1:9500 security_mode=PreSharedKey psk_identity=user psk_key=password",
    run: bootstrap,
}

command! {
    /// `bootstrap_pack`.
    pub(super) const BOOTSTRAP_PACK = "bootstrap_pack";
    /// The arguments of `bootstrap_pack`.
    struct BootstrapPackArgs {
        ..account: Account,
        tls_ciphersuites: Option<Vec<String>> = opt(List, "[]"),
    }
    help: "Answers the Bootstrap-Pack-Request kept while `set auto_bspack_error=0` (LwM2M 1.2) with a Security and a Server instance as SenML CBOR.",
    example: "set auto_bspack_error=0  …  bootstrap_pack coap://127.0.0.1:5683 ssid=1",
    run: bootstrap_pack,
}

command! {
    /// `bootstrap_finish`.
    pub(super) const BOOTSTRAP_FINISH = "bootstrap_finish";
    /// The arguments of `bootstrap_finish`.
    struct BootstrapFinishArgs {
        ..header: Header,
        content: Vec<u8> = opt(Bytes, "empty"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Bootstrap-Finish (POST /bs).",
    example: "bootstrap_finish",
    run: bootstrap_finish,
}

command! {
    /// `request_bootstrap`.
    pub(super) const REQUEST_BOOTSTRAP = "request_bootstrap";
    /// The arguments of `request_bootstrap`.
    struct RequestBootstrapArgs {
        endpoint_name: String = req(Str),
        preferred_content_format: Option<ContentFormat> = opt(Format, "none"),
        msg_id: Option<u16> = opt(Int, "auto"),
        token: Option<Vec<u8>> = opt(Bytes, "8 random bytes"),
        uri_path: String = opt(Str, "''"),
        uri_query: Option<Vec<String>> = opt(List, "none"),
        options: Vec<CoapOption> = opt(Options, "[]"),
        content: Vec<u8> = opt(Bytes, "empty"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Bootstrap-Request (POST /bs?ep=…).",
    example: "request_bootstrap my_endpoint",
    run: request_bootstrap,
}

command! {
    /// `bootstrap_pack_request`.
    pub(super) const BOOTSTRAP_PACK_REQUEST = "bootstrap_pack_request";
    /// The arguments of `bootstrap_pack_request`.
    struct BootstrapPackRequestArgs {
        endpoint_name: String = req(Str),
        accept: Option<ContentFormat> = opt(Format, "none"),
        msg_id: Option<u16> = opt(Int, "auto"),
        token: Option<Vec<u8>> = opt(Bytes, "8 random bytes"),
        uri_path: String = opt(Str, "''"),
        uri_query: Option<Vec<String>> = opt(List, "none"),
        options: Vec<CoapOption> = opt(Options, "[]"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends a Bootstrap-Pack-Request (GET /bspack?ep=…).",
    example: "bootstrap_pack_request my_endpoint accept=senml+cbor",
    run: bootstrap_pack_request,
}

command! {
    /// `est_coaps_simple_enroll`.
    pub(super) const EST_COAPS_SIMPLE_ENROLL = "est_coaps_simple_enroll";
    /// The arguments of the EST-coaps enroll commands.
    struct EstArgs {
        msg_id: Option<u16> = opt(Int, "auto"),
        token: Option<Vec<u8>> = opt(Bytes, "8 random bytes"),
        uri_path: String = opt(Str, "''"),
        uri_query: Option<Vec<String>> = opt(List, "none"),
        options: Vec<CoapOption> = opt(Options, "[]"),
        content: Vec<u8> = opt(Bytes, "empty"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends an EST-coaps Simple Enroll (POST /est/sen).",
    example: "est_coaps_simple_enroll content=\\x30\\x82",
    run: est_simple_enroll,
}

command! {
    /// `est_coaps_simple_reenroll`.
    pub(super) const EST_COAPS_SIMPLE_REENROLL = "est_coaps_simple_reenroll";
    args: EstArgs,
    help: "Sends an EST-coaps Simple Re-enroll (POST /est/sren).",
    example: "est_coaps_simple_reenroll",
    run: est_simple_reenroll,
}

command! {
    /// `est_coaps_ca_certs`.
    pub(super) const EST_COAPS_CA_CERTS = "est_coaps_ca_certs";
    /// The arguments of `est_coaps_ca_certs` (no payload).
    struct EstCaCertsArgs {
        msg_id: Option<u16> = opt(Int, "auto"),
        token: Option<Vec<u8>> = opt(Bytes, "8 random bytes"),
        uri_path: String = opt(Str, "''"),
        uri_query: Option<Vec<String>> = opt(List, "none"),
        options: Vec<CoapOption> = opt(Options, "[]"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends an EST-coaps CA certs request (GET /est/crts).",
    example: "est_coaps_ca_certs",
    run: est_ca_certs,
}

/// `bootstrap`: Bootstrap-Write of a Security and a Server instance, then
/// Bootstrap-Finish (reference §14.1). Returns the responses in order.
fn bootstrap(ctx: &Ctx, a: BootstrapArgs) -> CmdResult {
    let account = a.account.server_account(a.tls_ciphersuites)?;
    let tlv = |r: Result<Vec<u8>, String>| r.map_err(|e| format!("cannot encode: {e}"));
    let write = |path: &str, content: Vec<u8>| {
        let b = rq::Write {
            path: path.into(),
            content,
            format: Some(ContentFormat::LWM2M_TLV),
            update: false,
            header: rq::Header::default(),
        };
        send(ctx, a.timeout_s, b.build().map_err(err)?)
    };
    let mut responses = vec![write("/0", tlv(account.security_instance())?)?];
    if !account.is_bootstrap {
        responses.push(write("/1", tlv(account.server_instance())?)?);
    }
    if a.finish.unwrap_or(true) {
        let b = rq::BootstrapFinish {
            header: rq::Header::default(),
            content: Vec::new(),
        };
        responses.push(send(ctx, a.timeout_s, b.build().map_err(err)?)?);
    }
    Ok(Dynamic::from_array(responses))
}

/// `bootstrap_pack`: answers the cached Bootstrap-Pack-Request (LwM2M 1.2,
/// reference §14.2) with the account as SenML CBOR.
fn bootstrap_pack(ctx: &Ctx, a: BootstrapPackArgs) -> CmdResult {
    let Some(request) = ctx.server.take_bootstrap_pack_request() else {
        ctx.say("Skipping - no BootstrapPackRequest is cached (set auto_bspack_error=0 before the client asks).");
        return Ok(Dynamic::UNIT);
    };
    let req = request.message.as_ref().map_err(|e| e.to_string())?;
    let account = a.account.server_account(a.tls_ciphersuites)?;
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

fn bootstrap_finish(ctx: &Ctx, a: BootstrapFinishArgs) -> CmdResult {
    let b = rq::BootstrapFinish {
        header: a.header.into(),
        content: a.content,
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn request_bootstrap(ctx: &Ctx, a: RequestBootstrapArgs) -> CmdResult {
    let b = rq::RequestBootstrap {
        endpoint_name: a.endpoint_name,
        preferred_content_format: a.preferred_content_format.map(|f| i64::from(f.0)),
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        uri_path: a.uri_path,
        uri_query: a.uri_query,
        content: a.content,
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

fn bootstrap_pack_request(ctx: &Ctx, a: BootstrapPackRequestArgs) -> CmdResult {
    let b = rq::BootstrapPackRequest {
        endpoint_name: a.endpoint_name,
        accept: a.accept,
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        uri_path: a.uri_path,
        uri_query: a.uri_query,
    };
    send(ctx, a.timeout_s, b.build().map_err(err)?)
}

impl EstArgs {
    fn est(self) -> (rq::Est, Option<Duration>) {
        let est = rq::Est {
            header: rq::Header {
                msg_id: self.msg_id,
                token: self.token,
                options: self.options,
            },
            uri_path: self.uri_path,
            uri_query: self.uri_query,
            content: self.content,
        };
        (est, self.timeout_s)
    }
}

fn est_simple_enroll(ctx: &Ctx, a: EstArgs) -> CmdResult {
    let (est, timeout) = a.est();
    send(
        ctx,
        timeout,
        rq::EstCoapsSimpleEnroll(est).build().map_err(err)?,
    )
}

fn est_simple_reenroll(ctx: &Ctx, a: EstArgs) -> CmdResult {
    let (est, timeout) = a.est();
    send(
        ctx,
        timeout,
        rq::EstCoapsSimpleReenroll(est).build().map_err(err)?,
    )
}

fn est_ca_certs(ctx: &Ctx, a: EstCaCertsArgs) -> CmdResult {
    let est = rq::Est {
        header: rq::Header {
            msg_id: a.msg_id,
            token: a.token,
            options: a.options,
        },
        uri_path: a.uri_path,
        uri_query: a.uri_query,
        content: Vec::new(),
    };
    send(
        ctx,
        a.timeout_s,
        rq::EstCoapsCaCerts(est).build().map_err(err)?,
    )
}

impl Account {
    /// The server account the `bootstrap` commands write.
    fn server_account(
        self,
        tls_ciphersuites: Option<Vec<String>>,
    ) -> Result<ServerAccount, String> {
        // PEM or DER files; the Security object holds DER.
        let read_file = |name: &str, path: Option<String>| -> Result<Option<Vec<u8>>, String> {
            let kind = if name == "client_private_key_path" {
                CredentialKind::PrivateKey
            } else {
                CredentialKind::Certificate
            };
            path.map(|p| der_of(&format!("`{name}`:"), std::path::Path::new(&p), kind))
                .transpose()
        };
        let uri = self.uri;
        let psk_identity = self.psk_identity;
        let psk_key = self.psk_key;
        let client_cert = read_file("client_cert_path", self.client_cert_path)?;
        let client_key = read_file("client_private_key_path", self.client_private_key_path)?;
        let server_cert = read_file("server_cert_path", self.server_cert_path)?;
        if (psk_identity.is_some() || psk_key.is_some())
            && (client_cert.is_some() || client_key.is_some() || server_cert.is_some())
        {
            return Err("Cannot set both PSK and cert mode at the same time".into());
        }
        let security_mode = match self.security_mode {
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
            ssid: self.ssid.unwrap_or(1),
            is_bootstrap: self.is_bootstrap.unwrap_or(false),
            lifetime: self.lifetime.unwrap_or(86400),
            notification_storing: self.notification_storing.unwrap_or(false),
            binding: self.binding.unwrap_or_else(|| "U".into()),
            iid: self.iid.unwrap_or(1),
            tls_ciphersuites: tls_ciphersuites
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
}
