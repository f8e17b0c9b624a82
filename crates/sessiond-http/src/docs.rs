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

pub fn router(mut openapi: OpenApi) -> Router<AppState> {
    complete(&mut openapi);
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

/// The answers every operation can give besides its own, added where the handler's annotation
/// does not name them: 401, 429 and 503 on authenticated operations, 404 where the path names an
/// object, 415 where a body is taken, 422 on the Clerk dialect (unknown or invalid parameters).
/// The Clerk list operations answer bare arrays (sessions and JWT templates: or
/// `{data, total_count}` when `paginated=true`), which the annotations cannot say.
pub fn complete(openapi: &mut OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};

    let json = |schema: Schema| ContentBuilder::new().schema(Some(RefOr::T(schema))).build();
    let array = || Schema::Array(ArrayBuilder::new().items(ObjectBuilder::new()).build());
    let add = |op: &mut Operation, code: &str, why: &str| {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(why).build()));
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let clerk = path.starts_with("/v1/");
        let public = path.starts_with("/v1/apps/") || !path.starts_with('/');
        let has_id = path.contains('{');
        let ops = [
            (&mut item.get, false),
            (&mut item.post, true),
            (&mut item.put, true),
            (&mut item.patch, true),
            (&mut item.delete, false),
        ];
        for (op, _) in ops {
            let Some(op) = op.as_mut() else { continue };
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty()) && !public;
            if secured {
                add(
                    op,
                    "401",
                    "Missing, malformed, unknown or revoked secret key",
                );
                add(op, "429", "Rate limited (Retry-After says when to retry)");
                add(
                    op,
                    "503",
                    "Database unreachable (Retry-After says when to retry)",
                );
            }
            if has_id {
                add(op, "404", "No such object in the calling application");
            }
            if op.request_body.is_some() {
                add(op, "415", "The body is not declared as JSON");
            }
            if clerk && secured {
                add(op, "422", "Unknown, missing or invalid parameters");
            }
        }
        if !clerk {
            continue;
        }
        let list_body = match path.as_str() {
            "/v1/sessions" | "/v1/jwt_templates" => Some(Schema::OneOf(
                OneOfBuilder::new()
                    .item(array())
                    .item(
                        ObjectBuilder::new()
                            .property("data", array())
                            .property(
                                "total_count",
                                ObjectBuilder::new().schema_type(Type::Integer),
                            )
                            .required("data")
                            .required("total_count"),
                    )
                    .description(Some(
                        "A bare array; `{data, total_count}` with `paginated=true`",
                    ))
                    .build(),
            )),
            "/v1/users" => Some(array()),
            _ => None,
        };
        if let (Some(schema), Some(get)) = (list_body, item.get.as_mut())
            && let Some(RefOr::T(ok)) = get.responses.responses.get_mut("200")
        {
            ok.content
                .insert("application/json".to_owned(), RefOr::T(json(schema)));
        }
    }
}
