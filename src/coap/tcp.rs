//! CoAP over TCP framing (RFC 8323 §3.2): stream bytes ⇄ [`Message`].
//!
//! A TCP message has no type and no message ID; decoded messages carry
//! `Type::Confirmable`, message ID 0 and `reliable: true`, and the TCP
//! encoder ignores type and message ID.
//!
//! Also the signaling options of RFC 8323 §5 (their numbers depend on the
//! signaling code): their names, which of a signaling message's options
//! are critical and unknown, and what a peer's CSMs announced
//! ([`Capabilities`]: Max-Message-Size, Block-Wise-Transfer, and so BERT).

use super::code::Code;
use super::message::{Message, Type};
use super::option::{CoapOption, OptionNumber};
use super::udp::{DecodeError, Field, decode_options_and_payload, encode_options_and_payload};

/// CSM option 2 (RFC 8323 §5.3.1): the largest message the sender takes.
pub const MAX_MESSAGE_SIZE: OptionNumber = OptionNumber(2);
/// CSM option 4 (RFC 8323 §5.3.2): the sender does block-wise transfers.
pub const BLOCK_WISE_TRANSFER: OptionNumber = OptionNumber(4);
/// Ping and Pong option 2 (RFC 8323 §5.4.1).
pub const CUSTODY: OptionNumber = OptionNumber(2);
/// Release option 2 (RFC 8323 §5.5).
pub const ALTERNATIVE_ADDRESS: OptionNumber = OptionNumber(2);
/// Release option 4 (RFC 8323 §5.5): seconds not to reconnect for.
pub const HOLD_OFF: OptionNumber = OptionNumber(4);
/// Abort option 2 (RFC 8323 §5.6): the CSM option the sender could not
/// process.
pub const BAD_CSM_OPTION: OptionNumber = OptionNumber(2);

/// What a peer announced in its CSMs (RFC 8323 §5.3): capabilities are
/// cumulative, a later CSM changing only the options it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The largest message the peer takes (Max-Message-Size, §5.3.1).
    pub max_message_size: u64,
    /// Whether it announced the Block-Wise-Transfer option (§5.3.2).
    pub block_wise: bool,
}

impl Default for Capabilities {
    /// What a peer announced before any CSM: 1152 bytes, no block-wise.
    fn default() -> Self {
        Capabilities {
            max_message_size: Capabilities::BASE_MAX_MESSAGE_SIZE,
            block_wise: false,
        }
    }
}

impl Capabilities {
    /// The Max-Message-Size of a peer that announced none (RFC 8323
    /// §5.3.1), and the size above which Block-Wise-Transfer announces
    /// BERT (§5.3.2).
    pub const BASE_MAX_MESSAGE_SIZE: u64 = 1152;

    /// Takes in what CSM `csm` announces.
    pub fn update(&mut self, csm: &Message) {
        if csm.code != Code::CSM {
            return;
        }
        for o in &csm.options {
            match o.number {
                MAX_MESSAGE_SIZE => {
                    if let Some(v) = o.as_uint() {
                        self.max_message_size = v;
                    }
                }
                BLOCK_WISE_TRANSFER => self.block_wise = true,
                _ => {}
            }
        }
    }

    /// Whether the peer takes BERT blocks (RFC 8323 §5.3.2, §6): it
    /// announced Block-Wise-Transfer and a Max-Message-Size over 1152.
    pub fn bert(&self) -> bool {
        self.block_wise && self.max_message_size > Self::BASE_MAX_MESSAGE_SIZE
    }
}

/// Outcome of looking for one frame at the start of a stream buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet; at least this many more are needed.
    Incomplete(usize),
    /// A whole frame of this many bytes was decoded.
    Complete(usize, Box<Result<Message, DecodeError>>),
}

