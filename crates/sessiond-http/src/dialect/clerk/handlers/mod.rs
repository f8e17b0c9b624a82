//! Handlers of the Clerk dialect: parse, call the login service, render.

mod jwks;
mod sessions;
mod templates;
mod users;

pub use jwks::*;
pub use sessions::*;
pub use templates::*;
pub use users::*;

use sessiond_core::ids::{SessionId, TemplateId, UserId};

use crate::dialect::clerk::error::ClerkError;

const TAG: &str = "clerk";

fn session_id(id: &str) -> Result<SessionId, ClerkError> {
    SessionId::parse(id).ok_or_else(|| ClerkError::not_found("session", id))
}

fn user_id(id: &str) -> Result<UserId, ClerkError> {
    UserId::parse(id).ok_or_else(|| ClerkError::not_found("user", id))
}

fn template_id(id: &str) -> Result<TemplateId, ClerkError> {
    TemplateId::parse(id).ok_or_else(|| ClerkError::not_found("jwt_template", &format!("id: {id}")))
}

fn core(what: &str) -> impl Fn(sessiond_core::Error) -> ClerkError + '_ {
    move |e| ClerkError::from_core(&e, what)
}
