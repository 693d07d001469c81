//! CoAP over UDP wire format (RFC 7252 §3): datagram ⇄ [`Message`].
//!
//! `decode` never panics and reports the field and byte offset of the first
//! problem. `encode` writes what the message holds, including invalid values
//! (a version other than 1, a token longer than 8 bytes), so nsh can send
//! deliberately wrong messages; options are written in ascending order, as
//! the delta encoding requires.

use std::fmt;

use super::code::Code;
use super::message::{Message, Type};
use super::option::{CoapOption, OptionNumber};

/// The field a decoding error is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Field {
    /// The 4-byte header.
    Header,
    /// The version bits.
    Version,
    /// The token length nibble.
    TokenLength,
    /// The token bytes.
    Token,
    /// An option's delta nibble or extension.
    OptionDelta,
    /// An option's length nibble or extension.
    OptionLength,
    /// An option's value bytes.
    OptionValue,
    /// The payload marker.
    PayloadMarker,
    /// The TCP length field (RFC 8323).
    Length,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Header => "header",
            Field::Version => "version",
            Field::TokenLength => "token length",
            Field::Token => "token",
            Field::OptionDelta => "option delta",
            Field::OptionLength => "option length",
            Field::OptionValue => "option value",
            Field::PayloadMarker => "payload marker",
            Field::Length => "length",
        })
    }
}

/// Why a datagram could not be decoded: the field, its byte offset and a
/// human-readable reason.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{field} at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Byte offset of the offending field.
    pub offset: usize,
    /// The field.
    pub field: Field,
    /// What is wrong with it.
    pub reason: String,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, field: Field, reason: impl Into<String>) -> Self {
        DecodeError {
            offset,
            field,
            reason: reason.into(),
        }
    }
}

/// Decodes one UDP datagram.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() < 4 {
        return Err(DecodeError::new(
            0,
            Field::Header,
            format!("{} bytes, a header needs 4", bytes.len()),
        ));
    }
    let version = bytes[0] >> 6;
    if version != 1 {
        return Err(DecodeError::new(
            0,
            Field::Version,
            format!("invalid CoAP version: {version}, expected 1"),
        ));
    }
    let tkl = usize::from(bytes[0] & 0x0f);
    if tkl > 8 {
        return Err(DecodeError::new(
            0,
            Field::TokenLength,
            format!("invalid CoAP token length: {tkl}, expected <= 8"),
        ));
    }
    let mut msg = Message::new(
        Type::from_bits(bytes[0] >> 4),
        Code(bytes[1]),
        u16::from_be_bytes([bytes[2], bytes[3]]),
    );
    msg.token = bytes
        .get(4..4 + tkl)
        .ok_or_else(|| {
            DecodeError::new(
                4,
                Field::Token,
                format!("token of {tkl} bytes is cut short"),
            )
        })?
        .to_vec();
    let (options, payload) = decode_options_and_payload(bytes, 4 + tkl)?;
    msg.options = options;
    msg.payload = payload;
    Ok(msg)
}

/// Decodes the options and payload that start at `start` (shared by the UDP
/// and TCP framings).
pub(crate) fn decode_options_and_payload(
    bytes: &[u8],
    start: usize,
) -> Result<(Vec<CoapOption>, Vec<u8>), DecodeError> {
    let mut options = Vec::new();
    let mut number: u32 = 0;
    let mut i = start;
    while i < bytes.len() {
        let at = i;
        let head = bytes[i];
        if head == 0xff {
            if i + 1 == bytes.len() {
                return Err(DecodeError::new(
                    at,
                    Field::PayloadMarker,
                    "payload marker at the end of the message, with no payload after it",
                ));
            }
            return Ok((options, bytes[i + 1..].to_vec()));
        }
        i += 1;
        let delta = extended(bytes, &mut i, head >> 4, at, Field::OptionDelta)?;
        let length = extended(bytes, &mut i, head & 0x0f, at, Field::OptionLength)? as usize;
        number += delta;
        let num = u16::try_from(number).map_err(|_| {
            DecodeError::new(
                at,
                Field::OptionDelta,
                format!("option number {number} exceeds 65535"),
            )
        })?;
        let value = bytes.get(i..i + length).ok_or_else(|| {
            DecodeError::new(
                at,
                Field::OptionValue,
                format!(
                    "incomplete option {num}: {length} bytes announced, {} left",
                    bytes.len() - i
                ),
            )
        })?;
        options.push(CoapOption::new(OptionNumber(num), value));
        i += length;
    }
    Ok((options, Vec::new()))
}

fn extended(
    bytes: &[u8],
    i: &mut usize,
    nibble: u8,
    at: usize,
    field: Field,
) -> Result<u32, DecodeError> {
    match nibble {
        0..=12 => Ok(u32::from(nibble)),
        13 => {
            let b = *bytes.get(*i).ok_or_else(|| {
                DecodeError::new(at, field, "incomplete option: 1-byte extension missing")
            })?;
            *i += 1;
            Ok(u32::from(b) + 13)
        }
        14 => {
            let b = bytes.get(*i..*i + 2).ok_or_else(|| {
                DecodeError::new(at, field, "incomplete option: 2-byte extension missing")
            })?;
            *i += 2;
            Ok(u32::from(u16::from_be_bytes([b[0], b[1]])) + 269)
        }
        _ => Err(DecodeError::new(at, field, "reserved short value 15")),
    }
}

