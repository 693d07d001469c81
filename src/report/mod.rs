//! Reports made from the history's records: for now the pcapng capture
//! ([`pcapng`]). Reads records, never touches sockets.

pub mod pcapng;
