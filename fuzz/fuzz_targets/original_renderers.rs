//! Fuzzes the original-nsh renderers and the TLV builder's `deserialize`:
//! raw TLV tree text, SenML CBOR text, builder listing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsh::lwm2m::format::builder::TlvBuilder;
use nsh::lwm2m::format::{senml, tlv};

fuzz_target!(|data: &[u8]| {
    if let Ok(els) = tlv::decode_elements(data) {
        drop(tlv::render(&els));
        // Encoding what decoded gives the same elements back.
        if let Ok(bytes) = tlv::encode_elements(&els) {
            let again = tlv::decode_elements(&bytes).ok();
            assert_eq!(
                again.map(|e| tlv::render(&e)),
                Some(tlv::render(&els)),
                "TLV re-encoding changed the tree"
            );
        }
    }
    drop(senml::render_original(data));
    drop(TlvBuilder::new().deserialize(data));
});
