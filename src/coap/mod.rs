//! CoAP (RFC 7252, RFC 7641, RFC 7959, RFC 8323 framing): the message model,
//! wire codecs, and the tables of codes, options and content formats.
//!
//! Pure code: no sockets, threads or clock. Unknown codes, options and
//! content formats round-trip (open newtypes), and every decoder reports the
//! field and byte offset of what it could not read.
//!
//! A hand-written codec rather than `coap-lite`: nsh must keep options in
//! wire order, represent invalid messages on purpose, and report offsets.

pub mod code;
pub mod content_format;
pub mod escaped;
pub mod message;
pub mod option;
pub mod tcp;
pub mod udp;

pub use code::Code;
pub use content_format::ContentFormat;
pub use message::{Message, Type};
pub use option::{BlockValue, CoapOption, OptionNumber, ValueFormat};
pub use udp::{DecodeError, Field};
