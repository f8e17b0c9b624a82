//! Session creation under load, grouped: concurrent `insert_session` calls go into one
//! multi-row statement (one plan, one commit, one WAL flush) instead of one statement each.
//!
//! Why: under W1 (many clients creating sessions) PostgreSQL's own CPU was the limit — about
//! 290 µs per single-row insert with its event, most of it per-statement work (executor start,
//! locks, relation opens, commit) rather than the rows themselves. A statement of 16 rows costs
//! about a third of that per row.
//!
//! How: a few worker tasks (on the runtime that opened the store, so no thread of their own)
//! take what callers queued: the first waiting item, then whatever else is already queued, up to
//! [`MAX_ROWS`]. There is no timer: a lone call is executed at once as a group of one, so nothing
//! waits for company; groups grow only while earlier ones are in flight. Each caller is answered
//! after its group's statement committed, so an acknowledged session is durable as before.
//! A group whose statement fails is run again row by row, so one bad row (a duplicate id) fails
//! only its own caller; a user missing from the application fails only its row (`NotFound`), as
//! the single-row statement does.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use sessiond_core::events::NewEvent;
use sessiond_core::session::Session;
use sessiond_core::store::{StoreError, StoreResult};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::pool::ConnPool;
use crate::{get, map_err};

/// Rows one statement carries at most.
pub(crate) const MAX_ROWS: usize = 64;
/// Groups in flight at once (each holds one pooled connection while it runs).
const WORKERS: usize = 4;
/// Calls queued at most; past it callers wait for room (back-pressure, not an error).
const QUEUE: usize = 4096;

/// One queued session with its event, and where its answer goes.
struct Pending {
    session: Session,
    event: Option<NewEvent>,
    reply: oneshot::Sender<StoreResult<()>>,
}

/// The queue in front of the workers; dropping the last handle stops them.
#[derive(Debug)]
pub(crate) struct GroupedInserts {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

impl GroupedInserts {
    /// Starts the workers on the current runtime; `None` outside one (callers then insert one
    /// row at a time).
    pub(crate) fn start(pool: ConnPool) -> Option<Arc<Self>> {
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WORKERS {
            rt.spawn(work(pool.clone(), rx.clone()));
        }
        Some(Arc::new(GroupedInserts { queue }))
    }

    /// Inserts `s` (and `event`, if any) with whatever else is queued; answers once committed.
    pub(crate) async fn insert(&self, s: &Session, event: Option<&NewEvent>) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            session: s.clone(),
            event: event.cloned(),
            reply,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| StoreError::unavailable("the store is closing"))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the store is closing"))?
    }
}

async fn work(pool: ConnPool, rx: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    let mut group = Vec::with_capacity(MAX_ROWS);
    loop {
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => group.push(first),
                None => return,
            }
            while group.len() < MAX_ROWS {
                match rx.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
        }
        run(&pool, &mut group).await;
    }
}

