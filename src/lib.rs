//! nsh: an LwM2M server shell for testing LwM2M clients, scriptable in Rhai.
//!
//! Layers (dependencies point one way; `tests/it/layers.rs` checks them and
//! that no two files import each other):
//!
//! ```text
//! main ─┬─> runner ─┐
//!       └─> repl ───┴─> script ─┬─> report ─> server
//!                               ├─> server ─┬─> exchange ──> coap
//!                               │           ├─> transport ─> coap
//!                               │           └─> lwm2m ─────> coap
//!                               └─> fileserver ─> transport, lwm2m
//! ```
//!
//! `coap` is the message model and codecs; `lwm2m` classifies messages and
//! owns the payload formats; `exchange` the CoAP exchange rules (sans-IO);
//! `transport` the sockets (UDP, DTLS, TCP plain or over TLS, in-memory);
//! `server` the core state machine, the receive thread and the session;
//! `report` what is made from the records (the pcapng capture); `script`
//! the Rhai commands; `repl` the prompt; `runner` `nsh test`, scripts in
//! fresh shells with the device started for each. See the README for the support
//! matrix.
// Unsafe code lives only in `transport::dtls::ffi` (mbed TLS calls the
// `mbedtls` crate does not wrap) and at its one `unsafe fn`'s call site.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod coap;
pub mod exchange;
pub mod fileserver;
pub mod lwm2m;
pub mod repl;
pub mod report;
pub mod runner;
pub mod script;
pub mod server;
pub mod transport;
