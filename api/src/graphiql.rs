//! GraphiQL at `GET /`, served entirely by the binary: pinned GraphiQL and React builds
//! (from npm, with their licences, in `api/assets/graphiql/`), so the page works without
//! internet access. In development mode the page opens with the development token in the
//! headers and an example query.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// The GraphiQL version the assets are; part of their paths, so browsers may cache them
/// for good.
pub const VERSION: &str = "4.0.3";

/// The assets: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
];

/// The query development mode opens with: what the demo user owns.
pub const EXAMPLE_QUERY: &str = "# The demo user's profile, credits and latest ledger rows.
query Example {
  profiles(first: 1) { nodes { id displayName } }
  creditAccounts { nodes { balance } }
  creditTransactions(last: 5) { nodes { amount kind balanceAfter createdAt } }
}
";

/// `GET /` and `GET /graphiql/<version>/<asset>`.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/graphiql/{version}/{name}", get(asset))
        .with_state(state)
}

async fn page(State(state): State<AppState>) -> Html<String> {
    Html(render(state.development_token.as_deref()))
}

/// The page; with a development token, pre-filled with it and an example query.
fn render(development_token: Option<&str>) -> String {
    let (headers, query) = match development_token {
        Some(token) => (
            script_json(
                &serde_json::json!({ "Authorization": format!("Bearer {token}") }).to_string(),
            ),
            script_json(EXAMPLE_QUERY),
        ),
        None => ("undefined".to_owned(), "undefined".to_owned()),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stratix GraphiQL</title>
<style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
<link rel="stylesheet" href="/graphiql/{VERSION}/graphiql.min.css">
<script src="/graphiql/{VERSION}/react.production.min.js"></script>
<script src="/graphiql/{VERSION}/react-dom.production.min.js"></script>
<script src="/graphiql/{VERSION}/graphiql.min.js"></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script>
  const url = new URL("/graphql", window.location.href).href;
  const fetcher = GraphiQL.createFetcher({{
    url,
    subscriptionUrl: url.replace(/^http/, "ws"),
  }});
  const headers = {headers};
  const query = {query};
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher,
      headers,
      defaultQuery: query,
      defaultEditorToolsVisibility: headers !== undefined,
    }}),
  );
</script>
</body>
</html>
"#
    )
}

/// `text` as a JavaScript string literal that cannot end the `<script>` element.
fn script_json(text: &str) -> String {
    serde_json::Value::from(text)
        .to_string()
        .replace('<', "\\u003c")
}

async fn asset(Path((version, name)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|(n, _, _)| *n == name);
    match found {
        Some((_, content_type, bytes)) if version == VERSION => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            *bytes,
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_token_cannot_break_out_of_the_script() {
        let page = render(Some("a</script><script>alert(1)//"));
        assert!(!page.contains("a</script>"));
        assert!(page.contains(r"a\u003c/script>"));
        assert!(render(None).contains("const headers = undefined;"));
    }
}
