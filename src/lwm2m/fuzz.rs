//! Malformed and boundary requests for fuzzing an LwM2M client: the cases
//! `fuzz` sends. Owns the case kinds and the generator; sans-IO (it only
//! writes datagrams; sending them and checking the device is the script
//! command's job).
//!
//! Case `i` of a seed is a pure function of the seed, the kinds and the
//! target path: its random numbers come from ChaCha8 seeded with the seed,
//! on stream `i`, so a case can be rebuilt alone and the same seed always
//! gives the same datagrams, byte for byte (message IDs and tokens
//! included). Kinds take turns: case `i` is of kind `kinds[i % len]`.
//!
//! Datagrams are written byte by byte here rather than through
//! [`crate::coap::udp::encode`], which only writes well-formed messages:
//! the point is options out of order, reserved nibbles, lengths past the
//! end and the like (RFC 7252 §3, §5.4; OMA TS Core §7.4).

use crate::coap::udp::nibble;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The kinds of cases, by the names `fuzz`'s `kinds` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuzzKind {
    /// Bad, repeated, unknown critical, reserved and oversized options.
    Options,
    /// Reserved token lengths (9–15), truncated tokens, tokens on Empty.
    Token,
    /// Truncated or inconsistent TLV payloads (Content-Format 11542).
    PayloadTlv,
    /// Truncated or inconsistent CBOR payloads (60, 11544).
    PayloadCbor,
    /// Truncated or inconsistent SenML JSON/CBOR payloads (110, 112).
    PayloadSenml,
    /// Truncated or inconsistent LwM2M JSON payloads (11543).
    PayloadJson,
    /// Payloads under the wrong Content-Format, unknown formats, odd Accept.
    ContentFormat,
    /// Out-of-range and malformed Object, Instance and Resource IDs.
    Ids,
    /// Block-wise abuse (RFC 7959): reserved SZX, huge block numbers.
    Block,
    /// Observe storms and odd Observe values (RFC 7641).
    Observe,
}

impl FuzzKind {
    /// Every kind, in the order of their names in help.
    pub const ALL: [FuzzKind; 10] = [
        FuzzKind::Options,
        FuzzKind::Token,
        FuzzKind::PayloadTlv,
        FuzzKind::PayloadCbor,
        FuzzKind::PayloadSenml,
        FuzzKind::PayloadJson,
        FuzzKind::ContentFormat,
        FuzzKind::Ids,
        FuzzKind::Block,
        FuzzKind::Observe,
    ];

    /// The name scripts use (`payload-tlv`).
    pub fn name(self) -> &'static str {
        match self {
            FuzzKind::Options => "options",
            FuzzKind::Token => "token",
            FuzzKind::PayloadTlv => "payload-tlv",
            FuzzKind::PayloadCbor => "payload-cbor",
            FuzzKind::PayloadSenml => "payload-senml",
            FuzzKind::PayloadJson => "payload-json",
            FuzzKind::ContentFormat => "content-format",
            FuzzKind::Ids => "ids",
            FuzzKind::Block => "block",
            FuzzKind::Observe => "observe",
        }
    }

    /// A kind by name (`payload_tlv` is taken too).
    pub fn parse(text: &str) -> Result<FuzzKind, String> {
        let t = text.trim().to_ascii_lowercase().replace('_', "-");
        FuzzKind::ALL
            .into_iter()
            .find(|k| k.name() == t)
            .ok_or_else(|| {
                let names: Vec<&str> = FuzzKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fuzz kind `{text}` (kinds: {})", names.join(", "))
            })
    }
}

/// One case: what it does and the datagrams it sends, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Its number in the run (0-based).
    pub index: u64,
    /// Its kind.
    pub kind: FuzzKind,
    /// What is wrong with it, in a few words.
    pub what: String,
    /// The datagrams, sent one after the other.
    pub datagrams: Vec<Vec<u8>>,
}

/// The cases of one seed over a set of kinds, against one path.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    kinds: Vec<FuzzKind>,
    path: Vec<String>,
}

