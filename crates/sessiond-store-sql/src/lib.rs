//! The SQL both backends share. A listing's filters are assembled here once, as text with
//! numbered placeholders and a list of bound values; each backend only says how it numbers
//! placeholders and how it binds a value.
//!
//! # Layout
//! - [`Sql`], [`Arg`], [`Placeholders`]: a statement assembled from fixed fragments, every value
//!   a bound parameter.
//! - [`filters`]: the WHERE and ORDER BY clauses of the user and session listings, a session's
//!   effective status as SQL, and what every session read must say so that sessions deleted in
//!   bulk stay deleted (`live_sessions!`, `not_purged!`, `session_is_live!`).
//! - [`columns`]: values stored as text in both backends (an endpoint's event types).
//! - [`console`]: the operator console's audit log and counts over the outbox.
//! - [`rows`]: one decoder per stored record, over a backend's [`rows::Row`].
//! - [`settings`]: an application's settings as stored (JSON, under their historical names).
//! - [`statements`]: statements both backends run alike, written once ([`dollar!`] numbers
//!   them for PostgreSQL).
//! - `check_migration_list()` (feature `test-util`): the backends' test that their compiled-in
//!   migrations match their folders.

pub mod columns;
pub mod console;
pub mod filters;
pub mod rows;
pub mod settings;
pub mod statements;

/// A bound value of an assembled statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Str(String),
    /// Text or NULL.
    OptStr(Option<String>),
    I64(i64),
    /// An integer or NULL.
    OptI64(Option<i64>),
    Bytes(Vec<u8>),
    /// Bytes or NULL.
    OptBytes(Option<Vec<u8>>),
}

/// How a backend numbers placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `?1, ?2…` (SQLite).
    Question,
    /// `$1, $2…` (PostgreSQL).
    Dollar,
}

/// A statement whose text is assembled from fixed fragments and numbered placeholders only;
/// every value travels as a bound parameter, never in the text.
#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    style: Placeholders,
}

impl Sql {
    pub fn new(style: Placeholders, text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
            style,
        }
    }

    /// Appends fixed SQL text. Never pass it a value: bind values with [`Sql::bind`].
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `a`.
    pub fn bind(&mut self, a: Arg) -> &mut Self {
        self.args.push(a);
        let sigil = match self.style {
            Placeholders::Question => '?',
            Placeholders::Dollar => '$',
        };
        self.text.push(sigil);
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `column = p1, column = p2, …` for the items (an UPDATE's SET list).
    pub fn assignments(
        &mut self,
        items: impl IntoIterator<Item = (&'static str, Arg)>,
    ) -> &mut Self {
        for (i, (column, value)) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push(column).push(" = ").bind(value);
        }
        self
    }

    /// Appends `(p1, p2, …)` for the items.
    pub fn bind_list(&mut self, items: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.text.push('(');
        for (i, a) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(a);
        }
        self.text.push(')');
        self
    }
}

/// The columns a write of `after` over `before` must set (`after.version` is `before.version + 1`):
/// the version and `updated_at` always, then each field that differs, with its value as stored.
/// Both backends set only these: SQLite rewrites the entry of every index that names a column an
/// UPDATE sets, changed or not, and PostgreSQL is spared the re-encoding and re-parsing of the
/// values that stayed (the attributes' JSON above all). A change of user is not covered (it
/// moves the session's generation too): callers write it in full.
pub fn session_changes(
    before: &sessiond_core::session::Session,
    after: &sessiond_core::session::Session,
) -> sessiond_core::store::StoreResult<Vec<(&'static str, Arg)>> {
    let mut set = vec![
        ("version", Arg::I64(after.version)),
        ("updated_at", Arg::I64(after.updated_at.0)),
    ];
    let mut changed = |column: &'static str, differs: bool, value: &dyn Fn() -> Arg| {
        if differs {
            set.push((column, value()));
        }
    };
    changed("status", before.status != after.status, &|| {
        Arg::Str(after.status.as_str().to_owned())
    });
    changed("actor", before.actor != after.actor, &|| {
        Arg::OptStr(after.actor.as_ref().map(serde_json::Value::to_string))
    });
    changed("activity", before.activity != after.activity, &|| {
        Arg::OptBytes(after.activity.clone())
    });
    changed(
        "last_active_organization_id",
        before.last_active_organization_id != after.last_active_organization_id,
        &|| Arg::OptStr(after.last_active_organization_id.clone()),
    );
    changed(
        "last_active_at",
        before.last_active_at != after.last_active_at,
        &|| Arg::I64(after.last_active_at.0),
    );
    changed("abandon_at", before.abandon_at != after.abandon_at, &|| {
        Arg::I64(after.abandon_at.0)
    });
    changed(
        "idle_deadline",
        before.idle_deadline != after.idle_deadline,
        &|| Arg::OptI64(after.idle_deadline.map(|t| t.0)),
    );
    // Encoded only when they changed: a revoke or a touch leaves them as they are.
    if before.attributes != after.attributes {
        set.push((
            "attributes",
            Arg::Str(columns::attributes_text(&after.attributes)?),
        ));
    }
    Ok(set)
}