/// Decodes the frame at the start of `buf`, if it is complete.
pub fn decode_frame(buf: &[u8]) -> Frame {
    let Some(&first) = buf.first() else {
        return Frame::Incomplete(1);
    };
    let len_nibble = first >> 4;
    let tkl = usize::from(first & 0x0f);
    let ext = match len_nibble {
        13 => 1,
        14 => 2,
        15 => 4,
        _ => 0,
    };
    let header = 1 + ext + 1;
    if buf.len() < header {
        return Frame::Incomplete(header - buf.len());
    }
    let e = &buf[1..1 + ext];
    let body_len = match len_nibble {
        13 => usize::from(e[0]) + 13,
        14 => usize::from(u16::from_be_bytes([e[0], e[1]])) + 269,
        15 => u32::from_be_bytes([e[0], e[1], e[2], e[3]]) as usize + 65805,
        n => usize::from(n),
    };
    let total = header + tkl + body_len;
    if buf.len() < total {
        return Frame::Incomplete(total - buf.len());
    }
    let frame = &buf[..total];
    let result = if tkl > 8 {
        Err(DecodeError::new(
            0,
            Field::TokenLength,
            format!("token length {tkl} in the TKL nibble, over the 8 allowed (RFC 8323 §3.2)"),
        ))
    } else {
        let mut msg = Message::new(Type::Confirmable, Code(frame[header - 1]), 0);
        msg.reliable = true;
        msg.token = frame[header..header + tkl].to_vec();
        decode_options_and_payload(frame, header + tkl)
            .map(|(options, payload)| {
                msg.options = options;
                msg.payload = payload;
                msg
            })
            .map_err(|mut e| {
                // Running past the end is running past what Len gave.
                if e.reason.contains("incomplete") {
                    e.reason = format!(
                        "{} (the frame ends there: {})",
                        e.reason,
                        describe_length(first, e_bytes(buf, ext), body_len)
                    );
                }
                e
            })
    };
    Frame::Complete(total, Box::new(result))
}

/// The extended-length bytes after the first byte of a frame.
fn e_bytes(buf: &[u8], ext: usize) -> &[u8] {
    buf.get(1..1 + ext).unwrap_or(&[])
}

/// How the frame's length fields read: `Len nibble 2 gives 2 bytes of
/// options and payload`, or with the extended length.
fn describe_length(first: u8, ext: &[u8], body_len: usize) -> String {
    let nibble = first >> 4;
    let extended = match ext {
        [] => String::new(),
        [a] => format!(", extended length {a}"),
        [a, b] => format!(", extended length {}", u16::from_be_bytes([*a, *b])),
        [a, b, c, d, ..] => format!(", extended length {}", u32::from_be_bytes([*a, *b, *c, *d])),
        _ => String::new(),
    };
    format!("Len nibble {nibble}{extended} gives {body_len} bytes of options and payload")
}

/// The size of the frame that starts `buf`, as its header announces it
/// (header, token, options and payload), and how its length fields read;
/// `None` until the header is there.
pub fn announced(buf: &[u8]) -> Option<(usize, String)> {
    let first = *buf.first()?;
    let ext = match first >> 4 {
        13 => 1,
        14 => 2,
        15 => 4,
        _ => 0,
    };
    let e = buf.get(1..1 + ext)?;
    let body_len = match first >> 4 {
        13 => usize::from(e[0]) + 13,
        14 => usize::from(u16::from_be_bytes([e[0], e[1]])) + 269,
        15 => u32::from_be_bytes([e[0], e[1], e[2], e[3]]) as usize + 65805,
        n => usize::from(n),
    };
    let total = 1 + ext + 1 + usize::from(first & 0x0f) + body_len;
    Some((total, describe_length(first, e, body_len)))
}

/// Decodes one received frame, as [`decode`] does, but refuses one whose
/// header announces more than `max` bytes (the Max-Message-Size nsh
/// announced, RFC 8323 §5.3.1): its bytes may be only its start.
pub fn decode_received(bytes: &[u8], max: usize) -> Result<Message, DecodeError> {
    if let Some((total, length)) = announced(bytes)
        && total > max
    {
        return Err(DecodeError::new(
            0,
            Field::Length,
            format!(
                "frame of {total} bytes is over the Max-Message-Size {max} nsh announced in its CSM ({length})"
            ),
        ));
    }
    decode(bytes)
}

/// Decodes bytes that should hold exactly one frame (as the TCP transport
/// delivers them): an incomplete frame or bytes after it are an error.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    match decode_frame(bytes) {
        Frame::Incomplete(n) => Err(DecodeError::new(
            bytes.len(),
            Field::Length,
            match announced(bytes) {
                Some((_, length)) => {
                    format!("the frame is cut short: {n} more byte(s) needed ({length})")
                }
                None => format!("the frame header is cut short: {n} more byte(s) needed"),
            },
        )),
        Frame::Complete(len, _) if len != bytes.len() => Err(DecodeError::new(
            len,
            Field::Length,
            format!(
                "{} byte(s) after the CoAP-over-TCP frame",
                bytes.len() - len
            ),
        )),
        Frame::Complete(_, result) => *result,
    }
}

