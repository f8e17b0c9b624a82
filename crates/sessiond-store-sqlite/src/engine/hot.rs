//! Sessions read with their users, kept in memory and dropped row by row as the writer changes
//! them: reading a session again costs a hash lookup instead of a read transaction (a third of
//! the server's CPU on the Equisoft read path, profiled).
//!
//! An entry is never served after the row it copies has changed. Three rules make that so:
//!
//! 1. **Every change of this process is seen.** SQLite's update hook on the writer's connection
//!    reports each row of `sessions` and `users` that a statement inserts, updates or deletes,
//!    foreign-key cascades included. Before its COMMIT the writer drops the entries of those rows,
//!    but one: a session row whose last change was an update conditional on the version the row
//!    was read at ([`HotCache::wrote`]) keeps its entry, which takes the state that update wrote
//!    once the commit is known to be the writer's alone (rule 2). Every change of a session row
//!    moves its version, so the row held what was read and now holds what was written. A
//!    session the batch inserted and read back with its user ([`HotCache::inserted`]) becomes an
//!    entry the same way, unless a later statement of the batch changed it without saying what
//!    it wrote, or changed its user. Any rollback forgets what the statements said of their rows.
//!    The hook is blind to `WITHOUT ROWID` tables: the one such table the read joins,
//!    `session_purges` (which hides lapsed sessions), is written only by a write that calls
//!    [`HotCache::note_all`], and then every entry goes.
//! 2. **A change of anyone else empties the cache.** An entry is served only while the file's
//!    last commit, read from the wal-index, is one the cache knows: the state it was emptied in,
//!    or the writer's own commits since. The writer recognises its commit by SQLite's change
//!    counter, which every commit that writes increments: one more than at its BEGIN (taken
//!    under the write lock) is its own, anything else means another connection or process
//!    committed too. A batch whose statements changed nothing writes nothing (SQLite's WAL hook
//!    says which), and the counter must then be where it was at its BEGIN. (Expecting a move of
//!    one for every batch emptied the cache at each such batch, and the server's own writes
//!    outside requests, at startup and in the background jobs, include some.)
//! 3. **A read racing a change of its rows is not kept.** `seq` goes odd when the writer starts
//!    dropping entries and even again once its commit is known, and the rows each of its last
//!    batches changed are kept with the `seq` it began at. A read that fills the cache is kept
//!    only if every move of `seq` since the read began is such a batch and none of them changed
//!    the session's or the user's row. (Keeping a read only when `seq` had not moved at all lost
//!    close to half of the fills under a steady stream of touches: the commits' fsyncs take
//!    most of the time.)
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
    /// Each change of a `sessions` row, in order, with the row as the statement that made it
    /// left it, where that statement said so ([`HotCache::wrote`], [`HotCache::inserted`]).
    sessions: Vec<(i64, Option<Box<Wrote>>)>,
    users: Vec<i64>,
    everything: bool,
}

/// A session the committing batch inserted, with its user and both rows' rowids.
struct Fresh {
    session: Session,
    session_row: i64,
    user: StoredUser,
    user_row: i64,
}

/// A `sessions` row as the statement that changed it left it.
struct Wrote {
    session: Session,
    /// For a row the batch inserted: its user, and the user's rowid.
    user: Option<(StoredUser, i64)>,
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
    /// Entries whose rows the committing batch rewrote, with what the rows hold after it: they
    /// keep the state before until the commit is known to be the writer's alone.
    pending: Vec<(Arc<str>, Box<Wrote>)>,
    /// Sessions the committing batch inserted, by rowid, with their users: they become entries
    /// once the commit is known to be the writer's alone.
    fresh: Vec<Fresh>,
    /// The writer's last batches, oldest first (see the module's rule 3).
    recent: std::collections::VecDeque<Batch>,
}

/// What one of the writer's batches changed, for the reads it raced.
struct Batch {
    /// `seq` when it began (even); it ends at `start + 2`.
    start: u64,
    sessions: Vec<i64>,
    users: Vec<i64>,
}

