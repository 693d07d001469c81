//! Fault injection (`set loss=… dup=… delay_ms=… reorder=…`): datagrams
//! lost, duplicated, delayed or reordered where they leave and enter the
//! UDP socket — below DTLS, so over DTLS the encrypted records suffer and
//! DTLS's own retransmission is exercised. Settings apply to both
//! directions or one, to every peer or to one peer address.
//!
//! Each direction draws from its own PRNG (`StdRng` seeded from `seed`),
//! one set of draws per datagram in a fixed order, so the same sequence of
//! datagrams in a direction meets the same faults on every run of the same
//! build. Every injected fault is reported as a [`FaultEvent`] for the
//! history.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long a reordered datagram is held back at most when no other
/// datagram overtakes it.
pub const REORDER_HOLD: Duration = Duration::from_millis(200);

/// Which datagrams a [`FaultSpec`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FaultDirection {
    /// Received datagrams only.
    In,
    /// Sent datagrams only.
    Out,
    /// Both.
    #[default]
    Both,
}

impl FaultDirection {
    /// `in`, `out` or `both`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "in" => Ok(FaultDirection::In),
            "out" => Ok(FaultDirection::Out),
            "both" => Ok(FaultDirection::Both),
            other => Err(format!(
                "`{other}` is not a direction: give in, out or both"
            )),
        }
    }

    fn covers(self, outgoing: bool) -> bool {
        match self {
            FaultDirection::In => !outgoing,
            FaultDirection::Out => outgoing,
            FaultDirection::Both => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FaultDirection::In => "in",
            FaultDirection::Out => "out",
            FaultDirection::Both => "both",
        }
    }
}

/// A delay range in milliseconds, `MIN..MAX` (inclusive) or one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DelayRange {
    /// Shortest delay.
    pub min_ms: u64,
    /// Longest delay.
    pub max_ms: u64,
}

impl DelayRange {
    /// `50..300`, `120` or `0` (no delay).
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{t}` is not a whole number of milliseconds"))
        };
        let (min_ms, max_ms) = match text.split_once("..") {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let v = number(text)?;
                (v, v)
            }
        };
        if min_ms > max_ms {
            return Err(format!("`{text}`: the lower bound is above the upper one"));
        }
        if max_ms > 600_000 {
            return Err(format!("`{text}`: at most 600000 ms"));
        }
        Ok(DelayRange { min_ms, max_ms })
    }

    fn is_zero(self) -> bool {
        self.max_ms == 0
    }
}

impl fmt::Display for DelayRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min_ms == self.max_ms {
            write!(f, "{}", self.min_ms)
        } else {
            write!(f, "{}..{}", self.min_ms, self.max_ms)
        }
    }
}

/// What happens to datagrams: probabilities in `[0, 1]` and a delay range.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct FaultSpec {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub dup: f64,
    /// Every datagram (each copy) is delayed by a time drawn from this range.
    pub delay_ms: DelayRange,
    /// Probability that a datagram is held back until the next one in its
    /// direction has passed (at most [`REORDER_HOLD`]).
    pub reorder: f64,
    /// Which way.
    pub direction: FaultDirection,
}

impl FaultSpec {
    /// A probability as given by the user: a finite number in `[0, 1]`.
    pub fn probability(name: &str, p: f64) -> Result<f64, String> {
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            Ok(p)
        } else {
            Err(format!(
                "`{name}`: {p} is not a probability between 0 and 1"
            ))
        }
    }

    /// Whether it injects nothing.
    pub fn is_off(&self) -> bool {
        self.loss == 0.0 && self.dup == 0.0 && self.delay_ms.is_zero() && self.reorder == 0.0
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_off() {
            return write!(f, "off");
        }
        write!(
            f,
            "loss={} dup={} delay_ms={} reorder={} direction={}",
            self.loss,
            self.dup,
            self.delay_ms,
            self.reorder,
            self.direction.name()
        )
    }
}

/// Every fault setting: the one for all peers, the per-peer ones (which
/// replace it for their peer) and the seed.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FaultSettings {
    /// For peers without their own.
    pub all: FaultSpec,
    /// Per peer address.
    pub peers: Vec<(SocketAddr, FaultSpec)>,
    /// The PRNG seed (0 by default).
    pub seed: u64,
}

impl FaultSettings {
    /// The spec in force for `peer`.
    pub fn spec_for(&self, peer: SocketAddr) -> &FaultSpec {
        self.peers
            .iter()
            .find(|(p, _)| *p == peer)
            .map_or(&self.all, |(_, s)| s)
    }

    /// Whether nothing is injected for anyone.
    pub fn is_off(&self) -> bool {
        self.all.is_off() && self.peers.iter().all(|(_, s)| s.is_off())
    }

    /// Sets the spec of `peer` (`None`: of every peer without its own).
    pub fn set(&mut self, peer: Option<SocketAddr>, spec: FaultSpec) {
        match peer {
            None => self.all = spec,
            Some(p) => match self.peers.iter_mut().find(|(q, _)| *q == p) {
                Some(slot) => slot.1 = spec,
                None => self.peers.push((p, spec)),
            },
        }
    }
}

/// One injected fault, for the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// Sent by nsh (else received).
    pub outgoing: bool,
    /// The peer.
    pub peer: SocketAddr,
    /// The datagram as on the wire.
    pub bytes: Vec<u8>,
    /// `dropped by loss=0.2`, `duplicated by dup=0.05`, `delayed 120 ms by
    /// delay_ms=50..300`, `reordered by reorder=0.1`.
    pub what: String,
}

