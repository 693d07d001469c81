//! Transports: how datagrams reach peers. UDP over IPv4 and IPv6 now; DTLS
//! and TCP belong here too. Knows nothing of LwM2M.

pub mod udp;

pub use udp::UdpTransport;
