//! The operator console's statements: the audit log and counts over the outbox. Both backends
//! run these texts unchanged but for placeholder numbering.

use crate::{Arg, Placeholders, Sql};

/// The audit log's columns, in the order [`insert_operator_action`] binds them.
pub const ACTION_COLS: &str = "id, at, operator_id, action, application_id, target, detail";

/// Appends one audit entry.
#[allow(clippy::too_many_arguments)]
pub fn insert_operator_action(
    style: Placeholders,
    id: &str,
    at: i64,
    operator: &str,
    action: &str,
    application: Option<&str>,
    target: &str,
    detail: &str,
) -> Sql {
    let mut q = Sql::new(
        style,
        &format!("INSERT INTO operator_actions ({ACTION_COLS}) VALUES "),
    );
    q.bind_list([
        Arg::Str(id.to_owned()),
        Arg::I64(at),
        Arg::Str(operator.to_owned()),
        Arg::Str(action.to_owned()),
        Arg::OptStr(application.map(str::to_owned)),
        Arg::Str(target.to_owned()),
        Arg::Str(detail.to_owned()),
    ]);
    q
}

/// Audit entries, newest first, optionally of one application or one operator, before a cursor.
pub fn operator_actions(
    style: Placeholders,
    application: Option<&str>,
    operator: Option<&str>,
    before: Option<(i64, &str)>,
    limit: u32,
) -> Sql {
    let mut q = Sql::new(
        style,
        &format!("SELECT {ACTION_COLS} FROM operator_actions WHERE 1 = 1"),
    );
    if let Some(app) = application {
        q.push(" AND application_id = ")
            .bind(Arg::Str(app.to_owned()));
    }
    if let Some(op) = operator {
        q.push(" AND operator_id = ").bind(Arg::Str(op.to_owned()));
    }
    if let Some((at, id)) = before {
        q.push(" AND (at < ")
            .bind(Arg::I64(at))
            .push(" OR (at = ")
            .bind(Arg::I64(at))
            .push(" AND id < ")
            .bind(Arg::Str(id.to_owned()))
            .push("))");
    }
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .bind(Arg::I64(i64::from(limit)));
    q
}

/// `(bucket, type, n)` of an application's events since a time, per bucket of a width.
pub fn count_events(style: Placeholders, app: &str, since: i64, bucket_ms: i64) -> Sql {
    let mut q = Sql::new(style, "SELECT (occurred_at / ");
    // The width is bound twice rather than referred to by number, so both backends' numbering
    // stays sequential.
    q.bind(Arg::I64(bucket_ms))
        .push(") * ")
        .bind(Arg::I64(bucket_ms))
        .push(" AS bucket, type, count(*) AS n FROM events WHERE application_id = ")
        .bind(Arg::Str(app.to_owned()))
        .push(" AND occurred_at >= ")
        .bind(Arg::I64(since))
        .push(" GROUP BY bucket, type ORDER BY bucket");
    q
}

/// An application's newest events about one subject, newest first; `order` is the backend's
/// event order (`seq` on SQLite, `txid, seq` on PostgreSQL) and `cols` its event columns.
pub fn events_about(
    style: Placeholders,
    cols: &str,
    order_desc: &str,
    app: &str,
    subject: &str,
    limit: u32,
) -> Sql {
    let mut q = Sql::new(
        style,
        &format!("SELECT {cols} FROM events WHERE application_id = "),
    );
    q.bind(Arg::Str(app.to_owned()))
        .push(" AND subject = ")
        .bind(Arg::Str(subject.to_owned()))
        .push(" ORDER BY ")
        .push(order_desc)
        .push(" LIMIT ")
        .bind(Arg::I64(i64::from(limit)));
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_their_placeholders_in_order() {
        let q = operator_actions(
            Placeholders::Dollar,
            Some("app_1"),
            None,
            Some((5, "x")),
            10,
        );
        assert!(q.text.contains("application_id = $1"));
        assert!(q.text.contains("(at < $2 OR (at = $3 AND id < $4))"));
        assert!(q.text.ends_with("LIMIT $5"));
        assert_eq!(q.args.len(), 5);
        let ins = insert_operator_action(Placeholders::Question, "i", 1, "o", "a", None, "t", "d");
        assert!(ins.text.ends_with("VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
        assert_eq!(ins.args[4], Arg::OptStr(None));
        let c = count_events(Placeholders::Question, "app_1", 0, 3_600_000);
        assert!(
            c.text
                .starts_with("SELECT (occurred_at / ?1) * ?2 AS bucket")
        );
    }
}
