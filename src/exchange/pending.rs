//! The messages the exchange layer tracks (requests waiting for their
//! response, CON and NON messages of ours waiting for an ACK or a RST),
//! kept by id with the indexes each datagram and each timer check needs:
//! by peer and message ID (ACK, RST), by token (responses, fresh tokens),
//! by deadline (retransmissions, expiry), the queue NSTART holds back, and
//! each peer's unacknowledged CONs (NSTART). Every change goes through
//! [`Pending::insert`], [`Pending::set_phase`] and [`Pending::remove`],
//! which keep the indexes in step, so no lookup looks through every
//! tracked message.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use rustc_hash::{FxBuildHasher, FxHashMap};

use super::{Outgoing, Phase, RequestId};

/// The tracked messages and their indexes.
#[derive(Debug)]
pub(super) struct Pending<P> {
    by_id: BTreeMap<RequestId, Outgoing<P>>,
    index: Index<P>,
}

/// What [`Pending`] finds its messages by.
#[derive(Debug)]
struct Index<P> {
    /// Held back by NSTART, oldest first.
    queued: BTreeSet<RequestId>,
    /// Transmitted messages with a deadline, soonest first.
    deadlines: BTreeSet<(Instant, RequestId)>,
    /// Transmitted messages by peer and message ID.
    by_message_id: FxHashMap<(P, u16), Ids>,
    /// Every tracked message by a hash of its token, whatever its peer and
    /// phase (a lookup compares the tokens themselves).
    by_token: FxHashMap<u64, Ids>,
    /// How many CONs each peer has unacknowledged.
    unacked: FxHashMap<P, usize>,
}

impl<P> Default for Pending<P> {
    fn default() -> Self {
        Pending {
            by_id: BTreeMap::new(),
            index: Index {
                queued: BTreeSet::new(),
                deadlines: BTreeSet::new(),
                by_message_id: FxHashMap::default(),
                by_token: FxHashMap::default(),
                unacked: FxHashMap::default(),
            },
        }
    }
}

/// The ids under one key of an index, in id order: almost always one,
/// kept without allocating.
#[derive(Debug)]
enum Ids {
    One(RequestId),
    Many(Vec<RequestId>),
}

impl Ids {
    fn as_slice(&self) -> &[RequestId] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => ids,
        }
    }
}

/// The key `token` is indexed under.
fn token_key(token: &[u8]) -> u64 {
    FxBuildHasher.hash_one(token)
}

/// Adds `id` under `key`, in id order.
fn add<K: Eq + Hash>(index: &mut FxHashMap<K, Ids>, key: K, id: RequestId) {
    use std::collections::hash_map::Entry;
    match index.entry(key) {
        Entry::Vacant(v) => {
            v.insert(Ids::One(id));
        }
        Entry::Occupied(mut o) => {
            let ids = o.get_mut();
            let mut list = match ids {
                Ids::One(first) => vec![*first],
                Ids::Many(list) => std::mem::take(list),
            };
            if let Err(at) = list.binary_search(&id) {
                list.insert(at, id);
            }
            *ids = Ids::Many(list);
        }
    }
}

/// Takes `id` from under `key`, and the key once nothing is left under it.
fn take<K: Eq + Hash>(index: &mut FxHashMap<K, Ids>, key: &K, id: RequestId) {
    let empty = match index.get_mut(key) {
        Some(Ids::One(only)) => *only == id,
        Some(Ids::Many(list)) => {
            list.retain(|&i| i != id);
            list.is_empty()
        }
        None => false,
    };
    if empty {
        index.remove(key);
    }
}

impl<P: Clone + Eq + Hash> Pending<P> {
    /// The message tracked as `id`.
    pub(super) fn get(&self, id: RequestId) -> Option<&Outgoing<P>> {
        self.by_id.get(&id)
    }

    /// Whether `id` is tracked.
    pub(super) fn contains(&self, id: RequestId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// How many messages NSTART holds back.
    pub(super) fn queued_len(&self) -> usize {
        self.index.queued.len()
    }

    /// The messages NSTART holds back, oldest first.
    pub(super) fn queued(&self) -> Vec<RequestId> {
        self.index.queued.iter().copied().collect()
    }

    /// How many CONs `peer` has unacknowledged.
    pub(super) fn unacked_to(&self, peer: &P) -> usize {
        self.index.unacked.get(peer).copied().unwrap_or(0)
    }

    /// The earliest deadline of a transmitted message.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.index.deadlines.first().map(|&(t, _)| t)
    }

