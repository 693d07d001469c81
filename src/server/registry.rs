//! The registration table: one entry per registered endpoint, each with a
//! location of its own (`/rd/1`, `/rd/2`, …) by which Update and
//! De-register are recognised. Lookups by endpoint, location and address
//! go through indexes, so a datagram costs the same with 10 clients or
//! 10,000.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::lwm2m::registration::Registration;

/// A registered client.
#[derive(Clone, Debug)]
pub struct Client {
    /// Endpoint name (`ep`).
    pub endpoint: String,
    /// Where its messages come from.
    pub peer: SocketAddr,
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

/// All registered clients.
#[derive(Debug, Default)]
pub struct Registry {
    clients: Vec<Client>,
    next_location: u32,
    /// Positions in `clients` by endpoint name and by location.
    by_endpoint: HashMap<String, usize>,
    by_location: HashMap<String, usize>,
    /// Positions in `clients` by address, in registration order.
    by_peer: HashMap<SocketAddr, Vec<usize>>,
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
        if let Some(&at) = self.by_endpoint.get(&endpoint) {
            self.clients.remove(at);
            self.reindex();
        }
        let at = self.clients.len();
        self.by_endpoint.insert(endpoint.clone(), at);
        self.by_location.insert(location.clone(), at);
        self.by_peer.entry(peer).or_default().push(at);
        self.clients.push(Client {
            endpoint,
            peer,
            location: location.clone(),
            registration,
            registered_at: now,
            last_seen: now,
            last_update: now,
            identity: None,
        });
        location
    }

    /// The client registered at `location` (`/rd/3`).
    pub fn by_location(&self, location: &str) -> Option<&Client> {
        self.clients.get(*self.by_location.get(location)?)
    }

    /// Mutable access by location (its address changes only through
    /// [`Registry::readdress`], which keeps the index).
    pub fn by_location_mut(&mut self, location: &str) -> Option<&mut Client> {
        self.clients.get_mut(*self.by_location.get(location)?)
    }

    /// The client with this endpoint name.
    pub fn by_endpoint(&self, endpoint: &str) -> Option<&Client> {
        self.clients.get(*self.by_endpoint.get(endpoint)?)
    }

    /// The client that last talked from `peer`.
    pub fn by_peer(&self, peer: SocketAddr) -> Option<&Client> {
        self.clients.get(*self.by_peer.get(&peer)?.last()?)
    }

    /// Removes the registration at `location`.
    pub fn deregister(&mut self, location: &str) -> Option<Client> {
        let at = *self.by_location.get(location)?;
        let gone = self.clients.remove(at);
        self.reindex();
        Some(gone)
    }

    /// The client at `location` now talks from `peer`.
    pub fn readdress(&mut self, location: &str, peer: SocketAddr) {
        let Some(&at) = self.by_location.get(location) else {
            return;
        };
        let Some(c) = self.clients.get_mut(at) else {
            return;
        };
        if c.peer != peer {
            c.peer = peer;
            self.reindex();
        }
    }

    /// Positions of the clients registered from `peer`.
    fn at_peer(&self, peer: SocketAddr) -> Vec<usize> {
        self.by_peer.get(&peer).cloned().unwrap_or_default()
    }

    /// Notes the identity `peer`'s DTLS session authenticated with.
    pub fn set_identity(&mut self, peer: SocketAddr, identity: &str) {
        for at in self.at_peer(peer) {
            if let Some(c) = self.clients.get_mut(at)
                && c.identity.as_deref() != Some(identity)
            {
                c.identity = Some(identity.to_owned());
            }
        }
    }

    /// A client's address changed (DTLS Connection ID): its registrations
    /// follow it. Returns the endpoints that moved.
    pub fn moved(&mut self, old: SocketAddr, new: SocketAddr) -> Vec<String> {
        let mut moved = Vec::new();
        for at in self.at_peer(old) {
            if let Some(c) = self.clients.get_mut(at) {
                c.peer = new;
                moved.push(c.endpoint.clone());
            }
        }
        if !moved.is_empty() {
            self.reindex();
        }
        moved
    }

    /// Marks traffic from `peer`.
    pub fn touch(&mut self, peer: SocketAddr, now: SystemTime) {
        for at in self.at_peer(peer) {
            if let Some(c) = self.clients.get_mut(at) {
                c.last_seen = now;
            }
        }
    }

    /// Rebuilds the indexes after `clients` changed other than at its end.
    fn reindex(&mut self) {
        self.by_endpoint.clear();
        self.by_location.clear();
        self.by_peer.clear();
        for (at, c) in self.clients.iter().enumerate() {
            self.by_endpoint.insert(c.endpoint.clone(), at);
            self.by_location.insert(c.location.clone(), at);
            self.by_peer.entry(c.peer).or_default().push(at);
        }
    }

    /// Removes and returns the registrations whose lifetime passed without
    /// an Update (LwM2M Core §6.2.2).
    pub fn expire(&mut self, now: SystemTime) -> Vec<Client> {
        let due = |c: &Client| {
            let lifetime =
                std::time::Duration::from_secs(u64::from(c.registration.lifetime_or_default()));
            now.duration_since(c.last_update)
                .is_ok_and(|d| d > lifetime)
        };
        if !self.clients.iter().any(due) {
            return Vec::new();
        }
        let (gone, kept): (Vec<Client>, Vec<Client>) = std::mem::take(&mut self.clients)
            .into_iter()
            .partition(|c| {
                let lifetime =
                    std::time::Duration::from_secs(u64::from(c.registration.lifetime_or_default()));
                now.duration_since(c.last_update)
                    .is_ok_and(|d| d > lifetime)
            });
        self.clients = kept;
        self.reindex();
        gone
    }

    /// Every client, in registration order.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// True when `location` was handed out and is still registered.
    pub fn is_location(&self, location: &str) -> bool {
        self.by_location(location).is_some()
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
        assert_eq!(r.by_peer(addr(2000)).unwrap().endpoint, "ep1");
        assert_eq!(r.deregister("/rd/1").unwrap().endpoint, "ep0");
        assert_eq!(r.by_endpoint("ep4").unwrap().peer, addr(1004));
        r.readdress("/rd/5", addr(3000));
        assert_eq!(r.by_peer(addr(3000)).unwrap().endpoint, "ep4");
        assert!(r.by_peer(addr(1004)).is_none());
        assert_eq!(r.moved(addr(3000), addr(4000)), vec!["ep4".to_string()]);
        assert_eq!(r.by_location("/rd/5").unwrap().peer, addr(4000));
        let names: Vec<&str> = r.clients().iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(names, ["ep2", "ep3", "ep4", "ep1"]);
        // Two registrations from one address: the later one answers.
        r.register(addr(4000), "ep5".into(), Registration::default());
        assert_eq!(r.by_peer(addr(4000)).unwrap().endpoint, "ep5");
        let later = SystemTime::now() + std::time::Duration::from_secs(100_000);
        assert_eq!(r.expire(later).len(), 5);
        assert!(r.by_endpoint("ep5").is_none() && r.by_peer(addr(4000)).is_none());
    }
}
