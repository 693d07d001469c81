//! Classification of a CoAP message into an LwM2M kind (Register, Read,
//! Notify, …), the reference's §5.2 without its misclassifications.
//!
//! Pure: [`classify`] looks at one [`Message`] and asks a
//! [`ClassifyContext`] only whether a path is a registration location the
//! server handed out. It does not know whether a response answers one of our
//! requests: responses are classified by their code alone.
//!
//! Differences from the original's table, on purpose:
//! * a GET without `Accept: 40` on an LwM2M path is a Read (Observe when it
//!   carries an Observe option); the original called every plain GET Discover;
//! * Update and De-register are recognised by the registration location (the
//!   context), so numeric locations such as `/rd/5` work; a POST or DELETE
//!   on `…/rd/{location}` is an Update or De-register even when the location
//!   is unknown (a client of a restarted server), never a Create or Delete,
//!   so the server can answer it 4.04 and the client registers again;
//! * Create is any POST to an Object path, whatever its Content-Format;
//! * EST `cacerts` GETs are recognised; error responses of any type are;
//! * NON requests are classified like CON ones (LwM2M 1.1 allows NON Send
//!   and Notify; a NON request is still the same operation).

use std::fmt;

use crate::coap::{Code, ContentFormat, Message, OptionNumber, Type};

