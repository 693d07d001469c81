//! Duplicate detection of the peer's CON and NON messages (RFC 7252 §4.5).
//!
//! Entries are keyed by peer and message ID and kept for EXCHANGE_LIFETIME
//! (CON) or NON_LIFETIME (NON). Each remembers the reply we sent to the first
//! copy, so a duplicate can be answered the same way. Entries are pruned
//! when they expire, and never more than [`MAX_ENTRIES`] are kept: beyond
//! that (a storm of messages, many peers, or lifetimes set very long) the
//! entry that expires first is dropped and counted, so a late duplicate of
//! it would be processed again. A separate response finds the message it
//! answers through an index by peer and token, not by looking through
//! every entry.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::coap::Message;

/// The most entries kept, whatever the lifetimes and message rate.
pub(super) const MAX_ENTRIES: usize = 65_536;

/// One message the peer sent.
#[derive(Debug)]
struct Entry {
    /// Distinguishes this entry from an earlier one with the same key in
    /// the expiry queue.
    seq: u64,
    /// `None`: never (the lifetime overflowed `Instant`).
    expires: Option<Instant>,
    token: Vec<u8>,
    /// The reply we sent to the first copy.
    reply: Option<Message>,
}

/// The duplicate cache.
#[derive(Debug)]
pub(super) struct Dedup<P> {
    entries: HashMap<(P, u16), Entry>,
    /// The message IDs of `entries` by peer and token.
    by_token: HashMap<(P, Vec<u8>), Vec<u16>>,
    expiries: BTreeMap<(Instant, u64), (P, u16)>,
    seq: u64,
    max: usize,
    dropped: u64,
}

impl<P: Clone + Eq + Hash> Dedup<P> {
    pub(super) fn new() -> Self {
        Dedup::with_max(MAX_ENTRIES)
    }

    /// A cache keeping at most `max` entries.
    pub(super) fn with_max(max: usize) -> Self {
        Dedup {
            entries: HashMap::new(),
            by_token: HashMap::new(),
            expiries: BTreeMap::new(),
            seq: 0,
            max,
            dropped: 0,
        }
    }

    /// `Some(reply)` when `(peer, message_id)` was seen and has not expired.
    pub(super) fn duplicate(
        &self,
        peer: &P,
        message_id: u16,
        now: Instant,
    ) -> Option<Option<Message>> {
        let entry = self.entries.get(&(peer.clone(), message_id))?;
        match entry.expires {
            Some(t) if t <= now => None,
            _ => Some(entry.reply.clone()),
        }
    }