/// How many batches [`State::recent`] keeps: a read spanning more is not kept.
const RECENT_BATCHES: usize = 32;

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

    /// Keeps what a read begun with `ticket` found, unless its rows may have changed since.
    pub(crate) fn fill(&self, ticket: Ticket, pair: &Pair, session_row: i64, user_row: i64) {
        let mut st = lock(&self.state);
        if !st.unchanged_since(ticket.0, session_row, user_row) {
            return;
        }
        // An entry already there for the user holds the same row: a change to it since would
        // have dropped that entry, or refused this fill.
        st.insert(
            self.capacity,
            pair.0.clone(),
            session_row,
            &pair.1,
            user_row,
        );
    }

    /// The writer's update hook: a row of `table` changed.
    pub(crate) fn note(&self, table: &str, row: i64) {
        let mut t = lock(&self.touched);
        match table {
            "sessions" => t.sessions.push((row, None)),
            "users" => t.users.push(row),
            _ => {}
        }
    }

    /// The rowid of the cached session `id` of application `app`. A row keeps its rowid while
    /// it lives, and a deleted row's entry goes with it, so this is the row's; the writer uses it
    /// only as a hint all the same (see `write_changes`).
    pub(crate) fn session_row(&self, app: &str, id: &str) -> Option<i64> {
        let st = lock(&self.state);
        st.entries
            .get(id)
            .filter(|e| e.session.application_id.as_str() == app)
            .map(|e| e.session_row)
    }

    /// Where the next statement's changes of `sessions` rows will be noted (for [`Self::wrote`]).
    pub(crate) fn mark(&self) -> usize {
        lock(&self.touched).sessions.len()
    }

    /// The statement run since `mark` changed one row of `sessions`, and `session` is that row
    /// as it now holds (what the statement wrote over the version it matched): if the batch
    /// commits alone, a cached entry of the row is kept with this state rather than dropped, so
    /// the next read of a session this node just touched costs no read transaction.
    pub(crate) fn wrote(&self, mark: usize, session: Session) {
        self.read_back(
            mark,
            Wrote {
                session,
                user: None,
            },
        );
    }

    /// The statement run since `mark` inserted one row of `sessions`, read back (after it, in
    /// the same transaction) as `pair`, with the user's rowid: if the batch commits alone, the
    /// session becomes an entry, so reading a session right after creating it costs no read
    /// transaction.
    pub(crate) fn inserted(&self, mark: usize, pair: Pair, user_row: i64) {
        let (session, user) = pair;
        self.read_back(
            mark,
            Wrote {
                session,
                user: Some((user, user_row)),
            },
        );
    }

    fn read_back(&self, mark: usize, wrote: Wrote) {
        let mut t = lock(&self.touched);
        if t.sessions.len() == mark + 1 {
            t.sessions[mark].1 = Some(Box::new(wrote));
        }
    }

    /// The writer rolled back (a whole batch or one request's savepoint): what the statements
    /// said of their rows may not hold, so every row noted so far is only dropped.
    pub(crate) fn rolled_back(&self) {
        for (_, state) in &mut lock(&self.touched).sessions {
            *state = None;
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
        let start = st.seq;
        st.seq += 1;
        st.pending.clear();
        st.fresh.clear();
        let known = begun.is_some() && st.known == begun;
        if !known || touched.everything {
            st.clear();
            st.known = begun;
        }
        // In order, so a row's last change decides: a state its statement gave is kept for the
        // commit (the entry holds what the file holds until then), and a change with none drops
        // the entry, and with it any state an earlier statement of the batch gave. The same goes
        // for a row the batch inserted, which has no entry yet.
        let mut rows = Vec::with_capacity(touched.sessions.len());
        let mut fresh: HashMap<i64, Box<Wrote>> = HashMap::new();
        for (row, state) in touched.sessions {
            rows.push(row);
            if let Some(key) = st.by_session_row.get(&row).cloned() {
                match state {
                    Some(after) => st.pending.push((key, after)),
                    None => st.remove(&key),
                }
                continue;
            }
            match state {
                Some(new) if new.user.is_some() => {
                    fresh.insert(row, new);
                }
                Some(after) => {
                    if let Some(new) = fresh.get_mut(&row) {
                        new.session = after.session;
                    }
                }
                None => {
                    fresh.remove(&row);
                }
            }
        }
        // A row of `session_purges` may hide what was read back.
        if !touched.everything {
            st.fresh = fresh
                .into_iter()
                .filter_map(|(session_row, new)| {
                    let Wrote { session, user } = *new;
                    let (user, user_row) = user?;
                    (!touched.users.contains(&user_row)).then_some(Fresh {
                        session,
                        session_row,
                        user,
                        user_row,
                    })
                })
                .collect();
        }
        if !known || touched.everything {
            return;
        }
        for row in &touched.users {
            if let Some(u) = st.by_user_row.get(row) {
                for key in u.sessions.clone() {
                    st.remove(&key);
                }
            }
            st.by_user_row.remove(row);
        }
        st.record(Batch {
            start,
            sessions: rows,
            users: touched.users,
        });
    }

    /// After the writer's COMMIT (`committed` whether it succeeded, `wrote` whether it wrote to
    /// the log; `after` the file's state read just after): its commit becomes the known state if
    /// it was the only one.
    pub(crate) fn after_commit(
        &self,
        begun: Option<Commit>,
        after: Option<Commit>,
        committed: bool,
        wrote: bool,
    ) {
        let mut st = lock(&self.state);
        let only_ours = match (begun, after) {
            (Some(b), Some(a)) => {
                committed && a.change_counter() == b.change_counter().wrapping_add(u32::from(wrote))
            }
            _ => false,
        };
        let pending = std::mem::take(&mut st.pending);
        let fresh = std::mem::take(&mut st.fresh);
        if only_ours {
            st.known = after;
            // Entries of users the batch changed are gone by now, and with them these.
            for (key, wrote) in pending {
                if let Some(e) = st.entries.get_mut(&key) {
                    e.session = wrote.session;
                }
            }
            // Their users were left alone by the batch (`before_commit`), so an entry already
            // there for one holds the same row.
            for new in fresh {
                st.insert(
                    self.capacity,
                    new.session,
                    new.session_row,
                    &new.user,
                    new.user_row,
                );
            }
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
            // Nothing changed: a batch of no rows, so reads racing it are kept.
            let start = st.seq;
            st.record(Batch {
                start,
                sessions: Vec::new(),
                users: Vec::new(),
            });
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
    /// Whether a read begun at `seq` still holds for these rows: each move of `seq` since was a
    /// batch on record (possibly still committing) that changed neither row. A read begun while
    /// a batch was committing saw the file before or after it; either is right if the batch left
    /// these rows alone.
    fn unchanged_since(&self, seq: u64, session_row: i64, user_row: i64) -> bool {
        let began = seq & !1;
        let mut at = began;
        for b in self.recent.iter().skip_while(|b| b.start < began) {
            if b.start != at || b.sessions.contains(&session_row) || b.users.contains(&user_row) {
                return false;
            }
            at = b.start + 2;
        }
        // Then nothing else: `seq` is where the last batch left it, or inside it.
        self.seq == at || self.seq + 1 == at
    }

    /// Keeps what a batch changed, for the fills that raced it; the oldest record goes first.
    fn record(&mut self, batch: Batch) {
        if self.recent.len() == RECENT_BATCHES {
            self.recent.pop_front();
        }
        self.recent.push_back(batch);
    }

    /// Adds an entry unless the session has one; a full cache first evicts one at random.
    fn insert(
        &mut self,
        capacity: usize,
        session: Session,
        session_row: i64,
        user: &StoredUser,
        user_row: i64,
    ) {
        if self.entries.contains_key(session.id.as_str()) {
            return;
        }
        if self.entries.len() >= capacity {
            self.evict_one();
        }
        let key: Arc<str> = Arc::from(session.id.as_str());
        let slot = self.keys.len();
        self.keys.push(key.clone());
        self.by_session_row.insert(session_row, key.clone());
        self.by_user_row
            .entry(user_row)
            .or_insert_with(|| UserRow {
                user: user.clone(),
                sessions: Vec::new(),
            })
            .sessions
            .push(key.clone());
        self.entries.insert(
            key,
            Box::new(Entry {
                session,
                session_row,
                user_row,
                slot,
            }),
        );
    }

    fn clear(&mut self) {
        self.pending.clear();
        self.fresh.clear();
        self.recent.clear();
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

#[cfg(test)]
mod tests {
    use super::{Commit, HotCache, Lookup, Pair, Ticket};
    use sessiond_core::Timestamp;
    use sessiond_core::application::{AppId, AppSettings};
    use sessiond_core::ids::{ClientId, UserId};
    use sessiond_core::session::Session;
    use sessiond_core::store::StoredUser;

    const SESSION_ROW: i64 = 7;
    const USER_ROW: i64 = 3;

    fn pair() -> Pair {
        let app = AppId("app_hot".into());
        let user = StoredUser {
            id: UserId::new(),
            application_id: app.clone(),
            external_id: None,
            profile_sealed: vec![1],
            identifiers: Vec::new(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            version: 1,
        };
        let settings = AppSettings::defaults_for(&app);
        let s = Session::new(
            &app,
            &settings,
            user.id.clone(),
            ClientId::new(),
            false,
            Timestamp(0),
        );
        (s, user)
    }

    /// The ticket of a read of `p` that missed, at the commit numbered 1.
    fn missed(hot: &HotCache, p: &Pair) -> Ticket {
        match hot.lookup(Some(Commit::with_counter(1)), "app_hot", p.0.id.as_str()) {
            Lookup::Miss(ticket) => ticket,
            Lookup::Hit(_) | Lookup::Bypass => panic!("a miss"),
        }
    }

    /// A cache holding `p`, known exact for the commit numbered 1.
    fn cached(p: &Pair) -> HotCache {
        let hot = HotCache::new(10);
        hot.fill(missed(&hot, p), p, SESSION_ROW, USER_ROW);
        hot
    }

    /// The writer's commit numbered 2, begun at 1, after its statements noted their rows.
    fn commit(hot: &HotCache, committed: bool) {
        commit_seeing(hot, 2, committed, true);
    }

    /// The writer's commit begun at the state numbered 1, after which the file is at `after`;
    /// `wrote`: whether the batch wrote to the log.
    fn commit_seeing(hot: &HotCache, after: u32, committed: bool, wrote: bool) {
        hot.before_commit(Some(Commit::with_counter(1)));
        hot.after_commit(
            Some(Commit::with_counter(1)),
            Some(Commit::with_counter(after)),
            committed,
            wrote,
        );
    }

    fn held(hot: &HotCache, p: &Pair, at: u32) -> Option<Session> {
        match hot.lookup(Some(Commit::with_counter(at)), "app_hot", p.0.id.as_str()) {
            Lookup::Hit(pair) => Some(pair.0),
            Lookup::Miss(_) | Lookup::Bypass => None,
        }
    }

    /// The writer's batch: its statement changes the row (its new state given as `after`
    /// unless `None`), then maybe rolls back, then commits (or fails to).
    fn batch(hot: &HotCache, after: Option<&Session>, roll_back: bool, committed: bool) {
        let mark = hot.mark();
        hot.note("sessions", SESSION_ROW);
        if let Some(after) = after {
            hot.wrote(mark, after.clone());
        }
        if roll_back {
            hot.rolled_back();
        }
        commit(hot, committed);
    }

    #[test]
    fn a_row_whose_new_state_is_given_keeps_its_entry_with_it() {
        let p = pair();
        let hot = cached(&p);
        let mut after = p.0.clone();
        after.version += 1;
        batch(&hot, Some(&after), false, true);
        assert_eq!(held(&hot, &p, 2), Some(after));
    }

    #[test]
    fn a_row_changed_without_its_new_state_is_dropped() {
        let p = pair();
        let hot = cached(&p);
        batch(&hot, None, false, true);
        assert_eq!(held(&hot, &p, 2), None);
    }

    #[test]
    fn a_rollback_forgets_the_states_given() {
        let p = pair();
        let hot = cached(&p);
        let mut after = p.0.clone();
        after.version += 1;
        batch(&hot, Some(&after), true, true);
        assert_eq!(
            held(&hot, &p, 2),
            None,
            "dropped, never the rolled-back state"
        );
    }

    #[test]
    fn a_failed_commit_keeps_nothing() {
        let p = pair();
        let hot = cached(&p);
        let mut after = p.0.clone();
        after.version += 1;
        batch(&hot, Some(&after), false, false);
        assert_eq!(held(&hot, &p, 2), None);
        assert_eq!(hot.len(), 0);
    }

    /// The writer's batch inserting the session of `p` at `SESSION_ROW`, read back with its
    /// user; then `more` runs in the same batch before the commit.
    fn insert_batch(hot: &HotCache, p: &Pair, more: impl FnOnce(&HotCache), committed: bool) {
        let mark = hot.mark();
        hot.note("sessions", SESSION_ROW);
        hot.inserted(mark, p.clone(), USER_ROW);
        more(hot);
        commit(hot, committed);
    }

    /// A cache that has adopted the file's state numbered 1 (a read missed there).
    fn adopted(p: &Pair) -> HotCache {
        let hot = HotCache::new(10);
        let _ = missed(&hot, p);
        hot
    }

    #[test]
    fn a_session_inserted_and_read_back_is_an_entry_once_committed_alone() {
        let p = pair();
        let hot = adopted(&p);
        insert_batch(&hot, &p, |_| {}, true);
        assert_eq!(held(&hot, &p, 2), Some(p.0.clone()));

        // Before any read adopted a state, the writer's own commit is one the cache knows.
        let cold = HotCache::new(10);
        insert_batch(&cold, &p, |_| {}, true);
        assert_eq!(held(&cold, &p, 2), Some(p.0.clone()));
    }

    #[test]
    fn an_insert_takes_the_state_a_later_statement_read_back() {
        let p = pair();
        let hot = adopted(&p);
        let mut after = p.0.clone();
        after.version += 1;
        insert_batch(
            &hot,
            &p,
            |hot| {
                let mark = hot.mark();
                hot.note("sessions", SESSION_ROW);
                hot.wrote(mark, after.clone());
            },
            true,
        );
        assert_eq!(held(&hot, &p, 2), Some(after));
    }

    #[test]
    fn an_insert_is_not_kept_when_the_batch_changes_it_or_its_user_unread() {
        let p = pair();
        let unread: [&dyn Fn(&HotCache); 4] = [
            &|hot| hot.note("sessions", SESSION_ROW),
            &|hot| hot.note("users", USER_ROW),
            &|hot| hot.note_all(),
            &|hot| hot.rolled_back(),
        ];
        for (i, more) in unread.into_iter().enumerate() {
            let hot = adopted(&p);
            insert_batch(&hot, &p, more, true);
            assert_eq!(held(&hot, &p, 2), None, "case {i}");
        }
    }

    #[test]
    fn an_insert_whose_commit_failed_or_was_not_alone_is_not_kept() {
        let p = pair();
        let hot = adopted(&p);
        insert_batch(&hot, &p, |_| {}, false);
        assert_eq!(hot.len(), 0);

        let hot = adopted(&p);
        let mark = hot.mark();
        hot.note("sessions", SESSION_ROW);
        hot.inserted(mark, p.clone(), USER_ROW);
        // Another connection committed too: 3, not 2.
        commit_seeing(&hot, 3, true, true);
        assert_eq!(hot.len(), 0);
    }

    #[test]
    fn a_batch_that_wrote_nothing_keeps_the_cache_unless_another_committed() {
        let p = pair();
        let hot = cached(&p);
        commit_seeing(&hot, 1, true, false);
        assert_eq!(held(&hot, &p, 1), Some(p.0.clone()), "nothing changed");

        // The counter moved, and not by this batch: another connection committed after it.
        commit_seeing(&hot, 2, true, false);
        assert_eq!(hot.len(), 0);
        assert_eq!(held(&hot, &p, 2), None);
    }

    #[test]
    fn a_fill_racing_a_change_of_its_row_is_refused_and_of_another_row_kept() {
        let p = pair();
        for (row, kept) in [(SESSION_ROW, false), (SESSION_ROW + 1, true)] {
            let hot = HotCache::new(10);
            let ticket = missed(&hot, &p);
            // A batch commits while the read that will fill is running.
            hot.note("sessions", row);
            commit(&hot, true);
            hot.fill(ticket, &p, SESSION_ROW, USER_ROW);
            assert_eq!(held(&hot, &p, 2).is_some(), kept, "row {row}");
        }
    }
}
