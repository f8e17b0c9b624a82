//! The HTTP ceiling: axum answering every request with a fixed JSON body, built like sessiond
//! (release, same tokio runtime). Nothing a sessions server does can be faster than this. It
//! also serves as the webhook receiver of `bench/events.py` (it answers POSTs the same way).
//! Usage: http-ceiling 127.0.0.1:PORT

use axum::Router;
use axum::http::header;
use axum::routing::any;

const BODY: &str = r#"{"object":"session","id":"sess_0000000000000000000000","status":"active"}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7390".to_owned());
    let app = Router::new().fallback(any(|| async {
        ([(header::CONTENT_TYPE, "application/json")], BODY)
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
