//! The OpenAPI document and the docs page. Every asset of the page is compiled into the binary,
//! so it works with no internet access.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::AppState;

pub fn router(openapi: OpenApi) -> Router<AppState> {
    let index = Arc::new(index_without_slash());
    Router::new()
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let index = Arc::clone(&index);
            async move {
                // The page's assets are relative ("./swagger-ui.css"); a `<base>` lets `/docs`
                // itself answer the page instead of redirecting to `/docs/`.
                if req.uri().path() == "/docs"
                    && let Some(html) = index.as_ref()
                {
                    return (
                        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                        html.clone(),
                    )
                        .into_response();
                }
                next.run(req).await
            }
        }))
}

/// Swagger UI's index page with `<base href="/docs/">`, so it renders at `/docs` too.
fn index_without_slash() -> Option<String> {
    let config = Arc::new(Config::new(["/openapi.json"]));
    let file = utoipa_swagger_ui::serve("index.html", config).ok()??;
    let html = String::from_utf8(file.bytes.into_owned()).ok()?;
    html.contains("<head>")
        .then(|| html.replacen("<head>", "<head>\n    <base href=\"/docs/\">", 1))
}
