//! Sessions read with their users, kept in memory and dropped row by row as the writer changes
//! them: reading a session again costs a hash lookup instead of a read transaction (a third of
//! the server's CPU on the Equisoft read path, profiled).
//!
//! An entry is never served after the row it copies has changed. Three rules make that so:
//!
//! 1. **Every change of this process is seen.** SQLite's update hook on the writer's connection
//!    reports each row of `sessions` and `users` that a statement inserts, updates or deletes,
//!    foreign-key cascades included. Before its COMMIT the writer drops the entries of those rows.
//!    The hook is blind to `WITHOUT ROWID` tables: the one such table the read joins,
//!    `session_purges` (which hides lapsed sessions), is written only by a write that calls
//!    [`HotCache::note_all`], and then every entry goes.
//! 2. **A change of anyone else empties the cache.** An entry is served only while the file's
//!    last commit, read from the wal-index, is one the cache knows: the state it was emptied in,
//!    or the writer's own commits since. The writer recognises its commit by SQLite's change
//!    counter, which every commit increments: one more than at its BEGIN (taken under the write
//!    lock) is its own, anything else means another connection or process committed too.
//! 3. **A read racing a commit is not kept.** `seq` goes odd when the writer starts dropping
//!    entries and even again once its commit is known; a read that fills the cache is kept only
//!    if `seq` was even when it began and has not moved since.
//!
//! The cache is bounded by a number of sessions; a full cache evicts an entry at random, which
//! keeps a useful share of hits even when the sessions read cycle through more than it holds
//! (least-recently-used would then hit nothing).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sessiond_core::session::Session;
use sessiond_core::store::StoredUser;

use super::{Commit, lock};

/// A session with its user, as the session-with-user read returns them.
pub(crate) type Pair = (Session, StoredUser);

/// What a look-up found.
pub(crate) enum Lookup {
    Hit(Box<Pair>),
    /// Not cached: read the database, then offer the result to [`HotCache::fill`] with this.
    Miss(Ticket),
    /// The cache cannot answer now (a commit it does not know yet): read the database.
    Bypass,
}

/// The state a read that fills the cache began in.
pub(crate) struct Ticket(u64);

/// Rows the writer's statements changed since its last commit.
#[derive(Default)]
struct Touched {
    sessions: Vec<i64>,
    users: Vec<i64>,
    everything: bool,
}

struct Entry {
    session: Session,
    session_row: i64,
    user_row: i64,
    /// Index in `State::keys`.
    slot: usize,
}

struct UserRow {
    user: StoredUser,
    sessions: Vec<Arc<str>>,
}

#[derive(Default)]
struct State {
    /// The last commit the entries are exact for; `None` until a read adopts the file's state.
    known: Option<Commit>,
    /// Odd while the writer is committing a batch (see the module's rule 3).
    seq: u64,
    /// Boxed: the table keeps spare room for growth, at a pointer a slot rather than a session.
    entries: HashMap<Arc<str>, Box<Entry>>,
    /// Every entry's key, for eviction at random.
    keys: Vec<Arc<str>>,
    by_session_row: HashMap<i64, Arc<str>>,
    by_user_row: HashMap<i64, UserRow>,
    /// xorshift state for eviction; any sequence will do.
    random: u64,
}

