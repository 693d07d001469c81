//! LwM2M on top of CoAP: paths, message classification, payload formats over
//! one node tree, summaries and `details` rendering. No I/O.

pub mod format;
pub mod node;
pub mod objects;
