//! Observations (RFC 7641): what the registry keeps for each, the
//! registry itself (indexed by peer and by token, so a fleet observed at
//! once costs no more per datagram than one client), and the freshness
//! rule for notification sequence numbers (§3.4).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
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

/// The observation registry: observations by id, oldest first, with the
/// ids of each peer's and of each token's (oldest first too), so that
/// matching a notification or a response, and establishing, replacing or
/// bounding a peer's observations, never looks through the others'.
/// Every change goes through [`Observations::insert`] and
/// [`Observations::remove`], which keep the indexes in step.
#[derive(Debug)]
pub(super) struct Observations<P> {
    by_id: BTreeMap<ObservationId, Observation<P>>,
    by_peer: HashMap<P, Vec<ObservationId>>,
    /// A token is usually one observation's; one given by the user may be
    /// reused on several peers.
    by_token: HashMap<Vec<u8>, Vec<ObservationId>>,
}

impl<P> Default for Observations<P> {
    fn default() -> Self {
        Observations {
            by_id: BTreeMap::new(),
            by_peer: HashMap::new(),
            by_token: HashMap::new(),
        }
    }
}

impl<P: Clone + Eq + Hash> Observations<P> {
    /// Adds `obs`, whose id is newer than every id added before.
    pub(super) fn insert(&mut self, obs: Observation<P>) {
        self.by_peer
            .entry(obs.peer.clone())
            .or_default()
            .push(obs.id);
        self.by_token
            .entry(obs.token.clone())
            .or_default()
            .push(obs.id);
        self.by_id.insert(obs.id, obs);
    }

    /// Removes observation `id`.
    pub(super) fn remove(&mut self, id: ObservationId) -> Option<Observation<P>> {
        let obs = self.by_id.remove(&id)?;
        super::unindex(&mut self.by_peer, &obs.peer, id);
        super::unindex(&mut self.by_token, obs.token.as_slice(), id);
        Some(obs)
    }

    pub(super) fn get(&self, id: ObservationId) -> Option<&Observation<P>> {
        self.by_id.get(&id)
    }

    /// For counts and sequence numbers; the peer and the token stay as
    /// they are (the indexes hold them).
    pub(super) fn get_mut(&mut self, id: ObservationId) -> Option<&mut Observation<P>> {
        self.by_id.get_mut(&id)
    }

    /// All of them, oldest first.
    pub(super) fn values(&self) -> impl DoubleEndedIterator<Item = &Observation<P>> {
        self.by_id.values()
    }

    /// The observations of `peer`, oldest first.
    pub(super) fn of_peer(&self, peer: &P) -> impl DoubleEndedIterator<Item = &Observation<P>> {
        self.resolve(self.by_peer.get(peer))
    }

    /// The observations whose notifications carry `token`, oldest first.
    pub(super) fn with_token(&self, token: &[u8]) -> impl Iterator<Item = &Observation<P>> {
        self.resolve(self.by_token.get(token))
    }

    fn resolve<'a>(
        &'a self,
        ids: Option<&'a Vec<ObservationId>>,
    ) -> impl DoubleEndedIterator<Item = &'a Observation<P>> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
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

    fn observation(id: u64, peer: u8, token: &[u8], path: &str) -> Observation<u8> {
        Observation {
            id: ObservationId(id),
            request: RequestId(id),
            peer,
            token: token.to_vec(),
            path: path.into(),
            method: Code::GET,
            last_sequence: 0,
            last_update: Instant::now(),
            count: 1,
            stale: 0,
            request_message: Message::new(Type::Confirmable, Code::GET, 1),
        }
    }

    fn ids<'a>(it: impl Iterator<Item = &'a Observation<u8>>) -> Vec<u64> {
        it.map(|o| o.id.0).collect()
    }

    #[test]
    fn the_registry_finds_observations_by_peer_and_by_token_oldest_first() {
        let mut r = Observations::default();
        r.insert(observation(1, 7, b"a", "/3/0/13"));
        r.insert(observation(2, 8, b"a", "/3/0/13"));
        r.insert(observation(3, 7, b"b", "/3/0/9"));
        assert_eq!(ids(r.of_peer(&7)), [1, 3]);
        assert_eq!(ids(r.of_peer(&7).rev()), [3, 1]);
        assert_eq!(ids(r.of_peer(&8)), [2]);
        assert_eq!(ids(r.of_peer(&9)), [] as [u64; 0]);
        // A token the user gave twice, on two peers.
        assert_eq!(ids(r.with_token(b"a")), [1, 2]);
        assert_eq!(ids(r.with_token(b"b")), [3]);
        assert_eq!(ids(r.values()), [1, 2, 3]);
    }

    #[test]
    fn removing_an_observation_takes_it_out_of_every_index() {
        let mut r = Observations::default();
        r.insert(observation(1, 7, b"a", "/3/0/13"));
        r.insert(observation(2, 8, b"a", "/3/0/13"));
        assert_eq!(r.remove(ObservationId(1)).map(|o| o.id.0), Some(1));
        assert!(r.remove(ObservationId(1)).is_none());
        assert_eq!(ids(r.of_peer(&7)), [] as [u64; 0]);
        assert_eq!(ids(r.with_token(b"a")), [2]);
        r.remove(ObservationId(2));
        assert!(r.by_peer.is_empty() && r.by_token.is_empty() && r.by_id.is_empty());
        // A counter changed in place stays found.
        r.insert(observation(3, 7, b"c", "/1/0/1"));
        if let Some(o) = r.get_mut(ObservationId(3)) {
            o.count += 1;
        }
        assert_eq!(r.with_token(b"c").next().map(|o| o.count), Some(2));
    }

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