/// A datagram's fate: when each copy is delivered (empty: lost), and
/// whether the first copy waits for the next datagram (reordered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fate {
    /// Delay of each copy.
    pub copies: Vec<Duration>,
    /// Held back until the next datagram of its direction passed.
    pub reordered: bool,
}

impl Fate {
    fn pass() -> Fate {
        Fate {
            copies: vec![Duration::ZERO],
            reordered: false,
        }
    }
}

/// A held-back or delayed datagram.
#[derive(Debug)]
pub struct Held {
    /// When it goes.
    pub due: Instant,
    /// Bytes.
    pub bytes: Vec<u8>,
    /// To or from.
    pub peer: SocketAddr,
    /// Waiting for the next datagram to overtake it.
    reordered: bool,
}

struct State {
    settings: FaultSettings,
    rng_in: StdRng,
    rng_out: StdRng,
    events: Vec<FaultEvent>,
    /// Received datagrams waiting for their delivery time, in arrival order.
    incoming: Vec<Held>,
}

impl State {
    /// Whether anything is to be done: faults set, datagrams held or
    /// events not yet taken.
    fn engaged(&self) -> bool {
        !self.settings.is_off() || !self.incoming.is_empty() || !self.events.is_empty()
    }
}

/// The fault injector of one socket; off until [`Faults::configure`].
///
/// With nothing engaged (no fault set, nothing held, no event untaken) the
/// calls made for every datagram ([`Faults::is_off`], [`Faults::pop_due`],
/// [`Faults::next_due`], [`Faults::take_events`]) read one atomic flag and
/// take no lock.
pub struct Faults {
    state: Mutex<State>,
    /// [`State::engaged`], stored whenever the state changes under the lock.
    engaged: AtomicBool,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("settings", &self.lock().settings)
            .finish()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new(FaultSettings::default())
    }
}

/// The two streams of a seed: one per direction.
fn rngs(seed: u64) -> (StdRng, StdRng) {
    (
        StdRng::seed_from_u64(seed),
        StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
    )
}

