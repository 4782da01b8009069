//! Principals: every bad credential is refused with 401 and no data; sign-up, sign-in and
//! API keys work end to end.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::app::{SECRET, SHOPIFY_SECRET, TestApp};
use crate::common::fixtures;
use crate::common::on_both_backends;

const QUERY: &str = "{ shops { totalCount } users { totalCount } }";

fn user_token(secret: &[u8], edit: impl FnOnce(&mut Value)) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": uuid::Uuid::new_v4().to_string(),
        "role": "authenticated",
        "aud": "authenticated",
        "exp": now + 600,
        "iat": now,
    });
    edit(&mut claims);
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn assert_refused(app: &TestApp, token: &str, case: &str) {
    let reply = app.graphql(Some(token), QUERY, json!({})).await;
    assert_eq!(
        reply.status,
        axum::http::StatusCode::UNAUTHORIZED,
        "{case}: {}",
        reply.body
    );
    assert_eq!(reply.code(), "UNAUTHENTICATED", "{case}: {}", reply.body);
    assert_eq!(reply.body["data"], Value::Null, "{case}");
}

async fn sign_up(app: &TestApp, email: &str, password: &str) -> Value {
    app.graphql(
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { token user { rowId email } userErrors { field message code } } }",
        json!({"i": {"email": email, "password": password}}),
    )
    .await
    .data()["signUp"]
        .clone()
}

