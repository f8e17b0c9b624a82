//! The core error type. Every variant maps to one stable [`ErrorCode`]; each HTTP dialect turns
//! codes into its own status codes and body shapes, and the CLI into messages. The storage
//! contract's errors ([`StoreError`]) live here too, so neither module needs the other.

/// Stable, machine-readable error codes. Adding one forces every dialect's exhaustive mapping to
/// be updated before the code compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    NotFound,
    InvalidInput,
    Conflict,
    /// A unique value (email, username, template name…) is already taken.
    AlreadyExists,
    /// The object exists but its state does not allow the operation (e.g. a revoked session).
    InvalidState,
    Unauthenticated,
    Forbidden,
    Unavailable,
    /// Too many requests: from the application, or failed authentications from the client.
    RateLimited,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Conflict => "conflict",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} not found")]
    NotFound { kind: &'static str },
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("the record was changed concurrently; retry with fresh data")]
    Conflict,
    #[error("{field} is already taken")]
    AlreadyExists { field: String },
    #[error("the session is {}", .status.as_str())]
    SessionNotUsable {
        status: crate::session::SessionStatus,
    },
    #[error("`{0}` is a reserved claim and cannot be set by a template")]
    ReservedClaim(String),
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("the session is already impersonated")]
    AlreadyImpersonated,
    #[error("the session is not impersonated")]
    NotImpersonated,
    #[error("the user already has {limit} concurrent sessions enabled")]
    ConcurrentAccess { limit: u32 },
    #[error("{what} limit of {limit} reached")]
    LimitExceeded { what: &'static str, limit: usize },
    #[error("{0}")]
    Unauthenticated(AuthFailure),
    #[error("storage is unavailable")]
    Unavailable(#[source] StoreError),
    /// The database failed; the store's error, with its cause, is the source.
    #[error("storage failed")]
    Store(#[source] StoreError),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::InvalidInput { .. } => ErrorCode::InvalidInput,
            Error::Conflict => ErrorCode::Conflict,
            Error::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Error::SessionNotUsable { .. } => ErrorCode::InvalidState,
            Error::ReservedClaim(_) | Error::InvalidToken(_) | Error::LimitExceeded { .. } => {
                ErrorCode::InvalidInput
            }
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::AlreadyImpersonated
            | Error::NotImpersonated
            | Error::ConcurrentAccess { .. } => ErrorCode::InvalidState,
            Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::Store(_) => ErrorCode::Internal,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// This error and every cause under it, for logs: `storage failed: database error: …`.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::NotFound { kind: "record" },
            StoreError::Conflict => Error::Conflict,
            e @ StoreError::Unavailable(_) => Error::Unavailable(e),
            e @ StoreError::Backend(_) => Error::Store(e),
        }
    }
}

/// Why a request's credentials were refused. Dialects render each in their own error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no Authorization header was sent")]
    Missing,
    #[error("the Authorization header must be `Bearer <secret key>`")]
    Malformed,
    #[error("the secret key is not valid")]
    UnknownKey,
    #[error("the secret key has been revoked")]
    RevokedKey,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a store answers: the storage contract's own errors, which core maps onto [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    NotFound,
    /// A version mismatch or a uniqueness violation: someone else wrote first.
    Conflict,
    /// The database cannot be reached right now (pool timeout, connection refused).
    Unavailable(Failure),
    Backend(Failure),
}

/// What went wrong in a backend, with the driver's error that caused it kept whole (so a log
/// shows the chain and code can inspect it).
#[derive(Debug, Clone)]
pub struct Failure {
    what: String,
    cause: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    /// A failure with no underlying error (a stopped writer thread, a closed store).
    pub fn new(what: impl Into<String>) -> Self {
        Failure {
            what: what.into(),
            cause: None,
        }
    }

    /// `what` failed because of `cause`.
    pub fn caused(
        what: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Failure {
            what: what.into(),
            cause: Some(std::sync::Arc::new(cause)),
        }
    }

    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }
}

/// What failed; the cause is the error's source, so a report (`Error::report`, anyhow's `{:#}`)
/// shows it once.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// Two failures are the same failure when they say the same thing (tests compare them).
impl PartialEq for Failure {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
            && self.cause.as_ref().map(ToString::to_string)
                == other.cause.as_ref().map(ToString::to_string)
    }
}

impl Eq for Failure {}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Conflict => f.write_str("conflict"),
            StoreError::Unavailable(x) => write!(f, "database unavailable: {x}"),
            StoreError::Backend(x) => write!(f, "database error: {x}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Unavailable(x) | StoreError::Backend(x) => {
                x.cause().map(|c| c as &(dyn std::error::Error + 'static))
            }
            StoreError::NotFound | StoreError::Conflict => None,
        }
    }
}

impl StoreError {
    pub fn backend(what: impl Into<String>) -> Self {
        StoreError::Backend(Failure::new(what))
    }

    pub fn backend_caused(
        what: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend(Failure::caused(what, cause))
    }

    pub fn unavailable(what: impl Into<String>) -> Self {
        StoreError::Unavailable(Failure::new(what))
    }

    pub fn unavailable_caused(
        what: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable(Failure::caused(what, cause))
    }
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Refused;

    /// A driver's error survives into the core error, as its source, for logs and inspection.
    #[test]
    fn a_store_failure_keeps_its_cause() {
        let e: Error =
            StoreError::unavailable_caused("PostgreSQL cannot be reached", Refused).into();
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert_eq!(
            e.report(),
            "storage is unavailable: database unavailable: PostgreSQL cannot be reached: \
             connection refused"
        );
        let mut chain =
            std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |c| {
                c.source()
            });
        assert!(chain.any(|c| c.downcast_ref::<Refused>().is_some()));
        let e: Error = StoreError::backend("write request never ran").into();
        assert_eq!(e.code(), ErrorCode::Internal);
        assert_eq!(
            e.report(),
            "storage failed: database error: write request never ran"
        );
    }
}