impl Faults {
    /// An injector with `settings`, its PRNGs seeded from them.
    pub fn new(settings: FaultSettings) -> Faults {
        let (rng_in, rng_out) = rngs(settings.seed);
        let engaged = !settings.is_off();
        Faults {
            state: Mutex::new(State {
                settings,
                rng_in,
                rng_out,
                events: Vec::new(),
                incoming: Vec::new(),
            }),
            engaged: AtomicBool::new(engaged),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores whether `state` (still locked) has anything to do.
    fn note_engaged(&self, state: &State) {
        self.engaged.store(state.engaged(), Ordering::Release);
    }

    /// False when nothing is set, held or recorded: no need to lock.
    fn engaged(&self) -> bool {
        self.engaged.load(Ordering::Acquire)
    }

    /// Replaces the settings and seeds the PRNGs again: the draws start
    /// over.
    pub fn configure(&self, settings: FaultSettings) {
        let mut s = self.lock();
        (s.rng_in, s.rng_out) = rngs(settings.seed);
        s.settings = settings;
        self.note_engaged(&s);
    }

    /// Whether nothing is set, held back or waiting to be taken: reads of
    /// the socket then get every datagram as it came, when it came.
    pub fn is_idle(&self) -> bool {
        !self.engaged()
    }

    /// Whether anything is injected at all.
    pub fn is_off(&self) -> bool {
        !self.engaged() || self.lock().settings.is_off()
    }

    /// Decides the fate of a datagram to (`outgoing`) or from `peer`, and
    /// records the faults. The draws are the same for every datagram (loss,
    /// dup, reorder, then one delay per copy), so the stream of fates
    /// depends only on the seed and the datagrams.
    pub fn decide(&self, outgoing: bool, peer: SocketAddr, bytes: &[u8]) -> Fate {
        let mut guard = self.lock();
        let s = &mut *guard;
        let spec = *s.settings.spec_for(peer);
        if spec.is_off() || !spec.direction.covers(outgoing) {
            return Fate::pass();
        }
        // Events are recorded only past this point, with a fault set: the
        // engaged flag is already up.
        let rng = if outgoing {
            &mut s.rng_out
        } else {
            &mut s.rng_in
        };
        let lost = rng.random::<f64>() < spec.loss;
        let dup = rng.random::<f64>() < spec.dup;
        let reordered = rng.random::<f64>() < spec.reorder;
        let mut delays = Vec::new();
        for _ in 0..2 {
            delays.push(rng.random_range(spec.delay_ms.min_ms..=spec.delay_ms.max_ms));
        }
        let mut event = |what: String| {
            s.events.push(FaultEvent {
                outgoing,
                peer,
                bytes: bytes.to_vec(),
                what,
            })
        };
        if lost {
            event(format!("dropped by loss={}", spec.loss));
            return Fate {
                copies: Vec::new(),
                reordered: false,
            };
        }
        let copies = if dup { 2 } else { 1 };
        if dup {
            event(format!("duplicated by dup={}", spec.dup));
        }
        if reordered {
            event(format!("reordered by reorder={}", spec.reorder));
        }
        let copies: Vec<Duration> = delays
            .into_iter()
            .take(copies)
            .map(Duration::from_millis)
            .collect();
        for d in &copies {
            if !d.is_zero() {
                event(format!(
                    "delayed {} ms by delay_ms={}",
                    d.as_millis(),
                    spec.delay_ms
                ));
            }
        }
        Fate { copies, reordered }
    }

    /// The faults injected since the last call.
    pub fn take_events(&self) -> Vec<FaultEvent> {
        if !self.engaged() {
            return Vec::new();
        }
        let mut s = self.lock();
        let events = std::mem::take(&mut s.events);
        self.note_engaged(&s);
        events
    }

    /// Applies `fate` to a received datagram: its copies wait in the
    /// incoming queue for [`Faults::pop_due`]. A reordered one waits for
    /// the next received datagram to be delivered first, at most
    /// [`REORDER_HOLD`].
    pub fn hold_incoming(&self, fate: &Fate, bytes: &[u8], peer: SocketAddr, now: Instant) {
        let mut s = self.lock();
        Self::hold_locked(&mut s, fate, bytes, peer, now);
        self.note_engaged(&s);
    }

    fn hold_locked(s: &mut State, fate: &Fate, bytes: &[u8], peer: SocketAddr, now: Instant) {
        for (i, d) in fate.copies.iter().enumerate() {
            let reordered = i == 0 && fate.reordered;
            s.incoming.push(Held {
                due: now
                    + if reordered {
                        (*d).max(REORDER_HOLD)
                    } else {
                        *d
                    },
                bytes: bytes.to_vec(),
                peer,
                reordered,
            });
        }
        let Some(release) = fate.copies.first().filter(|_| !fate.reordered) else {
            return;
        };
        // Datagrams held back for reordering go right after this one.
        let release = now + *release;
        let (mut waiting, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut s.incoming)
            .into_iter()
            .partition(|h| h.reordered);
        s.incoming = rest;
        for h in &mut waiting {
            h.due = h.due.min(release);
            h.reordered = false;
        }
        s.incoming.extend(waiting);
    }

    /// A received datagram whose time has come, oldest first.
    pub fn pop_due(&self, now: Instant) -> Option<(Vec<u8>, SocketAddr)> {
        if !self.engaged() {
            return None;
        }
        let mut s = self.lock();
        let i = s
            .incoming
            .iter()
            .enumerate()
            .filter(|(_, h)| h.due <= now)
            // The first of equals: arrival order.
            .min_by_key(|(_, h)| h.due)
            .map(|(i, _)| i)?;
        let h = s.incoming.remove(i);
        self.note_engaged(&s);
        Some((h.bytes, h.peer))
    }

    /// When the next held received datagram is due.
    pub fn next_due(&self) -> Option<Instant> {
        if !self.engaged() {
            return None;
        }
        self.lock().incoming.iter().map(|h| h.due).min()
    }
}

/// The datagrams sent by nsh but held back: delayed ones are sent by a
/// thread of their own, a reordered one goes after the next datagram sent.
#[derive(Default)]
pub struct OutgoingHold {
    held: Mutex<Option<(u64, Vec<u8>, SocketAddr)>>,
    next: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for OutgoingHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutgoingHold")
    }
}

impl OutgoingHold {
    /// Holds `bytes` for `peer`; returns its ticket for [`OutgoingHold::take_if`].
    pub fn hold(&self, bytes: Vec<u8>, peer: SocketAddr) -> (u64, Option<(Vec<u8>, SocketAddr)>) {
        let ticket = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let previous = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace((ticket, bytes, peer));
        (ticket, previous.map(|(_, b, p)| (b, p)))
    }

