//! pcapng capture written by hand from the server's records: a Section
//! Header Block, two Interface Description Blocks of raw IP
//! (LINKTYPE_RAW) and one Enhanced Packet Block per datagram, stamped in
//! microseconds with the record's time.
//!
//! Each record becomes an IPv4 or IPv6 packet between the peer and nsh's
//! address (headers built here, lengths and checksums computed):
//! - UDP records as UDP datagrams on interface 0 (`nsh`);
//! - DTLS records as UDP datagrams carrying the decrypted CoAP on the
//!   same addresses and ports, on interface 1 (`nsh-decrypted`): the
//!   encrypted bytes are not recorded;
//! - TCP records (RFC 8323 frames) as TCP segments on interface 0, with a
//!   made-up handshake (the peer connects: nsh only accepts TCP
//!   connections) when a connection is first seen, and sequence
//!   numbers per direction, so stream reassembly works.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::server::{CaptureSink, Direction, Link, Record, Wire};

/// LINKTYPE_RAW: the packet starts with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u16 = 101;

/// The interface of plain datagrams and TCP segments.
pub const IF_WIRE: u32 = 0;
/// The interface of decrypted DTLS payloads.
pub const IF_DECRYPTED: u32 = 1;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// The most TCP payload put into one segment (keeps IPv4 lengths in range).
const MAX_SEGMENT: usize = 65_000;

const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// The transport header of one packet.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// UDP.
    Udp,
    /// A TCP segment.
    Tcp {
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Flags (SYN 0x02, PSH 0x08, ACK 0x10).
        flags: u8,
    },
}

/// Sequence numbers of one TCP connection, per direction.
struct Stream {
    /// Next sequence number of the peer's bytes.
    peer: u32,
    /// Next sequence number of nsh's bytes.
    local: u32,
}

/// A pcapng writer over any byte sink.
pub struct PcapngWriter<W: Write> {
    out: W,
    ip_id: u16,
    streams: HashMap<(SocketAddr, SocketAddr), Stream>,
}

/// A capture into a file.
pub type PcapngFile = PcapngWriter<BufWriter<File>>;