// CoAP codes and options used below (RFC 7252 §12.1, §12.2; RFC 7959; RFC 7641).
const GET: u8 = 0x01;
const POST: u8 = 0x02;
const PUT: u8 = 0x03;
const DELETE: u8 = 0x04;
const CON: u8 = 0;
const NON: u8 = 1;
const OBSERVE: u16 = 6;
const URI_PATH: u16 = 11;
const CONTENT_FORMAT: u16 = 12;
const URI_QUERY: u16 = 15;
const ACCEPT: u16 = 17;
const BLOCK2: u16 = 23;
const BLOCK1: u16 = 27;
const SIZE1: u16 = 60;

/// A datagram under construction: header fields, options in the order
/// given (deltas computed as written, so a smaller number after a larger
/// one is written as a wrapped delta), then the payload.
struct Draft {
    mtype: u8,
    code: u8,
    message_id: u16,
    token: Vec<u8>,
    options: Vec<(u16, Vec<u8>)>,
    payload: Vec<u8>,
}

impl Draft {
    fn request(rng: &mut ChaCha8Rng, code: u8, path: &[String]) -> Draft {
        let token_len = rng.random_range(1..=8);
        let token = (0..token_len).map(|_| rng.random()).collect();
        Draft {
            mtype: CON,
            code,
            message_id: rng.random(),
            token,
            options: path
                .iter()
                .map(|s| (URI_PATH, s.as_bytes().to_vec()))
                .collect(),
            payload: Vec::new(),
        }
    }

    fn opt(mut self, number: u16, value: impl Into<Vec<u8>>) -> Draft {
        self.options.push((number, value.into()));
        self
    }

    fn uint_opt(self, number: u16, v: u32) -> Draft {
        self.opt(number, uint(v))
    }

    fn payload(mut self, format: u16, payload: Vec<u8>) -> Draft {
        self.options.push((CONTENT_FORMAT, uint(u32::from(format))));
        self.payload = payload;
        self
    }

    /// Options sorted by number (stable: repeats keep their order).
    fn sorted(mut self) -> Draft {
        self.options.sort_by_key(|(n, _)| *n);
        self
    }

    fn header(&self, tkl: u8) -> Vec<u8> {
        let mut out = vec![
            0x40 | (self.mtype << 4) | (tkl & 0x0f),
            self.code,
            (self.message_id >> 8) as u8,
            self.message_id as u8,
        ];
        out.extend_from_slice(&self.token);
        out
    }

