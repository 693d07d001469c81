//! Builders for every message command of the original (reference §6, §7):
//! `read`, `observe`, `write`, …, `register`, `content`, `empty`, `coap`,
//! one file per LwM2M interface: [`registration`] (client-role Register,
//! Update, De-register), [`device`] (Device Management and Service
//! Enablement), [`reporting`] (Information Reporting: Observe, Notify,
//! Send), [`bootstrap`] (Bootstrap and EST-coaps) and [`raw`] (responses,
//! Empty messages and any CoAP message). This file owns what they share:
//! the [`Header`] (message ID, token, extra options), path checks and the
//! assembly helpers.
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

use super::kind::{self, Kind};

pub mod bootstrap;
pub mod device;
pub mod raw;
pub mod registration;
pub mod reporting;
#[cfg(test)]
mod tests;

pub use bootstrap::*;
pub use device::*;
pub use raw::*;
pub use registration::*;
pub use reporting::*;

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

/// A checked URI: Uri-Path segments and Uri-Query items, borrowed from
/// the text they were split from.
struct Uri<'a> {
    text: &'a str,
    segments: Vec<&'a str>,
    query: Vec<&'a str>,
}

/// Splits `/a/b?x&y`; the path must start with `/`. `/` alone has no
/// segments; other empty segments are kept (they are valid Uri-Path values).
fn coap_uri(text: &str) -> Result<Uri<'_>, RequestError> {
    if !text.starts_with('/') {
        return Err(RequestError::InvalidCoapPath(text.to_string()));
    }
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, q.split('&').collect()),
        None => (text, Vec::new()),
    };
    let segments = match path.strip_prefix('/') {
        Some("") | None => Vec::new(),
        Some(rest) => rest.split('/').collect(),
    };
    Ok(Uri {
        text: path,
        segments,
        query,
    })
}

/// An LwM2M path: an optional non-numeric prefix and up to four IDs.
/// Returns the URI and the number of IDs.
fn lwm2m_uri(text: &str) -> Result<(Uri<'_>, usize), RequestError> {
    let uri = coap_uri(text)?;
    let segs = &uri.segments;
    let prefixed = segs.len() > 1 && !segs[0].is_empty() && !kind::is_numeric(segs[0]);
    let ids = if prefixed { &segs[1..] } else { &segs[..] };
    if ids.len() > 4 {
        return Err(RequestError::TooManySegments);
    }
    if let Some(bad) = ids.iter().find(|s| !kind::is_numeric(s)) {
        return Err(RequestError::SegmentNotInteger(bad.to_string()));
    }
    let depth = ids.len();
    Ok((uri, depth))
}

fn nonempty_lwm2m_uri(text: &str) -> Result<(Uri<'_>, usize), RequestError> {
    let (uri, depth) = lwm2m_uri(text)?;
    if depth == 0 {
        return Err(RequestError::EmptyPath);
    }
    Ok((uri, depth))
}

// ---------------------------------------------------------------------------
// Common assembly

/// What every message command shares: message ID, token and extra options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    /// Message ID; allocated by the caller when `None` (for a response,
    /// taken from the request).
    pub msg_id: Option<u16>,
    /// Token; generated by the caller when `None` (for a response, taken
    /// from the request).
    pub token: Option<Vec<u8>>,
    /// Extra options, merged in by number.
    pub options: Vec<CoapOption>,
}

impl Header {
    /// The message with this header's message ID and token (0 and empty
    /// when not given); options come last, in [`Header::finish`].
    fn message(&self, mtype: Type, code: Code) -> Message {
        message(mtype, code, self.msg_id, &self.token)
    }

    /// Adds the extra options and flags what the caller must fill in.
    fn finish(&self, m: Message, kind: Kind) -> Built {
        finish(m, kind, &self.options, self.msg_id, self.token.as_ref())
    }
}

fn message(mtype: Type, code: Code, msg_id: Option<u16>, token: &Option<Vec<u8>>) -> Message {
    let mut m = Message::new(mtype, code, msg_id.unwrap_or(0));
    m.token = token.clone().unwrap_or_default();
    m
}

fn add_path(m: &mut Message, number: OptionNumber, segments: &[&str]) {
    for s in segments {
        m.add_option(CoapOption::new(number, s.as_bytes()));
    }
}

fn add_queries<Q: AsRef<str>>(m: &mut Message, query: &[Q]) {
    for q in query {
        m.add_option(CoapOption::new(
            OptionNumber::URI_QUERY,
            q.as_ref().as_bytes(),
        ));
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

/// The notification attributes of Observe, Observe-Composite and
/// Write-Attributes (LwM2M Core §5.1.2), in the original's order.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Attributes {
    /// Less-than.
    pub lt: Option<f64>,
    /// Greater-than.
    pub gt: Option<f64>,
    /// Step.
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
    /// Edge (LwM2M 1.2), 0 or 1.
    pub edge: Option<i64>,
    /// Confirmable notification (LwM2M 1.2), 0 or 1.
    pub con: Option<i64>,
}

impl Attributes {
    /// `name=value` Uri-Query items, in the original's order.
    pub fn queries(&self) -> Vec<String> {
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
