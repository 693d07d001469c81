//! Observations (RFC 7641): what the registry keeps for each, and the
//! freshness rule for notification sequence numbers (§3.4).

use std::fmt;
use std::time::{Duration, Instant};

use crate::coap::{Code, Message, OptionNumber};

use super::RequestId;

/// Identifies one observation in the registry. A re-registration gets a new
/// id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ObservationId(pub(super) u64);

impl fmt::Display for ObservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "observation #{}", self.0)
    }
}

/// An established observation: created when a request carrying Observe=0
/// gets a 2.xx response carrying Observe.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation<P> {
    /// Its id.
    pub id: ObservationId,
    /// The request that established it.
    pub request: RequestId,
    /// The peer that sends the notifications.
    pub peer: P,
    /// The token notifications carry.
    pub token: Vec<u8>,
    /// The observed Uri-Path as `/a/b` (empty for a request without one,
    /// e.g. a composite FETCH).
    pub path: String,
    /// The method of the establishing request (GET, or FETCH for a
    /// composite observation).
    pub method: Code,
    /// The newest sequence number (Observe value, 24 bits) accepted.
    pub last_sequence: u32,
    /// When the newest fresh notification arrived.
    pub last_update: Instant,
    /// Notifications received, the establishing response included, stale
    /// ones included.
    pub count: u64,
    /// How many of them were stale (older than one already seen).
    pub stale: u64,
    /// The establishing request (its payload tells composite observations
    /// apart; block-wise notifications are completed with copies of it).
    pub(super) request_message: Message,
}

impl<P> Observation<P> {
    /// The request that established the observation, as sent.
    pub fn request_message(&self) -> &Message {
        &self.request_message
    }
}

/// The Observe option's value as a 24-bit sequence number; `None` when the
/// option is absent. A malformed (over-long) value counts as 0 rather than
/// as absent, so it does not end the observation.
pub(super) fn sequence(msg: &Message) -> Option<u32> {
    let opt = msg.option(OptionNumber::OBSERVE)?;
    Some(opt.as_uint().map_or(0, |v| (v & 0xFF_FFFF) as u32))
}

/// RFC 7641 §3.4: is notification (`v2`, `t2`) newer than (`v1`, `t1`)?
pub(super) fn is_fresh(v1: u32, t1: Instant, v2: u32, t2: Instant) -> bool {
    const HALF: u32 = 1 << 23;
    let (v1, v2) = (v1 & 0xFF_FFFF, v2 & 0xFF_FFFF);
    (v1 < v2 && v2 - v1 < HALF)
        || (v1 > v2 && v1 - v2 > HALF)
        || t2.saturating_duration_since(t1) > Duration::from_secs(128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{CoapOption, Type};

    #[test]
    fn larger_sequence_is_fresh_smaller_is_stale() {
        let t = Instant::now();
        assert!(is_fresh(5, t, 6, t));
        assert!(!is_fresh(6, t, 5, t));
        assert!(!is_fresh(6, t, 6, t));
    }

    #[test]
    fn sequence_wraps_around_at_2_pow_24() {
        let t = Instant::now();
        assert!(is_fresh(0xFF_FFFF, t, 0, t));
        assert!(is_fresh(0xFF_FFF0, t, 3, t));
        assert!(!is_fresh(3, t, 0xFF_FFF0, t));
    }

    #[test]
    fn a_jump_of_half_the_space_or_more_counts_as_older() {
        let t = Instant::now();
        assert!(!is_fresh(0, t, 1 << 23, t));
        assert!(is_fresh(0, t, (1 << 23) - 1, t));
    }

    #[test]
    fn anything_is_fresh_after_128_seconds() {
        let t = Instant::now();
        assert!(!is_fresh(6, t, 5, t + Duration::from_secs(128)));
        assert!(is_fresh(6, t, 5, t + Duration::from_secs(129)));
    }

    #[test]
    fn over_long_observe_value_counts_as_zero_not_absent() {
        let mut m = Message::new(Type::NonConfirmable, Code::CONTENT, 1);
        assert_eq!(sequence(&m), None);
        m.add_option(CoapOption::new(OptionNumber::OBSERVE, vec![1; 9]));
        assert_eq!(sequence(&m), Some(0));
        m.set_option(CoapOption::uint(OptionNumber::OBSERVE, 0x1_00_00_05));
        assert_eq!(sequence(&m), Some(5));
    }
}
