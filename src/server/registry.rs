//! The registration table: one entry per registered endpoint, each with a
//! location of its own (`/rd/1`, `/rd/2`, …) by which Update and
//! De-register are recognised. Lookups by endpoint, location and address
//! go through indexes, and a registration is removed or moved without
//! rebuilding them, so a datagram, a re-registration or a De-register
//! costs the same with 10 clients or 10,000 (`benches/registry.rs`).
//!
//! A client that sends an Update from a new address is then reached there
//! (LwM2M Core §6.2.2), but its earlier addresses stay its own: some
//! clients (coap-node) send each Update from a fresh port while their
//! notifications keep coming from the port they registered from. What
//! arrives from an earlier address still names the registration and
//! counts as heard from it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::lwm2m::registration::Registration;

/// A registered client.
#[derive(Clone, Debug)]
pub struct Client {
    /// Endpoint name (`ep`), shared with the history records exchanged
    /// with it.
    pub endpoint: Arc<str>,
    /// Where its messages come from (the address of its last Register or
    /// Update), and where commands go.
    pub peer: SocketAddr,
    /// Addresses it used before its last Update moved it, still its own,
    /// the most recently heard from last (at most [`EARLIER_ADDRESSES`]).
    pub earlier: Vec<SocketAddr>,
    /// The location nsh handed out, e.g. `/rd/3`.
    pub location: String,
    /// What the Register (and later Updates) said.
    pub registration: Registration,
    /// When it registered.
    pub registered_at: SystemTime,
    /// When anything was last heard from it.
    pub last_seen: SystemTime,
    /// When it last registered or updated its registration.
    pub last_update: SystemTime,
    /// The identity its DTLS session authenticated with (PSK identity or
    /// certificate subject); `None` without DTLS.
    pub identity: Option<String>,
}

/// How many earlier addresses a registration keeps: the ones least
/// recently heard from go first.
pub const EARLIER_ADDRESSES: usize = 8;

/// All registered clients.
///
/// Each registration is kept under the order it was made in (a number that
/// only grows), so removing one, or one changing address, touches that
/// one and its index entries only: re-registrations, De-registers and
/// address changes of thousands of clients cost each no more than with
/// ten.
#[derive(Debug, Default)]
pub struct Registry {
    clients: BTreeMap<u64, Client>,
    next_order: u64,
    next_location: u32,
    /// Registrations by endpoint name and by location.
    by_endpoint: HashMap<Arc<str>, u64>,
    by_location: HashMap<String, u64>,
    /// Registrations by address, oldest first.
    by_peer: HashMap<SocketAddr, Vec<u64>>,
    /// Registrations by an earlier address ([`Client::earlier`]), oldest
    /// first.
    by_earlier: HashMap<SocketAddr, Vec<u64>>,
    /// No registration's lifetime ends before this (`None`: none ends at
    /// all), once `expiry_known`; [`Registry::expire`] looks through the
    /// registrations only once it has passed.
    next_expiry: Option<SystemTime>,
    expiry_known: bool,
}

/// When `c`'s registration expires without an Update; `None` when that is
/// beyond what `SystemTime` holds.
fn expiry(c: &Client) -> Option<SystemTime> {
    c.last_update
        .checked_add(std::time::Duration::from_secs(u64::from(
            c.registration.lifetime_or_default(),
        )))
}

impl Registry {
    /// Adds (or replaces, by endpoint name) a registration; returns its new
    /// location.
    pub fn register(
        &mut self,
        peer: SocketAddr,
        endpoint: String,
        registration: Registration,
    ) -> String {
        self.register_at(peer, endpoint, registration, SystemTime::now())
    }

    /// [`Registry::register`] at the wall time `now`.
    pub fn register_at(
        &mut self,
        peer: SocketAddr,
        endpoint: String,
        registration: Registration,
        now: SystemTime,
    ) -> String {
        self.next_location += 1;
        let location = format!("/rd/{}", self.next_location);
        if let Some(&order) = self.by_endpoint.get(endpoint.as_str()) {
            self.remove(order);
        }
        self.next_order += 1;
        let order = self.next_order;
        let endpoint: Arc<str> = endpoint.into();
        self.by_endpoint.insert(endpoint.clone(), order);
        self.by_location.insert(location.clone(), order);
        // The newest order of all: it goes last.
        self.by_peer.entry(peer).or_default().push(order);
        self.claim(peer);
        let client = Client {
            endpoint,
            peer,
            earlier: Vec::new(),
            location: location.clone(),
            registration,
            registered_at: now,
            last_seen: now,
            last_update: now,
            identity: None,
        };
        self.lower_expiry(expiry(&client));
        self.clients.insert(order, client);
        location
    }

