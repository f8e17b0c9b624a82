//! Files compiled into the binary (stylesheets, scripts, images of the hosted pages and the
//! console), served with a content type, an hour of caching and no sniffing.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A compiled-in file: name, content type, contents.
pub type Asset = (&'static str, &'static str, &'static str);

/// `file` from `assets`, or `None` when there is no such file.
pub fn serve(assets: &[Asset], file: &str) -> Option<Response> {
    let (_, ct, body) = assets.iter().find(|(name, _, _)| *name == file)?;
    Some(
        (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "public, max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
    )
}