    fn encode(self) -> Vec<u8> {
        let tkl = self.token.len().min(15) as u8;
        let mut out = self.header(tkl);
        let mut prev = 0u16;
        for (n, v) in &self.options {
            let delta = n.wrapping_sub(prev);
            prev = *n;
            let (dn, dext) = nibble(u32::from(delta));
            let (ln, lext) = nibble(v.len() as u32);
            out.push((dn << 4) | ln);
            out.extend_from_slice(&dext);
            out.extend_from_slice(&lext);
            out.extend_from_slice(v);
        }
        if !self.payload.is_empty() {
            out.push(0xff);
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// The shortest big-endian form of a CoAP uint option (RFC 7252 §3.2).
fn uint(v: u32) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count();
    b[skip..].to_vec()
}

/// A Block option value (RFC 7959 §2.2) written in `len` bytes.
fn block(num: u32, more: bool, szx: u8, len: usize) -> Vec<u8> {
    let v = (num << 4) | (u32::from(more) << 3) | u32::from(szx & 7);
    v.to_be_bytes()[4 - len.clamp(1, 4)..].to_vec()
}

fn bytes(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random()).collect()
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A well-formed TLV for Device (`/3/0`): Manufacturer (0) "ACME" and
/// Model Number (1) "Model-1" as Resource TLVs (OMA TS Core §7.4.3).
const TLV_RESOURCES: &[u8] = &[
    0xc4, 0x00, b'A', b'C', b'M', b'E', 0xc7, 0x01, b'M', b'o', b'd', b'e', b'l', b'-', b'1',
];

impl Generator {
    /// A generator for `seed` over `kinds` (all when empty), targeting
    /// `path` (`/3/0`; the liveness read stays on `/3/0` whatever it is).
    pub fn new(seed: u64, kinds: &[FuzzKind], path: &str) -> Result<Generator, String> {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if segments.is_empty() || segments.iter().any(|s| s.parse::<u16>().is_err()) {
            return Err(format!(
                "`{path}` is not an LwM2M path (/OBJECT[/INSTANCE[/RESOURCE]], IDs 0..65535)"
            ));
        }
        let kinds = if kinds.is_empty() {
            FuzzKind::ALL.to_vec()
        } else {
            kinds.to_vec()
        };
        Ok(Generator {
            seed,
            kinds,
            path: segments,
        })
    }

    /// Case number `index`.
    pub fn case(&self, index: u64) -> Case {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        let kind = self.kinds[(index % self.kinds.len() as u64) as usize];
        let (what, datagrams) = match kind {
            FuzzKind::Options => self.options(&mut rng),
            FuzzKind::Token => self.token(&mut rng),
            FuzzKind::PayloadTlv => self.payload_tlv(&mut rng),
            FuzzKind::PayloadCbor => self.payload_cbor(&mut rng),
            FuzzKind::PayloadSenml => self.payload_senml(&mut rng),
            FuzzKind::PayloadJson => self.payload_json(&mut rng),
            FuzzKind::ContentFormat => self.content_format(&mut rng),
            FuzzKind::Ids => self.ids(&mut rng),
            FuzzKind::Block => self.block(&mut rng),
            FuzzKind::Observe => self.observe(&mut rng),
        };
        Case {
            index,
            kind,
            what,
            datagrams,
        }
    }

    fn get(&self, rng: &mut ChaCha8Rng) -> Draft {
        Draft::request(rng, GET, &self.path)
    }

    /// The path with a Resource ID below an Object Instance, for writes.
    fn resource_path(&self) -> Vec<String> {
        let mut p = self.path.clone();
        if p.len() == 1 {
            p.push("0".into());
        }
        p
    }

    fn options(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..11);
        let d = self.get(rng);
        let (what, bytes) = match variant {
            0 => (
                "Accept twice",
                d.uint_opt(ACCEPT, 11542)
                    .uint_opt(ACCEPT, 0)
                    .sorted()
                    .encode(),
            ),
            1 => (
                "Content-Format twice on a GET",
                d.uint_opt(CONTENT_FORMAT, 0)
                    .uint_opt(CONTENT_FORMAT, 11542)
                    .sorted()
                    .encode(),
            ),
            2 => {
                let n = *pick(rng, &[9u16, 13, 25, 65001, 2049]);
                (
                    "unknown critical option",
                    d.opt(n, bytes(rng, 3)).sorted().encode(),
                )
            }
            3 => {
                let n = rng.random_range(700..1000);
                let v = vec![b'9'; n];
                ("huge Uri-Path segment", d.opt(URI_PATH, v).encode())
            }
            4 => {
                let mut d = d;
                for _ in 0..rng.random_range(20..60) {
                    d = d.opt(URI_PATH, "0");
                }
                ("many Uri-Path segments", d.encode())
            }
            5 => ("empty Uri-Path segment", d.opt(URI_PATH, "").encode()),
            6 => {
                let mut b = d.encode();
                b.push(0xf0);
                b.push(0x00);
                ("reserved option delta 15", b)
            }
            7 => {
                let mut b = d.encode();
                b.push(0x0f);
                ("reserved option length 15", b)
            }
            8 => {
                let mut b = d.encode();
                b.push(0x0e);
                b.extend_from_slice(&[0x10, 0x00]);
                b.extend_from_slice(&bytes(rng, 20));
                ("option length past the end", b)
            }
            9 => {
                let mut b = d.encode();
                b.push(0xff);
                ("payload marker and no payload", b)
            }
            _ => (
                "options out of order",
                d.uint_opt(ACCEPT, 11542).uint_opt(URI_QUERY, 1).encode(),
            ),
        };
        (what.to_string(), vec![bytes])
    }

    fn token(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..5);
        let mut d = self.get(rng);
        let (what, out) = match variant {
            0 => {
                let tkl = rng.random_range(9..=15u8);
                d.token = bytes(rng, usize::from(tkl));
                ("reserved token length", d.encode())
            }
            1 => {
                d.token = bytes(rng, 8);
                d.options.clear();
                let mut b = d.header(8);
                b.truncate(4 + rng.random_range(0..8));
                ("token past the end", b)
            }
            2 => {
                d.token = bytes(rng, 8);
                ("8-byte token", d.encode())
            }
            3 => {
                let n = rng.random_range(1..=8);
                d.token = bytes(rng, n);
                d.code = 0;
                d.options.clear();
                ("Empty message with a token", d.encode())
            }
            _ => {
                d.token.clear();
                ("no token", d.encode())
            }
        };
        (what.to_string(), vec![out])
    }

