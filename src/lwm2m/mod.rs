//! LwM2M on top of CoAP: paths, message classification, payload formats over
//! one node tree, object definitions, summaries and `details` rendering,
//! message builders, and the summing up of repeated console lines
//! (`flood`). No I/O (object definition files aside, read on request).

pub mod bootstrap;
pub mod details;
pub(crate) mod flood;
pub mod format;
pub mod fuzz;
pub mod kind;
pub mod node;
pub mod objects;
pub mod payload;
pub mod registration;
pub mod request;
pub mod summary;

pub use details::{details, details_of_undecodable};
pub use kind::{ClassifyContext, Kind, NoContext, classify};
pub use objects::Objects;
pub use payload::{decode_payload, render_payload, render_payload_at};
pub use request::{Build, Built, RequestError};
pub use summary::summary;