    /// Remembers a message from the peer for `lifetime`, dropping the
    /// entry that expires first when the cache is full.
    pub(super) fn record(&mut self, peer: &P, msg: &Message, lifetime: Duration, now: Instant) {
        self.seq += 1;
        let key = (peer.clone(), msg.message_id);
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= self.max.max(1) && self.evict_one() {}
        }
        let expires = now.checked_add(lifetime);
        if let Some(t) = expires {
            self.expiries.insert((t, self.seq), key.clone());
        }
        // A message ID used again replaces its entry.
        self.remove(&key);
        self.by_token
            .entry((peer.clone(), msg.token.clone()))
            .or_default()
            .push(msg.message_id);
        self.entries.insert(
            key,
            Entry {
                seq: self.seq,
                expires,
                token: msg.token.clone(),
                reply: None,
            },
        );
    }

    /// Forgets the entry of `key`.
    fn remove(&mut self, key: &(P, u16)) {
        if let Some(entry) = self.entries.remove(key) {
            super::unindex(&mut self.by_token, &(key.0.clone(), entry.token), key.1);
        }
    }

    /// Caches an ACK or RST we send as the reply to the peer's message with
    /// the same ID.
    pub(super) fn set_reply_by_message_id(&mut self, peer: &P, reply: &Message) {
        if let Some(entry) = self.entries.get_mut(&(peer.clone(), reply.message_id)) {
            entry.reply = Some(reply.clone());
        }
    }

    /// Caches a separate (CON/NON) response as the reply to the most recent
    /// message from the peer with the same token that has no reply yet (a
    /// CON request keeps its empty ACK as its reply).
    pub(super) fn set_reply_by_token(&mut self, peer: &P, reply: &Message) {
        let Some(ids) = self.by_token.get(&(peer.clone(), reply.token.clone())) else {
            return;
        };
        let newest = ids
            .iter()
            .filter_map(|&mid| {
                let key = (peer.clone(), mid);
                let e = self.entries.get(&key)?;
                e.reply.is_none().then_some((e.seq, key))
            })
            .max_by_key(|(seq, _)| *seq);
        if let Some((_, key)) = newest
            && let Some(entry) = self.entries.get_mut(&key)
        {
            entry.reply = Some(reply.clone());
        }
    }

    /// Drops the live entry that expires first (or, when none expires,
    /// the oldest); `false` when there is none.
    fn evict_one(&mut self) -> bool {
        while let Some(((_, seq), key)) = self.expiries.pop_first() {
            if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
                self.remove(&key);
                self.dropped += 1;
                return true;
            }
        }
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.seq)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => {
                self.remove(&key);
                self.dropped += 1;
                true
            }
            None => false,
        }
    }

    /// Changes the bound; applies from the next recorded message.
    pub(super) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// How many entries were dropped before they expired because the cache
    /// was full.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets every entry that expired at or before `now`.
    pub(super) fn prune(&mut self, now: Instant) {
        while let Some(entry) = self.expiries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), key) = entry.remove_entry();
            if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
                self.remove(&key);
            }
        }
    }

    /// When the next entry expires.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.keys().next().map(|(t, _)| *t)
    }

    /// Number of remembered messages.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{Code, Type};

    fn con(mid: u16, token: &[u8]) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::GET, mid);
        m.token = token.to_vec();
        m
    }

    #[test]
    fn same_message_id_from_same_peer_is_a_duplicate_until_it_expires() {
        let t0 = Instant::now();
        let mut d = Dedup::new();
        d.record(&1u8, &con(7, b"a"), Duration::from_secs(10), t0);
        assert_eq!(d.duplicate(&1, 7, t0 + Duration::from_secs(9)), Some(None));
        assert_eq!(d.duplicate(&2, 7, t0), None);
        assert_eq!(d.duplicate(&1, 8, t0), None);
        assert_eq!(d.duplicate(&1, 7, t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn pruning_forgets_expired_entries_only() {
        let t0 = Instant::now();
        let mut d = Dedup::new();
        d.record(&1u8, &con(1, b""), Duration::from_secs(10), t0);
        d.record(&1u8, &con(2, b""), Duration::from_secs(20), t0);
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(10)));
        d.prune(t0 + Duration::from_secs(10));
        assert_eq!(d.len(), 1);
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(20)));
        d.prune(t0 + Duration::from_secs(30));
        assert_eq!(d.len(), 0);
        assert_eq!(d.next_expiry(), None);
    }

    #[test]
    fn a_reused_message_id_is_not_pruned_by_the_old_expiry() {
        let t0 = Instant::now();
        let mut d = Dedup::new();
        d.record(&1u8, &con(1, b""), Duration::from_secs(10), t0);
        let t1 = t0 + Duration::from_secs(11);
        d.record(&1u8, &con(1, b""), Duration::from_secs(10), t1);
        d.prune(t1);
        assert_eq!(d.duplicate(&1, 1, t1), Some(None));
    }

    #[test]
    fn a_full_cache_drops_the_entry_that_expires_first() {
        let t0 = Instant::now();
        let mut d = Dedup::with_max(3);
        d.record(&1u8, &con(1, b""), Duration::from_secs(30), t0);
        d.record(&1u8, &con(2, b""), Duration::from_secs(10), t0);
        d.record(&2u8, &con(3, b""), Duration::from_secs(20), t0);
        d.record(&2u8, &con(4, b""), Duration::from_secs(20), t0);
        assert_eq!(d.len(), 3);
        assert_eq!(d.dropped(), 1);
        assert_eq!(d.duplicate(&1, 2, t0), None, "the first to expire went");
        assert!(d.duplicate(&1, 1, t0).is_some());
        assert!(d.duplicate(&2, 4, t0).is_some());
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(20)));
    }

    #[test]
    fn a_full_cache_of_entries_that_never_expire_drops_the_oldest() {
        let t0 = Instant::now();
        let mut d = Dedup::with_max(2);
        for mid in 1..=5 {
            d.record(&1u8, &con(mid, b""), Duration::MAX, t0);
        }
        assert_eq!(d.len(), 2);
        assert_eq!(d.dropped(), 3);
        assert!(d.duplicate(&1, 5, t0).is_some());
        assert!(d.duplicate(&1, 4, t0).is_some());
        assert_eq!(d.duplicate(&1, 3, t0), None);
    }

    #[test]
    fn replies_are_cached_by_message_id_or_token() {
        let t0 = Instant::now();
        let mut d = Dedup::new();
        d.record(&1u8, &con(1, b"x"), Duration::from_secs(10), t0);
        let mut non = con(2, b"y");
        non.mtype = Type::NonConfirmable;
        d.record(&1u8, &non, Duration::from_secs(10), t0);

        let ack = Message::new(Type::Acknowledgement, Code::EMPTY, 1);
        d.set_reply_by_message_id(&1, &ack);
        let mut separate = Message::new(Type::Confirmable, Code::CONTENT, 99);
        separate.token = b"x".to_vec();
        d.set_reply_by_token(&1, &separate);
        assert_eq!(d.duplicate(&1, 1, t0), Some(Some(ack)));

        let mut non_resp = Message::new(Type::NonConfirmable, Code::CONTENT, 50);
        non_resp.token = b"y".to_vec();
        d.set_reply_by_token(&1, &non_resp);
        assert_eq!(d.duplicate(&1, 2, t0), Some(Some(non_resp)));
    }

    /// The token index holds exactly the entries' message IDs.
    fn check(d: &Dedup<u8>) {
        let mut indexed: Vec<(u8, u16, Vec<u8>)> = d
            .by_token
            .iter()
            .flat_map(|((p, t), mids)| mids.iter().map(move |&m| (*p, m, t.clone())))
            .collect();
        let mut entries: Vec<(u8, u16, Vec<u8>)> = d
            .entries
            .iter()
            .map(|((p, m), e)| (*p, *m, e.token.clone()))
            .collect();
        indexed.sort();
        entries.sort();
        assert_eq!(indexed, entries);
    }

    proptest::proptest! {
        #[test]
        fn a_separate_reply_goes_where_a_scan_of_every_entry_says(
            steps in proptest::collection::vec(
                (0u8..5, 0u8..3, 0u16..6, 0u8..3, 1u64..4),
                0..80,
            )
        ) {
            let t0 = Instant::now();
            let mut d = Dedup::with_max(5);
            let mut now = t0;
            for (what, peer, mid, token, secs) in steps {
                match what {
                    0 | 1 => d.record(&peer, &con(mid, &[token]), Duration::from_secs(secs), now),
                    2 => {
                        let ack = Message::new(Type::Acknowledgement, Code::EMPTY, mid);
                        d.set_reply_by_message_id(&peer, &ack);
                    }
                    3 => {
                        let mut reply = Message::new(Type::NonConfirmable, Code::CONTENT, 9);
                        reply.token = vec![token];
                        // Where the reply belongs: the newest entry of the
                        // peer with the token and no reply yet.
                        let expected = d
                            .entries
                            .iter()
                            .filter(|((p, _), e)| *p == peer && e.token == [token] && e.reply.is_none())
                            .max_by_key(|(_, e)| e.seq)
                            .map(|(k, _)| *k);
                        let before: Vec<((u8, u16), bool)> =
                            d.entries.iter().map(|(k, e)| (*k, e.reply.is_some())).collect();
                        d.set_reply_by_token(&peer, &reply);
                        for (k, had) in before {
                            let has = d.entries[&k].reply.is_some();
                            proptest::prop_assert_eq!(has, had || Some(k) == expected, "{:?}", k);
                        }
                    }
                    _ => {
                        now += Duration::from_secs(secs);
                        d.prune(now);
                    }
                }
                check(&d);
            }
        }
    }

    #[test]
    fn the_token_index_follows_reuse_expiry_and_eviction() {
        let t0 = Instant::now();
        let mut d = Dedup::with_max(3);
        let short = Duration::from_secs(1);
        let long = Duration::from_secs(10);
        d.record(&1u8, &con(1, b"t"), long, t0);
        d.record(&1u8, &con(2, b"t"), short, t0);
        d.record(&2u8, &con(1, b"t"), long, t0);
        check(&d);
        // A message ID reused with another token.
        d.record(&1u8, &con(1, b"u"), long, t0);
        check(&d);
        // Full: the entry expiring first goes.
        d.record(&2u8, &con(2, b"t"), long, t0);
        check(&d);
        assert_eq!(d.duplicate(&1, 2, t0), None);
        d.prune(t0 + long);
        check(&d);
        assert!(d.by_token.is_empty());
    }

    #[test]
    fn a_separate_response_is_the_reply_to_the_newest_unanswered_message_with_its_token() {
        let t0 = Instant::now();
        let mut d = Dedup::new();
        let life = Duration::from_secs(10);
        for mid in 1..=3 {
            d.record(&1u8, &con(mid, b"t"), life, t0);
        }
        d.record(&2u8, &con(4, b"t"), life, t0);
        let ack = Message::new(Type::Acknowledgement, Code::EMPTY, 3);
        d.set_reply_by_message_id(&1, &ack);
        let mut separate = Message::new(Type::NonConfirmable, Code::CONTENT, 9);
        separate.token = b"t".to_vec();
        d.set_reply_by_token(&1, &separate);
        assert_eq!(d.duplicate(&1, 3, t0), Some(Some(ack)));
        assert_eq!(d.duplicate(&1, 2, t0), Some(Some(separate)));
        assert_eq!(d.duplicate(&1, 1, t0), Some(None));
        assert_eq!(d.duplicate(&2, 4, t0), Some(None));
    }
}
