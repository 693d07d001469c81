//! The capture hook: where every recorded datagram goes besides the
//! history while a capture runs. The server knows no file format: it hands
//! each record, with the addresses and the kind of link it travelled on, to
//! a [`CaptureSink`] (the pcapng writer lives above, in `report`). Records
//! are handed over in the effect drain, outside the lock around the core.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use super::history::Record;
use crate::transport::Transport;

/// How a record travelled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Link {
    /// Plain CoAP over UDP (or the in-memory transport of tests).
    Udp,
    /// CoAP over DTLS: the record holds the decrypted CoAP.
    Dtls,
    /// CoAP over TCP: the record holds one RFC 8323 frame.
    Tcp,
}

/// Where a record travelled: nsh's end of it and the link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Wire {
    /// nsh's address, in the peer's address family (a wildcard bind is
    /// resolved to the address the peer is reached from).
    pub local: SocketAddr,
    /// The kind of link.
    pub link: Link,
}

/// Receives every record while a capture runs.
pub trait CaptureSink: Send {
    /// One sent or received datagram.
    fn write(&mut self, record: &Record, wire: &Wire) -> io::Result<()>;
    /// What was written so far goes out (to the file), so that the
    /// capture can be read while it runs. Called once per batch of
    /// records, not per record.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The capture ends: write out what is buffered.
    fn finish(&mut self) -> io::Result<()>;
}

impl Wire {
    /// The wire of a record exchanged with `peer` over `transport`.
    pub(super) fn of(transport: &Transport, peer: SocketAddr) -> Wire {
        let link = if transport.is_reliable() {
            Link::Tcp
        } else if transport.is_secure() {
            Link::Dtls
        } else {
            Link::Udp
        };
        let bound = transport
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0));
        Wire {
            local: SocketAddr::new(local_ip(bound.ip(), peer), bound.port()),
            link,
        }
    }
}

/// nsh's address towards `peer`, in the peer's family: the bound address,
/// or for a wildcard bind the loopback (for a loopback peer) or the address
/// the system routes to the peer from (no datagram is sent to find it).
fn local_ip(bound: IpAddr, peer: SocketAddr) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    let bound = bound.to_canonical();
    if !bound.is_unspecified() && bound.is_ipv4() == peer_ip.is_ipv4() {
        return bound;
    }
    if peer_ip.is_loopback() {
        return peer_ip;
    }
    let unspecified: IpAddr = if peer_ip.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    UdpSocket::bind((unspecified, 0))
        .and_then(|s| {
            s.connect((peer_ip, peer.port().max(1)))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_resolve_to_the_peers_family() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            local_ip(Ipv4Addr::UNSPECIFIED.into(), peer),
            IpAddr::from(Ipv4Addr::LOCALHOST)
        );
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(
            local_ip(Ipv6Addr::UNSPECIFIED.into(), mapped),
            IpAddr::from(Ipv4Addr::LOCALHOST)
        );
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(
            local_ip(Ipv6Addr::UNSPECIFIED.into(), v6),
            IpAddr::from(Ipv6Addr::LOCALHOST)
        );
        let bound: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(local_ip(bound, peer), bound);
    }
}
