//! Stricter tokens and what the configuration exposes: Supabase roles only, project keys
//! as their roles, no tokens from the future, Shopify's own clock tolerance and lifetime,
//! API keys that cannot make keys, credentials compared exactly, secrets never printed,
//! and the switches for `sqlStatements`, introspection and GraphiQL.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::app::{Reply, SECRET, SHOPIFY_SECRET, TestApp};
use crate::common::server::{Client, Incoming, Server};
use crate::common::{fixtures, on_both_backends};

const USERS: &str = "{ users { totalCount } }";

fn signed(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn with_key(app: &TestApp, key: &str, query: &str) -> Reply {
    app.send(
        Request::post("/graphql")
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(Body::from(json!({ "query": query }).to_string()))
            .unwrap(),
    )
    .await
}

/// Signs up `email`; returns its session token.
async fn session(app: &TestApp, email: &str) -> String {
    let reply = app
        .graphql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
            json!({ "i": { "email": email, "password": "correct horse battery" } }),
        )
        .await;
    reply.data()["signUp"]["token"].as_str().unwrap().to_owned()
}

const CREATE_KEY: &str = "mutation($i: ApiKeyCreateInput!) { apiKeyCreate(input: $i) { secret apiKey { id } userErrors { code } } }";

on_both_backends! {
    async fn only_supabase_roles_are_accepted_and_project_keys_act_as_their_role(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "ada@example.com").await;
        let sub = user.to_string();
        let user_claims = |role: &str| json!({ "sub": sub, "role": role, "aud": "authenticated", "exp": now() + 600, "iat": now() });

        let mut refused = Vec::new();
        for (case, claims) in [
            ("an unknown role", user_claims("admin")),
            ("postgres's own role", user_claims("supabase_admin")),
            ("no role", json!({ "sub": sub, "aud": "authenticated", "exp": now() + 600 })),
            ("a user without sub", json!({ "role": "authenticated", "aud": "authenticated", "exp": now() + 600 })),
            ("a user without aud", json!({ "sub": sub, "role": "authenticated", "exp": now() + 600 })),
            ("issued in the future", json!({ "sub": sub, "role": "authenticated", "aud": "authenticated", "exp": now() + 600, "iat": now() + 120 })),
        ] {
            let reply = app.graphql(Some(&signed(&claims)), USERS, json!({})).await;
            refused.push((case, reply.status, reply.code().to_owned()));
        }
        // Supabase's project keys: no sub, no aud.
        let anon_key = json!({ "iss": "supabase", "ref": "project", "role": "anon", "iat": now(), "exp": now() + 3600 });
        let service_key = json!({ "iss": "supabase", "ref": "project", "role": "service_role", "iat": now(), "exp": now() + 3600 });
        let anon = app.graphql(Some(&signed(&anon_key)), USERS, json!({})).await;
        let service = app.graphql(Some(&signed(&service_key)), USERS, json!({})).await;
        let skewed = json!({ "sub": sub, "role": "authenticated", "aud": "authenticated", "exp": now() + 600, "iat": now() + 10 });
        let within_leeway = app.graphql(Some(&signed(&skewed)), USERS, json!({})).await;

        for (case, status, code) in &refused {
            assert_eq!((*status, code.as_str()), (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"), "{case}");
        }
        assert_eq!(anon.data()["users"]["totalCount"], 0);
        assert_eq!(service.data()["users"]["totalCount"], 1);
        assert_eq!(within_leeway.data()["users"]["totalCount"], 1);
    }

    async fn shopify_session_tokens_get_ten_seconds_of_skew_and_a_short_life(t) {
        let app = TestApp::new(t).await;
        fixtures::shop(&app.t.db, "a.myshopify.com").await;
        let token = |edit: &dyn Fn(&mut Value)| TestApp::shop_token_with("a.myshopify.com", SHOPIFY_SECRET, edit);
        let shops = "{ shops { totalCount } }";

        let mut refused = Vec::new();
        for (case, token) in [
            ("expired 15 s ago", token(&|c| c["exp"] = json!(now() - 15))),
            ("a day long", token(&|c| c["exp"] = json!(now() + 86_400))),
            ("issued in the future", token(&|c| { c["iat"] = json!(now() + 60); c["exp"] = json!(now() + 90); })),
            ("without iat", token(&|c| { c.as_object_mut().unwrap().remove("iat"); })),
        ] {
            let reply = app.graphql(Some(&token), shops, json!({})).await;
            refused.push((case, reply.status));
        }
        let skewed = app.graphql(Some(&token(&|c| c["exp"] = json!(now() - 5))), shops, json!({})).await;

        for (case, status) in &refused {
            assert_eq!(*status, StatusCode::UNAUTHORIZED, "{case}");
        }
        assert_eq!(skewed.data()["shops"]["totalCount"], 1);
    }

    async fn api_keys_cannot_create_or_revoke_api_keys(t) {
        let app = TestApp::new(t).await;
        let token = session(&app, "ada@example.com").await;
        let created = app
            .graphql(Some(&token), CREATE_KEY, json!({ "i": { "name": "ci", "scopes": ["READ", "WRITE"] } }))
            .await;
        let key = created.data()["apiKeyCreate"]["secret"].as_str().unwrap().to_owned();
        let id = created.data()["apiKeyCreate"]["apiKey"]["id"].as_str().unwrap().to_owned();

        let create = with_key(&app, &key, "mutation { apiKeyCreate(input: {name: \"more\", scopes: [WRITE]}) { secret } }").await;
        let revoke = with_key(&app, &key, &format!("mutation {{ apiKeyRevoke(input: {{id: \"{id}\"}}) {{ apiKey {{ revokedAt }} }} }}")).await;
        let writes = with_key(&app, &key, "mutation { notificationsMarkAllRead { count } }").await;

        assert_eq!(create.code(), "FORBIDDEN", "{}", create.body);
        assert_eq!(revoke.code(), "FORBIDDEN", "{}", revoke.body);
        assert!(writes.body.get("errors").is_none(), "a WRITE key still writes: {}", writes.body);
        let keys = app.query("{ apiKeys { totalCount nodes { revokedAt } } }", json!({})).await;
        assert_eq!(keys.data()["apiKeys"], json!({ "totalCount": 1, "nodes": [{ "revokedAt": null }] }));
    }

    async fn credentials_are_compared_exactly(t) {
        let t = t.migrated().await;
        let app = TestApp::new(t).await;
        let token = session(&app, "ada@example.com").await;
        let created = app.graphql(Some(&token), CREATE_KEY, json!({ "i": { "name": "ci" } })).await;
        let key = created.data()["apiKeyCreate"]["secret"].as_str().unwrap().to_owned();

        let exact = with_key(&app, &key, USERS).await;
        let padded = with_key(&app, &format!("{key} "), USERS).await;
        let server = Server::start(app.t.db.clone()).await;
        let mut codes = Vec::new();
        for payload in [
            json!({ "x-api-key": format!("{key} ") }),
            json!({ "x-api-key": format!(" {key}") }),
            json!({ "token": format!("{token}\n") }),
            json!({ "Authorization": format!("Bearer {token} ") }),
        ] {
            let mut client = Client::connect(server.addr, false).await;
            codes.push(match client.init_with(payload).await {
                Incoming::Closed(code, _) => code,
                Incoming::Json(message) => panic!("accepted: {message}"),
            });
        }
        let mut exact_socket = Client::connect(server.addr, false).await;
        let ack = exact_socket.init_with(json!({ "x-api-key": key })).await;

        assert_eq!(exact.data()["users"]["totalCount"], 1);
        assert_eq!(padded.status, StatusCode::UNAUTHORIZED);
        assert_eq!(codes, [4403, 4403, 4403, 4403]);
        assert!(matches!(ack, Incoming::Json(ref m) if m["type"] == "connection_ack"), "{ack:?}");
    }

    async fn sql_statement_counts_are_for_the_service_and_development_only(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "ada@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let query = "{ users { nodes { email } } }";

        // Twice each: the second answer comes from the compiled plan.
        let mut as_user = Vec::new();
        let mut as_service = Vec::new();
        for _ in 0..2 {
            as_user.push(app.graphql(Some(&token), query, json!({})).await);
            as_service.push(app.query(query, json!({})).await);
        }
        let t = crate::common::TestDb::sqlite().await;
        let development = TestApp::with_options(t, api::state::Options { development: true, ..Default::default() }).await;
        let user = fixtures::user(&development.t.db, "ada@example.com").await;
        let in_development = development
            .graphql(Some(&TestApp::token("authenticated", &user.to_string())), query, json!({}))
            .await;

        for reply in &as_user {
            assert_eq!(reply.data()["users"]["nodes"][0]["email"], "ada@example.com");
            assert!(reply.body["extensions"].get("sqlStatements").is_none(), "{}", reply.body);
        }
        for reply in &as_service {
            assert!(reply.body["extensions"]["sqlStatements"].is_u64(), "{}", reply.body);
        }
        assert!(in_development.body["extensions"]["sqlStatements"].is_u64(), "{}", in_development.body);
    }
}

#[tokio::test]
async fn introspection_and_graphiql_can_be_switched_off() {
    let options = api::state::Options {
        introspection: false,
        graphiql: false,
        ..Default::default()
    };
    let app = TestApp::with_options(crate::common::TestDb::sqlite().await, options).await;
    let on = TestApp::new(crate::common::TestDb::sqlite().await).await;
    let introspect = "{ __schema { queryType { name } } }";
    let graphiql = || Request::get("/").body(Body::empty()).unwrap();

    let off = app.query(introspect, json!({})).await;
    let page = app.send(graphiql()).await;
    let still = app.query("{ __typename }", json!({})).await;

    assert!(
        off.body.get("errors").is_some() || off.body["data"]["__schema"].is_null(),
        "{}",
        off.body
    );
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(still.data()["__typename"], "Query");
    assert_eq!(
        on.query(introspect, json!({})).await.data()["__schema"]["queryType"]["name"],
        "Query"
    );
    assert_eq!(on.send(graphiql()).await.status, StatusCode::OK);
}

#[test]
fn secrets_are_never_printed_and_postgres_needs_keys() {
    let config = api::Config::from_args(&[
        "stratix",
        "--database-url",
        "postgres://stratix:hunter2@db.example.com/stratix",
        "--jwt-secret",
        "jwt-secret-value",
        "--shopify-api-key",
        "app-key",
        "--shopify-api-secret",
        "shopify-secret-value",
        "--payments-webhook-secret",
        "payments-secret-value",
    ])
    .unwrap();
    let printed = format!(
        "{config:?} {:?} {:?}",
        api::auth::Credentials::Bearer("bearer-token-value".to_owned()),
        api::auth::Credentials::ApiKey("sk_api-key-value".to_owned())
    );
    for secret in [
        "hunter2",
        "jwt-secret-value",
        "shopify-secret-value",
        "bearer-token-value",
        "api-key-value",
    ] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }

    assert!(api::check_keys(&config).is_ok());
    let keyless = api::Config {
        jwt_secret: None,
        ..config.clone()
    };
    let refusal = api::check_keys(&keyless).unwrap_err().to_string();
    assert!(refusal.contains("JWT_SECRET"), "{refusal}");
    assert!(!refusal.contains("hunter2"), "{refusal}");
    let mut embedded = keyless;
    embedded.database.url = "sqlite://stratix.db?mode=rwc".to_owned();
    assert!(api::check_keys(&embedded).is_ok());
}
