//! CoAP transmission parameters (RFC 7252 §4.8) and the time values derived
//! from them (§4.8.2).
//!
//! Values come from users (`set` at the prompt, scripts), so nothing here
//! panics on odd values: a random factor below 1 or not finite counts as 1,
//! and durations saturate instead of overflowing.

use std::time::Duration;

/// How CON messages are retransmitted and how long message IDs are
/// remembered. `Default` gives the RFC 7252 §4.8 values.
#[derive(Clone, Debug, PartialEq)]
pub struct TransmissionParams {
    /// ACK_TIMEOUT: the base of the first retransmission timeout (2 s).
    pub ack_timeout: Duration,
    /// ACK_RANDOM_FACTOR: the first timeout is random in
    /// `[ack_timeout, ack_timeout * ack_random_factor]` (1.5).
    pub ack_random_factor: f64,
    /// MAX_RETRANSMIT: retransmissions of a CON before giving up (4).
    pub max_retransmit: u32,
    /// Whether CON messages are retransmitted at all. When off, a CON is
    /// sent once and waits up to `exchange_lifetime` for its answer.
    pub retransmit: bool,
    /// NSTART: unacknowledged CON messages allowed in flight per peer; more
    /// wait in a queue (1). 0 means no limit.
    pub nstart: u32,
    /// MAX_LATENCY (100 s), used to derive the lifetimes.
    pub max_latency: Duration,
    /// EXCHANGE_LIFETIME: how long a CON's message ID is remembered for
    /// duplicate detection, and how long a request waits for a response
    /// after its last transmission or its empty ACK (247 s by default,
    /// derived by [`TransmissionParams::derive_lifetimes`]).
    pub exchange_lifetime: Duration,
    /// NON_LIFETIME: how long a NON's message ID is remembered (145 s by
    /// default, derived).
    pub non_lifetime: Duration,
}

impl Default for TransmissionParams {
    fn default() -> Self {
        TransmissionParams {
            ack_timeout: Duration::from_secs(2),
            ack_random_factor: 1.5,
            max_retransmit: 4,
            retransmit: true,
            nstart: 1,
            max_latency: Duration::from_secs(100),
            exchange_lifetime: Duration::ZERO,
            non_lifetime: Duration::ZERO,
        }
        .derive_lifetimes()
    }
}

impl TransmissionParams {
    /// The random factor as used: at least 1 and finite.
    pub fn random_factor(&self) -> f64 {
        if self.ack_random_factor.is_finite() && self.ack_random_factor >= 1.0 {
            self.ack_random_factor
        } else {
            1.0
        }
    }

    /// `ack_timeout * factor`, saturating.
    fn scaled(&self, factor: f64) -> Duration {
        Duration::try_from_secs_f64(self.ack_timeout.as_secs_f64() * factor)
            .unwrap_or(Duration::MAX)
    }

    /// The largest first retransmission timeout:
    /// `ACK_TIMEOUT * ACK_RANDOM_FACTOR`.
    pub fn max_initial_timeout(&self) -> Duration {
        self.scaled(self.random_factor())
    }

    /// MAX_TRANSMIT_SPAN: `ACK_TIMEOUT * (2^MAX_RETRANSMIT - 1) *
    /// ACK_RANDOM_FACTOR` (45 s by default).
    pub fn max_transmit_span(&self) -> Duration {
        let n = 2f64.powi(self.max_retransmit.min(1000) as i32) - 1.0;
        self.scaled(n * self.random_factor())
    }

    /// MAX_TRANSMIT_WAIT: `ACK_TIMEOUT * (2^(MAX_RETRANSMIT + 1) - 1) *
    /// ACK_RANDOM_FACTOR` (93 s by default).
    pub fn max_transmit_wait(&self) -> Duration {
        let n = 2f64.powi(self.max_retransmit.min(1000) as i32 + 1) - 1.0;
        self.scaled(n * self.random_factor())
    }

    /// Recomputes `exchange_lifetime` (`MAX_TRANSMIT_SPAN + 2 * MAX_LATENCY
    /// + PROCESSING_DELAY`, with PROCESSING_DELAY = ACK_TIMEOUT) and
    /// `non_lifetime` (`MAX_TRANSMIT_SPAN + MAX_LATENCY`) from the other
    /// fields. Call it after changing `ack_timeout`, the factor or
    /// `max_retransmit` if the lifetimes should follow.
    pub fn derive_lifetimes(mut self) -> Self {
        let span = self.max_transmit_span();
        self.exchange_lifetime = span
            .saturating_add(self.max_latency.saturating_mul(2))
            .saturating_add(self.ack_timeout);
        self.non_lifetime = span.saturating_add(self.max_latency);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rfc_7252_section_4_8() {
        let p = TransmissionParams::default();
        assert_eq!(p.ack_timeout, Duration::from_secs(2));
        assert_eq!(p.ack_random_factor, 1.5);
        assert_eq!(p.max_retransmit, 4);
        assert_eq!(p.nstart, 1);
        assert!(p.retransmit);
    }

    #[test]
    fn derived_values_are_rfc_7252_section_4_8_2() {
        let p = TransmissionParams::default();
        assert_eq!(p.max_transmit_span(), Duration::from_secs(45));
        assert_eq!(p.max_transmit_wait(), Duration::from_secs(93));
        assert_eq!(p.exchange_lifetime, Duration::from_secs(247));
        assert_eq!(p.non_lifetime, Duration::from_secs(145));
    }

    #[test]
    fn lifetimes_follow_changed_parameters_when_derived_again() {
        let p = TransmissionParams {
            ack_timeout: Duration::from_secs(1),
            ack_random_factor: 1.0,
            max_retransmit: 2,
            max_latency: Duration::from_secs(1),
            ..Default::default()
        }
        .derive_lifetimes();
        assert_eq!(p.max_transmit_span(), Duration::from_secs(3));
        assert_eq!(p.exchange_lifetime, Duration::from_secs(3 + 2 + 1));
        assert_eq!(p.non_lifetime, Duration::from_secs(4));
    }

    #[test]
    fn odd_values_do_not_panic() {
        for factor in [f64::NAN, -1.0, 0.5, f64::INFINITY, 1e300] {
            let p = TransmissionParams {
                ack_timeout: Duration::MAX,
                ack_random_factor: factor,
                max_retransmit: u32::MAX,
                max_latency: Duration::MAX,
                ..Default::default()
            }
            .derive_lifetimes();
            assert!(p.random_factor() >= 1.0);
            assert_eq!(p.exchange_lifetime, Duration::MAX);
        }
    }
}