/// Encodes a message as a UDP datagram.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + msg.token.len() + msg.payload.len());
    let tkl = (msg.token.len().min(15)) as u8;
    out.push(((msg.version & 3) << 6) | (msg.mtype.bits() << 4) | tkl);
    out.push(msg.code.0);
    out.extend_from_slice(&msg.message_id.to_be_bytes());
    out.extend_from_slice(&msg.token);
    encode_options_and_payload(msg, &mut out);
    out
}

/// Appends options (sorted by number, stable) and the payload.
pub(crate) fn encode_options_and_payload(msg: &Message, out: &mut Vec<u8>) {
    let mut sorted: Vec<&CoapOption> = msg.options.iter().collect();
    sorted.sort_by_key(|o| o.number);
    let mut prev: u32 = 0;
    for o in sorted {
        let delta = u32::from(o.number.0) - prev;
        prev = u32::from(o.number.0);
        let (dn, dext) = nibble(delta);
        let (ln, lext) = nibble(o.value.len() as u32);
        out.push((dn << 4) | ln);
        out.extend_from_slice(&dext);
        out.extend_from_slice(&lext);
        out.extend_from_slice(&o.value);
    }
    if !msg.payload.is_empty() {
        out.push(0xff);
        out.extend_from_slice(&msg.payload);
    }
}

/// An option delta or length as its 4-bit nibble and extension bytes
/// (RFC 7252 §3.1); values past 65,804 are clamped.
pub(crate) fn nibble(v: u32) -> (u8, Vec<u8>) {
    match v {
        0..=12 => (v as u8, Vec::new()),
        13..=268 => (13, vec![(v - 13) as u8]),
        _ => (
            14,
            ((v.min(65535 + 269) - 269) as u16).to_be_bytes().to_vec(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::ContentFormat;
    use proptest::prelude::*;

    #[test]
    fn decodes_the_manuals_empty_ack() {
        let m = decode(&[0x60, 0x00, 0x13, 0x38]).unwrap();
        assert_eq!(m.mtype, Type::Acknowledgement);
        assert_eq!(m.code, Code::EMPTY);
        assert_eq!(m.message_id, 4920);
        assert!(m.is_empty_message());
    }

    #[test]
    fn decodes_a_read_with_accept() {
        // CON GET mid 0x1234, token 0xaa, Uri-Path 3, 0, Accept 11542
        let bytes = [
            0x41, 0x01, 0x12, 0x34, 0xaa, 0xb1, b'3', 0x01, b'0', 0x62, 0x2d, 0x16,
        ];
        let m = decode(&bytes).unwrap();
        assert_eq!(m.path_string(), "/3/0");
        assert_eq!(m.accept(), vec![ContentFormat::LWM2M_TLV]);
        assert_eq!(encode(&m), bytes);
    }

    #[test]
    fn rejects_option_delta_15_with_its_offset() {
        let e = decode(&[0x40, 0x01, 0, 1, 0xf0]).unwrap_err();
        assert_eq!((e.offset, e.field), (4, Field::OptionDelta));
    }

    #[test]
    fn rejects_payload_marker_without_payload() {
        let e = decode(&[0x40, 0x01, 0, 1, 0xff]).unwrap_err();
        assert_eq!(e.field, Field::PayloadMarker);
    }

    #[test]
    fn rejects_truncated_option_value() {
        let e = decode(&[0x40, 0x01, 0, 1, 0xb5, b'a']).unwrap_err();
        assert_eq!((e.offset, e.field), (4, Field::OptionValue));
        assert!(e.to_string().contains("5 bytes announced, 1 left"), "{e}");
    }

    #[test]
    fn rejects_bad_version_and_token_length() {
        assert_eq!(decode(&[0x80, 0, 0, 0]).unwrap_err().field, Field::Version);
        assert_eq!(
            decode(&[0x49, 0, 0, 0]).unwrap_err().field,
            Field::TokenLength
        );
        assert_eq!(decode(&[0x44, 0, 0, 0, 1]).unwrap_err().field, Field::Token);
    }

    #[test]
    fn encodes_large_option_numbers_and_lengths() {
        let mut m = Message::new(Type::NonConfirmable, Code::POST, 7);
        m.add_option(CoapOption::new(OptionNumber::NO_RESPONSE, vec![26]));
        m.add_option(CoapOption::new(OptionNumber(2000), vec![9; 300]));
        m.payload = b"x".to_vec();
        assert_eq!(decode(&encode(&m)).unwrap(), m);
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            0u8..4,
            any::<u8>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..=8),
            proptest::collection::vec(
                (0u16..2000, proptest::collection::vec(any::<u8>(), 0..300)),
                0..6,
            ),
            proptest::collection::vec(any::<u8>(), 0..100),
        )
            .prop_map(|(t, code, mid, token, opts, payload)| {
                let mut m = Message::new(Type::from_bits(t), Code(code), mid);
                m.token = token;
                for (n, v) in opts {
                    m.add_option(CoapOption::new(OptionNumber(n), v));
                }
                m.payload = payload;
                m
            })
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(m in arb_message()) {
            prop_assert_eq!(decode(&encode(&m)).unwrap(), m);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = decode(&bytes) {
                // Whatever decodes re-encodes to a datagram that decodes the same.
                prop_assert_eq!(decode(&encode(&m)).unwrap(), m);
            }
        }
    }
}