    /// The held datagram, whichever it is.
    pub fn take(&self) -> Option<(Vec<u8>, SocketAddr)> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(|(_, b, p)| (b, p))
    }

    /// The held datagram if it is still `ticket`'s.
    pub fn take_if(&self, ticket: u64) -> Option<(Vec<u8>, SocketAddr)> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|(t, _, _)| *t == ticket) {
            held.take().map(|(_, b, p)| (b, p))
        } else {
            None
        }
    }
}

/// The lines `set` shows: the settings for every peer, then per peer.
pub fn describe(settings: &FaultSettings) -> Vec<String> {
    let mut lines = vec![format!(
        "faults: {}{}",
        settings.all,
        if settings.is_off() {
            String::new()
        } else {
            format!(" seed={}", settings.seed)
        }
    )];
    for (p, s) in &settings.peers {
        lines.push(format!("faults for {p}: {s}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:5683".parse().unwrap()
    }

    fn lossy(loss: f64, seed: u64) -> Faults {
        Faults::new(FaultSettings {
            all: FaultSpec {
                loss,
                ..Default::default()
            },
            seed,
            ..Default::default()
        })
    }

    #[test]
    fn off_by_default_everything_passes_unrecorded() {
        let f = Faults::default();
        assert!(f.is_off());
        for _ in 0..100 {
            assert_eq!(f.decide(true, peer(), b"x"), Fate::pass());
        }
        assert!(f.take_events().is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_losses() {
        let fates = |seed| {
            let f = lossy(0.2, seed);
            (0..500)
                .map(|_| f.decide(true, peer(), b"x").copies.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(fates(7), fates(7));
        assert_ne!(fates(7), fates(8));
        let lost = fates(7).iter().filter(|l| **l).count();
        assert!((50..150).contains(&lost), "{lost} of 500 lost at 0.2");
    }

    #[test]
    fn a_drop_is_recorded_with_its_setting() {
        let f = lossy(1.0, 1);
        assert!(f.decide(false, peer(), b"abc").copies.is_empty());
        let events = f.take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].what, "dropped by loss=1");
        assert_eq!(events[0].bytes, b"abc");
        assert!(!events[0].outgoing);
    }

    #[test]
    fn direction_and_peer_limit_the_faults() {
        let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut settings = FaultSettings::default();
        settings.set(
            Some(peer()),
            FaultSpec {
                loss: 1.0,
                direction: FaultDirection::In,
                ..Default::default()
            },
        );
        let f = Faults::new(settings);
        assert!(f.decide(false, peer(), b"x").copies.is_empty());
        assert_eq!(f.decide(true, peer(), b"x"), Fate::pass());
        assert_eq!(f.decide(false, other, b"x"), Fate::pass());
    }

    #[test]
    fn duplicates_and_delays_are_drawn_from_the_range() {
        let f = Faults::new(FaultSettings {
            all: FaultSpec {
                dup: 1.0,
                delay_ms: DelayRange::parse("50..300").unwrap(),
                ..Default::default()
            },
            ..Default::default()
        });
        let fate = f.decide(true, peer(), b"x");
        assert_eq!(fate.copies.len(), 2);
        for d in &fate.copies {
            assert!((50..=300).contains(&(d.as_millis() as u64)), "{d:?}");
        }
        let events = f.take_events();
        assert_eq!(events[0].what, "duplicated by dup=1");
        assert!(
            events[1].what.ends_with("by delay_ms=50..300"),
            "{events:?}"
        );
    }

    #[test]
    fn a_reordered_datagram_goes_after_the_next_one() {
        let f = Faults::default();
        let now = Instant::now();
        let held = Fate {
            copies: vec![Duration::ZERO],
            reordered: true,
        };
        f.hold_incoming(&held, b"first", peer(), now);
        assert_eq!(f.pop_due(now), None);
        f.hold_incoming(&Fate::pass(), b"second", peer(), now);
        assert_eq!(f.pop_due(now).unwrap().0, b"second");
        assert_eq!(f.pop_due(now).unwrap().0, b"first");
        // Alone, it goes after REORDER_HOLD.
        f.hold_incoming(&held, b"alone", peer(), now);
        assert_eq!(f.pop_due(now), None);
        assert_eq!(f.pop_due(now + REORDER_HOLD).unwrap().0, b"alone");
    }

    #[test]
    fn with_faults_off_the_receive_path_takes_no_lock() {
        let f = Faults::default();
        let now = Instant::now();
        std::thread::scope(|scope| {
            let guard = f.lock();
            let (tx, rx) = std::sync::mpsc::channel();
            let f = &f;
            scope.spawn(move || {
                let answers = (f.pop_due(now), f.next_due(), f.is_off(), f.take_events());
                let _ = tx.send(answers);
            });
            // Generous: only a thread blocked on the lock misses it.
            let answers = rx.recv_timeout(Duration::from_secs(10));
            drop(guard);
            assert_eq!(answers, Ok((None, None, true, Vec::new())));
        });
    }

    #[test]
    fn held_datagrams_and_events_outlive_turning_faults_off() {
        let f = Faults::new(FaultSettings {
            all: FaultSpec {
                delay_ms: DelayRange::parse("100").unwrap(),
                ..Default::default()
            },
            ..Default::default()
        });
        assert!(!f.is_off());
        let now = Instant::now();
        let fate = f.decide(false, peer(), b"late");
        f.hold_incoming(&fate, b"late", peer(), now);
        f.configure(FaultSettings::default());
        assert!(f.is_off());
        let due = now + Duration::from_millis(100);
        assert_eq!(f.next_due(), Some(due));
        assert_eq!(f.pop_due(now), None);
        assert_eq!(f.pop_due(due), Some((b"late".to_vec(), peer())));
        assert_eq!(f.next_due(), None);
        let events = f.take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].what, "delayed 100 ms by delay_ms=100");
        assert!(f.take_events().is_empty());
    }

    #[test]
    fn bad_values_are_refused_with_what_is_wrong() {
        assert!(
            DelayRange::parse("300..50")
                .unwrap_err()
                .contains("lower bound")
        );
        assert!(DelayRange::parse("abc").unwrap_err().contains("`abc`"));
        assert_eq!(
            DelayRange::parse(" 50 .. 300 ").unwrap(),
            DelayRange {
                min_ms: 50,
                max_ms: 300
            }
        );
        assert!(FaultSpec::probability("loss", 1.5).is_err());
        assert!(FaultSpec::probability("loss", f64::NAN).is_err());
        assert!(FaultDirection::parse("sideways").is_err());
    }

    #[test]
    fn settings_are_shown_off_or_in_full() {
        let mut s = FaultSettings::default();
        assert_eq!(describe(&s), ["faults: off"]);
        s.seed = 7;
        s.all.loss = 0.2;
        s.set(Some(peer()), FaultSpec::default());
        assert_eq!(
            describe(&s),
            [
                "faults: loss=0.2 dup=0 delay_ms=0 reorder=0 direction=both seed=7",
                "faults for 127.0.0.1:5683: off"
            ]
        );
    }
}
