//! Builders for every message command of the original (reference §6, §7):
//! `read`, `observe`, `write`, …, `register`, `content`, `empty`, `coap`.
//!
//! Each command is a parameter struct whose fields carry the original's
//! parameter names (`Option` where the original had a default) and whose
//! [`Build::build`] checks them with the original's messages and returns the
//! [`Message`]. Pure: no message IDs or tokens are invented here. A message
//! ID or token the user did not give is left as 0 / empty and flagged in
//! [`Built`] for the caller to fill (the exchange layer allocates IDs and
//! tokens, or takes them from the request being answered).
//!
//! Differences from the original, on purpose: `observe` sends Observe 0 as a
//! zero-length option (RFC 7252 §3.2 minimal uint) and takes values above 255;
//! attribute floats are printed in their shortest form (`lt=1.5`, not
//! `lt=1.500000`); `update` adds Content-Format 40 only with a payload;
//! `write_attributes` also takes LwM2M 1.2 `edge` and `con` (and `hqmax`);
//! every path may carry a `?query` tail; `notify` may set an Observe value;
//! `error_response` may carry a diagnostic payload; and [`Coap::respond_to`]
//! answers a request only when asked to with a response code, without adding
//! a second Content-Format.

use crate::coap::{CoapOption, Code, ContentFormat, Message, OptionNumber, Type};

use super::kind::{self, Kind, NoContext};

/// Why a message command could not build its message.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The path does not start with `/`.
    #[error("not a valid CoAP path: {0}")]
    InvalidCoapPath(String),
    /// A segment after the optional prefix is not a number.
    #[error("LWM2M path segment is not an integer: {0}")]
    SegmentNotInteger(String),
    /// More than a prefix and four IDs.
    #[error("LwM2M path must not have more than 4 numeric segments and 1 non-numeric prefix")]
    TooManySegments,
    /// The root path where at least an Object ID is needed.
    #[error("this LWM2M path requires at least Object ID")]
    EmptyPath,
    /// Not exactly an Object path.
    #[error("not a LWM2M Object path: {0}")]
    NotObjectPath(String),
    /// Not exactly a Resource path.
    #[error("not a LWM2M Resource path: {0}")]
    NotResourcePath(String),
    /// Delete of a Resource or Resource Instance.
    #[error("LWM2M Resource path is not applicable to a Delete: {0}")]
    DeleteOfResource(String),
    /// An error response with a code outside classes 4 and 5.
    #[error("Error responses must have code class 4 or 5")]
    NotAnErrorCode,
    /// The payload could not be encoded.
    #[error("could not encode the payload: {0}")]
    Encode(String),
}

/// A built message and what the caller still has to fill in.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Built {
    /// The message; message ID 0 and an empty token where not given.
    pub message: Message,
    /// The kind the command builds (used for the `->` summary).
    pub kind: Kind,
    /// No message ID was given: allocate one (or, for a response, take the
    /// request's).
    pub needs_msg_id: bool,
    /// No token was given and the message should have one: generate one (or,
    /// for a response, take the request's). Never set for Empty, Reset and
    /// `coap`, whose token defaults to empty.
    pub needs_token: bool,
}

/// A message command's parameters.
pub trait Build {
    /// Checks the parameters and builds the message.
    fn build(&self) -> Result<Built, RequestError>;
}

// ---------------------------------------------------------------------------
// Paths

/// A checked URI: Uri-Path segments and Uri-Query items.
struct Uri {
    text: String,
    segments: Vec<String>,
    query: Vec<String>,
}

/// Splits `/a/b?x&y`; the path must start with `/`. `/` alone has no
/// segments; other empty segments are kept (they are valid Uri-Path values).
fn coap_uri(text: &str) -> Result<Uri, RequestError> {
    if !text.starts_with('/') {
        return Err(RequestError::InvalidCoapPath(text.to_string()));
    }
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, q.split('&').map(String::from).collect()),
        None => (text, Vec::new()),
    };
    let segments = if path == "/" {
        Vec::new()
    } else {
        path[1..].split('/').map(String::from).collect()
    };
    Ok(Uri {
        text: path.to_string(),
        segments,
        query,
    })
}

/// An LwM2M path: an optional non-numeric prefix and up to four IDs.
/// Returns the URI and the number of IDs.
fn lwm2m_uri(text: &str) -> Result<(Uri, usize), RequestError> {
    let uri = coap_uri(text)?;
    let segs = &uri.segments;
    let prefixed = segs.len() > 1 && !segs[0].is_empty() && !kind::is_numeric(&segs[0]);
    let ids = if prefixed { &segs[1..] } else { &segs[..] };
    if ids.len() > 4 {
        return Err(RequestError::TooManySegments);
    }
    if let Some(bad) = ids.iter().find(|s| !kind::is_numeric(s)) {
        return Err(RequestError::SegmentNotInteger(bad.clone()));
    }
    let depth = ids.len();
    Ok((uri, depth))
}

fn nonempty_lwm2m_uri(text: &str) -> Result<(Uri, usize), RequestError> {
    let (uri, depth) = lwm2m_uri(text)?;
    if depth == 0 {
        return Err(RequestError::EmptyPath);
    }
    Ok((uri, depth))
}

// ---------------------------------------------------------------------------
// Common assembly

fn message(mtype: Type, code: Code, msg_id: Option<u16>, token: &Option<Vec<u8>>) -> Message {
    let mut m = Message::new(mtype, code, msg_id.unwrap_or(0));
    m.token = token.clone().unwrap_or_default();
    m
}

fn add_path(m: &mut Message, number: OptionNumber, segments: &[String]) {
    for s in segments {
        m.add_option(CoapOption::new(number, s.as_bytes()));
    }
}

fn add_queries(m: &mut Message, query: &[String]) {
    for q in query {
        m.add_option(CoapOption::new(OptionNumber::URI_QUERY, q.as_bytes()));
    }
}

fn add_format(m: &mut Message, number: OptionNumber, format: ContentFormat) {
    m.add_option(CoapOption::uint(number, u64::from(format.0)));
}

fn finish(
    mut m: Message,
    kind: Kind,
    options: &[CoapOption],
    msg_id: Option<u16>,
    token: Option<&Vec<u8>>,
) -> Built {
    for o in options {
        m.add_option(o.clone());
    }
    Built {
        message: m,
        kind,
        needs_msg_id: msg_id.is_none(),
        needs_token: token.is_none(),
    }
}

