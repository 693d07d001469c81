//! Client Registration (LwM2M 1.2 TS Core §6.2), client-role: Register,
//! Update and De-register — for testing servers, or as templates.

use crate::coap::{Code, ContentFormat, Message, OptionNumber, Type};

use super::{
    Build, Built, Header, Kind, RequestError, add_format, add_path, add_queries, coap_uri,
};

/// `register path [query]`: POST with Content-Format 40.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Register {
    /// CoAP path, may carry the query (`/rd?ep=x&lt=86400`).
    pub path: String,
    /// Query items; replace a query in `path`.
    pub query: Option<Vec<String>>,
    /// Message ID, token and extra options.
    pub header: Header,
    /// Payload (object links).
    pub content: Vec<u8>,
}

fn registration_message(
    path: &str,
    query: &Option<Vec<String>>,
    header: &Header,
) -> Result<Message, RequestError> {
    let uri = coap_uri(path)?;
    let mut m = header.message(Type::Confirmable, Code::POST);
    add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
    match query {
        Some(query) => add_queries(&mut m, query),
        None => add_queries(&mut m, &uri.query),
    }
    Ok(m)
}

impl Build for Register {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = registration_message(&self.path, &self.query, &self.header)?;
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            ContentFormat::LINK_FORMAT,
        );
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Register))
    }
}

/// `update path [query] [content]`: POST; Content-Format 40 only with links.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// Registration location, may carry the query (`/rd/demo?lt=20`).
    pub path: String,
    /// Query items; replace a query in `path`.
    pub query: Option<Vec<String>>,
    /// Message ID, token and extra options.
    pub header: Header,
    /// Payload (object links), usually empty.
    pub content: Vec<u8>,
}

impl Build for Update {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = registration_message(&self.path, &self.query, &self.header)?;
        if !self.content.is_empty() {
            add_format(
                &mut m,
                OptionNumber::CONTENT_FORMAT,
                ContentFormat::LINK_FORMAT,
            );
        }
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Update))
    }
}

/// `deregister path`: DELETE of a registration location.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deregister {
    /// Registration location (`/rd/demo`).
    pub path: String,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Deregister {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&self.path)?;
        let mut m = self.header.message(Type::Confirmable, Code::DELETE);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        Ok(self.header.finish(m, Kind::Deregister))
    }
}
