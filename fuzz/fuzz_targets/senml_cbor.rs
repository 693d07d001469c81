//! Fuzzes the SenML CBOR (112) decoder: it must never panic, and whatever it
//! decodes must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsh::lwm2m::format::{cf, decode};
use nsh::lwm2m::node::Path;
use nsh::lwm2m::objects::Registry;
use std::sync::OnceLock;

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let reg = REGISTRY.get_or_init(Registry::builtin);
    let base = Path::new(&[3, 0]);
    for b in [None, base.as_ref()] {
        match decode(cf::SENML_CBOR, data, b, reg) {
            Ok(d) => drop(d.render(reg)),
            Err(e) => drop(e.to_string()),
        }
    }
});