on_both_backends! {
    async fn bad_user_tokens_are_refused(t) {
        let app = TestApp::new(t).await;
        let now = chrono::Utc::now().timestamp();
        let cases = [
            ("expired", user_token(SECRET, |c| c["exp"] = json!(now - 60))),
            ("not yet valid", user_token(SECRET, |c| c["nbf"] = json!(now + 120))),
            ("wrong secret", user_token(b"another secret", |_| {})),
            ("wrong audience", user_token(SECRET, |c| c["aud"] = json!("someone-else"))),
            ("missing exp", user_token(SECRET, |c| { c.as_object_mut().unwrap().remove("exp"); })),
            ("signed with the Shopify secret", user_token(SHOPIFY_SECRET, |_| {})),
            (
                "HS256 signed with the JWKS public key",
                user_token(include_bytes!("keys/ec-public.pem"), |_| {}),
            ),
            (
                "alg none",
                format!(
                    "{}.{}.",
                    b64(br#"{"alg":"none","typ":"JWT"}"#),
                    b64(json!({"sub": uuid::Uuid::new_v4(), "role": "service_role", "aud": "authenticated", "exp": now + 600}).to_string().as_bytes())
                ),
            ),
        ];
        for (case, token) in &cases {
            assert_refused(&app, token, case).await;
        }
    }

    async fn an_es256_token_from_the_jwks_is_accepted(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "ada@example.com").await;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("test-ec-1".to_owned());
        let claims = json!({"sub": user, "role": "authenticated", "aud": "authenticated", "exp": chrono::Utc::now().timestamp() + 600});
        let key = EncodingKey::from_ec_der(include_bytes!("keys/ec-private.der"));
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();

        let reply = app.graphql(Some(&token), "{ users { nodes { email } } }", json!({})).await;

        assert_eq!(reply.data()["users"]["nodes"], json!([{"email": "ada@example.com"}]));
        let mut wrong_kid = Header::new(Algorithm::ES256);
        wrong_kid.kid = Some("unknown".to_owned());
        let token = jsonwebtoken::encode(&wrong_kid, &claims, &key).unwrap();
        assert_refused(&app, &token, "unknown kid").await;
    }

    async fn bad_shopify_session_tokens_are_refused(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "a.myshopify.com").await;
        fixtures::shop(&app.t.db, "gone.myshopify.com").await;
        app.t
            .execute("UPDATE shops SET uninstalled_at = $1 WHERE domain = 'gone.myshopify.com'", vec![chrono::Utc::now().into()])
            .await
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        let cases = [
            ("dest and iss disagree", TestApp::shop_token_with("a.myshopify.com", SHOPIFY_SECRET, |c| c["iss"] = json!("https://b.myshopify.com/admin"))),
            ("uninstalled shop", TestApp::shop_token("gone.myshopify.com")),
            ("unknown shop", TestApp::shop_token("nobody.myshopify.com")),
            ("signed with the user secret", TestApp::shop_token_with("a.myshopify.com", SECRET, |_| {})),
            ("expired", TestApp::shop_token_with("a.myshopify.com", SHOPIFY_SECRET, |c| c["exp"] = json!(now - 60))),
            ("wrong audience", TestApp::shop_token_with("a.myshopify.com", SHOPIFY_SECRET, |c| c["aud"] = json!("other-app"))),
        ];
        for (case, token) in &cases {
            assert_refused(&app, token, case).await;
        }

        let ok = app.graphql(Some(&TestApp::shop_token("a.myshopify.com")), "{ shops { nodes { rowId } } }", json!({})).await;
        assert_eq!(ok.data()["shops"]["nodes"], json!([{"rowId": shop}]));
    }

    async fn sign_up_makes_an_account_with_credits_and_sign_in_hides_which_part_was_wrong(t) {
        let app = TestApp::new(t).await;

        let signed_up = sign_up(&app, "  Ada@Example.COM ", "correct horse battery").await;

        assert_eq!(signed_up["userErrors"], json!([]));
        assert_eq!(signed_up["user"]["email"], "ada@example.com");
        let token = signed_up["token"].as_str().unwrap().to_owned();
        let me = app.graphql(Some(&token), "{ users { nodes { email creditAccount { balance } } } }", json!({})).await;
        assert_eq!(me.data()["users"]["nodes"], json!([{"email": "ada@example.com", "creditAccount": {"balance": 100}}]));

        let again = sign_up(&app, "ada@example.com", "another password").await;
        assert_eq!(again["userErrors"][0]["code"], "TAKEN");
        let short = sign_up(&app, "bob@example.com", "short").await;
        assert_eq!(short["userErrors"][0]["field"], json!(["input", "password"]));
        let bad_email = sign_up(&app, "not-an-email", "long enough password").await;
        assert_eq!(bad_email["userErrors"][0]["field"], json!(["input", "email"]));
        let users = app.query("{ users { totalCount } }", json!({})).await;
        assert_eq!(users.data()["users"]["totalCount"], 1);

        let sign_in = "mutation($i: SignInInput!) { signIn(input: $i) { token userErrors { message code } } }";
        let ok = app.graphql(None, sign_in, json!({"i": {"email": "ADA@example.com", "password": "correct horse battery"}})).await;
        assert!(ok.data()["signIn"]["token"].is_string());
        let wrong = app.graphql(None, sign_in, json!({"i": {"email": "ada@example.com", "password": "wrong password!"}})).await;
        let unknown = app.graphql(None, sign_in, json!({"i": {"email": "nobody@example.com", "password": "wrong password!"}})).await;
        assert_eq!(wrong.data()["signIn"], unknown.data()["signIn"]);
        assert_eq!(wrong.data()["signIn"]["userErrors"][0]["code"], "UNAUTHENTICATED");
        assert_eq!(wrong.data()["signIn"]["token"], Value::Null);
    }

    async fn api_keys_are_shown_once_scoped_and_refused_once_revoked_or_expired(t) {
        let app = TestApp::new(t).await;
        let signed_up = sign_up(&app, "ada@example.com", "correct horse battery").await;
        let token = signed_up["token"].as_str().unwrap().to_owned();
        let create = "mutation($i: ApiKeyCreateInput!) { apiKeyCreate(input: $i) { secret apiKey { id keyPrefix scopes } userErrors { field code } } }";

        let created = app.graphql(Some(&token), create, json!({"i": {"name": "ci", "scopes": ["READ"]}})).await;
        let created = &created.data()["apiKeyCreate"];
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with(created["apiKey"]["keyPrefix"].as_str().unwrap()));
        let with_key = |key: String| {
            axum::http::Request::post("/graphql")
                .header("content-type", "application/json")
                .header("x-api-key", key)
        };
        let read = app
            .send(with_key(secret.clone()).body(axum::body::Body::from(json!({"query": "{ users { nodes { email apiKeys { nodes { lastUsedAt } } } } }"}).to_string())).unwrap())
            .await;
        assert_eq!(read.data()["users"]["nodes"][0]["email"], "ada@example.com");
        assert!(read.data()["users"]["nodes"][0]["apiKeys"]["nodes"][0]["lastUsedAt"].is_string());
        let write = app
            .send(with_key(secret.clone()).body(axum::body::Body::from(json!({"query": "mutation { apiKeyCreate(input: {name: \"x\"}) { secret } }"}).to_string())).unwrap())
            .await;
        assert_eq!(write.code(), "FORBIDDEN", "{}", write.body);

        let past = app.graphql(Some(&token), create, json!({"i": {"name": "old", "expiresAt": "2020-01-01T00:00:00Z"}})).await;
        assert_eq!(past.data()["apiKeyCreate"]["userErrors"][0]["field"], json!(["input", "expiresAt"]));

        let revoke = "mutation($i: ApiKeyRevokeInput!) { apiKeyRevoke(input: $i) { apiKey { revokedAt } userErrors { code } } }";
        let revoked = app.graphql(Some(&token), revoke, json!({"i": {"id": created["apiKey"]["id"]}})).await;
        assert!(revoked.data()["apiKeyRevoke"]["apiKey"]["revokedAt"].is_string());
        let refused = app
            .send(with_key(secret).body(axum::body::Body::from(json!({"query": QUERY}).to_string())).unwrap())
            .await;
        assert_eq!(refused.status, axum::http::StatusCode::UNAUTHORIZED);
        assert_eq!(refused.code(), "UNAUTHENTICATED");

        let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
        let expiring = app.graphql(Some(&token), create, json!({"i": {"name": "soon", "expiresAt": soon}})).await;
        let secret = expiring.data()["apiKeyCreate"]["secret"].as_str().unwrap().to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let expired = app
            .send(with_key(secret).body(axum::body::Body::from(json!({"query": QUERY}).to_string())).unwrap())
            .await;
        assert_eq!(expired.status, axum::http::StatusCode::UNAUTHORIZED);

        let other = sign_up(&app, "eve@example.com", "correct horse battery").await;
        let stolen = app
            .graphql(other["token"].as_str(), revoke, json!({"i": {"id": created["apiKey"]["id"]}}))
            .await;
        assert_eq!(stolen.data()["apiKeyRevoke"]["userErrors"][0]["code"], "NOT_FOUND");
    }

    async fn anonymous_callers_see_nothing(t) {
        let app = TestApp::new(t).await;
        fixtures::shop(&app.t.db, "a.myshopify.com").await;

        let reply = app.graphql(None, QUERY, json!({})).await;

        assert_eq!(reply.data()["shops"]["totalCount"], 0);
    }
}

