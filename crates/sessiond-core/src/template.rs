//! JWT templates: named claim sets rendered per session with shortcode rules (`{{user.…}}`).
//!
//! - A claim value that is exactly one shortcode (`"{{user.public_metadata}}"`) takes the JSON
//!   type of what it names (object, array, number, bool, null).
//! - Shortcodes inside a longer string are interpolated as text; null renders as `null`.
//! - Dot paths reach into objects (`{{user.public_metadata.address.city}}`).
//! - `||` gives fallbacks: the first operand that is neither null nor false wins, else the last
//!   operand. Operands may be shortcode paths, quoted strings (`'x'` or `"x"`), numbers,
//!   `true`, `false` or `null`.
//! - Unknown shortcodes are null.
//! - Reserved claims (set by sessiond on every template token) cannot be defined by a template.

use serde_json::{Map, Value};
use sessiond_crypto::jwt::Algorithm;

use crate::application::AppId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::TemplateId;

/// Claims sessiond sets on every template token; templates may not define them.
pub const RESERVED_CLAIMS: [&str; 7] = ["azp", "exp", "iat", "iss", "jti", "nbf", "sub"];
pub const DEFAULT_LIFETIME_SECS: u64 = 60;
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 5;
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
pub const MIN_LIFETIME_SECS: u64 = 30;
pub const MAX_LIFETIME_SECS: u64 = 315_360_000;
const MAX_CLAIMS_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct JwtTemplate {
    pub id: TemplateId,
    pub application_id: AppId,
    pub name: String,
    /// The claims, open. Empty in what the service hands a store, which gets them sealed in
    /// [`JwtTemplate::claims_sealed`] (a template may hold literal secrets); non-empty from a
    /// store only for templates written by versions that kept them in clear.
    pub claims: Map<String, Value>,
    /// The claims as a sealed JSON object.
    pub claims_sealed: Option<Vec<u8>>,
    pub lifetime_secs: u64,
    pub allowed_clock_skew_secs: u64,
    pub custom_signing_key: bool,
    pub signing_algorithm: Algorithm,
    /// The custom key (PEM body or HMAC secret), sealed. `None` without a custom key.
    pub signing_key_sealed: Option<Vec<u8>>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// A create or update request. On update, `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateInput {
    pub name: Option<String>,
    pub claims: Option<Map<String, Value>>,
    /// `Some(None)` resets to the default.
    pub lifetime: Option<Option<u64>>,
    pub allowed_clock_skew: Option<Option<u64>>,
    pub custom_signing_key: Option<bool>,
    pub signing_algorithm: Option<Option<String>>,
    pub signing_key: Option<Option<String>>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        return Err(Error::invalid(
            "name",
            "must be 1 to 128 characters of letters, digits, `_`, `-` or `.`",
        ));
    }
    Ok(())
}

