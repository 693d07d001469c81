//! nsh's integration tests, in one binary: the command line, scripts, the
//! prompt under a pseudo-terminal, and end-to-end runs against real LwM2M
//! clients (tests/peers, installed by `bash tests/setup.sh`).

mod bootstrap;
mod capture;
mod cli;
mod clients_list;
mod dtls;
mod dtls_cid;
mod dtls_connect;
mod dtls_security;
mod ets;
mod examples;
mod exchange;
mod expect;
mod formats;
mod fuzz_device;
mod harness;
mod help;
mod layers;
mod libcoap;
mod loss;
mod payloads;
mod peers_coapnode;
mod peers_two;
mod peers_waka;
mod pgo;
mod readme;
mod relay;
mod repl;
mod report;
mod report_ci;
mod restart;
mod runner;
mod script_args;
mod storm;
mod tcp;
mod tls_tcp;
mod waiting;
