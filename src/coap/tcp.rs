//! CoAP over TCP framing (RFC 8323 §3.2): stream bytes ⇄ [`Message`].
//!
//! A TCP message has no type and no message ID; decoded messages carry
//! `Type::Confirmable`, message ID 0 and `reliable: true`, and the TCP
//! encoder ignores type and message ID.

use super::code::Code;
use super::message::{Message, Type};
use super::udp::{DecodeError, Field, decode_options_and_payload, encode_options_and_payload};

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
            format!("invalid CoAP token length: {tkl}, expected <= 8"),
        ))
    } else {
        let mut msg = Message::new(Type::Confirmable, Code(frame[header - 1]), 0);
        msg.reliable = true;
        msg.token = frame[header..header + tkl].to_vec();
        decode_options_and_payload(frame, header + tkl).map(|(options, payload)| {
            msg.options = options;
            msg.payload = payload;
            msg
        })
    };
    Frame::Complete(total, Box::new(result))
}

/// Decodes bytes that should hold exactly one frame (as the TCP transport
/// delivers them): an incomplete frame or bytes after it are an error.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    match decode_frame(bytes) {
        Frame::Incomplete(n) => Err(DecodeError::new(
            bytes.len(),
            Field::Length,
            format!("incomplete CoAP-over-TCP frame: {n} more byte(s) needed"),
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
