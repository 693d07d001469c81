//! CoAP (RFC 7252): message model, wire codecs and tables. No I/O.
