//! The messages the exchange layer tracks (requests waiting for their
//! response, CON and NON messages of ours waiting for an ACK or a RST),
//! kept by id with the indexes each datagram and each timer check needs:
//! each peer's tracked messages (an ACK or RST is matched by message ID, a
//! response by token, among its peer's alone) with its count of
//! unacknowledged CONs (NSTART), the deadlines (retransmissions, expiry),
//! and the queue NSTART holds back. Every change goes through
//! [`Pending::insert`], [`Pending::set_phase`] and [`Pending::remove`],
//! which keep the indexes in step, so no lookup looks through every
//! tracked message.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::time::Instant;

use rustc_hash::FxHashMap;

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
    /// Each peer's tracked messages, in every phase.
    by_peer: FxHashMap<P, PeerPending>,
}

impl<P> Default for Pending<P> {
    fn default() -> Self {
        Pending {
            by_id: BTreeMap::new(),
            index: Index {
                queued: BTreeSet::new(),
                deadlines: BTreeSet::new(),
                by_peer: FxHashMap::default(),
            },
        }
    }
}

/// One peer's tracked messages.
#[derive(Debug)]
struct PeerPending {
    ids: Ids,
    /// How many of them are CONs not acknowledged yet.
    unacked: usize,
}

/// Ids in id order: almost always one, kept without allocating.
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

    /// Adds `id` in its place.
    fn add(&mut self, id: RequestId) {
        let mut list = match self {
            Ids::One(first) if *first == id => return,
            Ids::One(first) => vec![*first],
            Ids::Many(list) => std::mem::take(list),
        };
        if let Err(at) = list.binary_search(&id) {
            list.insert(at, id);
        }
        *self = Ids::Many(list);
    }

    /// Takes `id` out; `true` when none is left.
    fn take(&mut self, id: RequestId) -> bool {
        match self {
            Ids::One(only) => *only == id,
            Ids::Many(list) => {
                list.retain(|&i| i != id);
                list.is_empty()
            }
        }
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
        self.index.by_peer.get(peer).map_or(0, |p| p.unacked)
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

    /// The messages tracked to `peer`, in every phase, oldest first.
    pub(super) fn of_peer<'a>(
        &'a self,
        peer: &P,
    ) -> impl Iterator<Item = (RequestId, &'a Outgoing<P>)> {
        let ids = self
            .index
            .by_peer
            .get(peer)
            .map_or(&[][..], |p| p.ids.as_slice());
        ids.iter()
            .filter_map(|&id| self.by_id.get(&id).map(|o| (id, o)))
    }

    /// The transmitted messages to `peer` with `message_id`, oldest first.
    pub(super) fn with_message_id<'a>(
        &'a self,
        peer: &P,
        message_id: u16,
    ) -> impl Iterator<Item = (RequestId, &'a Outgoing<P>)> {
        self.of_peer(peer).filter(move |(_, o)| {
            o.msg.message_id == message_id && !matches!(o.phase, Phase::Queued)
        })
    }

    /// The messages to `peer` with `token`, in every phase, oldest first.
    pub(super) fn with_token<'a>(
        &'a self,
        peer: &P,
        token: &'a [u8],
    ) -> impl Iterator<Item = (RequestId, &'a Outgoing<P>)> {
        self.of_peer(peer)
            .filter(move |(_, o)| o.msg.token == token)
    }

    /// Starts tracking `o` as `id` (replacing what was tracked as `id`).
    pub(super) fn insert(&mut self, id: RequestId, o: Outgoing<P>) {
        self.remove(id);
        let unacked = usize::from(matches!(o.phase, Phase::Unacked { .. }));
        match self.index.by_peer.get_mut(&o.peer) {
            Some(p) => {
                p.ids.add(id);
                p.unacked += unacked;
            }
            None => {
                self.index.by_peer.insert(
                    o.peer.clone(),
                    PeerPending {
                        ids: Ids::One(id),
                        unacked,
                    },
                );
            }
        }
        self.index.add_timing(id, &o.phase);
        self.by_id.insert(id, o);
    }

    /// Moves `id` to `phase`.
    pub(super) fn set_phase(&mut self, id: RequestId, phase: Phase) {
        let Some(o) = self.by_id.get_mut(&id) else {
            return;
        };
        let was = matches!(o.phase, Phase::Unacked { .. });
        let is = matches!(phase, Phase::Unacked { .. });
        if was != is
            && let Some(p) = self.index.by_peer.get_mut(&o.peer)
        {
            p.unacked = if is {
                p.unacked + 1
            } else {
                p.unacked.saturating_sub(1)
            };
        }
        self.index.take_timing(id, &o.phase);
        o.phase = phase;
        self.index.add_timing(id, &o.phase);
    }

    /// Stops tracking `id`.
    pub(super) fn remove(&mut self, id: RequestId) -> Option<Outgoing<P>> {
        let o = self.by_id.remove(&id)?;
        if let Some(p) = self.index.by_peer.get_mut(&o.peer) {
            if matches!(o.phase, Phase::Unacked { .. }) {
                p.unacked = p.unacked.saturating_sub(1);
            }
            if p.ids.take(id) {
                self.index.by_peer.remove(&o.peer);
            }
        }
        self.index.take_timing(id, &o.phase);
        Some(o)
    }
}

impl<P> Index<P> {
    /// Enters `phase` of `id` into the queue or the deadlines.
    fn add_timing(&mut self, id: RequestId, phase: &Phase) {
        if matches!(phase, Phase::Queued) {
            self.queued.insert(id);
        } else if let Some(t) = phase.deadline() {
            self.deadlines.insert((t, id));
        }
    }

