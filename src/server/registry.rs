//! The registration table: one entry per registered endpoint, each with a
//! location of its own (`/rd/1`, `/rd/2`, …) by which Update and
//! De-register are recognised.

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
        self.clients.retain(|c| c.endpoint != endpoint);
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
        self.clients.iter().find(|c| c.location == location)
    }

    /// Mutable access by location.
    pub fn by_location_mut(&mut self, location: &str) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.location == location)
    }

    /// The client with this endpoint name.
    pub fn by_endpoint(&self, endpoint: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.endpoint == endpoint)
    }

    /// The client that last talked from `peer`.
    pub fn by_peer(&self, peer: SocketAddr) -> Option<&Client> {
        self.clients.iter().rev().find(|c| c.peer == peer)
    }

    /// Removes the registration at `location`.
    pub fn deregister(&mut self, location: &str) -> Option<Client> {
        let at = self.clients.iter().position(|c| c.location == location)?;
        Some(self.clients.remove(at))
    }

    /// Notes the identity `peer`'s DTLS session authenticated with.
    pub fn set_identity(&mut self, peer: SocketAddr, identity: &str) {
        for c in self.clients.iter_mut().filter(|c| c.peer == peer) {
            if c.identity.as_deref() != Some(identity) {
                c.identity = Some(identity.to_owned());
            }
        }
    }

    /// A client's address changed (DTLS Connection ID): its registrations
    /// follow it. Returns the endpoints that moved.
    pub fn moved(&mut self, old: SocketAddr, new: SocketAddr) -> Vec<String> {
        self.clients
            .iter_mut()
            .filter(|c| c.peer == old)
            .map(|c| {
                c.peer = new;
                c.endpoint.clone()
            })
            .collect()
    }

    /// Marks traffic from `peer`.
    pub fn touch(&mut self, peer: SocketAddr, now: SystemTime) {
        for c in self.clients.iter_mut().filter(|c| c.peer == peer) {
            c.last_seen = now;
        }
    }

    /// Removes and returns the registrations whose lifetime passed without
    /// an Update (LwM2M Core §6.2.2).
    pub fn expire(&mut self, now: SystemTime) -> Vec<Client> {
        let (gone, kept): (Vec<Client>, Vec<Client>) = std::mem::take(&mut self.clients)
            .into_iter()
            .partition(|c| {
                let lifetime =
                    std::time::Duration::from_secs(u64::from(c.registration.lifetime_or_default()));
                now.duration_since(c.last_update)
                    .is_ok_and(|d| d > lifetime)
            });
        self.clients = kept;
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
