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

pub mod columns;
pub mod console;
pub mod filters;
pub mod rows;
pub mod settings;

/// A bound value of an assembled statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Str(String),
    /// Text or NULL.
    OptStr(Option<String>),
    I64(i64),
    Bytes(Vec<u8>),
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

#[cfg(test)]
mod tests {
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
