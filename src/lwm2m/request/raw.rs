//! Raw CoAP: responses (2.05 Content, 2.01/2.02/2.04 with a location,
//! error responses, 2.31 Continue), Empty and Reset messages, a plain CoAP
//! GET, and `coap`, any message exactly as given (reference §6.3, §7).

use crate::coap::{CoapOption, Code, ContentFormat, Message, OptionNumber, Type};

use super::kind::{self, NoContext};
use super::{
    Build, Built, Header, Kind, RequestError, add_format, add_path, add_queries, coap_uri, finish,
    message,
};

/// `coap_get path [accept]`: a plain GET on any CoAP path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoapGet {
    /// CoAP path starting with `/`.
    pub path: String,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for CoapGet {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&self.path)?;
        let mut m = self.header.message(Type::Confirmable, Code::GET);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(self.header.finish(m, Kind::CoapGet))
    }
}

/// `content msg_id token [content] [format] [type=ACK]`: 2.05.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    /// Message ID, token and extra options.
    pub header: Header,
    /// Payload.
    pub content: Vec<u8>,
    /// Content-Format; none when `None`.
    pub format: Option<ContentFormat>,
    /// Message type; ACKNOWLEDGEMENT when `None`.
    pub r#type: Option<Type>,
}

impl Build for Content {
    fn build(&self) -> Result<Built, RequestError> {
        let ty = self.r#type.unwrap_or(Type::Acknowledgement);
        let mut m = self.header.message(ty, Code::CONTENT);
        if let Some(f) = self.format {
            add_format(&mut m, OptionNumber::CONTENT_FORMAT, f);
        }
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Content))
    }
}

/// Parameters of `created`, `deleted` and `changed`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocationResponse {
    /// Message ID, token and extra options.
    pub header: Header,
    /// Location-Path (`/rd/demo`), may carry `?Location-Query`.
    pub location: Option<String>,
    /// Payload (only `changed` had one in the original).
    pub content: Vec<u8>,
}

impl LocationResponse {
    fn build_as(&self, code: Code, kind: Kind) -> Result<Built, RequestError> {
        let mut m = self.header.message(Type::Acknowledgement, code);
        if let Some(loc) = &self.location {
            let uri = coap_uri(loc)?;
            add_path(&mut m, OptionNumber::LOCATION_PATH, &uri.segments);
            for q in &uri.query {
                m.add_option(CoapOption::new(OptionNumber::LOCATION_QUERY, q.as_bytes()));
            }
        }
        m.payload = self.content.clone();
        Ok(self.header.finish(m, kind))
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
    /// Message ID, token and extra options.
    pub header: Header,
    /// Diagnostic payload (RFC 7252 §5.5.2).
    pub content: Vec<u8>,
}

impl Build for ErrorResponse {
    fn build(&self) -> Result<Built, RequestError> {
        if !self.code.is_error() {
            return Err(RequestError::NotAnErrorCode);
        }
        let mut m = self.header.message(Type::Acknowledgement, self.code);
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::ErrorResponse))
    }
}

/// `continue msg_id token [type=ACK]`: 2.31.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Continue {
    /// Message ID, token and extra options.
    pub header: Header,
    /// Message type; ACKNOWLEDGEMENT when `None`.
    pub r#type: Option<Type>,
}

impl Build for Continue {
    fn build(&self) -> Result<Built, RequestError> {
        let ty = self.r#type.unwrap_or(Type::Acknowledgement);
        let m = self.header.message(ty, Code::CONTINUE);
        Ok(self.header.finish(m, Kind::Continue))
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
    /// Message ID, token and extra options.
    pub header: Header,
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
            && self.header.msg_id.is_none()
            && self.header.token.is_none()
    }

    /// The response to `request`: its token, and for a CON request an ACK
    /// with its message ID (for a NON request a NON whose message ID the
    /// caller allocates). A payload gets Content-Format 42 unless the options
    /// already hold a Content-Format.
    pub fn respond_to(&self, request: &Message) -> Built {
        // The one shape of a response (Message::response_to); a NON's
        // message ID is the sender's own, filled in when it is sent.
        let code = self.code.unwrap_or(Code::CONTENT);
        let mut m = Message::response_to(request, code, 0);
        let needs_msg_id = m.mtype == Type::NonConfirmable && !m.reliable;
        for o in &self.header.options {
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
            needs_msg_id,
            needs_token: false,
        }
    }
}

impl Build for Coap {
    /// The message exactly as given (the non-responding form).
    fn build(&self) -> Result<Built, RequestError> {
        let ty = self.r#type.unwrap_or(Type::Confirmable);
        let code = self.code.unwrap_or(Code::GET);
        let mut m = self.header.message(ty, code);
        m.payload = self.content.clone();
        for o in &self.header.options {
            m.add_option(o.clone());
        }
        let kind = kind::classify(&m, &NoContext);
        Ok(Built {
            message: m,
            kind,
            needs_msg_id: self.header.msg_id.is_none(),
            needs_token: false,
        })
    }
}