    /// The transmitted messages whose deadline is `now` or earlier,
    /// soonest first.
    pub(super) fn due(&self, now: Instant) -> Vec<RequestId> {
        self.index
            .deadlines
            .iter()
            .take_while(|&&(t, _)| t <= now)
            .map(|&(_, id)| id)
            .collect()
    }

    /// The transmitted messages to `peer` with `message_id`, oldest first.
    pub(super) fn with_message_id(
        &self,
        peer: &P,
        message_id: u16,
    ) -> impl Iterator<Item = (RequestId, &Outgoing<P>)> {
        let ids = self
            .index
            .by_message_id
            .get(&(peer.clone(), message_id))
            .map_or(&[][..], Ids::as_slice);
        self.in_order(ids)
    }

    /// The messages tracked with `token`, to any peer and in any phase,
    /// oldest first.
    pub(super) fn with_token<'a>(
        &'a self,
        token: &'a [u8],
    ) -> impl Iterator<Item = (RequestId, &'a Outgoing<P>)> {
        let ids = self
            .index
            .by_token
            .get(&token_key(token))
            .map_or(&[][..], Ids::as_slice);
        self.in_order(ids)
            .filter(move |(_, o)| o.msg.token == token)
    }

    /// `ids` (in id order) with their messages.
    fn in_order<'a>(
        &'a self,
        ids: &'a [RequestId],
    ) -> impl Iterator<Item = (RequestId, &'a Outgoing<P>)> {
        ids.iter()
            .filter_map(|&id| self.by_id.get(&id).map(|o| (id, o)))
    }

    /// Starts tracking `o` as `id` (replacing what was tracked as `id`).
    pub(super) fn insert(&mut self, id: RequestId, o: Outgoing<P>) {
        self.remove(id);
        add(&mut self.index.by_token, token_key(&o.msg.token), id);
        self.index.add_phase(id, &o);
        self.by_id.insert(id, o);
    }

    /// Moves `id` to `phase`.
    pub(super) fn set_phase(&mut self, id: RequestId, phase: Phase) {
        let Some(o) = self.by_id.get_mut(&id) else {
            return;
        };
        self.index.take_phase(id, o);
        o.phase = phase;
        self.index.add_phase(id, o);
    }

    /// Stops tracking `id`.
    pub(super) fn remove(&mut self, id: RequestId) -> Option<Outgoing<P>> {
        let o = self.by_id.remove(&id)?;
        take(&mut self.index.by_token, &token_key(&o.msg.token), id);
        self.index.take_phase(id, &o);
        Some(o)
    }
}

impl<P: Clone + Eq + Hash> Index<P> {
    /// Enters what depends on `o`'s phase into the indexes.
    fn add_phase(&mut self, id: RequestId, o: &Outgoing<P>) {
        if matches!(o.phase, Phase::Queued) {
            self.queued.insert(id);
            return;
        }
        add(
            &mut self.by_message_id,
            (o.peer.clone(), o.msg.message_id),
            id,
        );
        if let Some(t) = o.phase.deadline() {
            self.deadlines.insert((t, id));
        }
        if matches!(o.phase, Phase::Unacked { .. }) {
            *self.unacked.entry(o.peer.clone()).or_default() += 1;
        }
    }

    /// Takes what [`Index::add_phase`] entered out of the indexes.
    fn take_phase(&mut self, id: RequestId, o: &Outgoing<P>) {
        if matches!(o.phase, Phase::Queued) {
            self.queued.remove(&id);
            return;
        }
        take(
            &mut self.by_message_id,
            &(o.peer.clone(), o.msg.message_id),
            id,
        );
        if let Some(t) = o.phase.deadline() {
            self.deadlines.remove(&(t, id));
        }
        if matches!(o.phase, Phase::Unacked { .. })
            && let Some(n) = self.unacked.get_mut(&o.peer)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.unacked.remove(&o.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{Code, Message, Type};
    use crate::exchange::Kind;
    use std::time::Duration;

    fn con(mid: u16, token: &[u8]) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::GET, mid);
        m.token = token.to_vec();
        m
    }

    fn tracked(peer: u32, msg: Message) -> Outgoing<u32> {
        Outgoing {
            peer,
            msg,
            kind: Kind::Other,
            phase: Phase::Queued,
        }
    }

