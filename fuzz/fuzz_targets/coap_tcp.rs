//! Fuzzes the CoAP-over-TCP framing (RFC 8323 §3.2): the input is a stream
//! cut into frames as the TCP transport does. It must never panic, every
//! frame must lie inside the stream, an incomplete frame must ask for at
//! least one more byte, and what decodes must encode to a frame that
//! decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsh::coap::tcp::{self, Frame};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match tcp::decode_frame(rest) {
            Frame::Incomplete(n) => {
                assert!(n > 0, "an incomplete frame must need more bytes");
                break;
            }
            Frame::Complete(len, result) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "frame of {len} bytes in {}",
                    rest.len()
                );
                if let Ok(msg) = *result {
                    let again = tcp::decode(&tcp::encode(&msg));
                    assert_eq!(again.as_ref(), Ok(&msg), "re-encoding changed the message");
                }
                rest = &rest[len..];
            }
        }
    }
    if let Err(e) = tcp::decode(data) {
        drop(e.to_string());
    }
});