#[tokio::test]
async fn a_jwks_is_read_from_a_url_and_verifies_its_tokens() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(|| async { include_str!("keys/jwks.json") }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let jwks = api::config::load_jwks(&url).await.unwrap();

    let keys = api::auth::jwt::UserKeys {
        secret: SECRET.to_vec(),
        jwks: Some(jwks.into()),
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("test-ec-1".to_owned());
    let sub = uuid::Uuid::new_v4().to_string();
    let claims = json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": chrono::Utc::now().timestamp() + 600});
    let key = EncodingKey::from_ec_der(include_bytes!("keys/ec-private.der"));
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(
        api::auth::jwt::verify(&keys, &token).unwrap().sub,
        Some(sub)
    );
    assert!(
        api::config::load_jwks(&format!("{url}.missing"))
            .await
            .is_err()
    );
}

/// A JWKS endpoint whose keys can be changed while it serves; counts its fetches.
struct RotatingJwks {
    url: String,
    keys: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    fetches: tokio::sync::watch::Receiver<usize>,
}

impl RotatingJwks {
    async fn start(keys: Vec<Value>) -> Self {
        let keys = std::sync::Arc::new(std::sync::Mutex::new(keys));
        let (counted, fetches) = tokio::sync::watch::channel(0);
        let served = keys.clone();
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                counted.send_modify(|n| *n += 1);
                let set = json!({ "keys": *served.lock().unwrap() }).to_string();
                async move { set }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, keys, fetches }
    }

    fn fetches(&self) -> usize {
        *self.fetches.borrow()
    }
}