    fn unacked(deadline: Instant) -> Phase {
        Phase::Unacked {
            retransmits: 0,
            timeout: Duration::from_secs(2),
            deadline: Some(deadline),
            retransmit: true,
        }
    }

    /// Every index, compared with what a scan of the tracked messages
    /// finds.
    fn check(p: &Pending<u32>) {
        let scan_queued: Vec<RequestId> = p
            .by_id
            .iter()
            .filter(|(_, o)| matches!(o.phase, Phase::Queued))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(p.queued(), scan_queued);
        let mut scan_deadlines: Vec<(Instant, RequestId)> = p
            .by_id
            .iter()
            .filter_map(|(id, o)| o.phase.deadline().map(|t| (t, *id)))
            .collect();
        scan_deadlines.sort();
        assert_eq!(
            p.index.deadlines.iter().copied().collect::<Vec<_>>(),
            scan_deadlines
        );
        for (id, o) in &p.by_id {
            assert!(p.with_token(&o.msg.token).any(|(i, _)| i == *id));
            let by_mid = p
                .with_message_id(&o.peer, o.msg.message_id)
                .any(|(i, _)| i == *id);
            assert_eq!(by_mid, !matches!(o.phase, Phase::Queued));
            let unacked = p
                .by_id
                .values()
                .filter(|x| x.peer == o.peer && matches!(x.phase, Phase::Unacked { .. }))
                .count();
            assert_eq!(p.unacked_to(&o.peer), unacked);
        }
        let entries: usize = p.index.by_token.values().map(|i| i.as_slice().len()).sum();
        assert_eq!(entries, p.by_id.len());
        for ids in p
            .index
            .by_token
            .values()
            .chain(p.index.by_message_id.values())
        {
            let ids = ids.as_slice();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        }
    }

    #[test]
    fn the_indexes_follow_every_insert_phase_change_and_removal() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.insert(RequestId(1), tracked(7, con(10, b"a")));
        p.insert(RequestId(2), tracked(7, con(11, b"b")));
        p.insert(RequestId(3), tracked(8, con(10, b"a")));
        check(&p);
        assert_eq!(p.queued_len(), 3);
        p.set_phase(RequestId(1), unacked(t0 + Duration::from_secs(2)));
        p.set_phase(RequestId(3), unacked(t0 + Duration::from_secs(1)));
        check(&p);
        assert_eq!(p.unacked_to(&7), 1);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            p.due(t0 + Duration::from_secs(2)),
            [RequestId(3), RequestId(1)]
        );
        // The same message ID on two peers, the same token on both.
        assert_eq!(p.with_message_id(&7, 10).count(), 1);
        assert_eq!(p.with_message_id(&8, 10).count(), 1);
        assert_eq!(
            p.with_token(b"a").map(|(id, _)| id).collect::<Vec<_>>(),
            [RequestId(1), RequestId(3)]
        );
        p.set_phase(RequestId(1), Phase::Waiting { deadline: None });
        check(&p);
        assert_eq!(p.unacked_to(&7), 0);
        assert_eq!(p.due(t0 + Duration::from_secs(9)), [RequestId(3)]);
        assert!(p.remove(RequestId(3)).is_some());
        assert!(p.remove(RequestId(3)).is_none());
        check(&p);
        assert_eq!(p.next_deadline(), None);
        // Tracking an id again replaces what it was.
        p.insert(RequestId(1), tracked(9, con(12, b"c")));
        check(&p);
        assert_eq!(p.with_token(b"a").count(), 0);
        p.remove(RequestId(1));
        p.remove(RequestId(2));
        check(&p);
        let i = &p.index;
        assert!(i.by_token.is_empty() && i.by_message_id.is_empty() && i.unacked.is_empty());
    }

    #[test]
    fn a_message_id_given_twice_is_found_oldest_first_whatever_order_they_started_in() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.insert(RequestId(1), tracked(7, con(10, b"a")));
        p.insert(RequestId(2), tracked(7, con(10, b"a")));
        p.set_phase(RequestId(2), unacked(t0));
        p.set_phase(RequestId(1), unacked(t0));
        p.set_phase(RequestId(2), Phase::Waiting { deadline: None });
        check(&p);
        let ids = |it: &mut dyn Iterator<Item = (RequestId, &Outgoing<u32>)>| {
            it.map(|(id, _)| id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&mut p.with_message_id(&7, 10)),
            [RequestId(1), RequestId(2)]
        );
        assert_eq!(ids(&mut p.with_token(b"a")), [RequestId(1), RequestId(2)]);
    }
}