/// The LwM2M meaning of a message. Names are the original's message class
/// names without their `Lwm2m` prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Kind {
    /// Register (POST `…/rd`).
    Register,
    /// Registration Update (POST to a registration location).
    Update,
    /// De-register (DELETE of a registration location).
    Deregister,
    /// Information Reporting Notify (2.05 with Observe).
    Notify,
    /// Send (POST `…/dp`).
    Send,
    /// 2.05 Content.
    Content,
    /// 2.04 Changed.
    Changed,
    /// 2.01 Created.
    Created,
    /// 2.02 Deleted.
    Deleted,
    /// 2.31 Continue.
    Continue,
    /// A 4.xx or 5.xx response.
    ErrorResponse,
    /// An Empty message that is not a Reset (ACK, or a CON ping).
    Empty,
    /// An Empty RST.
    Reset,
    /// Read (GET on an LwM2M path).
    Read,
    /// Observe or Cancel Observation (GET with Observe 0 / 1; the value is
    /// in the message, see [`Message::observe`]).
    Observe,
    /// Discover (GET with Accept 40).
    Discover,
    /// Write (PUT replace, or POST partial update).
    Write,
    /// Write-Attributes (PUT without Content-Format or payload).
    WriteAttributes,
    /// Execute (POST without Content-Format).
    Execute,
    /// Create (POST to an Object path).
    Create,
    /// Delete (DELETE on an LwM2M path).
    Delete,
    /// Read-Composite (FETCH).
    ReadComposite,
    /// Observe-Composite or its cancellation (FETCH with Observe).
    ObserveComposite,
    /// Write-Composite (iPATCH).
    WriteComposite,
    /// Request Bootstrap (POST `…/bs?ep=…`).
    RequestBootstrap,
    /// Bootstrap-Finish (POST `/bs` without query).
    BootstrapFinish,
    /// Bootstrap-Pack-Request (GET `…/bspack`).
    BootstrapPackRequest,
    /// A GET on a path that is not an LwM2M path.
    CoapGet,
    /// EST-coaps simple enroll (POST `…/est/sen`).
    EstCoapsSimpleEnroll,
    /// EST-coaps simple re-enroll (POST `…/est/sren`).
    EstCoapsSimpleReenroll,
    /// EST-coaps CA certificates (GET `…/est/crts`).
    EstCoapsCaCerts,
    /// Anything else.
    Coap,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [Kind] = &[
        Kind::Register,
        Kind::Update,
        Kind::Deregister,
        Kind::Notify,
        Kind::Send,
        Kind::Content,
        Kind::Changed,
        Kind::Created,
        Kind::Deleted,
        Kind::Continue,
        Kind::ErrorResponse,
        Kind::Empty,
        Kind::Reset,
        Kind::Read,
        Kind::Observe,
        Kind::Discover,
        Kind::Write,
        Kind::WriteAttributes,
        Kind::Execute,
        Kind::Create,
        Kind::Delete,
        Kind::ReadComposite,
        Kind::ObserveComposite,
        Kind::WriteComposite,
        Kind::RequestBootstrap,
        Kind::BootstrapFinish,
        Kind::BootstrapPackRequest,
        Kind::CoapGet,
        Kind::EstCoapsSimpleEnroll,
        Kind::EstCoapsSimpleReenroll,
        Kind::EstCoapsCaCerts,
        Kind::Coap,
    ];

    /// The CamelCase name (`ReadComposite`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Register => "Register",
            Kind::Update => "Update",
            Kind::Deregister => "Deregister",
            Kind::Notify => "Notify",
            Kind::Send => "Send",
            Kind::Content => "Content",
            Kind::Changed => "Changed",
            Kind::Created => "Created",
            Kind::Deleted => "Deleted",
            Kind::Continue => "Continue",
            Kind::ErrorResponse => "ErrorResponse",
            Kind::Empty => "Empty",
            Kind::Reset => "Reset",
            Kind::Read => "Read",
            Kind::Observe => "Observe",
            Kind::Discover => "Discover",
            Kind::Write => "Write",
            Kind::WriteAttributes => "WriteAttributes",
            Kind::Execute => "Execute",
            Kind::Create => "Create",
            Kind::Delete => "Delete",
            Kind::ReadComposite => "ReadComposite",
            Kind::ObserveComposite => "ObserveComposite",
            Kind::WriteComposite => "WriteComposite",
            Kind::RequestBootstrap => "RequestBootstrap",
            Kind::BootstrapFinish => "BootstrapFinish",
            Kind::BootstrapPackRequest => "BootstrapPackRequest",
            Kind::CoapGet => "CoapGet",
            Kind::EstCoapsSimpleEnroll => "EstCoapsSimpleEnroll",
            Kind::EstCoapsSimpleReenroll => "EstCoapsSimpleReenroll",
            Kind::EstCoapsCaCerts => "EstCoapsCaCerts",
            Kind::Coap => "Coap",
        }
    }

    /// Parses a kind name case-insensitively, in CamelCase (`ReadComposite`),
    /// snake_case (`read_composite`), kebab-case, or with the original's
    /// `Lwm2m` class prefix (`Lwm2mRead`).
    pub fn parse(text: &str) -> Option<Kind> {
        let norm: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let find = |s: &str| {
            Kind::ALL
                .iter()
                .copied()
                .find(|k| k.name().eq_ignore_ascii_case(s))
        };
        find(&norm).or_else(|| norm.strip_prefix("lwm2m").and_then(find))
    }

    /// A request kind (sent with a method code).
    pub fn is_request(self) -> bool {
        !self.is_response() && !matches!(self, Kind::Empty | Kind::Reset | Kind::Coap)
    }

    /// A response kind (2.xx, 4.xx, 5.xx).
    pub fn is_response(self) -> bool {
        matches!(
            self,
            Kind::Notify
                | Kind::Content
                | Kind::Changed
                | Kind::Created
                | Kind::Deleted
                | Kind::Continue
                | Kind::ErrorResponse
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`classify`] needs to know about the server.
pub trait ClassifyContext {
    /// Whether `path` (Uri-Path segments) is a registration location, such as
    /// the `/rd/<n>` nsh handed out. The default, for when nothing is known,
    /// is [`looks_like_registration_location`].
    fn is_registration_location(&self, path: &[String]) -> bool {
        looks_like_registration_location(path)
    }
}

/// A context that knows nothing (e.g. for `lwm2m_decode`): `/rd/<anything>`
/// counts as a registration location.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoContext;

impl ClassifyContext for NoContext {}

/// The fallback guess: `/rd/<one segment>`.
pub fn looks_like_registration_location(path: &[String]) -> bool {
    path.len() == 2 && path[0] == "rd" && !path[1].is_empty()
}

/// The shape of an LwM2M path in Uri-Path segments: an optional non-numeric
/// prefix (an alternate path such as `/lwm2m`) and up to four numeric IDs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PathShape {
    /// Whether the first segment is a non-numeric prefix.
    pub(crate) prefixed: bool,
    /// How many numeric segments follow (0–4).
    pub(crate) depth: usize,
}

/// Whether `seg` is a non-empty run of ASCII digits.
pub(crate) fn is_numeric(seg: &str) -> bool {
    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit())
}

/// The LwM2M shape of Uri-Path segments, or `None` when they are not an
/// LwM2M path. No segments is the root path `/` (depth 0).
pub(crate) fn path_shape(path: &[String]) -> Option<PathShape> {
    let prefixed = path.len() > 1 && !is_numeric(&path[0]) && !path[0].is_empty();
    let ids = if prefixed { &path[1..] } else { path };
    (ids.len() <= 4 && ids.iter().all(|s| is_numeric(s))).then_some(PathShape {
        prefixed,
        depth: ids.len(),
    })
}