impl PcapngFile {
    /// Creates (truncates) `path` and writes the headers.
    pub fn create(path: &Path) -> io::Result<PcapngFile> {
        PcapngWriter::new(BufWriter::new(File::create(path)?))
    }
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and both interfaces to `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&section_header())?;
        out.write_all(&interface(
            "nsh",
            "datagrams as sent and received by nsh (CoAP over UDP, CoAP over TCP)",
        ))?;
        out.write_all(&interface(
            "nsh-decrypted",
            "nsh-decrypted: CoAP over DTLS after decryption, as plain UDP on the same \
             addresses and ports (the encrypted records are not captured)",
        ))?;
        Ok(PcapngWriter {
            out,
            ip_id: 0,
            streams: HashMap::new(),
        })
    }

    /// The underlying sink.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes one IP packet from `src` to `dst` on `interface`.
    pub fn packet(
        &mut self,
        interface: u32,
        at: SystemTime,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        payload: &[u8],
    ) -> io::Result<()> {
        self.ip_id = self.ip_id.wrapping_add(1);
        let data = ip_packet(src, dst, transport, payload, self.ip_id);
        self.out.write_all(&enhanced_packet(interface, at, &data))
    }

    /// Writes the packets of one record exchanged over `wire`.
    pub fn record(&mut self, record: &Record, wire: &Wire) -> io::Result<()> {
        let peer = SocketAddr::new(record.peer.ip().to_canonical(), record.peer.port());
        let local = same_family(wire.local, peer);
        let (src, dst) = match record.direction {
            Direction::Received => (peer, local),
            Direction::Sent => (local, peer),
        };
        match wire.link {
            Link::Udp => self.packet(IF_WIRE, record.at, src, dst, Transport::Udp, &record.raw),
            Link::Dtls => self.packet(
                IF_DECRYPTED,
                record.at,
                src,
                dst,
                Transport::Udp,
                &record.raw,
            ),
            Link::Tcp => self.tcp(record, local, peer, src, dst),
        }
    }

    fn tcp(
        &mut self,
        record: &Record,
        local: SocketAddr,
        peer: SocketAddr,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> io::Result<()> {
        let at = record.at;
        if !self.streams.contains_key(&(local, peer)) {
            // The handshake, made up: nsh only accepts TCP connections.
            let (client, server) = (peer, local);
            let syn = |seq, ack, flags| Transport::Tcp { seq, ack, flags };
            self.packet(IF_WIRE, at, client, server, syn(0, 0, TCP_SYN), &[])?;
            self.packet(
                IF_WIRE,
                at,
                server,
                client,
                syn(0, 1, TCP_SYN | TCP_ACK),
                &[],
            )?;
            self.packet(IF_WIRE, at, client, server, syn(1, 1, TCP_ACK), &[])?;
            self.streams
                .insert((local, peer), Stream { peer: 1, local: 1 });
        }
        for chunk in record.raw.chunks(MAX_SEGMENT) {
            let stream = self
                .streams
                .get_mut(&(local, peer))
                .unwrap_or_else(|| unreachable!());
            let (seq, ack) = match record.direction {
                Direction::Received => {
                    let s = stream.peer;
                    stream.peer = s.wrapping_add(chunk.len() as u32);
                    (s, stream.local)
                }
                Direction::Sent => {
                    let s = stream.local;
                    stream.local = s.wrapping_add(chunk.len() as u32);
                    (s, stream.peer)
                }
            };
            let flags = TCP_PSH | TCP_ACK;
            self.packet(
                IF_WIRE,
                at,
                src,
                dst,
                Transport::Tcp { seq, ack, flags },
                chunk,
            )?;
        }
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write + Send> CaptureSink for PcapngWriter<W> {
    fn write(&mut self, record: &Record, wire: &Wire) -> io::Result<()> {
        self.record(record, wire)
    }

    fn flush(&mut self) -> io::Result<()> {
        PcapngWriter::flush(self)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// `local` in the family of `peer` (an IPv4-mapped address becomes IPv4;
/// a mismatch falls back to the peer family's loopback).
fn same_family(local: SocketAddr, peer: SocketAddr) -> SocketAddr {
    let ip = local.ip().to_canonical();
    let ip = match (ip, peer.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => ip,
        (_, IpAddr::V4(_)) => Ipv4Addr::LOCALHOST.into(),
        (_, IpAddr::V6(_)) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    SocketAddr::new(ip, local.port())
}

/// A block: type, total length, body padded to 32 bits, total length.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

/// An option: code, length, value padded to 32 bits.
fn option(code: u16, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - value.len() % 4) % 4, 0);
}

/// The Section Header Block (little-endian, version 1.0, length unknown).
pub fn section_header() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    option(4, b"nsh", &mut body); // shb_userappl
    option(0, &[], &mut body);
    block(0x0A0D_0D0A, &body)
}

/// An Interface Description Block of raw IP, microsecond timestamps.
pub fn interface(name: &str, description: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // snaplen: none
    option(2, name.as_bytes(), &mut body); // if_name
    option(3, description.as_bytes(), &mut body); // if_description
    option(9, &[6], &mut body); // if_tsresol: 10^-6
    option(0, &[], &mut body);
    block(1, &body)
}

/// An Enhanced Packet Block holding `data` whole.
pub fn enhanced_packet(interface: u32, at: SystemTime, data: &[u8]) -> Vec<u8> {
    let micros = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut body = Vec::with_capacity(20 + data.len());
    body.extend_from_slice(&interface.to_le_bytes());
    body.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(micros as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    block(6, &body)
}

/// The one's-complement sum of `data` as 16-bit big-endian words, added to
/// `sum`.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a sum into the 16-bit one's-complement checksum.
fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 or IPv6 packet (by `src`'s family) carrying `payload` in UDP or
/// TCP, with every length and checksum filled in.
pub fn ip_packet(
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
    payload: &[u8],
    ip_id: u16,
) -> Vec<u8> {
    let (proto, mut segment) = match transport {
        Transport::Udp => {
            let mut h = Vec::with_capacity(8 + payload.len());
            h.extend_from_slice(&src.port().to_be_bytes());
            h.extend_from_slice(&dst.port().to_be_bytes());
            h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 0]);
            (PROTO_UDP, h)
        }
        Transport::Tcp { seq, ack, flags } => {
            let mut h = Vec::with_capacity(20 + payload.len());
            h.extend_from_slice(&src.port().to_be_bytes());
            h.extend_from_slice(&dst.port().to_be_bytes());
            h.extend_from_slice(&seq.to_be_bytes());
            h.extend_from_slice(&ack.to_be_bytes());
            h.push(5 << 4); // data offset: 5 words
            h.push(flags);
            h.extend_from_slice(&0xffffu16.to_be_bytes()); // window
            h.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
            (PROTO_TCP, h)
        }
    };
    segment.extend_from_slice(payload);
    let checksum_at = if proto == PROTO_UDP { 6 } else { 16 };
    let len = segment.len();
    let pseudo = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = s.octets().to_vec();
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            p
        }
        (s, d) => {
            let mut p = v6(s).to_vec();
            p.extend_from_slice(&v6(d));
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
            p
        }
    };
    let mut checksum = fold(sum16(sum16(0, &pseudo), &segment));
    if checksum == 0 && proto == PROTO_UDP {
        checksum = 0xffff; // 0 means "none" in UDP
    }
    segment[checksum_at..checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
    let mut packet = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&((20 + len) as u16).to_be_bytes());
            h.extend_from_slice(&ip_id.to_be_bytes());
            h.extend_from_slice(&[0x40, 0]); // don't fragment
            h.extend_from_slice(&[64, proto, 0, 0]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = fold(sum16(0, &h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h
        }
        (s, d) => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(len as u16).to_be_bytes());
            h.extend_from_slice(&[proto, 64]);
            h.extend_from_slice(&v6(s));
            h.extend_from_slice(&v6(d));
            h
        }
    };
    packet.extend_from_slice(&segment);
    packet
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Role;
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Walks the blocks: (type, total length), checking that each block
    /// ends with its length again and is 32-bit aligned.
    fn blocks(b: &[u8]) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let kind = u32_at(b, at);
            let len = u32_at(b, at + 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(b, at + len - 4) as usize, len);
            out.push((kind, len));
            at += len;
        }
        assert_eq!(at, b.len());
        out
    }

    #[test]
    fn headers_have_the_documented_lengths() {
        let shb = section_header();
        assert_eq!(shb.len(), 40);
        assert_eq!(&shb[..4], &[0x0A, 0x0D, 0x0D, 0x0A]);
        assert_eq!(&shb[8..12], &[0x4D, 0x3C, 0x2B, 0x1A]);
        assert_eq!(&shb[12..16], &[1, 0, 0, 0]);
        assert_eq!(&shb[16..24], &[0xff; 8]);
        let idb = interface("nsh", "d");
        // 8 (type, length) + 8 (link type, snaplen) + if_name 8 +
        // if_description 8 + if_tsresol 8 + end 4 + 4 (length).
        assert_eq!(idb.len(), 48);
        assert_eq!(&idb[8..10], &[101, 0]);
        let epb = enhanced_packet(0, UNIX_EPOCH, &[1, 2, 3, 4, 5]);
        assert_eq!(epb.len(), 12 + 20 + 8);
        assert_eq!(u32_at(&epb, 20), 5);
        assert_eq!(u32_at(&epb, 24), 5);
        assert_eq!(&epb[28..36], &[1, 2, 3, 4, 5, 0, 0, 0]);
    }

    #[test]
    fn one_ipv4_udp_packet_byte_for_byte() {
        let p = ip_packet(
            addr("10.0.0.1:1000"),
            addr("10.0.0.2:2000"),
            Transport::Udp,
            &[0x40, 0x01, 0x00, 0x01],
            1,
        );
        #[rustfmt::skip]
        let expected = [
            0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x40, 0x00,
            0x40, 0x11, 0x26, 0xca, 10, 0, 0, 1, 10, 0, 0, 2,
            0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0c, 0xa0, 0x19,
            0x40, 0x01, 0x00, 0x01,
        ];
        assert_eq!(p, expected);
        // The header checksums to zero.
        assert_eq!(fold(sum16(0, &p[..20])), 0);
    }

    #[test]
    fn ipv6_udp_checksum_covers_the_pseudo_header() {
        let p = ip_packet(
            addr("[::1]:1000"),
            addr("[::1]:2000"),
            Transport::Udp,
            &[0x40, 0x01, 0x00, 0x01],
            1,
        );
        assert_eq!(p.len(), 40 + 12);
        assert_eq!(&p[..8], &[0x60, 0, 0, 0, 0, 12, 17, 64]);
        assert_eq!(
            &p[40..48],
            &[0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0c, 0xb4, 0x1a]
        );
    }

    #[test]
    fn tcp_records_get_a_handshake_and_sequence_numbers_per_direction() {
        let record = |direction, raw: &[u8]| Record {
            seq: 1,
            direction,
            peer: addr("127.0.0.1:40000"),
            at: UNIX_EPOCH + Duration::from_micros(0x1_0000_0002),
            raw: raw.to_vec(),
            reliable: true,
            message: crate::coap::udp::decode(&[]),
            kind: None,
            role: Role::New,
            observed_path: None,
            request_path: None,
            fresh: None,
            note: None,
            objects: Default::default(),
            identity: None,
            endpoint: None,
        };
        let wire = Wire {
            local: addr("127.0.0.1:5683"),
            link: Link::Tcp,
        };
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        w.record(&record(Direction::Received, &[0x10, 0xe1]), &wire)
            .unwrap();
        w.record(&record(Direction::Sent, &[0x10, 0xe1, 0xff]), &wire)
            .unwrap();
        w.record(&record(Direction::Received, &[0x00, 0x01]), &wire)
            .unwrap();
        let out = w.into_inner();
        let kinds: Vec<u32> = blocks(&out).iter().map(|b| b.0).collect();
        assert_eq!(kinds, [0x0A0D_0D0A, 1, 1, 6, 6, 6, 6, 6, 6]);
        // (flags, seq, ack, from nsh) of each segment.
        let mut segments = Vec::new();
        let mut at = 0;
        for (kind, len) in blocks(&out) {
            if kind == 6 {
                assert_eq!(u32_at(&out, at + 12), 1, "timestamp high");
                assert_eq!(u32_at(&out, at + 16), 2, "timestamp low");
                let ip = &out[at + 28..];
                let tcp = &ip[20..];
                let seq = u32::from_be_bytes(tcp[4..8].try_into().unwrap());
                let ack = u32::from_be_bytes(tcp[8..12].try_into().unwrap());
                let from_nsh = tcp[..2] == 5683u16.to_be_bytes();
                segments.push((tcp[13], seq, ack, from_nsh));
            }
            at += len;
        }
        assert_eq!(
            segments,
            [
                (TCP_SYN, 0, 0, false),
                (TCP_SYN | TCP_ACK, 0, 1, true),
                (TCP_ACK, 1, 1, false),
                (TCP_PSH | TCP_ACK, 1, 1, false),
                (TCP_PSH | TCP_ACK, 1, 3, true),
                (TCP_PSH | TCP_ACK, 3, 4, false),
            ]
        );
    }
}