fn es256_token(kid: &str, private_der: &[u8]) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let claims = json!({"sub": uuid::Uuid::new_v4(), "role": "authenticated", "aud": "authenticated", "exp": chrono::Utc::now().timestamp() + 600});
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(private_der)).unwrap()
}

/// Keys rotate at the issuer: a token signed with a key published since the last fetch is
/// accepted at once (the set is fetched again for its unknown `kid`), made-up `kid`s do
/// not make it fetch more than once per gap, and a withdrawn key stops verifying at the
/// next periodic refresh.
#[tokio::test]
async fn the_jwks_is_refetched_for_an_unknown_kid_at_most_once_per_gap_and_periodically() {
    let first: Value = serde_json::from_str(include_str!("keys/jwks.json")).unwrap();
    let first = first["keys"][0].clone();
    let second: Value = serde_json::from_str(include_str!("keys/jwk-2.json")).unwrap();
    let mut issuer = RotatingJwks::start(vec![first.clone()]).await;
    let gap = Duration::from_millis(300);
    let jwks = api::auth::jwks::Jwks::remote(&issuer.url, Duration::from_secs(3), gap)
        .await
        .unwrap();
    let keys = api::auth::jwt::UserKeys {
        secret: Vec::new(),
        jwks: Some(jwks),
    };
    let old = es256_token("test-ec-1", include_bytes!("keys/ec-private.der"));
    let new = es256_token("test-ec-2", include_bytes!("keys/ec-private-2.der"));
    let made_up = es256_token("made-up", include_bytes!("keys/ec-private.der"));
    assert!(api::auth::jwt::verify_fresh(&keys, &old).await.is_ok());
    assert_eq!(issuer.fetches(), 1);

    // Rotated in: the new key is published next to the old one.
    *issuer.keys.lock().unwrap() = vec![first, second.clone()];
    tokio::time::sleep(gap).await;
    let rotated_in = api::auth::jwt::verify_fresh(&keys, &new).await;
    let after_rotation = issuer.fetches();
    let refused = api::auth::jwt::verify_fresh(&keys, &made_up).await;
    let after_made_up = issuer.fetches();
    // Rotated out: only the new key is published; the periodic refresh drops the old one.
    *issuer.keys.lock().unwrap() = vec![second];
    tokio::time::timeout(
        Duration::from_secs(10),
        issuer.fetches.wait_for(|n| *n > after_made_up),
    )
    .await
    .unwrap()
    .unwrap();
    // The fetch was answered; its keys take over once the answer is read.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while api::auth::jwt::verify(&keys, &old).is_ok() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert!(rotated_in.is_ok(), "{rotated_in:?}");
    assert_eq!(after_rotation, 2);
    assert!(refused.is_err());
    assert_eq!(
        after_made_up, 2,
        "a made-up kid within the gap fetches nothing"
    );
    assert!(
        api::auth::jwt::verify(&keys, &old).is_err(),
        "a withdrawn key still verifies"
    );
    assert!(api::auth::jwt::verify(&keys, &new).is_ok());
}