    fn write(&self, rng: &mut ChaCha8Rng, format: u16, payload: Vec<u8>) -> Vec<u8> {
        let code = *pick(rng, &[PUT, POST]);
        Draft::request(rng, code, &self.resource_path())
            .payload(format, payload)
            .encode()
    }

    fn payload_tlv(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..6);
        let mut p = TLV_RESOURCES.to_vec();
        let what = match variant {
            0 => {
                p.truncate(rng.random_range(1..p.len()));
                "TLV truncated"
            }
            1 => {
                // The first Resource's 3-bit length says more than is there.
                p = vec![0xc7, 0x00, b'A', b'C'];
                "TLV length past the end"
            }
            2 => {
                // 24-bit length field (type bits 0b11) of 0xffffff.
                p = vec![0xd8, 0x00, 0xff, 0xff, 0xff, b'x'];
                "TLV 24-bit length past the end"
            }
            3 => {
                // An Object Instance whose length is shorter than its content.
                p = vec![0x08, 0x00, 0x02];
                p.extend_from_slice(TLV_RESOURCES);
                "TLV instance length shorter than its resources"
            }
            4 => {
                // Multiple Resource holding a Resource Instance longer than it.
                p = vec![0x83, 0x07, 0xff, 0x42, 0x00, 0x7f];
                "TLV resource instance longer than its parent"
            }
            _ => {
                let i = rng.random_range(0..p.len());
                p[i] = rng.random();
                "TLV byte changed"
            }
        };
        (what.to_string(), vec![self.write(rng, 11542, p)])
    }

    fn payload_cbor(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let format = *pick(rng, &[60u16, 11544]);
        let variant = rng.random_range(0..5);
        let (what, p) = match variant {
            0 => ("CBOR map truncated", vec![0xa2, 0x00, 0x64, b'A', b'C']),
            1 => (
                "CBOR byte string of 2^64-1 bytes",
                vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00],
            ),
            2 => {
                let depth = rng.random_range(200..2000);
                let mut p = vec![0x81; depth];
                p.push(0x00);
                ("CBOR arrays nested deep", p)
            }
            3 => ("CBOR indefinite array never closed", vec![0x9f, 0x01, 0x02]),
            _ => {
                let n = rng.random_range(1..12);
                ("CBOR random bytes", bytes(rng, n))
            }
        };
        (
            format!("{what} ({format})"),
            vec![self.write(rng, format, p)],
        )
    }

    fn payload_senml(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..6);
        let (what, format, p): (&str, u16, Vec<u8>) = match variant {
            0 => (
                "SenML JSON truncated",
                110,
                br#"[{"bn":"/3/0/","n":"0","vs":"AC"#.to_vec(),
            ),
            1 => (
                "SenML JSON value of the wrong type",
                110,
                br#"[{"bn":"/3/0/","n":0,"v":"x","vb":7}]"#.to_vec(),
            ),
            2 => {
                let depth = rng.random_range(200..2000);
                let mut p = vec![b'['; depth];
                p.extend(vec![b']'; depth]);
                ("SenML JSON nested deep", 110, p)
            }
            3 => (
                "SenML JSON number out of range",
                110,
                br#"[{"n":"/3/0/9","v":1e999999}]"#.to_vec(),
            ),
            4 => (
                "SenML CBOR record truncated",
                112,
                vec![0x81, 0xa2, 0x00, 0x66, b'/', b'3', b'/'],
            ),
            _ => (
                "SenML JSON invalid UTF-8",
                110,
                vec![
                    b'[', b'{', b'"', b'n', b'"', b':', b'"', 0xff, 0xfe, b'"', b'}', b']',
                ],
            ),
        };
        (what.to_string(), vec![self.write(rng, format, p)])
    }

    fn payload_json(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..5);
        let (what, p): (&str, Vec<u8>) = match variant {
            0 => (
                "LwM2M JSON truncated",
                br#"{"bn":"/3/0/","e":[{"n":"0","sv"#.to_vec(),
            ),
            1 => ("LwM2M JSON without e", br#"{"bn":"/3/0/"}"#.to_vec()),
            2 => (
                "LwM2M JSON e not an array",
                br#"{"bn":"/3/0/","e":{"n":"0","sv":"x"}}"#.to_vec(),
            ),
            3 => (
                "LwM2M JSON name out of range",
                br#"{"bn":"/3/0/","e":[{"n":"99999999999","v":1}]}"#.to_vec(),
            ),
            _ => {
                let n = rng.random_range(1000..4000);
                let mut p = br#"{"bn":"/3/0/","e":[{"n":"0","sv":""#.to_vec();
                p.extend(vec![b'A'; n]);
                p.extend_from_slice(br#""}]}"#);
                ("LwM2M JSON long string", p)
            }
        };
        (what.to_string(), vec![self.write(rng, 11543, p)])
    }

    fn content_format(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..6);
        let (what, b) = match variant {
            0 => (
                "TLV announced as text/plain",
                self.write(rng, 0, TLV_RESOURCES.to_vec()),
            ),
            1 => (
                "text announced as TLV",
                self.write(rng, 11542, b"hello".to_vec()),
            ),
            2 => (
                "JSON announced as CBOR",
                self.write(rng, 60, br#"{"a":1}"#.to_vec()),
            ),
            3 => (
                "unknown Content-Format 65000",
                self.write(rng, 65000, b"x".to_vec()),
            ),
            4 => {
                let d = self.get(rng).opt(ACCEPT, vec![0xff, 0xff, 0xff, 0xff]);
                ("Accept of 4 bytes", d.sorted().encode())
            }
            _ => {
                let d = self.get(rng).uint_opt(ACCEPT, 65000);
                ("unknown Accept", d.sorted().encode())
            }
        };
        (what.to_string(), vec![b])
    }

    fn ids(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        const PATHS: &[&[&str]] = &[
            &["65535", "65535", "65535"],
            &["65536", "0"],
            &["3", "65535"],
            &["3", "0", "65535"],
            &["3", "0", "0", "65535"],
            &["3", "0", "0", "0", "0"],
            &["-1"],
            &["3", "x"],
            &["3", "", "0"],
            &["99999999999999999999"],
            &["3", "0", "+1"],
        ];
        let path: Vec<String> = pick(rng, PATHS).iter().map(|s| s.to_string()).collect();
        let code = *pick(rng, &[GET, PUT, POST, DELETE]);
        let mut d = Draft::request(rng, code, &path);
        if code == PUT || code == POST {
            d = d.payload(0, b"1".to_vec());
        }
        let method = match code {
            GET => "GET",
            PUT => "PUT",
            POST => "POST",
            _ => "DELETE",
        };
        (format!("{method} /{}", path.join("/")), vec![d.encode()])
    }

    fn block(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..6);
        let (what, b) = match variant {
            0 => {
                let d = self.get(rng).opt(BLOCK2, block(0, false, 7, 1));
                ("Block2 with reserved SZX 7", d.sorted().encode())
            }
            1 => {
                let num = (1 << 20) - 1;
                let d = self.get(rng).opt(BLOCK2, block(num, false, 6, 3));
                ("Block2 number 2^20-1", d.sorted().encode())
            }
            2 => {
                let d = self.get(rng).opt(BLOCK2, block(1, false, 0, 4));
                ("Block2 of 4 bytes", d.sorted().encode())
            }
            3 => {
                let num = rng.random_range(1..1000);
                let d = Draft::request(rng, PUT, &self.resource_path())
                    .opt(BLOCK1, block(num, true, 0, 2))
                    .payload(0, vec![b'1'; 16]);
                ("Block1 starting at a later block", d.sorted().encode())
            }
            4 => {
                let d = Draft::request(rng, PUT, &self.resource_path())
                    .opt(BLOCK1, block(0, true, 6, 1))
                    .opt(SIZE1, uint(u32::MAX))
                    .payload(0, vec![b'1'; 3]);
                (
                    "Block1 shorter than its size, Size1 4 GiB",
                    d.sorted().encode(),
                )
            }
            _ => {
                let d = Draft::request(rng, PUT, &self.resource_path())
                    .opt(BLOCK1, block(0, true, 7, 1))
                    .payload(0, vec![b'1'; 16]);
                ("Block1 with reserved SZX 7", d.sorted().encode())
            }
        };
        (what.to_string(), vec![b])
    }

    fn observe(&self, rng: &mut ChaCha8Rng) -> (String, Vec<Vec<u8>>) {
        let variant = rng.random_range(0..4);
        match variant {
            0 => {
                let n = rng.random_range(20..50);
                let storm = (0..n)
                    .map(|_| {
                        let mut d = self.get(rng).uint_opt(OBSERVE, 0).sorted();
                        d.mtype = *pick(rng, &[CON, NON]);
                        d.encode()
                    })
                    .collect();
                (format!("observe storm of {n} registrations"), storm)
            }
            1 => {
                let d = self.get(rng).opt(OBSERVE, vec![0xff, 0xff, 0xff, 0xff]);
                ("Observe of 4 bytes".into(), vec![d.sorted().encode()])
            }
            2 => {
                let d = self.get(rng).uint_opt(OBSERVE, 0).uint_opt(OBSERVE, 1);
                ("Observe twice".into(), vec![d.sorted().encode()])
            }
            _ => {
                let n = rng.random_range(5..20);
                let cancels = (0..n)
                    .map(|_| self.get(rng).uint_opt(OBSERVE, 1).sorted().encode())
                    .collect();
                (format!("{n} cancels of unknown observations"), cancels)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_datagrams_byte_for_byte() {
        let a = Generator::new(7, &[], "/3/0").unwrap();
        let b = Generator::new(7, &[], "/3/0").unwrap();
        for i in 0..500 {
            assert_eq!(a.case(i), b.case(i), "case {i}");
        }
    }

    #[test]
    fn other_seeds_give_other_datagrams() {
        let a = Generator::new(7, &[], "/3/0").unwrap();
        let b = Generator::new(8, &[], "/3/0").unwrap();
        let differ = (0..50).filter(|&i| a.case(i) != b.case(i)).count();
        assert!(differ > 40, "only {differ} of 50 cases differ");
    }

    #[test]
    fn kinds_take_turns_and_a_subset_is_kept() {
        let g = Generator::new(1, &[FuzzKind::Token, FuzzKind::Ids], "/3/0").unwrap();
        let kinds: Vec<FuzzKind> = (0..4).map(|i| g.case(i).kind).collect();
        assert_eq!(
            kinds,
            [
                FuzzKind::Token,
                FuzzKind::Ids,
                FuzzKind::Token,
                FuzzKind::Ids
            ]
        );
    }

    #[test]
    fn every_kind_name_parses_back() {
        for k in FuzzKind::ALL {
            assert_eq!(FuzzKind::parse(k.name()), Ok(k));
        }
        assert_eq!(FuzzKind::parse("payload_tlv"), Ok(FuzzKind::PayloadTlv));
        let e = FuzzKind::parse("tlv").unwrap_err();
        assert!(e.contains("payload-tlv"), "{e}");
    }

    #[test]
    fn rejects_a_path_that_is_not_lwm2m() {
        assert!(Generator::new(1, &[], "/3/x").unwrap_err().contains("/3/x"));
        assert!(Generator::new(1, &[], "").is_err());
    }

    #[test]
    fn well_formed_cases_decode_and_malformed_ones_are_kept_as_written() {
        let g = Generator::new(3, &[], "/3/0").unwrap();
        let mut malformed = 0;
        for i in 0..400 {
            let c = g.case(i);
            assert!(!c.datagrams.is_empty());
            for d in &c.datagrams {
                assert!(d.len() >= 4, "case {i} ({}) too short", c.what);
                assert_eq!(d[0] >> 6, 1, "case {i}: CoAP version 1");
                if crate::coap::udp::decode(d).is_err() {
                    malformed += 1;
                }
            }
        }
        assert!(malformed > 10, "{malformed} malformed datagrams");
    }

    #[test]
    fn a_tlv_length_past_the_end_is_among_the_payload_tlv_cases() {
        let g = Generator::new(1, &[FuzzKind::PayloadTlv], "/3/0").unwrap();
        let found = (0..60).any(|i| g.case(i).what == "TLV length past the end");
        assert!(found);
    }
}