/// Runs one group and answers every caller in it.
async fn run(pool: &ConnPool, group: &mut Vec<Pending>) {
    if let [one] = group.as_slice() {
        let result = insert_one(pool, &one.session, one.event.as_ref()).await;
        answer(group, |_| result.clone());
        return;
    }
    match insert_many(pool, group).await {
        Ok(inserted) => answer(group, |p| {
            if inserted.contains(p.session.id.as_str()) {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        }),
        // The database cannot be reached: every row would wait out the pool on its own.
        Err(e @ StoreError::Unavailable(_)) => answer(group, |_| Err(e.clone())),
        Err(_) => {
            // One row spoiled the statement: each row on its own, so the error reaches only the
            // callers it belongs to.
            for p in group.drain(..) {
                let result = insert_one(pool, &p.session, p.event.as_ref()).await;
                let _ = p.reply.send(result);
            }
        }
    }
}

fn answer(group: &mut Vec<Pending>, result: impl Fn(&Pending) -> StoreResult<()>) {
    for p in group.drain(..) {
        let r = result(&p);
        // A caller that went away (request cancelled) no longer needs its answer.
        let _ = p.reply.send(r);
    }
}

/// The columns every insert writes, in the order both statements bind them.
macro_rules! insert_cols {
    () => {
        "id, application_id, user_id, client_id, status, actor, activity, \
         last_active_organization_id, created_at, updated_at, last_active_at, expire_at, \
         abandon_at, idle_deadline, version, attributes, sso, user_generation"
    };
}

/// One session and its event in one statement; `NotFound` when the user is not the
/// application's.
pub(crate) async fn insert_one(
    pool: &ConnPool,
    s: &Session,
    event: Option<&NewEvent>,
) -> StoreResult<()> {
    let actor = s.actor.as_ref().map(Value::to_string);
    let q = sqlx::query(concat!(
        "WITH ins AS (INSERT INTO sessions (",
        insert_cols!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         u.session_generation FROM users u WHERE u.application_id = $2 AND u.id = $3 RETURNING 1), ",
        crate::events::event_cte!("ins", 18, 19, 20, 21, 22, 23),
        " SELECT count(*) AS n FROM ins"
    ))
    .bind(s.id.as_str())
    .bind(s.application_id.as_str())
    .bind(s.user_id.as_str())
    .bind(s.client_id.as_str())
    .bind(s.status.as_str())
    .bind(actor)
    .bind(s.activity.as_deref())
    .bind(s.last_active_organization_id.as_deref())
    .bind(s.created_at.0)
    .bind(s.updated_at.0)
    .bind(s.last_active_at.0)
    .bind(s.expire_at.0)
    .bind(s.abandon_at.0)
    .bind(s.idle_deadline.map(|t| t.0))
    .bind(s.version)
    .bind(super::attributes_json(s)?)
    .bind(s.sso.as_deref());
    let row = crate::events::bind(q, event)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    if get::<i64>(&row, "n")? == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// `SELECT * FROM unnest(…)` over [`Columns`] bound at `$1` to `$23`: one row per session, the
/// columns named `id, application_id, user_id, client_id, status, actor, activity, org,
/// created_at, updated_at, last_active_at, expire_at, abandon_at, idle_deadline, version,
/// attributes, sso` and its event's `event_id, event_app, event_type, event_subject, event_at,
/// event_data`.
macro_rules! unnest_sessions {
    () => {
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::bytea[], $8::text[], $9::int8[], $10::int8[], $11::int8[], \
         $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::text[], $17::bytea[], \
         $18::text[], $19::text[], $20::text[], $21::text[], $22::int8[], $23::text[]) \
         AS v(id, application_id, user_id, client_id, status, actor, activity, org, created_at, \
         updated_at, last_active_at, expire_at, abandon_at, idle_deadline, version, attributes, \
         sso, event_id, event_app, event_type, event_subject, event_at, event_data)"
    };
}
pub(super) use unnest_sessions;

/// Sessions with their events, column by column, as `unnest` takes them (`$1` to `$23` in the
/// order of [`Columns::bind`], named as in [`unnest_sessions!`]). Grouped inserts and
/// `update_sessions` both write through it.
#[derive(Default)]
pub(super) struct Columns {
    id: Vec<String>,
    application_id: Vec<String>,
    user_id: Vec<String>,
    client_id: Vec<String>,
    status: Vec<String>,
    actor: Vec<Option<String>>,
    activity: Vec<Option<Vec<u8>>>,
    organization: Vec<Option<String>>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
    last_active_at: Vec<i64>,
    expire_at: Vec<i64>,
    abandon_at: Vec<i64>,
    idle_deadline: Vec<Option<i64>>,
    version: Vec<i64>,
    attributes: Vec<String>,
    sso: Vec<Option<Vec<u8>>>,
    event_id: Vec<Option<String>>,
    event_app: Vec<Option<String>>,
    event_type: Vec<Option<String>>,
    event_subject: Vec<Option<String>>,
    event_at: Vec<Option<i64>>,
    event_data: Vec<Option<String>>,
}

