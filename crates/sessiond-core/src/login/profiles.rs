//! Opened user profiles, reused while their sealed bytes stay the same.
//!
//! Opening a profile (AEAD decryption, then JSON) cost a third of a `GET /sessions/{id}` that
//! already reads the user row. The row is still read on every request; what is kept is the
//! result of opening it, keyed by user id and checked byte for byte against the sealed value
//! just read: the same sealed bytes always open to the same profile, and a profile that changed
//! was sealed again, so an entry never answers for a value the row no longer holds.
//! Bounded by entry count, in two generations: an entry not used while the newer generation
//! filled up is dropped with the older one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::ids::UserId;
use crate::user::Profile;

/// Entries kept when the configuration does not say.
pub const DEFAULT_ENTRIES: usize = 10_000;

struct Entry {
    sealed: Box<[u8]>,
    profile: Arc<Profile>,
}

#[derive(Default)]
struct Generations {
    newer: HashMap<UserId, Entry>,
    older: HashMap<UserId, Entry>,
}

pub(super) struct Profiles {
    /// Most entries held at once, over both generations; 0 turns the cache off.
    capacity: usize,
    inner: Mutex<Generations>,
}

impl Profiles {
    pub(super) fn new(capacity: usize) -> Self {
        Profiles {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// The profile opened earlier from exactly these sealed bytes, if any.
    pub(super) fn get(&self, id: &UserId, sealed: &[u8]) -> Option<Arc<Profile>> {
        if self.capacity == 0 {
            return None;
        }
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = g.newer.get(id) {
            return (*e.sealed == *sealed).then(|| e.profile.clone());
        }
        let e = g.older.remove(id)?;
        if *e.sealed != *sealed {
            return None;
        }
        let profile = e.profile.clone();
        Self::insert_into(&mut g, self.capacity, id.clone(), e);
        Some(profile)
    }

    pub(super) fn put(&self, id: &UserId, sealed: &[u8], profile: Arc<Profile>) {
        if self.capacity == 0 {
            return;
        }
        let entry = Entry {
            sealed: sealed.into(),
            profile,
        };
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.older.remove(id);
        Self::insert_into(&mut g, self.capacity, id.clone(), entry);
    }

    /// Forgets a user at once (deletion), rather than when the entry ages out.
    pub(super) fn forget(&self, id: &UserId) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.newer.remove(id);
        g.older.remove(id);
    }

    fn insert_into(g: &mut Generations, capacity: usize, id: UserId, e: Entry) {
        if g.newer.len() >= capacity.div_ceil(2) {
            g.older = std::mem::take(&mut g.newer);
        }
        g.newer.insert(id, e);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.newer.len() + g.older.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str) -> Arc<Profile> {
        Arc::new(Profile {
            first_name: Some(name.to_owned()),
            ..Profile::default()
        })
    }

    fn id(n: usize) -> UserId {
        UserId(format!("user_{n}"))
    }

    #[test]
    fn answers_only_for_the_same_sealed_bytes() {
        let p = Profiles::new(8);
        p.put(&id(1), b"sealed-a", profile("a"));
        assert_eq!(
            p.get(&id(1), b"sealed-a")
                .and_then(|p| p.first_name.clone()),
            Some("a".to_owned())
        );
        assert!(p.get(&id(1), b"sealed-b").is_none(), "a re-sealed profile");
        assert!(p.get(&id(2), b"sealed-a").is_none(), "another user");
        p.forget(&id(1));
        assert!(p.get(&id(1), b"sealed-a").is_none());
    }

    #[test]
    fn stays_within_its_capacity_and_keeps_what_is_used() {
        let p = Profiles::new(10);
        for n in 0..100 {
            p.put(&id(n), b"s", profile("x"));
            // User 0 is read after every write: it must survive every generation change.
            assert!(p.get(&id(0), b"s").is_some(), "after {n} writes");
            assert!(p.len() <= 10, "{} entries", p.len());
        }
        assert!(p.get(&id(1), b"s").is_none(), "an unused entry ages out");
        assert!(p.get(&id(99), b"s").is_some());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let p = Profiles::new(0);
        p.put(&id(1), b"s", profile("x"));
        assert!(p.get(&id(1), b"s").is_none());
    }
}
