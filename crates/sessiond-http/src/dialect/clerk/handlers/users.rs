//! Users: create, list, count, read, update, metadata, passwords, delete.

use crate::AppState;
use crate::auth::Caller;
use crate::dialect::clerk::error::ClerkError;
use crate::dialect::clerk::input::{Body, Query};
use crate::dialect::clerk::{ClerkJson, ClerkResult, views};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::Value;
use sessiond_core::ids::UserId;
use sessiond_core::user::{
    NewUser, PasswordCheck, PasswordInput, UserOrder, UserPatch, UserQuery, UserSearch,
    UserSortField,
};

use super::*;

// ---- users ----

pub(super) const USER_CREATE_FIELDS: [&str; 17] = [
    "locale",
    "external_id",
    "first_name",
    "last_name",
    "username",
    "email_address",
    "phone_number",
    "image_url",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
    "created_at",
    "skip_password_checks",
    "skip_password_requirement",
    "password",
    "password_digest",
    "password_hasher",
];

pub(super) const USER_UPDATE_FIELDS: [&str; 17] = [
    "locale",
    "notify_primary_email_address_changed",
    "external_id",
    "first_name",
    "last_name",
    "username",
    "image_url",
    "primary_email_address_id",
    "primary_phone_number_id",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
    "password",
    "password_digest",
    "password_hasher",
    "skip_password_checks",
    "sign_out_of_other_sessions",
];

/// `password`, or `password_digest` with `password_hasher` (an import from another system).
pub(super) fn password_input(b: &Body) -> Result<Option<PasswordInput>, ClerkError> {
    let skip_checks = b.bool("skip_password_checks")?.unwrap_or(false);
    let hasher = b.str("password_hasher")?;
    match (b.str("password")?, b.str("password_digest")?) {
        (Some(_), Some(_)) => Err(ClerkError::value_invalid(
            "password_digest",
            "password and password_digest cannot be given together",
        )),
        (Some(password), None) => Ok(Some(PasswordInput::Plain {
            password,
            skip_checks,
        })),
        (None, Some(digest)) => {
            let hasher = hasher.ok_or_else(|| ClerkError::missing("password_hasher"))?;
            Ok(Some(PasswordInput::Digest { hasher, digest }))
        }
        (None, None) if hasher.is_some() => Err(ClerkError::missing("password_digest")),
        (None, None) => Ok(None),
    }
}

/// Clerk takes `created_at` as an RFC 3339 date-time string.
pub(super) fn parse_created_at(v: &str) -> Result<sessiond_core::Timestamp, ClerkError> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| sessiond_core::Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| {
            ClerkError::value_invalid("created_at", "created_at must be an RFC 3339 date-time")
        })
}

#[utoipa::path(post, path = "/v1/users", tag = TAG, security(("secret_key" = [])),
    request_body(content = Object),
    responses((status = 200, description = "User", body = Object), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn create_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> ClerkResult {
    let b = Body::parse(&body)?;
    b.only(&USER_CREATE_FIELDS)?;
    // sessiond never requires a password, so there is no requirement to skip.
    b.bool("skip_password_requirement")?;
    let input = NewUser {
        external_id: b.str("external_id")?,
        first_name: b.str("first_name")?,
        last_name: b.str("last_name")?,
        username: b.str("username")?,
        email_addresses: b.strings("email_address")?,
        phone_numbers: b.strings("phone_number")?,
        image_url: b.str("image_url")?,
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        created_at: b
            .str("created_at")?
            .as_deref()
            .map(parse_created_at)
            .transpose()?,
        locale: b.str("locale")?,
        password: password_input(&b)?,
    };
    let u = st
        .login
        .create_user(&app, input, st.clock.now())
        .await
        .map_err(core(""))?;
    Ok(ClerkJson::from(views::user(&u)))
}

#[utoipa::path(get, path = "/v1/users", tag = TAG, security(("secret_key" = [])),
    params(("email_address" = Option<Vec<String>>, Query), ("external_id" = Option<Vec<String>>, Query), ("user_id" = Option<Vec<String>>, Query),
           ("query" = Option<String>, Query, description = "Partial match on emails, phone numbers, username, names, user id and external id"),
           ("email_address_query" = Option<String>, Query), ("phone_number_query" = Option<String>, Query), ("username_query" = Option<String>, Query), ("name_query" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("offset" = Option<u64>, Query),
           ("order_by" = Option<String>, Query, description = "`[+|-]` created_at, updated_at, email_address, first_name, last_name, phone_number, username, last_active_at or last_sign_in_at; default -created_at")),
    responses((status = 200, description = "Array of users, newest first", body = Object)))]
