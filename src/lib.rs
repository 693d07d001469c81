//! nsh: an LwM2M server shell for testing LwM2M clients, scriptable in Rhai.
//!
//! Layers (dependencies point one way):
//! `repl -> script -> server -> exchange -> lwm2m -> coap`, with `transport`
//! beside `exchange`. See the README for the support matrix.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod coap;
pub mod exchange;
pub mod fileserver;
pub mod lwm2m;
pub mod repl;
pub mod script;
pub mod server;
pub mod transport;
