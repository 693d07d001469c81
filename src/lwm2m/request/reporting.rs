//! Information Reporting (LwM2M 1.2 TS Core §6.4): Observe and
//! Observe-Composite (and their cancel, Observe 1), and the client-role
//! Notify and Send.

use crate::coap::{CoapOption, Code, ContentFormat, OptionNumber, Type};

use super::device::composite;
use super::{
    Attributes, Build, Built, Header, Kind, RequestError, add_format, add_path, add_queries,
    coap_uri, nonempty_lwm2m_uri,
};

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
    /// Notification attributes, sent as Uri-Query.
    pub attributes: Attributes,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Observe {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let mut m = self.header.message(Type::Confirmable, Code::GET);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_queries(&mut m, &self.attributes.queries());
        m.add_option(CoapOption::uint(
            OptionNumber::OBSERVE,
            u64::from(self.observe.unwrap_or(0)),
        ));
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(self.header.finish(m, Kind::Observe))
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
    /// Notification attributes, sent as Uri-Query.
    pub attributes: Attributes,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for ObserveComposite {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = composite(&self.paths, self.accept, &self.header)?;
        m.add_option(CoapOption::uint(
            OptionNumber::OBSERVE,
            u64::from(self.observe.unwrap_or(0)),
        ));
        add_queries(&mut m, &self.attributes.queries());
        Ok(self.header.finish(m, Kind::ObserveComposite))
    }
}

/// `notify token [content] [format] [confirmable=false]`: 2.05 NON (or CON),
/// with a fresh message ID.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notify {
    /// Message ID, token and extra options.
    pub header: Header,
    /// Payload.
    pub content: Vec<u8>,
    /// Content-Format; none when `None`.
    pub format: Option<ContentFormat>,
    /// Send as CON instead of NON.
    pub confirmable: bool,
    /// Observe sequence number; no Observe option when `None` (as in the
    /// original, unless given in `options`).
    pub observe: Option<u32>,
}

impl Build for Notify {
    fn build(&self) -> Result<Built, RequestError> {
        let ty = if self.confirmable {
            Type::Confirmable
        } else {
            Type::NonConfirmable
        };
        let mut m = self.header.message(ty, Code::CONTENT);
        if let Some(seq) = self.observe {
            m.add_option(CoapOption::uint(OptionNumber::OBSERVE, u64::from(seq)));
        }
        if let Some(f) = self.format {
            add_format(&mut m, OptionNumber::CONTENT_FORMAT, f);
        }
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Notify))
    }
}

/// `send [path=/dp] [format=112] [content]`: POST of data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Send {
    /// Path; `/dp` when `None`. A query part is ignored, as in the original.
    pub path: Option<String>,
    /// Message ID, token and extra options.
    pub header: Header,
    /// Content-Format; SenML CBOR (112) when `None`.
    pub format: Option<ContentFormat>,
    /// Payload.
    pub content: Vec<u8>,
}

impl Build for Send {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(self.path.as_deref().unwrap_or("/dp"))?;
        let mut m = self.header.message(Type::Confirmable, Code::POST);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            self.format.unwrap_or(ContentFormat::SENML_CBOR),
        );
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Send))
    }
}
