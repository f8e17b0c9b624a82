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
use sessiond_core::application::{Application, TrinsicGeneration};
use sessiond_core::verification::VerificationId;

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
    match app.settings.trinsic_generation {
        TrinsicGeneration::Connect => Gen::A,
        TrinsicGeneration::Api => Gen::B,
    }
}

fn core(g: Gen) -> impl Fn(sessiond_core::Error) -> TrinsicError {
    move |e| TrinsicError::from_core(g, &e)
}

fn session_id(g: Gen, id: &str) -> Result<VerificationId, TrinsicError> {
    VerificationId::parse(id).ok_or_else(|| TrinsicError::not_found(g, "session"))
}

/// A JSON object body with case-insensitive member names (the real service binds them that way).
/// An empty body or `null` is an empty object: the SDKs send nothing when no request is given.
struct Body {
    g: Gen,
    members: Vec<(String, Value)>,
}

impl Body {
    fn parse(g: Gen, bytes: &Bytes) -> Result<Self, TrinsicError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| TrinsicError::bad_request(g, "", "the body is not UTF-8"))?;
        if text.trim().is_empty() {
            return Ok(Body {
                g,
                members: Vec::new(),
            });
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(Body {
                g,
                members: m.into_iter().collect(),
            }),
            Ok(Value::Null) => Ok(Body {
                g,
                members: Vec::new(),
            }),
            Ok(_) => Err(TrinsicError::bad_request(
                g,
                "",
                "the body must be a JSON object",
            )),
            Err(e) => Err(TrinsicError::bad_request(
                g,
                "",
                format!("the body is not valid JSON: {e}"),
            )),
        }
    }

    /// Fails on a member that is not in `known` (compared case-insensitively).
    fn only(&self, known: &[&str]) -> Result<(), TrinsicError> {
        match self
            .members
            .iter()
            .find(|(k, _)| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
        {
            Some((k, _)) => Err(TrinsicError::bad_request(
                self.g,
                k,
                format!("`{k}` is not a member of this request"),
            )),
            None => Ok(()),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.members
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn bad(&self, name: &str, why: &str) -> TrinsicError {
        TrinsicError::bad_request(self.g, name, format!("`{name}` {why}"))
    }

    fn string(&self, name: &str, max: usize) -> Result<Option<String>, TrinsicError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() <= max && !s.chars().any(char::is_control) => {
                Ok(Some(s.clone()))
            }
            Some(Value::String(_)) => Err(self.bad(
                name,
                &format!("must be at most {max} bytes without control characters"),
            )),
            Some(_) => Err(self.bad(name, "must be a string")),
        }
    }

    fn required_string(&self, name: &str, max: usize) -> Result<String, TrinsicError> {
        match self.string(name, max)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.bad(name, "is required")),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, TrinsicError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(name, "must be true or false")),
        }
    }

    fn strings(&self, name: &str, max_items: usize) -> Result<Vec<String>, TrinsicError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) if a.len() <= max_items => a
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(s.clone()),
                    _ => Err(self.bad(
                        name,
                        &format!("must hold non-empty strings of at most {MAX_ID_LEN} bytes"),
                    )),
                })
                .collect(),
            Some(_) => Err(self.bad(
                name,
                &format!("must be an array of at most {max_items} strings"),
            )),
        }
    }

    fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, TrinsicError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(self.bad(name, "must be an object")),
        }
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