pub fn validate_claims(claims: &Map<String, Value>) -> Result<()> {
    if let Some(k) = claims
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return Err(Error::ReservedClaim(k.clone()));
    }
    if Value::Object(claims.clone()).to_string().len() > MAX_CLAIMS_BYTES {
        return Err(Error::invalid(
            "claims",
            format!("must be at most {MAX_CLAIMS_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

pub fn validate_lifetime(v: u64) -> Result<()> {
    if !(MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(&v) {
        return Err(Error::invalid(
            "lifetime",
            format!("must be between {MIN_LIFETIME_SECS} and {MAX_LIFETIME_SECS}"),
        ));
    }
    Ok(())
}

pub fn validate_skew(v: u64) -> Result<()> {
    if v > MAX_CLOCK_SKEW_SECS {
        return Err(Error::invalid(
            "allowed_clock_skew",
            format!("must be between 0 and {MAX_CLOCK_SKEW_SECS}"),
        ));
    }
    Ok(())
}

/// Renders template claims against `context` (`{"user": …, "session": …, "org": …}`).
pub fn render(claims: &Map<String, Value>, context: &Value) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| (k.clone(), render_value(v, context)))
        .collect()
}

fn render_value(v: &Value, ctx: &Value) -> Value {
    match v {
        Value::String(s) => render_string(s, ctx),
        Value::Array(a) => Value::Array(a.iter().map(|x| render_value(x, ctx)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), render_value(x, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Splits `s` into literal text and `{{ … }}` expressions.
fn segments(s: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        if start > 0 {
            out.push((false, &rest[..start]));
        }
        out.push((true, &rest[start + 2..start + 2 + len]));
        rest = &rest[start + 2 + len + 2..];
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    out
}

fn render_string(s: &str, ctx: &Value) -> Value {
    let segs = segments(s);
    match segs.as_slice() {
        [(true, expr)] => eval(expr, ctx),
        _ if segs.iter().any(|(is_expr, _)| *is_expr) => {
            let mut out = String::with_capacity(s.len());
            for (is_expr, text) in segs {
                if is_expr {
                    match eval(text, ctx) {
                        Value::String(v) => out.push_str(&v),
                        other => out.push_str(&other.to_string()),
                    }
                } else {
                    out.push_str(text);
                }
            }
            Value::String(out)
        }
        _ => Value::String(s.to_owned()),
    }
}

/// Evaluates `a || b || …`.
fn eval(expr: &str, ctx: &Value) -> Value {
    let operands: Vec<&str> = split_fallbacks(expr);
    let mut last = Value::Null;
    for op in operands {
        last = operand(op.trim(), ctx);
        if !matches!(last, Value::Null | Value::Bool(false)) {
            return last;
        }
    }
    last
}

/// Splits on `||` outside quotes.
fn split_fallbacks(expr: &str) -> Vec<&str> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'|' && bytes.get(i + 1) == Some(&b'|') => {
                out.push(&expr[start..i]);
                i += 2;
                start = i;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    out.push(&expr[start..]);
    out
}

fn operand(op: &str, ctx: &Value) -> Value {
    if op.len() >= 2
        && ((op.starts_with('\'') && op.ends_with('\''))
            || (op.starts_with('"') && op.ends_with('"')))
    {
        return Value::String(op[1..op.len() - 1].to_owned());
    }
    match op {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        _ => {}
    }
    if let Ok(n) = op.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(f) = op.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    let mut cur = ctx;
    for part in op.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return Value::Null,
        }
    }
    cur.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "user": {
                "id": "user_1", "first_name": "Ada", "last_name": null, "email_verified": true,
                "public_metadata": {"role": "admin", "addresses": {"Home": "1 Loop"}, "n": 3},
                "unsafe_metadata": {}
            },
            "session": {"actor": null},
            "org": null
        })
    }

    fn r(claims: Value) -> Value {
        let Value::Object(m) = claims else {
            panic!("object")
        };
        Value::Object(render(&m, &ctx()))
    }

    /// (claim template, expected rendering)
    #[test]
    fn rendering_table() {
        let cases = vec![
            (json!("static"), json!("static")),
            (json!(42), json!(42)),
            (json!("{{user.id}}"), json!("user_1")),
            (json!("{{ user.id }}"), json!("user_1")),
            (
                json!("{{user.public_metadata}}"),
                json!({"role": "admin", "addresses": {"Home": "1 Loop"}, "n": 3}),
            ),
            (json!("{{user.public_metadata.n}}"), json!(3)),
            (json!("{{user.email_verified}}"), json!(true)),
            (
                json!("{{user.public_metadata.addresses.Home}}"),
                json!("1 Loop"),
            ),
            (
                json!("id={{user.id}} n={{user.public_metadata.n}}"),
                json!("id=user_1 n=3"),
            ),
            (json!("{{user.last_name}} x"), json!("null x")),
            (json!("{{user.nope}}"), json!(null)),
            (json!("{{nothing.at.all}}"), json!(null)),
            (json!("{{user.last_name || 'Unknown'}}"), json!("Unknown")),
            (json!("{{user.last_name || user.first_name}}"), json!("Ada")),
            (json!("{{user.last_name || session.actor}}"), json!(null)),
            (json!("{{user.nope || 7}}"), json!(7)),
            (json!("{{false || true}}"), json!(true)),
            (json!("{{'a||b'}}"), json!("a||b")),
            (
                json!(["{{user.id}}", {"deep": "{{user.public_metadata.role}}"}]),
                json!(["user_1", {"deep": "admin"}]),
            ),
            (json!("{{unclosed"), json!("{{unclosed")),
        ];
        for (tpl, want) in cases {
            let got = r(json!({"c": tpl.clone()}));
            assert_eq!(got["c"], want, "template {tpl}");
        }
    }

    #[test]
    fn reserved_claims_are_refused() {
        let Value::Object(m) = json!({"sub": "x"}) else {
            panic!()
        };
        assert!(matches!(validate_claims(&m), Err(Error::ReservedClaim(k)) if k == "sub"));
        let Value::Object(ok) = json!({"role": "{{user.public_metadata.role}}"}) else {
            panic!()
        };
        assert!(validate_claims(&ok).is_ok());
    }
}