/// `…/rd/{location}`: the shape of a registration location (LwM2M Core
/// §6.2.1: the server returns it in Location-Path under `rd`).
fn is_rd_location(path: &[String]) -> bool {
    path.len() >= 2 && path[path.len() - 2] == "rd" && !path[path.len() - 1].is_empty()
}

fn ends_with(path: &[String], tail: &[&str]) -> bool {
    path.len() >= tail.len()
        && path[path.len() - tail.len()..]
            .iter()
            .zip(tail)
            .all(|(a, b)| a == b)
}

/// Classifies a message. Never panics.
pub fn classify(msg: &Message, ctx: &dyn ClassifyContext) -> Kind {
    let code = msg.code;
    if code == Code::CONTINUE {
        return Kind::Continue;
    }
    if code.is_empty() {
        return match (msg.is_empty_message(), msg.mtype) {
            (true, Type::Reset) => Kind::Reset,
            (true, _) => Kind::Empty,
            (false, _) => Kind::Coap,
        };
    }
    if code.is_error() {
        return Kind::ErrorResponse;
    }
    match code {
        Code::CHANGED => return Kind::Changed,
        Code::DELETED => return Kind::Deleted,
        Code::CREATED => return Kind::Created,
        Code::CONTENT if msg.option(OptionNumber::OBSERVE).is_some() => return Kind::Notify,
        Code::CONTENT => return Kind::Content,
        _ => {}
    }
    if !code.is_request() || !matches!(msg.mtype, Type::Confirmable | Type::NonConfirmable) {
        return Kind::Coap;
    }
    classify_request(msg, ctx)
}

