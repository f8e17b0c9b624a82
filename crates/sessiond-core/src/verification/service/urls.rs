//! Redirect URLs: which ones an application allows.

use crate::application::Application;

use super::*;

/// Whether `url` is an absolute http(s) URL whose origin the application allows.
pub fn redirect_allowed(app: &Application, url: &str) -> bool {
    origin_of(url).is_some_and(|o| {
        app.settings
            .allowed_redirect_origins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&o))
    })
}

/// `scheme://host[:port]` of an absolute http(s) URL without credentials.
pub fn origin_of(url: &str) -> Option<String> {
    if url.len() > MAX_URL || url.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}