pub async fn list_users(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> ClerkResult {
    let (users, _) = query_users(&st, &app, q.as_deref(), true).await?;
    Ok(ClerkJson::from(Value::Array(users)))
}

#[utoipa::path(get, path = "/v1/users/count", tag = TAG, security(("secret_key" = [])),
    params(("email_address" = Option<Vec<String>>, Query), ("external_id" = Option<Vec<String>>, Query), ("user_id" = Option<Vec<String>>, Query),
           ("query" = Option<String>, Query), ("email_address_query" = Option<String>, Query), ("phone_number_query" = Option<String>, Query),
           ("username_query" = Option<String>, Query), ("name_query" = Option<String>, Query)),
    responses((status = 200, description = "`{object: total_count, total_count}`", body = Object)))]
pub async fn count_users(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> ClerkResult {
    let (_, total) = query_users(&st, &app, q.as_deref(), false).await?;
    Ok(ClerkJson::from(
        serde_json::json!({"object": "total_count", "total_count": total}),
    ))
}

/// `[+|-]field`; no sign is ascending. A `+` sent unencoded in a query string arrives as a space.
pub(super) fn parse_user_order(v: &str) -> Result<UserOrder, ClerkError> {
    let (descending, field) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+' | b' ') => (false, &v[1..]),
        _ => (false, v),
    };
    let field = UserSortField::parse(field).ok_or_else(|| {
        ClerkError::value_invalid(
            "order_by",
            "order_by must be one of created_at, updated_at, email_address, first_name, \
             last_name, phone_number, username, last_active_at, last_sign_in_at, with an \
             optional + or - prefix",
        )
    })?;
    Ok(UserOrder { field, descending })
}

pub(super) async fn query_users(
    st: &AppState,
    app: &sessiond_core::application::Application,
    raw: Option<&str>,
    page: bool,
) -> Result<(Vec<Value>, u64), ClerkError> {
    let q = Query::parse(raw)?;
    q.only(&[
        "email_address",
        "external_id",
        "user_id",
        "query",
        "email_address_query",
        "phone_number_query",
        "username_query",
        "name_query",
        "limit",
        "offset",
        "order_by",
    ])?;
    // Clerk keeps the first `order_by` when several are sent.
    let order = match q.first("order_by") {
        None | Some("") => UserOrder::default(),
        Some(o) => parse_user_order(o)?,
    };
    let text = |k: &str| -> Result<Option<String>, ClerkError> {
        match q.one(k) {
            Some(v) if v.chars().count() > 256 => Err(ClerkError::value_invalid(
                k,
                format!("{k} must be at most 256 characters"),
            )),
            v => Ok(v.map(str::to_owned)),
        }
    };
    let query = UserQuery {
        any: text("query")?,
        email: text("email_address_query")?,
        phone: text("phone_number_query")?,
        username: text("username_query")?,
        name: text("name_query")?,
    };
    let limit = if page { q.int("limit", 10, 1, 500)? } else { 1 };
    let offset = if page {
        q.int("offset", 0, 0, u64::from(u32::MAX))?
    } else {
        0
    };
    let ids = q.all("user_id")?;
    let user_ids: Vec<UserId> = ids.iter().filter_map(|i| UserId::parse(i)).collect();
    if !ids.is_empty() && user_ids.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let (users, total) = st
        .login
        .list_users(
            app,
            &UserSearch {
                user_ids,
                external_ids: q.all("external_id")?,
                emails: q.all("email_address")?,
                query,
                order,
                limit: u32::try_from(limit).unwrap_or(500),
                offset,
            },
        )
        .await
        .map_err(core(""))?;
    Ok((users.iter().map(views::user).collect(), total))
}

#[utoipa::path(get, path = "/v1/users/{user_id}", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found")))]
pub async fn get_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> ClerkResult {
    let uid = user_id(&id)?;
    let u = st.login.get_user(&app, &uid).await.map_err(core(&id))?;
    Ok(ClerkJson::from(views::user(&u)))
}

