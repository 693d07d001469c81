//! The glue between a message command and the server: the typed argument
//! groups message commands share (the [`Header`], notification
//! [`Attributes`], a [`Payload`] of bytes, values or a builder), how long
//! to wait, and sending a built message. Requests wait for their matched response
//! and return it; responses and empty messages return what was sent.

use rhai::Dynamic;

use super::args::Args;
use super::command::CmdResult;
use super::ctx::Ctx;
use super::message::Msg;
use crate::coap::{ContentFormat, Type};
use crate::lwm2m::request::{self as rq, Built, RequestError};
use crate::server::SendOptions;

/// The default shown in help for a request's `timeout_s`.
pub(super) const SET_TIMEOUT: &str = "set timeout, else until CoAP gives up";

/// The default shown in help for `timeout_s` of a wait for incoming messages.
pub(super) const WAIT_TIMEOUT: &str = "set timeout (5)";

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

impl Header {
    /// The token, when given.
    pub(super) fn token(&self) -> Option<&Vec<u8>> {
        self.token.as_ref()
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

/// Sends a built message; waits for the response of requests and CON
/// messages, up to `timeout` (`None`: `set timeout`).
pub(super) fn send(ctx: &Ctx, timeout: Option<std::time::Duration>, built: Built) -> CmdResult {
    let msg = built.message;
    let waits = msg.code.is_request() || msg.mtype == Type::Confirmable;
    let wait = waits.then(|| {
        timeout.unwrap_or_else(|| ctx.server.request_wait(msg.mtype == Type::Confirmable))
    });
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

/// A payload argument as given: bytes or escaped text (converted at once),
/// or a map of path → value or a `tlv()`/`senml_cbor()` builder (encoded
/// by [`Payload::encode`], which knows the content format).
pub(super) struct Payload {
    name: &'static str,
    value: Option<Dynamic>,
    bytes: Vec<u8>,
}

impl crate::script::typed::FromArg for Payload {
    fn from_arg(a: &Args, name: &'static str) -> Result<Self, crate::script::args::ArgError> {
        let value = a.raw(name).cloned();
        let structured = value.as_ref().is_some_and(|v| {
            v.is_map()
                || v.is::<crate::script::builders::Tlv>()
                || v.is::<crate::script::builders::SenmlCbor>()
        });
        if structured {
            return Ok(Payload {
                name,
                value,
                bytes: Vec::new(),
            });
        }
        Ok(Payload {
            name,
            value: None,
            bytes: a.bytes(name)?.unwrap_or_default(),
        })
    }
}

impl Payload {
    /// The bytes and the format to announce: a map is encoded in `format`
    /// (or `map_default`), a builder serialized (TLV or SenML CBOR unless
    /// `format` says otherwise), bytes are sent as they are.
    pub(super) fn encode(
        self,
        format: Option<ContentFormat>,
        map_default: ContentFormat,
        objects: &crate::lwm2m::objects::Registry,
    ) -> Result<(Vec<u8>, Option<ContentFormat>), String> {
        self.encode_for(None, format, map_default, objects)
    }

    /// [`encode`](Self::encode) for a request to `target`: a map in TLV is
    /// arranged below it (see [`encode_map_at`](crate::script::builders::encode_map_at)).
    pub(super) fn encode_for(
        self,
        target: Option<&str>,
        format: Option<ContentFormat>,
        map_default: ContentFormat,
        objects: &crate::lwm2m::objects::Registry,
    ) -> Result<(Vec<u8>, Option<ContentFormat>), String> {
        let name = self.name;
        let Some(v) = self.value else {
            return Ok((self.bytes, format));
        };
        if let Some(map) = v.read_lock::<rhai::Map>() {
            let cf = format.unwrap_or(map_default);
            return Ok((
                crate::script::builders::encode_map_at(cf, &map, objects, target)
                    .map_err(|e| format!("`{name}`: {e}"))?,
                Some(cf),
            ));
        }
        let default = if v.is::<crate::script::builders::Tlv>() {
            ContentFormat::LWM2M_TLV
        } else {
            ContentFormat::SENML_CBOR
        };
        match crate::script::builders::builder_bytes(&v) {
            Some(bytes) => Ok((
                bytes.map_err(|e| format!("`{name}`: {e}"))?,
                Some(format.unwrap_or(default)),
            )),
            None => Ok((Vec::new(), format)),
        }
    }
}

crate::arguments! {
    /// The notification attributes of `observe`, `observe_composite` and
    /// `write_attributes`, in the original's order (`..attributes: Attributes,`).
    pub(super) struct Attributes {
        lt: Option<f64> = opt(Float, "none"),
        gt: Option<f64> = opt(Float, "none"),
        st: Option<f64> = opt(Float, "none"),
        pmin: Option<i64> = opt(Int, "none"),
        pmax: Option<i64> = opt(Int, "none"),
        epmin: Option<i64> = opt(Int, "none"),
        epmax: Option<i64> = opt(Int, "none"),
        hqmax: Option<i64> = opt(Int, "none"),
        edge: Option<i64> = opt(Int, "none"),
        con: Option<i64> = opt(Int, "none"),
        dim: Option<i64> = opt(Int, "none"),
    }
}

/// A Uri-Query option `name=value`.
fn query(name: &str, value: i64) -> crate::coap::CoapOption {
    crate::coap::CoapOption::new(
        crate::coap::OptionNumber::URI_QUERY,
        format!("{name}={value}").into_bytes(),
    )
}

impl Attributes {
    /// The attributes the request builders type (all but `dim`).
    fn typed(&self) -> rq::Attributes {
        rq::Attributes {
            lt: self.lt,
            gt: self.gt,
            st: self.st,
            pmin: self.pmin,
            pmax: self.pmax,
            epmin: self.epmin,
            epmax: self.epmax,
            hqmax: self.hqmax,
            edge: self.edge,
            con: self.con,
        }
    }

    /// `write_attributes`: the attributes its builder types, with the
    /// header; `dim` (which it does not type) joins the extra options.
    pub(super) fn write_attributes(
        self,
        path: String,
        query_items: Option<Vec<String>>,
        header: Header,
    ) -> rq::WriteAttributes {
        let mut header = rq::Header::from(header);
        if let Some(v) = self.dim {
            header.options.push(query("dim", v));
        }
        rq::WriteAttributes {
            path,
            attributes: self.typed(),
            query: query_items,
            header,
        }
    }

    /// The header with `dim`, which the builders do not type, appended as
    /// Uri-Query.
    fn header_dim(&self, header: Header) -> rq::Header {
        let mut header = rq::Header::from(header);
        if let Some(v) = self.dim {
            header.options.push(query("dim", v));
        }
        header
    }

    /// `observe` (and `cancel_observe`, with Observe 1).
    pub(super) fn observe(
        self,
        path: String,
        observe: Option<u32>,
        accept: Option<ContentFormat>,
        header: Header,
    ) -> rq::Observe {
        rq::Observe {
            path,
            observe,
            accept,
            attributes: self.typed(),
            header: self.header_dim(header),
        }
    }

    /// `observe_composite`.
    pub(super) fn observe_composite(
        self,
        paths: Vec<String>,
        observe: Option<u32>,
        accept: Option<ContentFormat>,
        header: Header,
    ) -> rq::ObserveComposite {
        rq::ObserveComposite {
            paths,
            observe,
            accept,
            attributes: self.typed(),
            header: self.header_dim(header),
        }
    }
}
