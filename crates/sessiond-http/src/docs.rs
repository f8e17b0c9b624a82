//! The OpenAPI document and the docs page. Every asset of the page is compiled into the binary,
//! so it works with no internet access.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;

pub fn router(openapi: OpenApi) -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
}