/// Observe/Write-Attributes notification attributes, in the original's order.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Attributes {
    lt: Option<f64>,
    gt: Option<f64>,
    st: Option<f64>,
    pmin: Option<i64>,
    pmax: Option<i64>,
    epmin: Option<i64>,
    epmax: Option<i64>,
    hqmax: Option<i64>,
    edge: Option<i64>,
    con: Option<i64>,
}

impl Attributes {
    fn queries(&self) -> Vec<String> {
        let mut q = Vec::new();
        for (name, v) in [("lt", self.lt), ("gt", self.gt), ("st", self.st)] {
            if let Some(v) = v {
                q.push(format!("{name}={v}"));
            }
        }
        for (name, v) in [
            ("pmin", self.pmin),
            ("pmax", self.pmax),
            ("epmin", self.epmin),
            ("epmax", self.epmax),
            ("hqmax", self.hqmax),
            ("edge", self.edge),
            ("con", self.con),
        ] {
            if let Some(v) = v {
                q.push(format!("{name}={v}"));
            }
        }
        q
    }
}

/// The SenML CBOR path list of Read-Composite: `[{0: "/3/0/0"}, …]`.
pub fn encode_path_list(paths: &[String]) -> Result<Vec<u8>, RequestError> {
    use ciborium::Value;
    let list = Value::Array(
        paths
            .iter()
            .map(|p| Value::Map(vec![(Value::Integer(0.into()), Value::Text(p.clone()))]))
            .collect(),
    );
    let mut out = Vec::new();
    ciborium::ser::into_writer(&list, &mut out).map_err(|e| RequestError::Encode(e.to_string()))?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Server-role requests (§6.2)

/// `read path [accept]`: GET on a non-empty LwM2M path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Read {
    /// LwM2M path, at least an Object ID (`/3/0/0`).
    pub path: String,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Read {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let mut m = message(Type::Confirmable, Code::GET, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(finish(
            m,
            Kind::Read,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `observe path [observe=0] [accept] [lt gt st pmin pmax epmin epmax hqmax]`:
/// GET with Observe (1 cancels) and attributes as Uri-Query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observe {
    /// LwM2M path, at least an Object ID.
    pub path: String,
    /// Observe value: 0 (default) registers, 1 cancels.
    pub observe: Option<u32>,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Less-than attribute.
    pub lt: Option<f64>,
    /// Greater-than attribute.
    pub gt: Option<f64>,
    /// Step attribute.
    pub st: Option<f64>,
    /// Minimum period.
    pub pmin: Option<i64>,
    /// Maximum period.
    pub pmax: Option<i64>,
    /// Minimum evaluation period.
    pub epmin: Option<i64>,
    /// Maximum evaluation period.
    pub epmax: Option<i64>,
    /// Maximum historical queue (LwM2M 1.2).
    pub hqmax: Option<i64>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`. A cancel must reuse the
    /// observation's token.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Observe {
    fn attributes(&self) -> Attributes {
        Attributes {
            lt: self.lt,
            gt: self.gt,
            st: self.st,
            pmin: self.pmin,
            pmax: self.pmax,
            epmin: self.epmin,
            epmax: self.epmax,
            hqmax: self.hqmax,
            ..Attributes::default()
        }
    }
}

impl Build for Observe {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let mut m = message(Type::Confirmable, Code::GET, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, &self.attributes().queries());
        m.add_option(CoapOption::uint(
            OptionNumber::OBSERVE,
            u64::from(self.observe.unwrap_or(0)),
        ));
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(finish(
            m,
            Kind::Observe,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `discover path [depth]`: GET with Accept 40 on any CoAP path (`/` too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discover {
    /// CoAP path starting with `/`.
    pub path: String,
    /// `depth=N` query (LwM2M 1.1).
    pub depth: Option<i64>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Discover {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&self.path)?;
        let mut m = message(Type::Confirmable, Code::GET, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_format(&mut m, OptionNumber::ACCEPT, ContentFormat::LINK_FORMAT);
        if let Some(d) = self.depth {
            add_queries(&mut m, &[format!("depth={d}")]);
        }
        Ok(finish(
            m,
            Kind::Discover,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `write path content [format=0] [update=false]`: PUT (replace) or POST
/// (partial update) with a Content-Format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Write {
    /// LwM2M path, at least an Object ID.
    pub path: String,
    /// Payload.
    pub content: Vec<u8>,
    /// Content-Format; TEXT_PLAIN (0) when `None`.
    pub format: Option<ContentFormat>,
    /// POST (partial update) instead of PUT.
    pub update: bool,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Write {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let code = if self.update { Code::POST } else { Code::PUT };
        let mut m = message(Type::Confirmable, code, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            self.format.unwrap_or(ContentFormat::TEXT_PLAIN),
        );
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Write,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `write_attributes path [lt gt st pmin pmax epmin epmax hqmax edge con]
/// [query]`: PUT without Content-Format or payload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteAttributes {
    /// LwM2M path, at least an Object ID; may carry `?a=b&c`.
    pub path: String,
    /// Less-than attribute.
    pub lt: Option<f64>,
    /// Greater-than attribute.
    pub gt: Option<f64>,
    /// Step attribute.
    pub st: Option<f64>,
    /// Minimum period.
    pub pmin: Option<i64>,
    /// Maximum period.
    pub pmax: Option<i64>,
    /// Minimum evaluation period.
    pub epmin: Option<i64>,
    /// Maximum evaluation period.
    pub epmax: Option<i64>,
    /// Maximum historical queue (LwM2M 1.2).
    pub hqmax: Option<i64>,
    /// Edge attribute (LwM2M 1.2), 0 or 1.
    pub edge: Option<i64>,
    /// Confirmable-notification attribute (LwM2M 1.2), 0 or 1.
    pub con: Option<i64>,
    /// Raw query items (`pmin`, `dim=2`, …); replaces a query in `path`.
    pub query: Option<Vec<String>>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for WriteAttributes {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let mut m = message(Type::Confirmable, Code::PUT, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, self.query.as_deref().unwrap_or(&uri.query));
        let attrs = Attributes {
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
        };
        add_queries(&mut m, &attrs.queries());
        Ok(finish(
            m,
            Kind::WriteAttributes,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `execute path [content]`: POST on a Resource path, no Content-Format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Execute {
    /// LwM2M Resource path (`/3/0/4`).
    pub path: String,
    /// Execute arguments (`0='abc',1`).
    pub content: Vec<u8>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Execute {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, depth) = nonempty_lwm2m_uri(&self.path)?;
        if depth != 3 {
            return Err(RequestError::NotResourcePath(uri.text));
        }
        let mut m = message(Type::Confirmable, Code::POST, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Execute,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `create path [content] [format=11542]`: POST on an Object path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Create {
    /// LwM2M Object path (`/1`).
    pub path: String,
    /// Payload (the new instance, encoded by the caller).
    pub content: Vec<u8>,
    /// Content-Format; APPLICATION_LWM2M_TLV (11542) when `None`.
    pub format: Option<ContentFormat>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Create {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, depth) = nonempty_lwm2m_uri(&self.path)?;
        if depth != 1 {
            return Err(RequestError::NotObjectPath(uri.text));
        }
        let mut m = message(Type::Confirmable, Code::POST, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            self.format.unwrap_or(ContentFormat::LWM2M_TLV),
        );
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Create,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `delete path`: DELETE on an LwM2M path (`/` allowed, Resources not).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delete {
    /// LwM2M path: root, Object or Object Instance.
    pub path: String,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Delete {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, depth) = lwm2m_uri(&self.path)?;
        if depth >= 3 {
            return Err(RequestError::DeleteOfResource(uri.text));
        }
        let mut m = message(Type::Confirmable, Code::DELETE, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        Ok(finish(
            m,
            Kind::Delete,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `read_composite paths [accept]`: FETCH `/` with a SenML CBOR path list.
/// Paths are sent as given, unchecked, so wrong ones can be tested.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadComposite {
    /// Paths to read (`/3/0/0`, `/1/1`).
    pub paths: Vec<String>,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

fn composite(
    paths: &[String],
    accept: Option<ContentFormat>,
    msg_id: Option<u16>,
    token: &Option<Vec<u8>>,
) -> Result<Message, RequestError> {
    let mut m = message(Type::Confirmable, Code::FETCH, msg_id, token);
    if let Some(a) = accept {
        add_format(&mut m, OptionNumber::ACCEPT, a);
    }
    add_format(
        &mut m,
        OptionNumber::CONTENT_FORMAT,
        ContentFormat::SENML_CBOR,
    );
    m.payload = encode_path_list(paths)?;
    Ok(m)
}

impl Build for ReadComposite {
    fn build(&self) -> Result<Built, RequestError> {
        let m = composite(&self.paths, self.accept, self.msg_id, &self.token)?;
        Ok(finish(
            m,
            Kind::ReadComposite,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `observe_composite paths [observe=0] [accept] [attributes]`: FETCH with
/// Observe and attribute queries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObserveComposite {
    /// Paths to observe.
    pub paths: Vec<String>,
    /// Observe value: 0 (default) registers, 1 cancels.
    pub observe: Option<u32>,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Less-than attribute.
    pub lt: Option<f64>,
    /// Greater-than attribute.
    pub gt: Option<f64>,
    /// Step attribute.
    pub st: Option<f64>,
    /// Minimum period.
    pub pmin: Option<i64>,
    /// Maximum period.
    pub pmax: Option<i64>,
    /// Minimum evaluation period.
    pub epmin: Option<i64>,
    /// Maximum evaluation period.
    pub epmax: Option<i64>,
    /// Maximum historical queue (LwM2M 1.2).
    pub hqmax: Option<i64>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for ObserveComposite {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = composite(&self.paths, self.accept, self.msg_id, &self.token)?;
        m.add_option(CoapOption::uint(
            OptionNumber::OBSERVE,
            u64::from(self.observe.unwrap_or(0)),
        ));
        let attrs = Attributes {
            lt: self.lt,
            gt: self.gt,
            st: self.st,
            pmin: self.pmin,
            pmax: self.pmax,
            epmin: self.epmin,
            epmax: self.epmax,
            hqmax: self.hqmax,
            ..Attributes::default()
        };
        add_queries(&mut m, &attrs.queries());
        Ok(finish(
            m,
            Kind::ObserveComposite,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `write_composite content format`: iPATCH `/` with a Content-Format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteComposite {
    /// Payload (SenML records).
    pub content: Vec<u8>,
    /// Content-Format (required).
    pub format: ContentFormat,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for WriteComposite {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = message(Type::Confirmable, Code::IPATCH, self.msg_id, &self.token);
        add_format(&mut m, OptionNumber::CONTENT_FORMAT, self.format);
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::WriteComposite,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `coap_get path [accept]`: a plain GET on any CoAP path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoapGet {
    /// CoAP path starting with `/`.
    pub path: String,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for CoapGet {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&self.path)?;
        let mut m = message(Type::Confirmable, Code::GET, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(finish(
            m,
            Kind::CoapGet,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `bootstrap_finish`: POST `/bs`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BootstrapFinish {
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Payload (normally empty).
    pub content: Vec<u8>,
}

impl Build for BootstrapFinish {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = message(Type::Confirmable, Code::POST, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &["bs".to_string()]);
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::BootstrapFinish,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

// ---------------------------------------------------------------------------
// Client-role requests (§6.1), mostly useful as templates

/// `register path [query]`: POST with Content-Format 40.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Register {
    /// CoAP path, may carry the query (`/rd?ep=x&lt=86400`).
    pub path: String,
    /// Query items; replace a query in `path`.
    pub query: Option<Vec<String>>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Payload (object links).
    pub content: Vec<u8>,
}

fn registration_message(
    path: &str,
    query: &Option<Vec<String>>,
    msg_id: Option<u16>,
    token: &Option<Vec<u8>>,
) -> Result<Message, RequestError> {
    let uri = coap_uri(path)?;
    let mut m = message(Type::Confirmable, Code::POST, msg_id, token);
    add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
    add_queries(&mut m, query.as_deref().unwrap_or(&uri.query));
    Ok(m)
}

impl Build for Register {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = registration_message(&self.path, &self.query, self.msg_id, &self.token)?;
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            ContentFormat::LINK_FORMAT,
        );
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Register,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `update path [query] [content]`: POST; Content-Format 40 only with links.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// Registration location, may carry the query (`/rd/demo?lt=20`).
    pub path: String,
    /// Query items; replace a query in `path`.
    pub query: Option<Vec<String>>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Payload (object links), usually empty.
    pub content: Vec<u8>,
}

impl Build for Update {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = registration_message(&self.path, &self.query, self.msg_id, &self.token)?;
        if !self.content.is_empty() {
            add_format(
                &mut m,
                OptionNumber::CONTENT_FORMAT,
                ContentFormat::LINK_FORMAT,
            );
        }
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Update,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `deregister path`: DELETE of a registration location.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deregister {
    /// Registration location (`/rd/demo`).
    pub path: String,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Deregister {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&self.path)?;
        let mut m = message(Type::Confirmable, Code::DELETE, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        Ok(finish(
            m,
            Kind::Deregister,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `request_bootstrap endpoint_name [preferred_content_format]`: POST
/// `<uri_path>/bs?<uri_query>&ep=<name>[&pct=N]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestBootstrap {
    /// Endpoint client name.
    pub endpoint_name: String,
    /// `pct=` query (LwM2M 1.1).
    pub preferred_content_format: Option<i64>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Path before `/bs` (empty by default).
    pub uri_path: String,
    /// Query items before `ep=`.
    pub uri_query: Option<Vec<String>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Payload.
    pub content: Vec<u8>,
}

impl Build for RequestBootstrap {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&format!("{}/bs", self.uri_path))?;
        let mut m = message(Type::Confirmable, Code::POST, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, self.uri_query.as_deref().unwrap_or(&[]));
        add_queries(&mut m, &[format!("ep={}", self.endpoint_name)]);
        if let Some(pct) = self.preferred_content_format {
            add_queries(&mut m, &[format!("pct={pct}")]);
        }
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::RequestBootstrap,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `bootstrap_pack_request endpoint_name [accept]`: GET
/// `<uri_path>/bspack?<uri_query>&ep=<name>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BootstrapPackRequest {
    /// Endpoint client name.
    pub endpoint_name: String,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Path before `/bspack` (empty by default).
    pub uri_path: String,
    /// Query items before `ep=`.
    pub uri_query: Option<Vec<String>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for BootstrapPackRequest {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&format!("{}/bspack", self.uri_path))?;
        let mut m = message(Type::Confirmable, Code::GET, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, self.uri_query.as_deref().unwrap_or(&[]));
        add_queries(&mut m, &[format!("ep={}", self.endpoint_name)]);
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(finish(
            m,
            Kind::BootstrapPackRequest,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `send [path=/dp] [format=112] [content]`: POST of data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Send {
    /// Path; `/dp` when `None`. A query part is ignored, as in the original.
    pub path: Option<String>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Content-Format; SenML CBOR (112) when `None`.
    pub format: Option<ContentFormat>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Payload.
    pub content: Vec<u8>,
}

impl Build for Send {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(self.path.as_deref().unwrap_or("/dp"))?;
        let mut m = message(Type::Confirmable, Code::POST, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            self.format.unwrap_or(ContentFormat::SENML_CBOR),
        );
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Send,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// Parameters shared by the three EST-coaps commands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Est {
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None`.
    pub token: Option<Vec<u8>>,
    /// Path before `/est/…` (empty by default).
    pub uri_path: String,
    /// Query items.
    pub uri_query: Option<Vec<String>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Payload (a PKCS#10 request for enroll).
    pub content: Vec<u8>,
}

impl Est {
    fn build_as(&self, code: Code, tail: &str, kind: Kind) -> Result<Built, RequestError> {
        let uri = coap_uri(&format!("{}/est/{tail}", self.uri_path))?;
        let mut m = message(Type::Confirmable, code, self.msg_id, &self.token);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, self.uri_query.as_deref().unwrap_or(&[]));
        m.payload = self.content.clone();
        Ok(finish(
            m,
            kind,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `est_coaps_simple_enroll`: POST `<uri_path>/est/sen`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EstCoapsSimpleEnroll(pub Est);

impl Build for EstCoapsSimpleEnroll {
    fn build(&self) -> Result<Built, RequestError> {
        self.0
            .build_as(Code::POST, "sen", Kind::EstCoapsSimpleEnroll)
    }
}

/// `est_coaps_simple_reenroll`: POST `<uri_path>/est/sren`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EstCoapsSimpleReenroll(pub Est);

impl Build for EstCoapsSimpleReenroll {
    fn build(&self) -> Result<Built, RequestError> {
        self.0
            .build_as(Code::POST, "sren", Kind::EstCoapsSimpleReenroll)
    }
}

/// `est_coaps_ca_certs`: GET `<uri_path>/est/crts`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EstCoapsCaCerts(pub Est);

impl Build for EstCoapsCaCerts {
    fn build(&self) -> Result<Built, RequestError> {
        self.0.build_as(Code::GET, "crts", Kind::EstCoapsCaCerts)
    }
}

// ---------------------------------------------------------------------------
// Responses and Empty messages (§6.3)

/// `content msg_id token [content] [format] [type=ACK]`: 2.05.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    /// Message ID; when `None`, the caller fills it (e.g. from the request).
    pub msg_id: Option<u16>,
    /// Token; when `None`, the caller fills it (e.g. from the request).
    pub token: Option<Vec<u8>>,
    /// Payload.
    pub content: Vec<u8>,
    /// Content-Format; none when `None`.
    pub format: Option<ContentFormat>,
    /// Message type; ACKNOWLEDGEMENT when `None`.
    pub r#type: Option<Type>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Content {
    fn build(&self) -> Result<Built, RequestError> {
        let ty = self.r#type.unwrap_or(Type::Acknowledgement);
        let mut m = message(ty, Code::CONTENT, self.msg_id, &self.token);
        if let Some(f) = self.format {
            add_format(&mut m, OptionNumber::CONTENT_FORMAT, f);
        }
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Content,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `notify token [content] [format] [confirmable=false]`: 2.05 NON (or CON),
/// with a fresh message ID.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notify {
    /// The observation's token.
    pub token: Option<Vec<u8>>,
    /// Payload.
    pub content: Vec<u8>,
    /// Content-Format; none when `None`.
    pub format: Option<ContentFormat>,
    /// Send as CON instead of NON.
    pub confirmable: bool,
    /// Observe sequence number; no Observe option when `None` (as in the
    /// original, unless given in `options`).
    pub observe: Option<u32>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Notify {
    fn build(&self) -> Result<Built, RequestError> {
        let ty = if self.confirmable {
            Type::Confirmable
        } else {
            Type::NonConfirmable
        };
        let mut m = message(ty, Code::CONTENT, None, &self.token);
        if let Some(seq) = self.observe {
            m.add_option(CoapOption::uint(OptionNumber::OBSERVE, u64::from(seq)));
        }
        if let Some(f) = self.format {
            add_format(&mut m, OptionNumber::CONTENT_FORMAT, f);
        }
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::Notify,
            &self.options,
            None,
            self.token.as_ref(),
        ))
    }
}

/// Parameters of `created`, `deleted` and `changed`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocationResponse {
    /// Message ID; when `None`, the caller fills it (e.g. from the request).
    pub msg_id: Option<u16>,
    /// Token; when `None`, the caller fills it (e.g. from the request).
    pub token: Option<Vec<u8>>,
    /// Location-Path (`/rd/demo`), may carry `?Location-Query`.
    pub location: Option<String>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Payload (only `changed` had one in the original).
    pub content: Vec<u8>,
}

impl LocationResponse {
    fn build_as(&self, code: Code, kind: Kind) -> Result<Built, RequestError> {
        let mut m = message(Type::Acknowledgement, code, self.msg_id, &self.token);
        if let Some(loc) = &self.location {
            let uri = coap_uri(loc)?;
            add_path(&mut m, OptionNumber::LOCATION_PATH, &uri.segments);
            for q in &uri.query {
                m.add_option(CoapOption::new(OptionNumber::LOCATION_QUERY, q.as_bytes()));
            }
        }
        m.payload = self.content.clone();
        Ok(finish(
            m,
            kind,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `created msg_id token [location]`: ACK 2.01.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Created(pub LocationResponse);

impl Build for Created {
    fn build(&self) -> Result<Built, RequestError> {
        self.0.build_as(Code::CREATED, Kind::Created)
    }
}

/// `deleted msg_id token [location]`: ACK 2.02.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deleted(pub LocationResponse);

impl Build for Deleted {
    fn build(&self) -> Result<Built, RequestError> {
        self.0.build_as(Code::DELETED, Kind::Deleted)
    }
}

/// `changed msg_id token [location] [content]`: ACK 2.04.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changed(pub LocationResponse);

impl Build for Changed {
    fn build(&self) -> Result<Built, RequestError> {
        self.0.build_as(Code::CHANGED, Kind::Changed)
    }
}

/// `error_response code msg_id token`: ACK with a 4.xx or 5.xx code.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorResponse {
    /// The code; class 4 or 5.
    pub code: Code,
    /// Message ID; when `None`, the caller fills it (e.g. from the request).
    pub msg_id: Option<u16>,
    /// Token; when `None`, the caller fills it (e.g. from the request).
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
    /// Diagnostic payload (RFC 7252 §5.5.2).
    pub content: Vec<u8>,
}

impl Build for ErrorResponse {
    fn build(&self) -> Result<Built, RequestError> {
        if !self.code.is_error() {
            return Err(RequestError::NotAnErrorCode);
        }
        let mut m = message(Type::Acknowledgement, self.code, self.msg_id, &self.token);
        m.payload = self.content.clone();
        Ok(finish(
            m,
            Kind::ErrorResponse,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `continue msg_id token [type=ACK]`: 2.31.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Continue {
    /// Message ID; when `None`, the caller fills it (e.g. from the request).
    pub msg_id: Option<u16>,
    /// Token; when `None`, the caller fills it (e.g. from the request).
    pub token: Option<Vec<u8>>,
    /// Message type; ACKNOWLEDGEMENT when `None`.
    pub r#type: Option<Type>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Build for Continue {
    fn build(&self) -> Result<Built, RequestError> {
        let ty = self.r#type.unwrap_or(Type::Acknowledgement);
        let m = message(ty, Code::CONTINUE, self.msg_id, &self.token);
        Ok(finish(
            m,
            Kind::Continue,
            &self.options,
            self.msg_id,
            self.token.as_ref(),
        ))
    }
}

/// `empty [type=ACK] [msg_id]`: code 0.00, no token. `type=CONFIRMABLE` is a
/// CoAP ping.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Empty {
    /// Message type; ACKNOWLEDGEMENT when `None`.
    pub r#type: Option<Type>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
}

impl Build for Empty {
    fn build(&self) -> Result<Built, RequestError> {
        let ty = self.r#type.unwrap_or(Type::Acknowledgement);
        let m = message(ty, Code::EMPTY, self.msg_id, &None);
        let kind = if ty == Type::Reset {
            Kind::Reset
        } else {
            Kind::Empty
        };
        Ok(finish(m, kind, &[], self.msg_id, Some(&Vec::new())))
    }
}

/// `reset [msg_id]`: an Empty RST.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reset {
    /// Message ID; when `None`, the caller fills it.
    pub msg_id: Option<u16>,
}

impl Build for Reset {
    fn build(&self) -> Result<Built, RequestError> {
        let m = message(Type::Reset, Code::EMPTY, self.msg_id, &None);
        Ok(finish(m, Kind::Reset, &[], self.msg_id, Some(&Vec::new())))
    }
}

// ---------------------------------------------------------------------------
// coap (§7)

/// `coap [type=CON] [code=GET] [msg_id] [token=''] [options] [content]
/// [respond=true]`: any CoAP message.
///
/// With a response code and neither `msg_id` nor `token` given (and `respond`
/// not false) it answers a request: see [`Coap::should_respond`] and
/// [`Coap::respond_to`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Coap {
    /// Message type; CONFIRMABLE when `None`.
    pub r#type: Option<Type>,
    /// Code; REQ_GET (0.01) when `None`.
    pub code: Option<Code>,
    /// Message ID; allocated by the caller when `None`.
    pub msg_id: Option<u16>,
    /// Token; empty when `None`.
    pub token: Option<Vec<u8>>,
    /// Options, in the order given (sorted by number, stable).
    pub options: Vec<CoapOption>,
    /// Payload.
    pub content: Vec<u8>,
    /// Whether a response code without msg_id/token answers the last
    /// request; true when `None`.
    pub respond: Option<bool>,
}

impl Coap {
    /// Whether this should answer the last received request: a response
    /// code, no message ID or token given, and `respond` not false.
    pub fn should_respond(&self) -> bool {
        self.respond.unwrap_or(true)
            && self.code.is_some_and(Code::is_response)
            && self.msg_id.is_none()
            && self.token.is_none()
    }

    /// The response to `request`: its token, and for a CON request an ACK
    /// with its message ID (for a NON request a NON whose message ID the
    /// caller allocates). A payload gets Content-Format 42 unless the options
    /// already hold a Content-Format.
    pub fn respond_to(&self, request: &Message) -> Built {
        let (ty, msg_id) = match request.mtype {
            Type::NonConfirmable => (Type::NonConfirmable, None),
            _ => (Type::Acknowledgement, Some(request.message_id)),
        };
        let code = self.code.unwrap_or(Code::CONTENT);
        let mut m = message(ty, code, msg_id, &Some(request.token.clone()));
        for o in &self.options {
            m.add_option(o.clone());
        }
        if !self.content.is_empty() && m.option(OptionNumber::CONTENT_FORMAT).is_none() {
            add_format(
                &mut m,
                OptionNumber::CONTENT_FORMAT,
                ContentFormat::OCTET_STREAM,
            );
        }
        m.payload = self.content.clone();
        let kind = kind::classify(&m, &NoContext);
        Built {
            message: m,
            kind,
            needs_msg_id: msg_id.is_none(),
            needs_token: false,
        }
    }
}

impl Build for Coap {
    /// The message exactly as given (the non-responding form).
    fn build(&self) -> Result<Built, RequestError> {
        let ty = self.r#type.unwrap_or(Type::Confirmable);
        let code = self.code.unwrap_or(Code::GET);
        let mut m = message(ty, code, self.msg_id, &self.token);
        m.payload = self.content.clone();
        for o in &self.options {
            m.add_option(o.clone());
        }
        let kind = kind::classify(&m, &NoContext);
        Ok(Built {
            message: m,
            kind,
            needs_msg_id: self.msg_id.is_none(),
            needs_token: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::udp;
    use crate::lwm2m::kind::classify;
    use crate::lwm2m::summary::summary;

    fn built(b: &dyn Build) -> Built {
        b.build().expect("builds")
    }

    fn err(b: &dyn Build) -> String {
        b.build().expect_err("fails").to_string()
    }

    fn opts(m: &Message) -> Vec<(u16, Vec<u8>)> {
        m.options
            .iter()
            .map(|o| (o.number.0, o.value.clone()))
            .collect()
    }

    /// The kind the builder claims is the kind classify finds.
    fn consistent(b: &Built) {
        assert_eq!(classify(&b.message, &NoContext), b.kind, "{:?}", b.message);
    }

    #[test]
    fn read_builds_get_with_accept_and_flags_missing_id_and_token() {
        let b = built(&Read {
            path: "/1/1".into(),
            accept: Some(ContentFormat::LWM2M_JSON),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.code, Code::GET);
        assert_eq!(b.message.mtype, Type::Confirmable);
        assert!(b.needs_msg_id && b.needs_token);
        assert_eq!(
            summary(&b.message, b.kind),
            "Read /1/1: accept APPLICATION_LWM2M_JSON"
        );
        let b = built(&Read {
            path: "/1/1/3/1".into(),
            msg_id: Some(4920),
            token: Some(b"NbwK\x18W\xc7\xcb".to_vec()),
            ..Default::default()
        });
        assert!(!b.needs_msg_id && !b.needs_token);
        // Manual §7.1.2.4.1: the wire bytes of `read /1/1/3/1`.
        let mut expected = vec![0x48, 0x01, 0x13, 0x38];
        expected.extend_from_slice(b"NbwK\x18W\xc7\xcb");
        expected.extend_from_slice(&[0xb1, b'1', 0x01, b'1', 0x01, b'3', 0x01, b'1']);
        assert_eq!(udp::encode(&b.message), expected);
    }

    #[test]
    fn path_errors_use_the_originals_messages() {
        let read = |p: &str| {
            err(&Read {
                path: p.into(),
                ..Default::default()
            })
        };
        assert_eq!(read("0/3"), "not a valid CoAP path: 0/3");
        assert_eq!(read("/3/x"), "LWM2M path segment is not an integer: x");
        assert_eq!(read("/"), "this LWM2M path requires at least Object ID");
        assert_eq!(
            read("/1/2/3/4/5"),
            "LwM2M path must not have more than 4 numeric segments and 1 non-numeric prefix"
        );
        assert_eq!(read("/3/"), "LWM2M path segment is not an integer: ");
        assert_eq!(
            err(&Create {
                path: "/1/0".into(),
                ..Default::default()
            }),
            "not a LWM2M Object path: /1/0"
        );
        assert_eq!(
            err(&Execute {
                path: "/3/0".into(),
                ..Default::default()
            }),
            "not a LWM2M Resource path: /3/0"
        );
        assert_eq!(
            err(&Delete {
                path: "/3/0/1".into(),
                ..Default::default()
            }),
            "LWM2M Resource path is not applicable to a Delete: /3/0/1"
        );
        assert_eq!(
            err(&ErrorResponse {
                code: Code::CONTENT,
                ..Default::default()
            }),
            "Error responses must have code class 4 or 5"
        );
    }

    #[test]
    fn prefixed_paths_and_query_tails_are_accepted() {
        let b = built(&Read {
            path: "/lwm2m/3/0?x=1".into(),
            ..Default::default()
        });
        assert_eq!(b.message.uri_string(), "/lwm2m/3/0?x=1");
    }

    #[test]
    fn observe_sends_minimal_observe_and_attributes_in_order() {
        let b = built(&Observe {
            path: "/3/0/13".into(),
            accept: Some(ContentFormat::LWM2M_TLV),
            pmax: Some(5),
            lt: Some(1.5),
            pmin: Some(1),
            st: Some(2.0),
            hqmax: Some(3),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(
            b.message.uri_query(),
            vec!["lt=1.5", "st=2", "pmin=1", "pmax=5", "hqmax=3"]
        );
        assert_eq!(
            b.message
                .option(OptionNumber::OBSERVE)
                .map(|o| o.value.len()),
            Some(0)
        );
        assert_eq!(
            summary(&b.message, b.kind),
            "Observe /3/0/13?lt=1.5&st=2&pmin=1&pmax=5&hqmax=3: accept APPLICATION_LWM2M_TLV"
        );
        let cancel = built(&Observe {
            path: "/3/0/13".into(),
            observe: Some(1),
            token: Some(vec![1]),
            ..Default::default()
        });
        assert_eq!(
            summary(&cancel.message, cancel.kind),
            "Cancel Observation /3/0/13"
        );
        let big = built(&Observe {
            path: "/3".into(),
            observe: Some(70000),
            ..Default::default()
        });
        assert_eq!(big.message.observe(), Some(70000));
    }

    #[test]
    fn discover_adds_accept_link_format_and_depth() {
        let b = built(&Discover {
            path: "/".into(),
            depth: Some(1),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.accept(), vec![ContentFormat::LINK_FORMAT]);
        assert_eq!(summary(&b.message, b.kind), "Discover ?depth=1");
        let b = built(&Discover {
            path: "/3".into(),
            ..Default::default()
        });
        assert_eq!(summary(&b.message, b.kind), "Discover /3");
    }

    #[test]
    fn write_defaults_to_text_plain_put_and_update_posts() {
        let b = built(&Write {
            path: "/1/1/1".into(),
            content: b"60".to_vec(),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.code, Code::PUT);
        assert_eq!(b.message.content_format(), Some(ContentFormat::TEXT_PLAIN));
        assert_eq!(
            summary(&b.message, b.kind),
            "Write /1/1/1: TEXT_PLAIN, 2 bytes"
        );
        let b = built(&Write {
            path: "/1/1".into(),
            content: vec![0xc1, 1, 60],
            format: Some(ContentFormat::LWM2M_TLV),
            update: true,
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(
            summary(&b.message, b.kind),
            "Write (update) /1/1: APPLICATION_LWM2M_TLV, 3 bytes"
        );
    }

    #[test]
    fn write_attributes_orders_path_query_then_typed_attributes() {
        let b = built(&WriteAttributes {
            path: "/3/0/13?dim=2".into(),
            pmin: Some(1),
            pmax: Some(5),
            edge: Some(1),
            con: Some(0),
            hqmax: Some(4),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(
            b.message.uri_query(),
            vec!["dim=2", "pmin=1", "pmax=5", "hqmax=4", "edge=1", "con=0"]
        );
        assert!(b.message.content_format().is_none() && b.message.payload.is_empty());
        let b = built(&WriteAttributes {
            path: "/3/0/13?dim=2".into(),
            query: Some(vec!["pmin".into()]),
            ..Default::default()
        });
        assert_eq!(b.message.uri_query(), vec!["pmin"]);
        assert_eq!(
            summary(&b.message, b.kind),
            "Write Attributes /3/0/13?pmin: pmin"
        );
    }

    #[test]
    fn execute_create_delete() {
        let b = built(&Execute {
            path: "/3/0/4".into(),
            content: b"0='abc',1".to_vec(),
            ..Default::default()
        });
        consistent(&b);
        assert!(b.message.content_format().is_none());
        let b = built(&Create {
            path: "/1".into(),
            content: vec![0x08, 0],
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.content_format(), Some(ContentFormat::LWM2M_TLV));
        let b = built(&Create {
            path: "/1".into(),
            format: Some(ContentFormat::SENML_CBOR),
            ..Default::default()
        });
        consistent(&b);
        for p in ["/", "/1", "/1/0"] {
            let b = built(&Delete {
                path: p.into(),
                ..Default::default()
            });
            consistent(&b);
        }
    }

    #[test]
    fn read_composite_encodes_a_senml_cbor_path_list() {
        let b = built(&ReadComposite {
            paths: vec!["/3/0/0".into(), "/1/1".into()],
            accept: Some(ContentFormat::SENML_CBOR),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(
            b.message.payload,
            vec![
                0x82, 0xa1, 0x00, 0x66, b'/', b'3', b'/', b'0', b'/', b'0', 0xa1, 0x00, 0x64, b'/',
                b'1', b'/', b'1'
            ]
        );
        assert_eq!(b.message.content_format(), Some(ContentFormat::SENML_CBOR));
        assert!(b.message.uri_path().is_empty());
        assert_eq!(
            summary(&b.message, b.kind),
            "Read-Composite /3/0/0, /1/1: accept APPLICATION_LWM2M_SENML_CBOR"
        );
        let b = built(&ObserveComposite {
            paths: vec!["/3/0".into()],
            pmin: Some(2),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(summary(&b.message, b.kind), "Observe-Composite /3/0");
        assert_eq!(b.message.uri_query(), vec!["pmin=2"]);
    }

    #[test]
    fn write_composite_and_coap_get() {
        let b = built(&WriteComposite {
            content: vec![0x80],
            format: ContentFormat::SENML_CBOR,
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.code, Code::IPATCH);
        let b = built(&CoapGet {
            path: "/fw/image.bin".into(),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(
            err(&CoapGet {
                path: "fw".into(),
                ..Default::default()
            }),
            "not a valid CoAP path: fw"
        );
    }

    #[test]
    fn client_role_requests() {
        let b = built(&Register {
            path: "/rd?lwm2m=1.1&ep=my_endpoint&lt=86400".into(),
            content: b"</1/1>,</2>".to_vec(),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.content_format(), Some(ContentFormat::LINK_FORMAT));
        assert_eq!(
            b.message.uri_query(),
            vec!["lwm2m=1.1", "ep=my_endpoint", "lt=86400"]
        );
        let b = built(&Update {
            path: "/rd/demo".into(),
            ..Default::default()
        });
        consistent(&b);
        assert!(b.message.content_format().is_none());
        assert_eq!(summary(&b.message, b.kind), "Update /rd/demo: ");
        let b = built(&Update {
            path: "/rd/demo".into(),
            content: b"</1/0>".to_vec(),
            ..Default::default()
        });
        assert_eq!(b.message.content_format(), Some(ContentFormat::LINK_FORMAT));
        let b = built(&Deregister {
            path: "/rd/demo".into(),
            ..Default::default()
        });
        consistent(&b);
        let b = built(&RequestBootstrap {
            endpoint_name: "dev".into(),
            preferred_content_format: Some(112),
            uri_query: Some(vec!["x=y".into()]),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.uri_string(), "/bs?x=y&ep=dev&pct=112");
        assert_eq!(
            err(&RequestBootstrap {
                endpoint_name: "dev".into(),
                uri_path: "x".into(),
                ..Default::default()
            }),
            "not a valid CoAP path: x/bs"
        );
        let b = built(&BootstrapPackRequest {
            endpoint_name: "dev".into(),
            accept: Some(ContentFormat::SENML_CBOR),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.uri_string(), "/bspack?ep=dev");
        let b = built(&Send {
            path: Some("/dp?ignored".into()),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.uri_string(), "/dp");
        assert_eq!(b.message.content_format(), Some(ContentFormat::SENML_CBOR));
        let b = built(&BootstrapFinish::default());
        consistent(&b);
        assert_eq!(summary(&b.message, b.kind), "Bootstrap Finish /bs: ");
        for b in [
            built(&EstCoapsSimpleEnroll::default()),
            built(&EstCoapsSimpleReenroll::default()),
            built(&EstCoapsCaCerts::default()),
        ] {
            consistent(&b);
        }
    }

    #[test]
    fn responses_and_empty_messages() {
        let b = built(&Content {
            msg_id: Some(7),
            token: Some(vec![1]),
            content: b"x".to_vec(),
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(b.message.mtype, Type::Acknowledgement);
        assert!(b.message.content_format().is_none());
        let b = built(&Notify {
            token: Some(vec![1]),
            observe: Some(5),
            format: Some(ContentFormat::LWM2M_TLV),
            ..Default::default()
        });
        consistent(&b);
        assert!(b.needs_msg_id && !b.needs_token);
        assert_eq!(b.message.mtype, Type::NonConfirmable);
        let b = built(&Created(LocationResponse {
            msg_id: Some(1),
            token: Some(vec![]),
            location: Some("/rd/demo".into()),
            ..Default::default()
        }));
        consistent(&b);
        assert_eq!(summary(&b.message, b.kind), "Created /rd/demo");
        let b = built(&Deleted::default());
        consistent(&b);
        assert!(b.needs_msg_id && b.needs_token);
        let b = built(&Changed::default());
        assert_eq!(summary(&b.message, b.kind), "Changed (no location path)");
        let b = built(&ErrorResponse {
            code: Code::NOT_FOUND,
            ..Default::default()
        });
        consistent(&b);
        assert_eq!(
            summary(&b.message, b.kind),
            "4.04 (RES_NOT_FOUND): (no details available)"
        );
        let b = built(&Continue::default());
        consistent(&b);
        let b = built(&Empty::default());
        consistent(&b);
        assert!(b.needs_msg_id && !b.needs_token);
        assert_eq!(udp::encode(&b.message), vec![0x60, 0, 0, 0]);
        let ping = built(&Empty {
            r#type: Some(Type::Confirmable),
            msg_id: Some(1),
        });
        consistent(&ping);
        let b = built(&Reset { msg_id: Some(4922) });
        consistent(&b);
        assert_eq!(summary(&b.message, b.kind), "Reset, msg_id = 4922");
    }

    #[test]
    fn user_options_are_merged_by_number() {
        let b = built(&Read {
            path: "/5/0/1".into(),
            options: vec![
                CoapOption::new(
                    OptionNumber::BLOCK2,
                    crate::coap::BlockValue::new(1, false, 1024)
                        .expect("valid")
                        .encode(),
                ),
                CoapOption::uint(OptionNumber::OBSERVE, 0),
            ],
            ..Default::default()
        });
        let numbers: Vec<u16> = opts(&b.message).iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![6, 11, 11, 11, 23]);
    }

    #[test]
    fn coap_builds_as_given_or_responds_to_a_request() {
        let plain = Coap::default();
        assert!(!plain.should_respond());
        let b = built(&plain);
        assert_eq!(b.message.code, Code::GET);
        assert!(b.message.token.is_empty() && !b.needs_token && b.needs_msg_id);

        let csm = Coap {
            code: Some(Code::CSM),
            msg_id: Some(0),
            ..Default::default()
        };
        assert!(!csm.should_respond());

        let answer = Coap {
            code: Some(Code::CONTENT),
            content: b"abc".to_vec(),
            ..Default::default()
        };
        assert!(answer.should_respond());
        let mut request = Message::new(Type::Confirmable, Code::GET, 99);
        request.token = vec![7, 7];
        let r = answer.respond_to(&request);
        assert_eq!(r.message.mtype, Type::Acknowledgement);
        assert_eq!(r.message.message_id, 99);
        assert_eq!(r.message.token, vec![7, 7]);
        assert_eq!(
            r.message.content_format(),
            Some(ContentFormat::OCTET_STREAM)
        );
        assert!(!r.needs_msg_id && !r.needs_token);
        assert_eq!(r.kind, Kind::Content);

        let own_format = Coap {
            code: Some(Code::CONTENT),
            content: b"abc".to_vec(),
            options: vec![CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0)],
            ..Default::default()
        };
        let r = own_format.respond_to(&request);
        assert_eq!(
            r.message
                .options
                .iter()
                .filter(|o| o.number == OptionNumber::CONTENT_FORMAT)
                .count(),
            1
        );
        assert_eq!(r.message.content_format(), Some(ContentFormat::TEXT_PLAIN));

        request.mtype = Type::NonConfirmable;
        let r = answer.respond_to(&request);
        assert_eq!(r.message.mtype, Type::NonConfirmable);
        assert!(r.needs_msg_id);

        let no = Coap {
            respond: Some(false),
            ..answer
        };
        assert!(!no.should_respond());
    }

    proptest::proptest! {
        #[test]
        fn builders_never_panic_on_any_text(path in ".{0,40}", n in proptest::prelude::any::<i64>()) {
            let _ = Read { path: path.clone(), ..Default::default() }.build();
            let _ = Delete { path: path.clone(), ..Default::default() }.build();
            let _ = Execute { path: path.clone(), ..Default::default() }.build();
            let _ = Create { path: path.clone(), ..Default::default() }.build();
            let _ = Discover { path: path.clone(), depth: Some(n), ..Default::default() }.build();
            let _ = WriteAttributes { path: path.clone(), pmin: Some(n), lt: Some(n as f64), ..Default::default() }.build();
            let _ = Register { path: path.clone(), ..Default::default() }.build();
            let _ = RequestBootstrap { endpoint_name: path.clone(), uri_path: path.clone(), ..Default::default() }.build();
            let _ = Created(LocationResponse { location: Some(path.clone()), ..Default::default() }).build();
            let _ = ReadComposite { paths: vec![path], ..Default::default() }.build();
        }
    }
}
