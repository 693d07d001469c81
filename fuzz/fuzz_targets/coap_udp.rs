//! Fuzzes the CoAP-over-UDP datagram decoder (RFC 7252 §3): it must never
//! panic, an error must point inside the datagram, and what decodes must
//! encode to a datagram that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsh::coap::udp;

fuzz_target!(|data: &[u8]| {
    match udp::decode(data) {
        Ok(msg) => {
            let again = udp::decode(&udp::encode(&msg));
            assert_eq!(again.as_ref(), Ok(&msg), "re-encoding changed the message");
            drop(format!("{msg:?}"));
        }
        Err(e) => {
            assert!(
                e.offset <= data.len(),
                "error offset {} past the end",
                e.offset
            );
            drop(e.to_string());
        }
    }
});
