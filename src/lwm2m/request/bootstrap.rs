//! Bootstrap (LwM2M 1.2 TS Core §6.1): Bootstrap-Finish (server role), the
//! client-role Bootstrap-Request and Bootstrap-Pack-Request, and the
//! EST-coaps enrollment requests (RFC 9148).

use crate::coap::{Code, ContentFormat, OptionNumber, Type};

use super::{
    Build, Built, Header, Kind, RequestError, add_format, add_path, add_queries, coap_uri,
};

/// `bootstrap_finish`: POST `/bs`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BootstrapFinish {
    /// Message ID, token and extra options.
    pub header: Header,
    /// Payload (normally empty).
    pub content: Vec<u8>,
}

impl Build for BootstrapFinish {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = self.header.message(Type::Confirmable, Code::POST);
        add_path(&mut m, OptionNumber::URI_PATH, &["bs"]);
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::BootstrapFinish))
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
    /// Message ID, token and extra options.
    pub header: Header,
    /// Path before `/bs` (empty by default).
    pub uri_path: String,
    /// Query items before `ep=`.
    pub uri_query: Option<Vec<String>>,
    /// Payload.
    pub content: Vec<u8>,
}

impl Build for RequestBootstrap {
    fn build(&self) -> Result<Built, RequestError> {
        let text = format!("{}/bs", self.uri_path);
        let uri = coap_uri(&text)?;
        let mut m = self.header.message(Type::Confirmable, Code::POST);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, self.uri_query.as_deref().unwrap_or(&[]));
        add_queries(&mut m, &[format!("ep={}", self.endpoint_name)]);
        if let Some(pct) = self.preferred_content_format {
            add_queries(&mut m, &[format!("pct={pct}")]);
        }
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::RequestBootstrap))
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
    /// Message ID, token and extra options.
    pub header: Header,
    /// Path before `/bspack` (empty by default).
    pub uri_path: String,
    /// Query items before `ep=`.
    pub uri_query: Option<Vec<String>>,
}

impl Build for BootstrapPackRequest {
    fn build(&self) -> Result<Built, RequestError> {
        let text = format!("{}/bspack", self.uri_path);
        let uri = coap_uri(&text)?;
        let mut m = self.header.message(Type::Confirmable, Code::GET);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, self.uri_query.as_deref().unwrap_or(&[]));
        add_queries(&mut m, &[format!("ep={}", self.endpoint_name)]);
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(self.header.finish(m, Kind::BootstrapPackRequest))
    }
}

/// Parameters shared by the three EST-coaps commands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Est {
    /// Message ID, token and extra options.
    pub header: Header,
    /// Path before `/est/…` (empty by default).
    pub uri_path: String,
    /// Query items.
    pub uri_query: Option<Vec<String>>,
    /// Payload (a PKCS#10 request for enroll).
    pub content: Vec<u8>,
}

impl Est {
    fn build_as(&self, code: Code, tail: &str, kind: Kind) -> Result<Built, RequestError> {
        let text = format!("{}/est/{tail}", self.uri_path);
        let uri = coap_uri(&text)?;
        let mut m = self.header.message(Type::Confirmable, code);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, self.uri_query.as_deref().unwrap_or(&[]));
        m.payload = self.content.clone();
        Ok(self.header.finish(m, kind))
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