impl Columns {
    pub(super) fn of<'a>(
        rows: impl IntoIterator<Item = (&'a Session, Option<&'a NewEvent>)>,
    ) -> StoreResult<Self> {
        let mut c = Columns::default();
        for (s, e) in rows {
            c.id.push(s.id.as_str().to_owned());
            c.application_id.push(s.application_id.as_str().to_owned());
            c.user_id.push(s.user_id.as_str().to_owned());
            c.client_id.push(s.client_id.as_str().to_owned());
            c.status.push(s.status.as_str().to_owned());
            c.actor.push(s.actor.as_ref().map(Value::to_string));
            c.activity.push(s.activity.clone());
            c.organization.push(s.last_active_organization_id.clone());
            c.created_at.push(s.created_at.0);
            c.updated_at.push(s.updated_at.0);
            c.last_active_at.push(s.last_active_at.0);
            c.expire_at.push(s.expire_at.0);
            c.abandon_at.push(s.abandon_at.0);
            c.idle_deadline.push(s.idle_deadline.map(|t| t.0));
            c.version.push(s.version);
            c.attributes.push(super::attributes_json(s)?);
            c.sso.push(s.sso.clone());
            c.event_id.push(e.map(|e| e.id.clone()));
            c.event_app
                .push(e.map(|e| e.application_id.as_str().to_owned()));
            c.event_type.push(e.map(|e| e.kind.as_str().to_owned()));
            c.event_subject.push(e.map(|e| e.subject.clone()));
            c.event_at.push(e.map(|e| e.occurred_at.0));
            c.event_data.push(e.map(|e| e.data.to_string()));
        }
        Ok(c)
    }

    /// Binds the 23 arrays as `$1` to `$23`.
    pub(super) fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let c = self;
        q.bind(&c.id)
            .bind(&c.application_id)
            .bind(&c.user_id)
            .bind(&c.client_id)
            .bind(&c.status)
            .bind(&c.actor)
            .bind(&c.activity)
            .bind(&c.organization)
            .bind(&c.created_at)
            .bind(&c.updated_at)
            .bind(&c.last_active_at)
            .bind(&c.expire_at)
            .bind(&c.abandon_at)
            .bind(&c.idle_deadline)
            .bind(&c.version)
            .bind(&c.attributes)
            .bind(&c.sso)
            .bind(&c.event_id)
            .bind(&c.event_app)
            .bind(&c.event_type)
            .bind(&c.event_subject)
            .bind(&c.event_at)
            .bind(&c.event_data)
    }
}

/// Every row of `group` whose user is its application's, with their events, in one statement;
/// returns the ids inserted.
async fn insert_many(pool: &ConnPool, group: &[Pending]) -> StoreResult<HashSet<String>> {
    let c = Columns::of(group.iter().map(|p| (&p.session, p.event.as_ref())))?;
    let rows = c.bind(sqlx::query(concat!(
        "WITH v AS (",
        unnest_sessions!(),
        "), ins AS (INSERT INTO sessions (",
        insert_cols!(),
        ") SELECT v.id, v.application_id, v.user_id, v.client_id, v.status, v.actor, v.activity, \
         v.org, v.created_at, v.updated_at, v.last_active_at, v.expire_at, v.abandon_at, \
         v.idle_deadline, v.version, v.attributes, v.sso, u.session_generation \
         FROM v JOIN users u ON u.application_id = v.application_id AND u.id = v.user_id \
         RETURNING id), \
         ev AS (INSERT INTO events (id, application_id, type, subject, occurred_at, data) \
         SELECT v.event_id, v.event_app, v.event_type, v.event_subject, v.event_at, \
         v.event_data FROM v JOIN ins ON ins.id = v.id WHERE v.event_id IS NOT NULL) \
         SELECT id FROM ins"
    )))
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    rows.iter().map(|r| get::<String>(r, "id")).collect()
}