pub(crate) struct HotCache {
    capacity: usize,
    state: Mutex<State>,
    touched: Mutex<Touched>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl HotCache {
    /// A cache of at most `capacity` sessions (at least one).
    pub(crate) fn new(capacity: usize) -> HotCache {
        HotCache {
            capacity: capacity.max(1),
            state: Mutex::new(State {
                random: 0x9E37_79B9_7F4A_7C15,
                ..State::default()
            }),
            touched: Mutex::new(Touched::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The session `id` of application `app`, if cached and exact for the file's state `now`.
    pub(crate) fn lookup(&self, now: Option<Commit>, app: &str, id: &str) -> Lookup {
        let found = self.find(now, app, id);
        let counter = match found {
            Lookup::Hit(_) => &self.hits,
            Lookup::Miss(_) | Lookup::Bypass => &self.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn find(&self, now: Option<Commit>, app: &str, id: &str) -> Lookup {
        let Some(now) = now else {
            return Lookup::Bypass;
        };
        let mut st = lock(&self.state);
        if st.known != Some(now) {
            if writing(st.seq) {
                // The writer's commit is not known yet; it will be in a moment.
                return Lookup::Bypass;
            }
            if let Some(known) = st.known
                && (known.change_counter().wrapping_sub(now.change_counter()) as i32) > 0
            {
                // Read before a commit the cache already knows of: this reader is late, not
                // the cache.
                return Lookup::Bypass;
            }
            // Another connection committed: start over from the file's state.
            st.clear();
            st.known = Some(now);
            st.seq += 2;
        }
        match st.entries.get(id) {
            Some(e) if e.session.application_id.as_str() == app => {
                let user = st.by_user_row.get(&e.user_row).map(|u| u.user.clone());
                match user {
                    Some(user) => Lookup::Hit(Box::new((e.session.clone(), user))),
                    None => Lookup::Bypass,
                }
            }
            Some(_) => Lookup::Bypass,
            None => Lookup::Miss(Ticket(st.seq)),
        }
    }

    /// Keeps what a read begun with `ticket` found, unless a commit may have begun since.
    pub(crate) fn fill(&self, ticket: Ticket, pair: &Pair, session_row: i64, user_row: i64) {
        let mut st = lock(&self.state);
        if writing(ticket.0) || st.seq != ticket.0 || st.entries.contains_key(pair.0.id.as_str()) {
            return;
        }
        if st.entries.len() >= self.capacity {
            st.evict_one();
        }
        let key: Arc<str> = Arc::from(pair.0.id.as_str());
        let slot = st.keys.len();
        st.keys.push(key.clone());
        st.by_session_row.insert(session_row, key.clone());
        // An entry already there for the user holds the same row: any change to it since would
        // have moved `seq`.
        st.by_user_row
            .entry(user_row)
            .or_insert_with(|| UserRow {
                user: pair.1.clone(),
                sessions: Vec::new(),
            })
            .sessions
            .push(key.clone());
        st.entries.insert(
            key,
            Box::new(Entry {
                session: pair.0.clone(),
                session_row,
                user_row,
                slot,
            }),
        );
    }

    /// The writer's update hook: a row of `table` changed.
    pub(crate) fn note(&self, table: &str, row: i64) {
        let mut t = lock(&self.touched);
        match table {
            "sessions" => t.sessions.push(row),
            "users" => t.users.push(row),
            _ => {}
        }
    }

    /// A statement of the writer's batch changed what reads see through a table the update hook
    /// does not report (a `WITHOUT ROWID` one: `session_purges`): every entry goes.
    pub(crate) fn note_all(&self) {
        lock(&self.touched).everything = true;
    }

    /// Before the writer's COMMIT (its statements have run; `begun` is the file's state its
    /// transaction began in): drops the entries of every row the batch changed.
    pub(crate) fn before_commit(&self, begun: Option<Commit>) {
        let touched = std::mem::take(&mut *lock(&self.touched));
        let mut st = lock(&self.state);
        st.seq += 1;
        if begun.is_none() || st.known != begun || touched.everything {
            st.clear();
            st.known = begun;
            return;
        }
        for row in touched.sessions {
            if let Some(key) = st.by_session_row.get(&row).cloned() {
                st.remove(&key);
            }
        }
        for row in touched.users {
            if let Some(u) = st.by_user_row.get(&row) {
                for key in u.sessions.clone() {
                    st.remove(&key);
                }
            }
            st.by_user_row.remove(&row);
        }
    }

    /// After the writer's COMMIT (`committed` whether it succeeded; `after` the file's state
    /// read just after): its commit becomes the known state if it was the only one.
    pub(crate) fn after_commit(
        &self,
        begun: Option<Commit>,
        after: Option<Commit>,
        committed: bool,
    ) {
        let mut st = lock(&self.state);
        let only_ours = match (begun, after) {
            (Some(b), Some(a)) => {
                committed && a.change_counter() == b.change_counter().wrapping_add(1)
            }
            _ => false,
        };
        if only_ours {
            st.known = after;
        } else {
            st.clear();
            st.known = None;
        }
        st.seq += 1;
    }

    /// The writer rewrote the wal-index header without a commit (a checkpoint that truncated
    /// the log): the entries stay exact if nothing was committed meanwhile.
    pub(crate) fn rebase(&self, before: Option<Commit>, after: Option<Commit>) {
        let mut st = lock(&self.state);
        if !writing(st.seq)
            && st.known == before
            && let (Some(b), Some(a)) = (before, after)
            && a.change_counter() == b.change_counter()
        {
            st.known = after;
            st.seq += 2;
        }
    }

    /// Sessions held.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// (look-ups answered from memory, look-ups that read the database) since opening.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

impl State {
    fn clear(&mut self) {
        self.entries.clear();
        self.keys.clear();
        self.by_session_row.clear();
        self.by_user_row.clear();
    }

    fn evict_one(&mut self) {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        let len = self.keys.len() as u64;
        if len == 0 {
            return;
        }
        let key = self.keys[(x % len) as usize].clone();
        self.remove(&key);
    }

    fn remove(&mut self, key: &str) {
        let Some(e) = self.entries.remove(key) else {
            return;
        };
        self.keys.swap_remove(e.slot);
        if let Some(moved) = self.keys.get(e.slot).cloned()
            && let Some(m) = self.entries.get_mut(&moved)
        {
            m.slot = e.slot;
        }
        self.by_session_row.remove(&e.session_row);
        if let Some(u) = self.by_user_row.get_mut(&e.user_row) {
            u.sessions.retain(|k| &**k != key);
            if u.sessions.is_empty() {
                self.by_user_row.remove(&e.user_row);
            }
        }
    }
}

/// Whether `seq` says the writer is between dropping entries and knowing its commit.
fn writing(seq: u64) -> bool {
    !seq.is_multiple_of(2)
}
