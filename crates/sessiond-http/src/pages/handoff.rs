//! How the hosted pages hand a finished verification back to the relying party, as Trinsic's
//! browser SDKs read it: query parameters on the redirect URL (`sessionId`, `resultsAccessKey`,
//! `success`), or a `postMessage` payload (`{success, msg, sessionId, resultsAccessKey}`).

use serde_json::{Value, json};
use sessiond_core::verification::service::{Channel, Ending, Handoff};

/// The hand-off as the page performs it.
pub enum Delivery {
    /// Navigate to this URL.
    Redirect(String),
    /// `postMessage(message)` to the opener (popup) or parent (iframe), for each allowed origin.
    PostMessage {
        target: &'static str,
        message: Value,
        origins: Vec<String>,
    },
}

pub fn delivery(h: &Handoff) -> Delivery {
    let id = h.session_id.to_string();
    match &h.channel {
        Channel::Redirect(url) => {
            let mut params = vec![("sessionId", id.as_str())];
            if let Some(key) = &h.results_key {
                params.push(("resultsAccessKey", key));
            }
            params.push(("success", if h.success { "true" } else { "false" }));
            Delivery::Redirect(append_query(url, &params))
        }
        Channel::PostMessage { to_parent, origins } => {
            let msg = match h.ending {
                Ending::Complete => "complete",
                Ending::UserClosed => "user-closed",
                Ending::Failed => "failed",
            };
            let mut message = json!({ "success": h.success, "msg": msg, "sessionId": id });
            if let Some(key) = &h.results_key {
                message["resultsAccessKey"] = Value::String(key.clone());
            }
            Delivery::PostMessage {
                target: if *to_parent { "parent" } else { "opener" },
                message,
                origins: origins.clone(),
            }
        }
    }
}

/// `url` with `params` appended to its query (before any fragment), each value percent-encoded.
pub fn append_query(url: &str, params: &[(&str, &str)]) -> String {
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let mut out = base.to_owned();
    for (k, v) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(&percent(v));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
