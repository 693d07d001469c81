//! Device Management and Service Enablement (LwM2M 1.2 TS Core §6.3): the
//! server-role requests on a client's objects — Read, Discover, Write,
//! Write-Attributes, Execute, Create, Delete, Read-Composite and
//! Write-Composite.

use crate::coap::{Code, ContentFormat, Message, OptionNumber, Type};

use super::{
    Attributes, Build, Built, Header, Kind, RequestError, add_format, add_path, add_queries,
    coap_uri, encode_path_list, lwm2m_uri, nonempty_lwm2m_uri,
};

/// `read path [accept]`: GET on a non-empty LwM2M path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Read {
    /// LwM2M path, at least an Object ID (`/3/0/0`).
    pub path: String,
    /// Accept option.
    pub accept: Option<ContentFormat>,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Read {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let mut m = self.header.message(Type::Confirmable, Code::GET);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        if let Some(a) = self.accept {
            add_format(&mut m, OptionNumber::ACCEPT, a);
        }
        Ok(self.header.finish(m, Kind::Read))
    }
}

/// `discover path [depth]`: GET with Accept 40 on any CoAP path (`/` too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discover {
    /// CoAP path starting with `/`.
    pub path: String,
    /// `depth=N` query (LwM2M 1.1).
    pub depth: Option<i64>,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Discover {
    fn build(&self) -> Result<Built, RequestError> {
        let uri = coap_uri(&self.path)?;
        let mut m = self.header.message(Type::Confirmable, Code::GET);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_format(&mut m, OptionNumber::ACCEPT, ContentFormat::LINK_FORMAT);
        if let Some(d) = self.depth {
            add_queries(&mut m, &[format!("depth={d}")]);
        }
        Ok(self.header.finish(m, Kind::Discover))
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
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Write {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let code = if self.update { Code::POST } else { Code::PUT };
        let mut m = self.header.message(Type::Confirmable, code);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            self.format.unwrap_or(ContentFormat::TEXT_PLAIN),
        );
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Write))
    }
}

/// `write_attributes path [lt gt st pmin pmax epmin epmax hqmax edge con]
/// [query]`: PUT without Content-Format or payload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteAttributes {
    /// LwM2M path, at least an Object ID; may carry `?a=b&c`.
    pub path: String,
    /// Notification attributes, sent as Uri-Query.
    pub attributes: Attributes,
    /// Raw query items (`pmin`, `dim=2`, …); replaces a query in `path`.
    pub query: Option<Vec<String>>,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for WriteAttributes {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, _) = nonempty_lwm2m_uri(&self.path)?;
        let mut m = self.header.message(Type::Confirmable, Code::PUT);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        match &self.query {
            Some(query) => add_queries(&mut m, query),
            None => add_queries(&mut m, &uri.query),
        }
        add_queries(&mut m, &self.attributes.queries());
        Ok(self.header.finish(m, Kind::WriteAttributes))
    }
}

/// `execute path [content]`: POST on a Resource path, no Content-Format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Execute {
    /// LwM2M Resource path (`/3/0/4`).
    pub path: String,
    /// Execute arguments (`0='abc',1`).
    pub content: Vec<u8>,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Execute {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, depth) = nonempty_lwm2m_uri(&self.path)?;
        if depth != 3 {
            return Err(RequestError::NotResourcePath(uri.text.to_string()));
        }
        let mut m = self.header.message(Type::Confirmable, Code::POST);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Execute))
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
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Create {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, depth) = nonempty_lwm2m_uri(&self.path)?;
        if depth != 1 {
            return Err(RequestError::NotObjectPath(uri.text.to_string()));
        }
        let mut m = self.header.message(Type::Confirmable, Code::POST);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        add_format(
            &mut m,
            OptionNumber::CONTENT_FORMAT,
            self.format.unwrap_or(ContentFormat::LWM2M_TLV),
        );
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::Create))
    }
}

/// `delete path`: DELETE on an LwM2M path (`/` allowed, Resources not).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delete {
    /// LwM2M path: root, Object or Object Instance.
    pub path: String,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for Delete {
    fn build(&self) -> Result<Built, RequestError> {
        let (uri, depth) = lwm2m_uri(&self.path)?;
        if depth >= 3 {
            return Err(RequestError::DeleteOfResource(uri.text.to_string()));
        }
        let mut m = self.header.message(Type::Confirmable, Code::DELETE);
        add_path(&mut m, OptionNumber::URI_PATH, &uri.segments);
        add_queries(&mut m, &uri.query);
        Ok(self.header.finish(m, Kind::Delete))
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
    /// Message ID, token and extra options.
    pub header: Header,
}

/// The FETCH of Read-Composite and Observe-Composite.
pub(super) fn composite(
    paths: &[String],
    accept: Option<ContentFormat>,
    header: &Header,
) -> Result<Message, RequestError> {
    let mut m = header.message(Type::Confirmable, Code::FETCH);
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
        let m = composite(&self.paths, self.accept, &self.header)?;
        Ok(self.header.finish(m, Kind::ReadComposite))
    }
}

/// `write_composite content format`: iPATCH `/` with a Content-Format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteComposite {
    /// Payload (SenML records).
    pub content: Vec<u8>,
    /// Content-Format (required).
    pub format: ContentFormat,
    /// Message ID, token and extra options.
    pub header: Header,
}

impl Build for WriteComposite {
    fn build(&self) -> Result<Built, RequestError> {
        let mut m = self.header.message(Type::Confirmable, Code::IPATCH);
        add_format(&mut m, OptionNumber::CONTENT_FORMAT, self.format);
        m.payload = self.content.clone();
        Ok(self.header.finish(m, Kind::WriteComposite))
    }
}