    /// Keeps the bound on expiries at or below `at` (a registration's,
    /// from [`expiry`]).
    fn lower_expiry(&mut self, at: Option<SystemTime>) {
        if let Some(at) = at {
            self.next_expiry = Some(self.next_expiry.map_or(at, |n| n.min(at)));
        }
    }

    /// The client registered at `location` (`/rd/3`).
    pub fn by_location(&self, location: &str) -> Option<&Client> {
        self.clients.get(self.by_location.get(location)?)
    }

    /// Changes the registration at `location` with `change` (an Update:
    /// what it registers and when it last did; its endpoint name, location
    /// and address are indexed, and change only through
    /// [`Registry::register`] and [`Registry::readdress`]). Returns the
    /// client as changed.
    pub fn update(&mut self, location: &str, change: impl FnOnce(&mut Client)) -> Option<&Client> {
        let order = *self.by_location.get(location)?;
        let c = self.clients.get_mut(&order)?;
        change(c);
        let at = expiry(c);
        self.lower_expiry(at);
        self.clients.get(&order)
    }

    /// The client with this endpoint name.
    pub fn by_endpoint(&self, endpoint: &str) -> Option<&Client> {
        self.clients.get(self.by_endpoint.get(endpoint)?)
    }

    /// The client that last registered from `peer`.
    pub fn by_peer(&self, peer: SocketAddr) -> Option<&Client> {
        self.clients.get(self.by_peer.get(&peer)?.last()?)
    }

    /// The endpoint name of the client that last registered from `peer`,
    /// or else of the one that last used `peer` before an Update moved it
    /// (what a history record exchanged with `peer` names): index lookups
    /// and a reference count, no copy of the name.
    pub fn endpoint_of(&self, peer: SocketAddr) -> Option<Arc<str>> {
        self.by_peer(peer)
            .or_else(|| self.clients.get(self.by_earlier.get(&peer)?.last()?))
            .map(|c| c.endpoint.clone())
    }

    /// Removes the registration at `location`.
    pub fn deregister(&mut self, location: &str) -> Option<Client> {
        let order = *self.by_location.get(location)?;
        self.remove(order)
    }

    /// Removes registration `order` and its index entries.
    fn remove(&mut self, order: u64) -> Option<Client> {
        let gone = self.clients.remove(&order)?;
        self.by_endpoint.remove(&gone.endpoint);
        self.by_location.remove(&gone.location);
        unindex(&mut self.by_peer, gone.peer, order);
        for &earlier in &gone.earlier {
            unindex(&mut self.by_earlier, earlier, order);
        }
        Some(gone)
    }

    /// The client at `location` now talks from `peer`.
    pub fn readdress(&mut self, location: &str, peer: SocketAddr) {
        let Some(&order) = self.by_location.get(location) else {
            return;
        };
        let Some(c) = self.clients.get_mut(&order) else {
            return;
        };
        let old = std::mem::replace(&mut c.peer, peer);
        if old == peer {
            return;
        }
        unindex(&mut self.by_peer, old, order);
        index(&mut self.by_peer, peer, order);
        // The old address becomes an earlier one, the most recently heard
        // from; the new one is no longer anybody's earlier address.
        c.earlier.push(old);
        index(&mut self.by_earlier, old, order);
        if c.earlier.len() > EARLIER_ADDRESSES {
            let dropped = c.earlier.remove(0);
            unindex(&mut self.by_earlier, dropped, order);
        }
        self.claim(peer);
    }

    /// `peer` is now a registration's own address: it is no longer an
    /// earlier address of any.
    fn claim(&mut self, peer: SocketAddr) {
        for order in self.by_earlier.remove(&peer).into_iter().flatten() {
            if let Some(c) = self.clients.get_mut(&order) {
                c.earlier.retain(|&a| a != peer);
            }
        }
    }

    /// Sets the DTLS identity of the clients registered from `peer`.
    pub fn set_identity(&mut self, peer: SocketAddr, identity: &str) {
        for order in self.by_peer.get(&peer).into_iter().flatten() {
            if let Some(c) = self.clients.get_mut(order)
                && c.identity.as_deref() != Some(identity)
            {
                c.identity = Some(identity.to_owned());
            }
        }
    }

    /// A client's address changed (DTLS Connection ID): its registrations
    /// follow it. Returns the endpoints that moved.
    pub fn moved(&mut self, old: SocketAddr, new: SocketAddr) -> Vec<String> {
        if old == new {
            return Vec::new();
        }
        let Some(orders) = self.by_peer.remove(&old) else {
            return Vec::new();
        };
        let mut moved = Vec::new();
        for order in orders {
            if let Some(c) = self.clients.get_mut(&order) {
                c.peer = new;
                moved.push(c.endpoint.to_string());
                index(&mut self.by_peer, new, order);
            }
        }
        self.claim(new);
        moved
    }