/// The name of signaling option `number` of a message with `code` (RFC
/// 8323 §5): `Max-Message-Size`, `Custody`; `None` when it has none.
pub fn signaling_option_name(code: Code, number: OptionNumber) -> Option<&'static str> {
    Some(match (code, number) {
        (Code::CSM, MAX_MESSAGE_SIZE) => "Max-Message-Size",
        (Code::CSM, BLOCK_WISE_TRANSFER) => "Block-Wise-Transfer",
        (Code::PING | Code::PONG, CUSTODY) => "Custody",
        (Code::RELEASE, ALTERNATIVE_ADDRESS) => "Alternative-Address",
        (Code::RELEASE, HOLD_OFF) => "Hold-Off",
        (Code::ABORT, BAD_CSM_OPTION) => "Bad-CSM-Option",
        _ => return None,
    })
}

/// A signaling option's value as text: a number for the uint options, the
/// text of an Alternative-Address, escaped bytes otherwise.
pub fn option_text(o: &CoapOption) -> String {
    match o.number {
        ALTERNATIVE_ADDRESS if o.value.iter().all(|b| b.is_ascii_graphic()) => {
            String::from_utf8_lossy(&o.value).into_owned()
        }
        _ => match o.as_uint() {
            Some(v) if o.value.len() <= 4 => v.to_string(),
            _ => super::escaped::format_printable(&o.value),
        },
    }
}

/// What a signaling message carries besides its code and token, for its
/// one-line summary: `, Max-Message-Size=1152, Block-Wise-Transfer`, `,
/// Custody`, and its diagnostic payload after a colon. Empty for other
/// messages (and for class 7 over UDP, where it is no signaling).
pub fn signaling_summary(msg: &Message) -> String {
    if msg.code.class() != 7 || !msg.reliable {
        return String::new();
    }
    let mut s = String::new();
    for o in &msg.options {
        let name = signaling_option_name(msg.code, o.number);
        let empty = matches!(o.number, CUSTODY | BLOCK_WISE_TRANSFER)
            && name.is_some()
            && o.value.is_empty();
        match name {
            Some(n) if empty => s.push_str(&format!(", {n}")),
            Some(n) => s.push_str(&format!(", {n}={}", option_text(o))),
            None => s.push_str(&format!(
                ", option {}={}",
                o.number.0,
                super::escaped::format_printable(&o.value)
            )),
        }
    }
    if !msg.payload.is_empty() {
        s.push_str(&format!(": {}", String::from_utf8_lossy(&msg.payload)));
    }
    s
}

/// Why signaling message `msg` cannot be processed (RFC 8323 §5.2: a
/// critical option it does not know; §5.3: a CSM option whose value is
/// out of its bounds): the option at fault and what is wrong. `None` when
/// it can be, and for anything not a signaling message.
pub fn signaling_fault(msg: &Message) -> Option<(OptionNumber, String)> {
    if msg.code.class() != 7 {
        return None;
    }
    let what = match msg.code {
        Code::CSM => "CSM",
        Code::PING => "Ping",
        Code::PONG => "Pong",
        Code::RELEASE => "Release",
        Code::ABORT => "Abort",
        _ => "signaling message",
    };
    for o in &msg.options {
        let name = signaling_option_name(msg.code, o.number);
        if name.is_none() && o.number.0 % 2 == 1 {
            return Some((
                o.number,
                format!("unknown critical option {} in the {what}", o.number.0),
            ));
        }
        let (max, kind) = match (msg.code, o.number) {
            (Code::CSM, MAX_MESSAGE_SIZE) => (4, "uint of 0-4 bytes"),
            (Code::CSM, BLOCK_WISE_TRANSFER) => (0, "empty"),
            _ => continue,
        };
        if o.value.len() > max {
            return Some((
                o.number,
                format!(
                    "{} of {} bytes in the {what}; it is {kind}",
                    name.unwrap_or("option"),
                    o.value.len()
                ),
            ));
        }
    }
    None
}

