//! Handlers of both Trinsic generations. Each parses and bounds its input, calls one
//! verification-service method, and renders the generation's shape.

mod gen_a;
mod gen_b;
mod shared;

pub use gen_a::*;
pub use gen_b::*;
pub use shared::*;

use crate::dialect::trinsic::states::DISCLOSED_FIELDS;
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use sessiond_core::application::{Application, VerificationGeneration};
use sessiond_core::verification::VerificationId;

use crate::body::{JsonObject, Problem};
use crate::dialect::trinsic::error::{Gen, TrinsicError};

const TAG_A: &str = "trinsic-connect";
const TAG_B: &str = "trinsic-api";
const TAG: &str = "trinsic";
type TResult = Result<Response, TrinsicError>;

/// Largest page of a session listing (both generations' SDKs enforce 1..50).
const MAX_PAGE_SIZE: u32 = 50;
const DEFAULT_PAGE_SIZE: u32 = 10;
const MAX_ID_LEN: usize = 100;

fn ok(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

/// The generation that answers on paths both generations share.
fn shared_gen(app: &Application) -> Gen {
    match app.settings.verification_generation {
        VerificationGeneration::A => Gen::A,
        VerificationGeneration::B => Gen::B,
    }
}

fn core(g: Gen) -> impl Fn(sessiond_core::Error) -> TrinsicError {
    move |e| TrinsicError::from_core(g, &e)
}

fn session_id(g: Gen, id: &str) -> Result<VerificationId, TrinsicError> {
    VerificationId::parse(id).ok_or_else(|| TrinsicError::not_found(g, "session"))
}

/// A request body, member names matched whatever their case (as Trinsic's servers do).
struct Body {
    g: Gen,
    inner: JsonObject,
}

impl Body {
    fn parse(g: Gen, bytes: &Bytes) -> Result<Self, TrinsicError> {
        let inner = JsonObject::parse(bytes).map_err(|p| Self::problem(g, p))?;
        Ok(Body {
            g,
            inner: inner.any_case(),
        })
    }

    /// A nested object, read with the same rules.
    fn nested(g: Gen, members: Map<String, Value>) -> Self {
        Body {
            g,
            inner: JsonObject::from_map(members).any_case(),
        }
    }

    /// `` `name` why ``, attributed to the member.
    fn member_error(g: Gen, name: &str, why: &str) -> TrinsicError {
        TrinsicError::bad_request(g, name, format!("`{name}` {why}"))
    }

    /// A body problem in Trinsic's words.
    fn problem(g: Gen, p: Problem) -> TrinsicError {
        let bad = |name: &str, why: String| Self::member_error(g, name, &why);
        match p {
            Problem::NotUtf8 => TrinsicError::bad_request(g, "", "the body is not UTF-8"),
            Problem::NotJson(e) => {
                TrinsicError::bad_request(g, "", format!("the body is not valid JSON: {e}"))
            }
            Problem::NotAnObject => {
                TrinsicError::bad_request(g, "", "the body must be a JSON object")
            }
            Problem::Unknown(k) => {
                TrinsicError::bad_request(g, &k, format!("`{k}` is not a member of this request"))
            }
            Problem::Type { member, expected } => {
                let why = match expected {
                    "boolean" => "must be true or false".to_owned(),
                    "object" => "must be an object".to_owned(),
                    other => format!("must be a {other}"),
                };
                bad(&member, why)
            }
            Problem::Missing(k) => bad(&k, "is required".to_owned()),
            Problem::TooLong { member, max } => bad(
                &member,
                format!("must be at most {max} bytes without control characters"),
            ),
            Problem::TooManyItems { member, max_items } => bad(
                &member,
                format!("must be an array of at most {max_items} strings"),
            ),
            Problem::BadItem { member, max_item } => bad(
                &member,
                format!("must hold non-empty strings of at most {max_item} bytes"),
            ),
        }
    }

    /// Fails on a member that is not in `known` (compared case-insensitively).
    fn only(&self, known: &[&str]) -> Result<(), TrinsicError> {
        self.inner.only(known).map_err(|p| Self::problem(self.g, p))
    }

    fn bad(&self, name: &str, why: &str) -> TrinsicError {
        Self::member_error(self.g, name, why)
    }

    fn string(&self, name: &str, max: usize) -> Result<Option<String>, TrinsicError> {
        self.inner
            .short_str(name, max)
            .map_err(|p| Self::problem(self.g, p))
    }

    fn required_string(&self, name: &str, max: usize) -> Result<String, TrinsicError> {
        match self.string(name, max)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.bad(name, "is required")),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, TrinsicError> {
        self.inner
            .bool(name)
            .map(Option::unwrap_or_default)
            .map_err(|p| Self::problem(self.g, p))
    }

    fn strings(&self, name: &str, max_items: usize) -> Result<Vec<String>, TrinsicError> {
        self.inner
            .bounded_strings(name, max_items, MAX_ID_LEN)
            .map_err(|p| Self::problem(self.g, p))
    }

    fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, TrinsicError> {
        self.inner
            .object(name)
            .map_err(|p| Self::problem(self.g, p))
    }
}

/// Generation A's twelve disclosure flags; omitted flags are requested (true).
fn disclosed_fields(b: &Body) -> Result<Option<Vec<bool>>, TrinsicError> {
    let Some(m) = b.object("disclosedFields")? else {
        return Ok(None);
    };
    if let Some(k) = m
        .keys()
        .find(|k| !DISCLOSED_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k)))
    {
        return Err(b.bad("disclosedFields", &format!("has an unknown member `{k}`")));
    }
    DISCLOSED_FIELDS
        .iter()
        .map(|f| {
            match m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(f))
                .map(|(_, v)| v)
            {
                None | Some(Value::Null) => Ok(true),
                Some(Value::Bool(v)) => Ok(*v),
                Some(_) => Err(b.bad("disclosedFields", &format!("`{f}` must be a boolean"))),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