    /// Marks traffic from `peer`, for the clients registered there and
    /// those that used it before an Update moved them (for which it becomes
    /// the earlier address most recently heard from).
    pub fn touch(&mut self, peer: SocketAddr, now: SystemTime) {
        for order in self.by_peer.get(&peer).into_iter().flatten() {
            if let Some(c) = self.clients.get_mut(order) {
                c.last_seen = now;
            }
        }
        // An address a registration holds now is no earlier address: see
        // `claim`.
        for order in self.by_earlier.get(&peer).into_iter().flatten() {
            if let Some(c) = self.clients.get_mut(order) {
                c.last_seen = now;
                if c.earlier.last() != Some(&peer)
                    && let Some(at) = c.earlier.iter().position(|&a| a == peer)
                {
                    c.earlier.remove(at);
                    c.earlier.push(peer);
                }
            }
        }
    }

    /// Removes and returns the registrations whose lifetime passed without
    /// an Update (LwM2M Core §6.2.2), oldest first.
    ///
    /// Called after every batch of received datagrams: it looks through
    /// the registrations only once the earliest expiry it knows of has
    /// passed (removals only make that later; registrations and Updates
    /// move it earlier where needed).
    pub fn expire(&mut self, now: SystemTime) -> Vec<Client> {
        if self.expiry_known && self.next_expiry.is_none_or(|at| now <= at) {
            return Vec::new();
        }
        let mut due = Vec::new();
        let mut next: Option<SystemTime> = None;
        for (&order, c) in &self.clients {
            match expiry(c) {
                Some(at) if now > at => due.push(order),
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        self.next_expiry = next;
        self.expiry_known = true;
        due.into_iter()
            .filter_map(|order| self.remove(order))
            .collect()
    }

    /// Every client, in registration order.
    pub fn clients(&self) -> impl DoubleEndedIterator<Item = &Client> + ExactSizeIterator {
        self.clients.values()
    }

    /// How many clients are registered.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// True when `location` was handed out and is still registered.
    pub fn is_location(&self, location: &str) -> bool {
        self.by_location(location).is_some()
    }
}

/// Files `order` under `peer` in `by`, keeping the list oldest first.
fn index(by: &mut HashMap<SocketAddr, Vec<u64>>, peer: SocketAddr, order: u64) {
    let orders = by.entry(peer).or_default();
    let at = orders.partition_point(|&o| o < order);
    if orders.get(at) != Some(&order) {
        orders.insert(at, order);
    }
}

/// Takes `order` out of `peer`'s list in `by`.
fn unindex(by: &mut HashMap<SocketAddr, Vec<u64>>, peer: SocketAddr, order: u64) {
    if let Some(orders) = by.get_mut(&peer) {
        orders.retain(|&o| o != order);
        if orders.is_empty() {
            by.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn lookups_follow_registrations_replacements_moves_and_removals() {
        let mut r = Registry::default();
        for i in 0..5u16 {
            r.register(addr(1000 + i), format!("ep{i}"), Registration::default());
        }
        // ep1 registers again from elsewhere: replaced, now last.
        let loc = r.register(addr(2000), "ep1".into(), Registration::default());
        assert_eq!(loc, "/rd/6");
        assert!(r.by_location("/rd/2").is_none());
        assert_eq!(r.by_endpoint("ep1").unwrap().location, "/rd/6");
        assert!(r.by_peer(addr(1001)).is_none());
        assert_eq!(r.by_peer(addr(2000)).unwrap().endpoint, "ep1".into());
        assert_eq!(r.deregister("/rd/1").unwrap().endpoint, "ep0".into());
        assert_eq!(r.by_endpoint("ep4").unwrap().peer, addr(1004));
        r.readdress("/rd/5", addr(3000));
        assert_eq!(r.by_peer(addr(3000)).unwrap().endpoint, "ep4".into());
        assert!(r.by_peer(addr(1004)).is_none());
        assert_eq!(r.moved(addr(3000), addr(4000)), vec!["ep4".to_string()]);
        assert_eq!(r.by_location("/rd/5").unwrap().peer, addr(4000));
        let names: Vec<&str> = r.clients().map(|c| &*c.endpoint).collect();
        assert_eq!(names, ["ep2", "ep3", "ep4", "ep1"]);
        // Two registrations from one address: the later one answers.
        r.register(addr(4000), "ep5".into(), Registration::default());
        assert_eq!(r.by_peer(addr(4000)).unwrap().endpoint, "ep5".into());
        let later = SystemTime::now() + std::time::Duration::from_secs(100_000);
        assert_eq!(r.expire(later).len(), 5);
        assert!(r.by_endpoint("ep5").is_none() && r.by_peer(addr(4000)).is_none());
        assert!(r.is_empty() && r.by_peer.is_empty() && r.by_location.is_empty());
    }

    fn lifetime(s: u32) -> Registration {
        Registration {
            lifetime: Some(s),
            ..Registration::default()
        }
    }

    #[test]
    fn a_registration_expires_once_its_lifetime_passes_whatever_came_between() {
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let mut r = Registry::default();
        r.register_at(addr(1), "a".into(), lifetime(100), t0);
        assert!(r.expire(at(1)).is_empty());
        // An Update shortens the lifetime: it now ends at 2 + 5 s.
        r.update("/rd/1", |c| {
            c.registration.lifetime = Some(5);
            c.last_update = at(2);
        });
        assert!(r.expire(at(7)).is_empty());
        let gone: Vec<String> = r
            .expire(at(8))
            .into_iter()
            .map(|c| c.endpoint.to_string())
            .collect();
        assert_eq!(gone, ["a"]);
        // A registration made after a look ends before what it knew of.
        r.register_at(addr(2), "b".into(), lifetime(100), at(8));
        assert!(r.expire(at(9)).is_empty());
        r.register_at(addr(3), "c".into(), lifetime(1), at(9));
        let gone: Vec<String> = r
            .expire(at(11))
            .into_iter()
            .map(|c| c.endpoint.to_string())
            .collect();
        assert_eq!(gone, ["c"]);
        assert_eq!(r.len(), 1);
        // The longest lifetime there is (about 136 years) has not ended.
        r.register_at(
            addr(4),
            "d".into(),
            lifetime(u32::MAX),
            SystemTime::UNIX_EPOCH,
        );
        assert!(r.expire(at(50)).is_empty());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn an_address_shared_after_a_move_answers_for_the_newest_registration() {
        let mut r = Registry::default();
        r.register(addr(1), "old".into(), Registration::default());
        r.register(addr(2), "new".into(), Registration::default());
        // The older registration moves onto the newer one's address.
        assert_eq!(r.moved(addr(1), addr(2)), vec!["old".to_string()]);
        assert_eq!(r.by_peer(addr(2)).unwrap().endpoint, "new".into());
        // And back, then the newer one onto the older one's.
        r.readdress("/rd/1", addr(1));
        r.readdress("/rd/2", addr(1));
        assert_eq!(r.by_peer(addr(1)).unwrap().endpoint, "new".into());
        assert!(r.by_peer(addr(2)).is_none());
        r.touch(addr(1), SystemTime::UNIX_EPOCH);
        assert!(r.clients().all(|c| c.last_seen == SystemTime::UNIX_EPOCH));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn earlier_addresses_of_a_moved_registration_still_name_it() {
        let at = |s: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let mut r = Registry::default();
        let heard = |r: &Registry, ep: &str| {
            r.clients()
                .find(|c| &*c.endpoint == ep)
                .map(|c| c.last_seen)
                .unwrap()
        };
        r.register_at(addr(1), "dev".into(), Registration::default(), at(0));
        // Its Update comes from a new port: commands go there, but what
        // still comes from the first port is its own.
        r.readdress("/rd/1", addr(2));
        assert_eq!(r.by_peer(addr(2)).unwrap().endpoint, "dev".into());
        assert!(r.by_peer(addr(1)).is_none());
        assert_eq!(r.endpoint_of(addr(1)), Some("dev".into()));
        r.touch(addr(1), at(5));
        assert_eq!(heard(&r, "dev"), at(5));
        // A port per Update: the one still heard from stays, the ones
        // heard from least recently go past the limit.
        for port in 3..20 {
            r.readdress("/rd/1", addr(port));
            r.touch(addr(1), at(u64::from(port)));
        }
        assert_eq!(r.endpoint_of(addr(1)), Some("dev".into()));
        assert_eq!(r.endpoint_of(addr(18)), Some("dev".into()));
        assert_eq!(r.endpoint_of(addr(2)), None);
        // Another registration from an earlier address takes it over.
        r.register_at(addr(1), "other".into(), Registration::default(), at(30));
        assert_eq!(r.endpoint_of(addr(1)), Some("other".into()));
        r.touch(addr(1), at(40));
        assert_eq!(heard(&r, "dev"), at(19));
        // A De-register takes its earlier addresses with it.
        r.deregister("/rd/1");
        assert_eq!(r.endpoint_of(addr(18)), None);
    }
}