fn classify_request(msg: &Message, ctx: &dyn ClassifyContext) -> Kind {
    let path = msg.uri_path();
    let has_query = msg.option(OptionNumber::URI_QUERY).is_some();
    let has_observe = msg.option(OptionNumber::OBSERVE).is_some();
    let has_format = msg.option(OptionNumber::CONTENT_FORMAT).is_some();
    let shape = path_shape(&path);
    let depth = shape.map_or(0, |s| s.depth);
    match msg.code {
        Code::GET => {
            if ends_with(&path, &["est", "crts"]) {
                Kind::EstCoapsCaCerts
            } else if ends_with(&path, &["bspack"]) {
                Kind::BootstrapPackRequest
            } else if shape.is_some() && msg.accepts().any(|f| f == ContentFormat::LINK_FORMAT) {
                Kind::Discover
            } else if shape.is_some() && depth > 0 {
                if has_observe {
                    Kind::Observe
                } else {
                    Kind::Read
                }
            } else {
                Kind::CoapGet
            }
        }
        Code::FETCH if has_observe => Kind::ObserveComposite,
        Code::FETCH => Kind::ReadComposite,
        Code::IPATCH => Kind::WriteComposite,
        Code::PUT if shape.is_some() && depth > 0 => {
            if !has_format && msg.payload.is_empty() {
                Kind::WriteAttributes
            } else {
                Kind::Write
            }
        }
        Code::POST => {
            if ctx.is_registration_location(&path) || is_rd_location(&path) {
                Kind::Update
            } else if ends_with(&path, &["rd"]) {
                Kind::Register
            } else if ends_with(&path, &["dp"]) {
                Kind::Send
            } else if ends_with(&path, &["bs"]) {
                if has_query {
                    Kind::RequestBootstrap
                } else {
                    Kind::BootstrapFinish
                }
            } else if ends_with(&path, &["est", "sen"]) {
                Kind::EstCoapsSimpleEnroll
            } else if ends_with(&path, &["est", "sren"]) {
                Kind::EstCoapsSimpleReenroll
            } else if shape.is_some() && depth == 1 {
                Kind::Create
            } else if shape.is_some() && depth > 1 {
                if has_format {
                    Kind::Write
                } else {
                    Kind::Execute
                }
            } else {
                Kind::Coap
            }
        }
        Code::DELETE => {
            if ctx.is_registration_location(&path) || is_rd_location(&path) {
                Kind::Deregister
            } else if shape.is_some() {
                Kind::Delete
            } else {
                Kind::Coap
            }
        }
        _ => Kind::Coap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::CoapOption;
    use proptest::prelude::*;
    use testing::arb_message;

    fn req(code: Code, uri: &str) -> Message {
        let mut m = Message::new(Type::Confirmable, code, 1);
        m.token = vec![1, 2];
        m.set_uri(uri);
        m
    }

    fn with(mut m: Message, number: OptionNumber, value: u64) -> Message {
        m.add_option(CoapOption::uint(number, value));
        m
    }

    fn resp(ty: Type, code: Code) -> Message {
        let mut m = Message::new(ty, code, 7);
        m.token = vec![9];
        m
    }

    fn kind(m: &Message) -> Kind {
        classify(m, &NoContext)
    }

    struct Locations(Vec<&'static str>);

    impl ClassifyContext for Locations {
        fn is_registration_location(&self, path: &[String]) -> bool {
            let p: String = path.iter().map(|s| format!("/{s}")).collect();
            self.0.contains(&p.as_str())
        }
    }

    #[test]
    fn names_round_trip_in_every_spelling() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(*k));
            assert_eq!(Kind::parse(&k.name().to_lowercase()), Some(*k));
        }
        assert_eq!(Kind::parse("read_composite"), Some(Kind::ReadComposite));
        assert_eq!(
            Kind::parse("EST_COAPS_CA_CERTS"),
            Some(Kind::EstCoapsCaCerts)
        );
        assert_eq!(Kind::parse("Lwm2mRead"), Some(Kind::Read));
        assert_eq!(Kind::parse("error-response"), Some(Kind::ErrorResponse));
        assert_eq!(Kind::parse("nope"), None);
        assert_eq!(Kind::parse(""), None);
    }

    #[test]
    fn request_and_response_kinds_are_disjoint() {
        assert!(Kind::Read.is_request() && !Kind::Read.is_response());
        assert!(Kind::Notify.is_response() && !Kind::Notify.is_request());
        assert!(!Kind::Empty.is_request() && !Kind::Empty.is_response());
        assert!(!Kind::Coap.is_request());
    }

    #[test]
    fn classifies_responses_by_code() {
        assert_eq!(
            kind(&resp(Type::Acknowledgement, Code::CONTINUE)),
            Kind::Continue
        );
        assert_eq!(
            kind(&resp(Type::Acknowledgement, Code::CHANGED)),
            Kind::Changed
        );
        assert_eq!(
            kind(&resp(Type::NonConfirmable, Code::CHANGED)),
            Kind::Changed
        );
        assert_eq!(
            kind(&resp(Type::Acknowledgement, Code::DELETED)),
            Kind::Deleted
        );
        assert_eq!(
            kind(&resp(Type::Acknowledgement, Code::CREATED)),
            Kind::Created
        );
        assert_eq!(
            kind(&resp(Type::Acknowledgement, Code::CONTENT)),
            Kind::Content
        );
        let notify = with(
            resp(Type::NonConfirmable, Code::CONTENT),
            OptionNumber::OBSERVE,
            5,
        );
        assert_eq!(kind(&notify), Kind::Notify);
        assert_eq!(kind(&resp(Type::Acknowledgement, Code::VALID)), Kind::Coap);
        assert_eq!(kind(&resp(Type::Confirmable, Code::CSM)), Kind::Coap);
    }

    #[test]
    fn classifies_error_responses_of_any_type() {
        for ty in [
            Type::Acknowledgement,
            Type::Confirmable,
            Type::NonConfirmable,
        ] {
            assert_eq!(kind(&resp(ty, Code::NOT_FOUND)), Kind::ErrorResponse);
            assert_eq!(
                kind(&resp(ty, Code::INTERNAL_SERVER_ERROR)),
                Kind::ErrorResponse
            );
        }
    }

    #[test]
    fn classifies_empty_messages_pings_and_resets() {
        let m = |ty| Message::new(ty, Code::EMPTY, 4922);
        assert_eq!(kind(&m(Type::Acknowledgement)), Kind::Empty);
        assert_eq!(kind(&m(Type::Confirmable)), Kind::Empty);
        assert_eq!(kind(&m(Type::Reset)), Kind::Reset);
        let mut bad = m(Type::Reset);
        bad.token = vec![1];
        assert_eq!(kind(&bad), Kind::Coap);
    }

    #[test]
    fn plain_get_on_lwm2m_path_is_read_not_discover() {
        assert_eq!(kind(&req(Code::GET, "/1/1/3/1")), Kind::Read);
        let m = with(
            req(Code::GET, "/1/1"),
            OptionNumber::ACCEPT,
            u64::from(ContentFormat::LWM2M_JSON.0),
        );
        assert_eq!(kind(&m), Kind::Read);
        assert_eq!(kind(&req(Code::GET, "/lwm2m/3/0")), Kind::Read);
    }

    #[test]
    fn get_with_accept_link_format_is_discover() {
        let m = with(req(Code::GET, "/3/0"), OptionNumber::ACCEPT, 40);
        assert_eq!(kind(&m), Kind::Discover);
        let root = with(req(Code::GET, "/"), OptionNumber::ACCEPT, 40);
        assert_eq!(kind(&root), Kind::Discover);
    }

    #[test]
    fn get_with_observe_is_observe_for_both_values() {
        let obs = with(req(Code::GET, "/3/0/13"), OptionNumber::OBSERVE, 0);
        assert_eq!(kind(&obs), Kind::Observe);
        let cancel = with(req(Code::GET, "/3/0/13"), OptionNumber::OBSERVE, 1);
        assert_eq!(kind(&cancel), Kind::Observe);
        assert_eq!(cancel.observe(), Some(1));
    }

    #[test]
    fn other_gets_are_recognised_by_path() {
        assert_eq!(kind(&req(Code::GET, "/est/crts")), Kind::EstCoapsCaCerts);
        assert_eq!(kind(&req(Code::GET, "/x/est/crts")), Kind::EstCoapsCaCerts);
        assert_eq!(
            kind(&req(Code::GET, "/bspack?ep=a")),
            Kind::BootstrapPackRequest
        );
        assert_eq!(kind(&req(Code::GET, "/firmware.bin")), Kind::CoapGet);
        assert_eq!(kind(&req(Code::GET, "/")), Kind::CoapGet);
        assert_eq!(kind(&req(Code::GET, "/1/2/3/4/5")), Kind::CoapGet);
    }

    #[test]
    fn fetch_and_ipatch_are_composite_operations() {
        assert_eq!(kind(&req(Code::FETCH, "")), Kind::ReadComposite);
        let obs = with(req(Code::FETCH, ""), OptionNumber::OBSERVE, 0);
        assert_eq!(kind(&obs), Kind::ObserveComposite);
        assert_eq!(kind(&req(Code::IPATCH, "")), Kind::WriteComposite);
    }

    #[test]
    fn put_is_write_or_write_attributes() {
        let mut w = with(req(Code::PUT, "/1/1/1"), OptionNumber::CONTENT_FORMAT, 0);
        w.payload = b"60".to_vec();
        assert_eq!(kind(&w), Kind::Write);
        assert_eq!(
            kind(&req(Code::PUT, "/3/0/13?pmin=1&pmax=5")),
            Kind::WriteAttributes
        );
        let mut no_cf = req(Code::PUT, "/1/1/1");
        no_cf.payload = b"60".to_vec();
        assert_eq!(kind(&no_cf), Kind::Write);
        assert_eq!(kind(&req(Code::PUT, "/")), Kind::Coap);
    }

    #[test]
    fn post_to_object_path_is_create_with_any_format() {
        for cf in [11542, 110, 112, 11543] {
            let m = with(req(Code::POST, "/1"), OptionNumber::CONTENT_FORMAT, cf);
            assert_eq!(kind(&m), Kind::Create);
        }
        assert_eq!(kind(&req(Code::POST, "/1")), Kind::Create);
    }

    #[test]
    fn post_to_deeper_paths_is_execute_or_partial_write() {
        assert_eq!(kind(&req(Code::POST, "/3/0/4")), Kind::Execute);
        let m = with(req(Code::POST, "/3/0"), OptionNumber::CONTENT_FORMAT, 11542);
        assert_eq!(kind(&m), Kind::Write);
    }

    #[test]
    fn numeric_registration_location_is_update_and_deregister() {
        let ctx = Locations(vec!["/rd/5"]);
        assert_eq!(classify(&req(Code::POST, "/rd/5"), &ctx), Kind::Update);
        assert_eq!(
            classify(&req(Code::POST, "/rd/5?lt=20"), &ctx),
            Kind::Update
        );
        assert_eq!(
            classify(&req(Code::DELETE, "/rd/5"), &ctx),
            Kind::Deregister
        );
        // An unknown location under `rd` is still one (a client of a
        // restarted server): the server answers it 4.04.
        assert_eq!(
            classify(&req(Code::DELETE, "/rd/6"), &ctx),
            Kind::Deregister
        );
        assert_eq!(classify(&req(Code::POST, "/rd/1"), &ctx), Kind::Update);
        assert_eq!(classify(&req(Code::DELETE, "/rd/x/y"), &ctx), Kind::Coap);
    }

    #[test]
    fn without_context_rd_anything_is_a_registration_location() {
        assert_eq!(kind(&req(Code::POST, "/rd/5")), Kind::Update);
        assert_eq!(kind(&req(Code::POST, "/rd/demo")), Kind::Update);
        let mut with_links = req(Code::POST, "/rd/demo");
        with_links.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 40));
        with_links.payload = b"</1/0>".to_vec();
        assert_eq!(kind(&with_links), Kind::Update);
        assert_eq!(kind(&req(Code::DELETE, "/rd/5")), Kind::Deregister);
        assert_eq!(kind(&req(Code::DELETE, "/rd/demo")), Kind::Deregister);
    }

    #[test]
    fn delete_on_lwm2m_paths_is_delete() {
        assert_eq!(kind(&req(Code::DELETE, "/3/0")), Kind::Delete);
        assert_eq!(kind(&req(Code::DELETE, "/")), Kind::Delete);
        assert_eq!(kind(&req(Code::DELETE, "/foo/bar/baz")), Kind::Coap);
    }

    #[test]
    fn client_initiated_posts_are_recognised_by_path() {
        let mut reg = req(Code::POST, "/rd?lwm2m=1.1&ep=my_endpoint&lt=86400");
        reg.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 40));
        assert_eq!(kind(&reg), Kind::Register);
        assert_eq!(kind(&req(Code::POST, "/rd?ep=x")), Kind::Register);
        assert_eq!(kind(&req(Code::POST, "/dp")), Kind::Send);
        assert_eq!(kind(&req(Code::POST, "/bs?ep=x")), Kind::RequestBootstrap);
        assert_eq!(
            kind(&req(Code::POST, "/bs?pct=112&ep=x")),
            Kind::RequestBootstrap
        );
        assert_eq!(kind(&req(Code::POST, "/bs")), Kind::BootstrapFinish);
        assert_eq!(
            kind(&req(Code::POST, "/est/sen")),
            Kind::EstCoapsSimpleEnroll
        );
        assert_eq!(
            kind(&req(Code::POST, "/est/sren")),
            Kind::EstCoapsSimpleReenroll
        );
        assert_eq!(kind(&req(Code::POST, "/foo")), Kind::Coap);
    }

    #[test]
    fn non_requests_are_classified_and_acks_with_methods_are_not() {
        let mut m = req(Code::POST, "/dp");
        m.mtype = Type::NonConfirmable;
        assert_eq!(kind(&m), Kind::Send);
        m.mtype = Type::Acknowledgement;
        assert_eq!(kind(&m), Kind::Coap);
        assert_eq!(kind(&req(Code::PATCH, "/3/0")), Kind::Coap);
    }

    #[test]
    fn lwm2m_path_shapes() {
        let s = |p: &str| {
            let segs: Vec<String> = p
                .split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            path_shape(&segs)
        };
        assert_eq!(
            s("/"),
            Some(PathShape {
                prefixed: false,
                depth: 0
            })
        );
        assert_eq!(
            s("/lwm2m/3/0"),
            Some(PathShape {
                prefixed: true,
                depth: 2
            })
        );
        assert_eq!(s("/rd"), None);
        assert_eq!(s("/1/2/3/4/5"), None);
        assert_eq!(s("/3/x"), None);
    }

    proptest! {
        #[test]
        fn classify_never_panics(m in arb_message()) {
            let _ = classify(&m, &NoContext);
        }
    }
}

/// Shared test strategies.
#[cfg(test)]
pub(crate) mod testing {
    use crate::coap::{CoapOption, Code, Message, OptionNumber, Type};
    use proptest::prelude::*;

    /// Arbitrary messages, biased towards request codes and LwM2M options.
    pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
        let opt = (
            prop_oneof![
                Just(6u16),
                Just(8),
                Just(11),
                Just(12),
                Just(15),
                Just(17),
                Just(23),
                Just(27),
                0u16..300
            ],
            proptest::collection::vec(any::<u8>(), 0..6),
        );
        (
            any::<u8>(),
            0u8..4,
            prop_oneof![0u8..8, any::<u8>()],
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..10),
            proptest::collection::vec(opt, 0..8),
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(version, ty, code, id, token, opts, payload)| {
                let mut m = Message::new(Type::from_bits(ty), Code(code), id);
                m.version = version;
                m.token = token;
                m.options = opts
                    .into_iter()
                    .map(|(n, v)| CoapOption::new(OptionNumber(n), v))
                    .collect();
                m.payload = payload;
                m
            })
    }
}