/// `sql` with every `?N` placeholder written `$N`, for PostgreSQL; SQLite takes the text as it
/// is. Statements both backends run alike are written once, in SQLite's numbering, and turned
/// at compile time (see [`dollar!`]). `$` and `?` are one byte each, so the length is kept.
#[doc(hidden)]
pub const fn dollar_bytes<const N: usize>(sql: &str) -> [u8; N] {
    let b = sql.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if b[i] == b'?' && i + 1 < N && b[i + 1].is_ascii_digit() {
            b'$'
        } else {
            b[i]
        };
        i += 1;
    }
    out
}

/// A statement written once with `?N` placeholders, as PostgreSQL numbers them (`$N`): a
/// `&'static str` made at compile time.
#[macro_export]
macro_rules! dollar {
    ($sql:expr) => {{
        const SQL: &str = $sql;
        const BYTES: [u8; SQL.len()] = $crate::dollar_bytes::<{ SQL.len() }>(SQL);
        const OUT: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("a statement is not UTF-8"),
        };
        OUT
    }};
}

/// Checks a backend's compiled-in migration list against its folder: every `.sql` file in `dir`
/// is listed, in file-name order, nothing else is, and each version is its file name's numeric
/// prefix. For the backends' tests; `Err` says what differs.
#[cfg(any(test, feature = "test-util"))]
pub fn check_migration_list(dir: &std::path::Path, listed: &[(i64, &str)]) -> Result<(), String> {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".sql").map(str::to_owned))
        .collect();
    on_disk.sort();
    let names: Vec<&str> = listed.iter().map(|m| m.1).collect();
    if names != on_disk {
        return Err(format!("listed {names:?}, on disk {on_disk:?}"));
    }
    match listed
        .iter()
        .find(|(v, name)| name.split('_').next().and_then(|p| p.parse().ok()) != Some(*v))
    {
        Some((v, name)) => Err(format!("{name} is listed as version {v}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_renumbered_for_postgres_and_nothing_else_changes() {
        const Q: &str = "SELECT a FROM t WHERE x = ?1 AND y = '?' AND z > ?12 LIMIT ?2";
        const PG: &str = crate::dollar!(Q);
        assert_eq!(
            PG,
            "SELECT a FROM t WHERE x = $1 AND y = '?' AND z > $12 LIMIT $2"
        );
        assert_eq!(
            crate::dollar!("DELETE FROM t WHERE id = ?1"),
            "DELETE FROM t WHERE id = $1"
        );
    }

    use super::*;

    #[test]
    fn values_are_placeholders_in_each_backends_numbering() {
        for (style, want) in [
            (
                Placeholders::Question,
                "SELECT 1 WHERE a = ?1 AND b IN (?2, ?3)",
            ),
            (
                Placeholders::Dollar,
                "SELECT 1 WHERE a = $1 AND b IN ($2, $3)",
            ),
        ] {
            let mut sql = Sql::new(style, "SELECT 1 WHERE a = ");
            sql.bind(Arg::Str("x'; DROP TABLE t".into()))
                .push(" AND b IN ")
                .bind_list([Arg::I64(1), Arg::I64(2)]);
            assert_eq!(sql.text, want);
            assert_eq!(sql.args.len(), 3);
        }
    }
}