    /// Takes what [`Index::add_timing`] entered out.
    fn take_timing(&mut self, id: RequestId, phase: &Phase) {
        if matches!(phase, Phase::Queued) {
            self.queued.remove(&id);
        } else if let Some(t) = phase.deadline() {
            self.deadlines.remove(&(t, id));
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
            assert!(p.with_token(&o.peer, &o.msg.token).any(|(i, _)| i == *id));
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
        let entries: usize = p
            .index
            .by_peer
            .values()
            .map(|pp| pp.ids.as_slice().len())
            .sum();
        assert_eq!(entries, p.by_id.len());
        for (peer, pp) in &p.index.by_peer {
            let ids = pp.ids.as_slice();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            assert!(ids.iter().all(|id| p.by_id[id].peer == *peer));
        }
    }

    /// One step of [`any_sequence_of_changes_keeps_every_index_exact`]:
    /// (what, id, peer, message ID, token, deadline in seconds or none).
    type Step = (u8, u64, u32, u16, u8, Option<u8>);

    fn phase_of(what: u8, deadline: Option<u8>, t0: Instant) -> Phase {
        let deadline = deadline.map(|s| t0 + Duration::from_secs(u64::from(s)));
        match what % 3 {
            0 => Phase::Queued,
            1 => Phase::Unacked {
                retransmits: 0,
                timeout: Duration::from_secs(2),
                deadline,
                retransmit: true,
            },
            _ => Phase::Waiting { deadline },
        }
    }

    proptest::proptest! {
        #[test]
        fn any_sequence_of_changes_keeps_every_index_exact(
            steps in proptest::collection::vec(
                (0u8..9, 0u64..12, 0u32..4, 0u16..4, 0u8..3, proptest::option::of(0u8..5)),
                0..60,
            )
        ) {
            let t0 = Instant::now();
            let mut p = Pending::default();
            for (what, id, peer, mid, token, deadline) in steps as Vec<Step> {
                let id = RequestId(id);
                match what / 3 {
                    0 => {
                        let mut o = tracked(peer, con(mid, &[token]));
                        o.phase = phase_of(what, deadline, t0);
                        p.insert(id, o);
                    }
                    1 => p.set_phase(id, phase_of(what, deadline, t0)),
                    _ => {
                        p.remove(id);
                    }
                }
                check(&p);
                // Every lookup finds exactly what a scan finds, in id order.
                let scan = |f: &dyn Fn(&Outgoing<u32>) -> bool| -> Vec<RequestId> {
                    p.by_id.iter().filter(|(_, o)| f(o)).map(|(id, _)| *id).collect()
                };
                for peer in 0..4 {
                    for mid in 0..4 {
                        proptest::prop_assert_eq!(
                            ids(p.with_message_id(&peer, mid)),
                            scan(&|o| o.peer == peer
                                && o.msg.message_id == mid
                                && !matches!(o.phase, Phase::Queued))
                        );
                    }
                    for token in 0..3u8 {
                        proptest::prop_assert_eq!(
                            ids(p.with_token(&peer, &[token])),
                            scan(&|o| o.peer == peer && o.msg.token == [token])
                        );
                    }
                }
                let now = t0 + Duration::from_secs(2);
                let mut due: Vec<(Instant, RequestId)> = p
                    .by_id
                    .iter()
                    .filter_map(|(id, o)| o.phase.deadline().filter(|&t| t <= now).map(|t| (t, *id)))
                    .collect();
                due.sort();
                proptest::prop_assert_eq!(
                    p.due(now),
                    due.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
                );
            }
        }
    }

    fn ids<'a>(it: impl Iterator<Item = (RequestId, &'a Outgoing<u32>)>) -> Vec<RequestId> {
        it.map(|(id, _)| id).collect()
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
        // Queued: not found by message ID.
        assert_eq!(p.with_message_id(&7, 10).count(), 0);
        p.set_phase(RequestId(1), unacked(t0 + Duration::from_secs(2)));
        p.set_phase(RequestId(3), unacked(t0 + Duration::from_secs(1)));
        check(&p);
        assert_eq!(p.unacked_to(&7), 1);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            p.due(t0 + Duration::from_secs(2)),
            [RequestId(3), RequestId(1)]
        );
        // The same message ID and token on two peers: each its own.
        assert_eq!(ids(p.with_message_id(&7, 10)), [RequestId(1)]);
        assert_eq!(ids(p.with_message_id(&8, 10)), [RequestId(3)]);
        assert_eq!(ids(p.with_token(&7, b"a")), [RequestId(1)]);
        assert_eq!(ids(p.with_token(&8, b"a")), [RequestId(3)]);
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
        assert_eq!(p.with_token(&7, b"a").count(), 0);
        p.remove(RequestId(1));
        p.remove(RequestId(2));
        check(&p);
        let i = &p.index;
        assert!(i.by_peer.is_empty() && i.queued.is_empty() && i.deadlines.is_empty());
    }

    #[test]
    fn a_message_id_given_twice_is_found_oldest_first_whatever_order_they_started_in() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.insert(RequestId(2), tracked(7, con(10, b"a")));
        p.insert(RequestId(1), tracked(7, con(10, b"a")));
        p.set_phase(RequestId(2), unacked(t0));
        p.set_phase(RequestId(1), unacked(t0));
        p.set_phase(RequestId(2), Phase::Waiting { deadline: None });
        check(&p);
        assert_eq!(ids(p.with_message_id(&7, 10)), [RequestId(1), RequestId(2)]);
        assert_eq!(ids(p.with_token(&7, b"a")), [RequestId(1), RequestId(2)]);
        p.remove(RequestId(1));
        check(&p);
        assert_eq!(ids(p.with_token(&7, b"a")), [RequestId(2)]);
    }
}