#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found"), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn update_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let b = Body::parse(&body)?;
    b.only(&USER_UPDATE_FIELDS)?;
    // The Python SDK always sends this flag (false); sessiond sends no emails, so `true` cannot be
    // honoured and is refused rather than ignored.
    if b.bool("notify_primary_email_address_changed")? == Some(true) {
        return Err(ClerkError::value_invalid(
            "notify_primary_email_address_changed",
            "sessiond sends no emails; notify_primary_email_address_changed must be false",
        ));
    }
    let idn = |k: &str| -> Result<Option<sessiond_core::ids::IdentificationId>, ClerkError> {
        match b.str(k)? {
            None => Ok(None),
            Some(v) => sessiond_core::ids::IdentificationId::parse(&v)
                .map(Some)
                .ok_or_else(|| {
                    ClerkError::value_invalid(
                        k,
                        format!("{k} is not one of the user's identifications"),
                    )
                }),
        }
    };
    let patch = UserPatch {
        external_id: b.str_patch("external_id")?,
        first_name: b.str_patch("first_name")?,
        last_name: b.str_patch("last_name")?,
        username: b.str_patch("username")?,
        image_url: b.str_patch("image_url")?,
        primary_email_address_id: idn("primary_email_address_id")?,
        primary_phone_number_id: idn("primary_phone_number_id")?,
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        locale: b.str_patch("locale")?,
        password: password_input(&b)?,
        ..UserPatch::default()
    };
    let sign_out = b.bool("sign_out_of_other_sessions")?.unwrap_or(false);
    let new_password = patch.password.is_some();
    let uid = user_id(&id)?;
    let now = st.clock.now();
    let u = st
        .login
        .update_user(&app, &uid, patch, now)
        .await
        .map_err(core(&id))?;
    if sign_out && new_password {
        st.login
            .revoke_user_sessions(&app, &uid, now)
            .await
            .map_err(core(&id))?;
    }
    Ok(ClerkJson::from(views::user(&u)))
}

pub(super) const METADATA_FIELDS: [&str; 3] =
    ["public_metadata", "private_metadata", "unsafe_metadata"];

pub(super) async fn change_metadata(
    st: &AppState,
    app: &sessiond_core::application::Application,
    id: &str,
    body: &Bytes,
    merge: bool,
) -> ClerkResult {
    let b = Body::parse(body)?;
    b.only(&METADATA_FIELDS)?;
    let patch = UserPatch {
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        merge_metadata: merge,
        ..UserPatch::default()
    };
    let uid = user_id(id)?;
    let u = st
        .login
        .update_user(app, &uid, patch, st.clock.now())
        .await
        .map_err(core(id))?;
    Ok(ClerkJson::from(views::user(&u)))
}

/// Deep merge: nested objects merge, a `null` value removes its key.
#[utoipa::path(patch, path = "/v1/users/{user_id}/metadata", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object, description = "`{public_metadata?, private_metadata?, unsafe_metadata?}`"),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found"), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn merge_user_metadata(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    change_metadata(&st, &app, &id, &body, true).await
}

/// Replaces each metadata object given; the others are left as they are.
#[utoipa::path(put, path = "/v1/users/{user_id}/metadata", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object, description = "`{public_metadata?, private_metadata?, unsafe_metadata?}`"),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found"), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn replace_user_metadata(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    change_metadata(&st, &app, &id, &body, false).await
}

#[utoipa::path(post, path = "/v1/users/{user_id}/verify_password", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object, description = "`{password}`"),
    responses((status = 200, description = "`{verified: true}`", body = Object), (status = 400, description = "The user has no password"),
              (status = 404, description = "Not found"), (status = 422, description = "Incorrect password")))]
pub async fn verify_password(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let b = Body::parse(&body)?;
    b.only(&["password"])?;
    let password = b.required_str("password")?;
    let uid = user_id(&id)?;
    let check = st
        .login
        .verify_password(&app, &uid, &password, st.clock.now())
        .await
        .map_err(core(&id))?;
    match check {
        PasswordCheck::Verified => Ok(ClerkJson::from(serde_json::json!({"verified": true}))),
        PasswordCheck::Incorrect => Err(ClerkError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "form_password_incorrect",
            "Password is incorrect.",
            "The password does not match the user's password.",
        )
        .param("password")),
        PasswordCheck::NotSet => Err(ClerkError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "password_not_set",
            "No password is set",
            "This user has no password; set one with password or password_digest.",
        )),
    }
}

#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "`{object: user, id, deleted: true}`", body = Object), (status = 404, description = "Not found")))]
pub async fn delete_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> ClerkResult {
    let uid = user_id(&id)?;
    st.login
        .delete_user(&app, &uid, st.clock.now())
        .await
        .map_err(core(&id))?;
    Ok(ClerkJson::from(views::deleted("user", &id)))
}