/// An Abort (7.05, RFC 8323 §5.6) with `diagnostic` as its payload, naming
/// `bad_csm_option` when a CSM option is at fault.
pub fn abort(diagnostic: &str, bad_csm_option: Option<OptionNumber>) -> Message {
    let mut m = Message::new(Type::Confirmable, Code::ABORT, 0);
    m.reliable = true;
    if let Some(n) = bad_csm_option {
        m.add_option(CoapOption::uint(BAD_CSM_OPTION, u64::from(n.0)));
    }
    m.payload = diagnostic.as_bytes().to_vec();
    m
}

/// Encodes a message as one RFC 8323 frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut body = Vec::new();
    encode_options_and_payload(msg, &mut body);
    let tkl = msg.token.len().min(15) as u8;
    let n = body.len();
    let mut out = Vec::with_capacity(n + 8);
    match n {
        0..=12 => out.push(((n as u8) << 4) | tkl),
        13..=268 => out.extend_from_slice(&[(13 << 4) | tkl, (n - 13) as u8]),
        269..=65804 => {
            out.push((14 << 4) | tkl);
            out.extend_from_slice(&((n - 269) as u16).to_be_bytes());
        }
        _ => {
            out.push((15 << 4) | tkl);
            out.extend_from_slice(&((n - 65805) as u32).to_be_bytes());
        }
    }
    out.push(msg.code.0);
    out.extend_from_slice(&msg.token);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{CoapOption, OptionNumber};
    use proptest::prelude::*;

    #[test]
    fn decodes_an_empty_csm_frame() {
        assert!(
            matches!(decode_frame(&[0x00, 0xe1]), Frame::Complete(2, m) if m.as_ref().as_ref().unwrap().code == Code::CSM)
        );
        assert_eq!(decode_frame(&[0x00]), Frame::Incomplete(1));
    }

    #[test]
    fn decode_wants_exactly_one_frame() {
        assert!(decode(&[0x00, 0xe2]).unwrap().reliable);
        assert!(decode(&[0x00]).is_err());
        assert!(decode(&[0x00, 0xe2, 0x00]).is_err());
        assert!(decode(&[0x10, 0x45]).is_err());
    }

    #[test]
    fn a_token_length_over_8_is_named_with_its_value() {
        let mut bytes = vec![0x09, 0x01];
        bytes.extend_from_slice(b"123456789");
        let e = decode(&bytes).unwrap_err();
        assert_eq!((e.field, e.offset), (Field::TokenLength, 0));
        assert!(
            e.reason.starts_with("token length 9 in the TKL nibble"),
            "{e}"
        );
    }

    #[test]
    fn an_option_past_the_frames_end_names_the_length_fields() {
        // Len 13 + extension 0: 13 bytes of options and payload, the
        // option (Uri-Path) claiming 14.
        let mut bytes = vec![0xd0, 0x00, 0x01, 0xbd, 0x01];
        bytes.extend_from_slice(&[b'a'; 11]);
        let e = decode(&bytes).unwrap_err();
        assert!(
            e.reason.ends_with(
                "(the frame ends there: Len nibble 13, extended length 0 gives 13 bytes of options and payload)"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_announced_size_is_read_from_the_header_alone() {
        assert_eq!(announced(&[0xf0, 0, 0, 0]), None);
        let (total, length) = announced(&[0xf0, 0, 0, 0, 1, 0x02]).unwrap();
        assert_eq!(total, 6 + 65806);
        assert_eq!(
            length,
            "Len nibble 15, extended length 1 gives 65806 bytes of options and payload"
        );
        assert_eq!(announced(&[0x01]).map(|a| a.0), Some(3));
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_from_its_start() {
        // Len 14, extended length 256: 525 bytes of options and payload.
        let e = decode_received(&[0xe0, 0x01, 0x00, 0x02, 0x11], 500).unwrap_err();
        assert_eq!((e.field, e.offset), (Field::Length, 0));
        assert!(
            e.reason
                .starts_with("frame of 529 bytes is over the Max-Message-Size 500 nsh announced"),
            "{e}"
        );
        assert!(decode_received(&[0x00, 0xe2], 500).is_ok());
    }

    fn signal(code: Code, options: &[(u16, &[u8])]) -> Message {
        let mut m = Message::new(Type::Confirmable, code, 0);
        m.reliable = true;
        for (n, v) in options {
            m.add_option(CoapOption::new(OptionNumber(*n), *v));
        }
        m
    }

    #[test]
    fn bert_is_block_wise_transfer_with_a_max_message_size_over_1152() {
        // RFC 8323 §5.3.2: options add up over CSMs.
        let mut caps = Capabilities::default();
        assert!(!caps.bert());
        caps.update(&signal(Code::CSM, &[(4, b"")]));
        assert!(caps.block_wise);
        assert!(!caps.bert(), "Block-Wise-Transfer alone is no BERT");
        caps.update(&signal(Code::CSM, &[(2, &[0x04, 0x81])]));
        assert_eq!(caps.max_message_size, 1153);
        assert!(caps.bert(), "a later CSM keeps the earlier option");
        caps.update(&signal(Code::CSM, &[(2, &[0x04, 0x80])]));
        assert!(!caps.bert(), "1152 ends it");
        let mut plain = Capabilities::default();
        plain.update(&signal(Code::CSM, &[(2, &[0xff, 0xff])]));
        assert!(!plain.bert(), "a large Max-Message-Size alone is no BERT");
        // A Ping's option 4 is not Block-Wise-Transfer.
        plain.update(&signal(Code::PING, &[(4, b"")]));
        assert!(!plain.block_wise);
    }

    #[test]
    fn signaling_faults_are_unknown_critical_options_and_bad_csm_values() {
        // RFC 8323 §5.2: elective unknown options are ignored.
        assert_eq!(signaling_fault(&signal(Code::CSM, &[(6, b"x")])), None);
        assert_eq!(signaling_fault(&signal(Code::PING, &[(2, b"")])), None);
        let (n, why) = signaling_fault(&signal(Code::CSM, &[(3, b"")])).unwrap();
        assert_eq!(
            (n, why.as_str()),
            (OptionNumber(3), "unknown critical option 3 in the CSM")
        );
        let (n, why) = signaling_fault(&signal(Code::CSM, &[(2, &[1, 2, 3, 4, 5])])).unwrap();
        assert_eq!(n, MAX_MESSAGE_SIZE);
        assert_eq!(
            why,
            "Max-Message-Size of 5 bytes in the CSM; it is uint of 0-4 bytes"
        );
        let (n, _) = signaling_fault(&signal(Code::RELEASE, &[(9, b"")])).unwrap();
        assert_eq!(n, OptionNumber(9));
        // Not signaling: none of this applies.
        assert_eq!(signaling_fault(&signal(Code::GET, &[(3, b"")])), None);
    }

    #[test]
    fn signaling_summaries_name_options_and_show_the_diagnostic() {
        let mut csm = signal(Code::CSM, &[(4, b"")]);
        csm.add_option(CoapOption::uint(MAX_MESSAGE_SIZE, 1152));
        assert_eq!(
            signaling_summary(&csm),
            ", Max-Message-Size=1152, Block-Wise-Transfer"
        );
        let a = abort("bad frame", Some(OptionNumber(3)));
        assert_eq!(signaling_summary(&a), ", Bad-CSM-Option=3: bad frame");
        let r = signal(
            Code::RELEASE,
            &[(2, b"[::1]:5683"), (4, &[30]), (7, b"\x01")],
        );
        assert_eq!(
            signaling_summary(&r),
            ", Alternative-Address=[::1]:5683, Hold-Off=30, option 7=\\x01"
        );
    }

    proptest! {
        #[test]
        fn frames_round_trip(code in any::<u8>(), token in proptest::collection::vec(any::<u8>(), 0..=8),
                             path in proptest::collection::vec("[a-z0-9]{0,20}", 0..4),
                             payload in proptest::collection::vec(any::<u8>(), 0..70000)) {
            let mut m = Message::new(Type::Confirmable, Code(code), 0);
            m.reliable = true;
            m.token = token;
            for p in path { m.add_option(CoapOption::new(OptionNumber::URI_PATH, p.as_bytes())); }
            m.payload = payload;
            let bytes = encode(&m);
            match decode_frame(&bytes) {
                Frame::Complete(n, r) => { prop_assert_eq!(n, bytes.len()); prop_assert_eq!(r.as_ref().as_ref().unwrap(), &m); }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn decoding_arbitrary_stream_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_frame(&bytes);
        }
    }
}
