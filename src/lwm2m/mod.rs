//! LwM2M on top of CoAP: paths, message classification, payload formats over
//! one node tree, summaries and `details` rendering. No I/O.

pub mod details;
pub mod kind;
pub mod registration;
pub mod request;
pub mod summary;

pub use details::{details, details_of_undecodable};
pub use kind::{ClassifyContext, Kind, NoContext, classify};
pub use request::{Build, Built, RequestError};
pub use summary::summary;
