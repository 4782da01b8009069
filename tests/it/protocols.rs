//! The protocols to the letter: GraphQL over HTTP (media types, CORS) and
//! `graphql-transport-ws` (close codes), plus the spec's "directives are defined" rule over
//! both, and the caps on open operations per connection and per principal.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::app::TestApp;
use crate::common::server::{Client, Incoming, Server};
use crate::common::{fixtures, on_both_backends};

const SIGN_UP: &str = r#"mutation { signUp(input: {email: "eve@example.com", password: "long enough password"}) { userErrors { code } } }"#;

fn post(content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post("/graphql");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

async fn users(app: &TestApp) -> u64 {
    let reply = app.query("{ users { totalCount } }", json!({})).await;
    reply.data()["users"]["totalCount"].as_u64().unwrap()
}

const ROW_CHANGED: &str = "subscription { rowChanged(tables: [USERS]) { cursor op } }";

/// A `graphql-transport-ws` client whose connection is acknowledged.
async fn ready(server: &Server, token: &str) -> Client {
    let mut client = Client::connect(server.addr, false).await;
    client.init(token).await;
    client
}

/// The next `error` message, or what came instead.
async fn next_error(client: &mut Client) -> Value {
    loop {
        match client.recv(Duration::from_secs(5)).await {
            Some(Incoming::Json(message)) if message["type"] == "error" => return message,
            Some(Incoming::Json(_)) => {}
            other => panic!("expected an error message, got {other:?}"),
        }
    }
}

on_both_backends! {
    async fn a_post_that_is_not_json_is_415_and_runs_nothing(t) {
        let app = TestApp::new(t).await;
        let body = json!({ "query": SIGN_UP }).to_string();

        let mut statuses = Vec::new();
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/graphql"),
        ] {
            statuses.push(app.send(post(content_type, &body)).await.status);
        }
        let created_none = users(&app).await;
        let json = app.send(post(Some("application/json; charset=utf-8"), &body)).await;

        assert!(statuses.iter().all(|s| *s == StatusCode::UNSUPPORTED_MEDIA_TYPE), "{statuses:?}");
        assert_eq!(created_none, 0);
        assert_eq!(json.data()["signUp"]["userErrors"], json!([]));
        assert_eq!(users(&app).await, 1);
    }

    async fn responses_take_the_media_type_the_client_accepts(t) {
        let app = TestApp::new(t).await;
        let body = json!({ "query": "{ __typename }" }).to_string();
        let media = |reply: &crate::common::app::Reply| {
            reply.headers["content-type"].to_str().unwrap().to_owned()
        };

        let plain = app.send(post(Some("application/json"), &body)).await;
        let mut asking = post(Some("application/json"), &body);
        asking.headers_mut().insert(
            "accept",
            "application/graphql-response+json, application/json;q=0.9".parse().unwrap(),
        );
        let asking = app.send(asking).await;
        let refused = app.send(post(Some("text/plain"), &body)).await;

        assert_eq!(media(&plain), "application/json");
        assert_eq!(media(&asking), "application/graphql-response+json");
        assert_eq!(asking.body["data"]["__typename"], "Query");
        assert_eq!(media(&refused), "application/json");
    }

    async fn unknown_directives_are_refused_wherever_they_stand(t) {
        let app = TestApp::new(t).await;
        for query in [
            "{ __typename @a }",
            "query @a { __typename }",
            "query($x: Int @a) { __typename }",
            "{ ...F @a } fragment F on Query { __typename }",
            "{ ... on Query @a { __typename } }",
            "{ ...F } fragment F on Query @a { __typename }",
        ] {
            let reply = app.query(query, json!({})).await;
            assert_eq!(reply.code(), "BAD_USER_INPUT", "{query}: {}", reply.body);
            assert!(reply.message().contains("Unknown directive"), "{query}: {}", reply.body);
        }
    }

    async fn unknown_directives_are_refused_over_the_socket(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let mut client = ready(&server, &TestApp::service()).await;

        client.subscribe("q", "{ __typename @a }", json!({})).await;
        client.subscribe("s", "subscription { rowChanged(tables: [USERS]) @a { op } }", json!({})).await;
        let mut errors = Vec::new();
        for _ in 0..2 {
            errors.push(next_error(&mut client).await["payload"].clone());
        }

        for error in &errors {
            let first = &error[0];
            assert_eq!(first["extensions"]["code"], "BAD_USER_INPUT", "{error}");
            assert!(first["message"].as_str().unwrap().contains("Unknown directive"), "{error}");
        }
    }

    async fn nodes_answers_one_entry_per_id_in_order_with_null_where_unseen(t) {
        let app = TestApp::new(t).await;
        let mine = fixtures::shop(&app.t.db, "a.myshopify.com").await;
        let theirs = fixtures::shop(&app.t.db, "b.myshopify.com").await;
        let product = fixtures::product(&app.t.db, mine, "1").await;
        let gid = |ty: &str, id: uuid::Uuid| format!("gid://stratix/{ty}/{id}");
        let ids = json!([
            gid("Product", product),
            gid("Shop", theirs),
            gid("Shop", uuid::Uuid::new_v4()),
            gid("Shop", mine),
            gid("Product", product),
        ]);
        let token = TestApp::shop_token("a.myshopify.com");
        let query = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Shop { domain } } }";

        // Twice: a read that ran once may be answered by a compiled plan the second time.
        let first = app.graphql(Some(&token), query, json!({ "ids": ids })).await;
        let second = app.graphql(Some(&token), query, json!({ "ids": ids })).await;

        let expected = json!([
            { "id": ids[0] },
            null,
            null,
            { "id": ids[3], "domain": "a.myshopify.com" },
            { "id": ids[0] },
        ]);
        assert_eq!(first.data()["nodes"], expected);
        assert_eq!(second.data()["nodes"], expected);
    }

    /// graphql-transport-ws: "error: operation execution error(s) in response to the
    /// Subscribe message ... before execution starts, usually due to validation errors".
    /// Such an operation gets one `error` message and no `complete`; one that ran gets
    /// `next` and `complete`.
    async fn an_operation_refused_before_it_runs_gets_an_error_message_and_no_complete(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let mut client = ready(&server, &TestApp::service()).await;

        client.subscribe("invalid", "{ nope }", json!({})).await;
        client.subscribe("unparsable", "{ users {", json!({})).await;
        client.subscribe("mutation", SIGN_UP, json!({})).await;
        client.subscribe("subscription", "subscription { rowChanged(tables: [NOPE]) { op } }", json!({})).await;
        client.subscribe("fine", "{ __typename }", json!({})).await;
        let mut messages = Vec::new();
        let concluded = |messages: &[Value]| {
            messages.iter().filter(|m| m["type"] == "error" || m["type"] == "complete").count()
        };
        while concluded(&messages) < 5 {
            match client.recv(Duration::from_secs(5)).await {
                Some(Incoming::Json(message)) => messages.push(message),
                other => panic!("{other:?} after {messages:#?}"),
            }
        }
        // Nothing more comes: no `complete` after an `error`.
        while let Some(Incoming::Json(message)) = client.recv(Duration::from_millis(300)).await {
            messages.push(message);
        }

        let of = |id: &str| -> Vec<&Value> { messages.iter().filter(|m| m["id"] == id).collect() };
        for id in ["invalid", "unparsable", "mutation", "subscription"] {
            let sent = of(id);
            assert_eq!(sent.len(), 1, "{id}: {sent:#?}");
            assert_eq!(sent[0]["type"], "error", "{id}: {sent:#?}");
            let errors = sent[0]["payload"].as_array().unwrap();
            assert!(!errors.is_empty() && errors[0]["message"].is_string(), "{id}: {sent:#?}");
        }
        let fine: Vec<&str> = of("fine").iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(fine, ["next", "complete"]);
    }

    /// A ping flood is not answered without bound: `ping` messages past the bound go
    /// unanswered (the socket stays usable); ping frames past it close the socket (1008).
    async fn pings_are_answered_at_most_max_pings_per_window(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let mut messages = ready(&server, &TestApp::service()).await;
        let mut frames = ready(&server, &TestApp::service()).await;
        let max = api::realtime::socket::MAX_PINGS as usize;

        for _ in 0..200 {
            messages.send(json!({ "type": "ping" })).await;
        }
        messages.subscribe("after", "{ __typename }", json!({})).await;
        let (mut pongs, mut answer) = (0, Value::Null);
        loop {
            match messages.recv(Duration::from_secs(5)).await {
                Some(Incoming::Json(m)) if m["type"] == "pong" => pongs += 1,
                Some(Incoming::Json(m)) if m["type"] == "next" => answer = m["payload"].clone(),
                Some(Incoming::Json(m)) if m["type"] == "complete" => break,
                other => panic!("{other:?}"),
            }
        }
        while let Some(Incoming::Json(m)) = messages.recv(Duration::from_millis(300)).await {
            pongs += usize::from(m["type"] == "pong");
        }
        for _ in 0..200 {
            frames.send_raw(Message::Ping(vec![1, 2, 3].into())).await;
        }
        let mut frame_pongs = 0;
        let closed = loop {
            match frames.frame(Duration::from_secs(5)).await {
                Some(Message::Pong(_)) => frame_pongs += 1,
                Some(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
                Some(_) => {}
                None => break None,
            }
        };

        assert_eq!(pongs, max, "answered pings");
        assert_eq!(answer["data"]["__typename"], "Query", "the socket still answers");
        assert!(frame_pongs <= max, "{frame_pongs} ping frames answered");
        assert_eq!(closed, Some(1008));
    }

    async fn open_operations_are_capped_per_connection_and_per_principal(t) {
        let t = t.migrated().await;
        let mut options = api::state::Options::default();
        options.limits.max_subscriptions_per_connection = 2;
        options.limits.max_subscriptions_per_principal = 3;
        let server = Server::start_with(t.db.clone(), options).await;
        let user = fixtures::user(&t.db, "ada@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let mut one = ready(&server, &token).await;
        let mut two = ready(&server, &token).await;

        one.subscribe("a", ROW_CHANGED, json!({})).await;
        one.subscribe("b", ROW_CHANGED, json!({})).await;
        one.subscribe("c", ROW_CHANGED, json!({})).await;
        let per_connection = next_error(&mut one).await;
        two.subscribe("d", ROW_CHANGED, json!({})).await;
        server.subscribed(3).await;
        two.subscribe("e", ROW_CHANGED, json!({})).await;
        let per_principal = next_error(&mut two).await;
        one.send(json!({ "type": "complete", "id": "a" })).await;
        loop {
            match one.recv(Duration::from_secs(5)).await {
                Some(Incoming::Json(message)) if message["type"] == "complete" => break,
                Some(Incoming::Json(_)) => {}
                other => panic!("no complete for a: {other:?}"),
            }
        }
        two.subscribe("f", ROW_CHANGED, json!({})).await;
        let after_a_place_came_free = two.recv(Duration::from_millis(300)).await;
        let other_user = fixtures::user(&t.db, "bob@example.com").await;
        let mut other = ready(&server, &TestApp::token("authenticated", &other_user.to_string())).await;
        other.subscribe("g", ROW_CHANGED, json!({})).await;
        server.subscribed(4).await;
        drop(one);
        drop(two);

        assert_eq!(per_connection["id"], "c");
        assert_eq!(per_connection["payload"][0]["extensions"]["code"], "THROTTLED", "{per_connection}");
        assert!(per_connection["payload"][0]["message"].as_str().unwrap().contains("maxSubscriptionsPerConnection"));
        assert!(after_a_place_came_free.is_none(), "{after_a_place_came_free:?}");
        assert_eq!(per_principal["id"], "e");
        assert!(per_principal["payload"][0]["message"].as_str().unwrap().contains("maxSubscriptionsPerPrincipal"));
        // Closing the sockets gives their places back.
        let principal = api::auth::Principal::User { id: user, scopes: vec![api::auth::KeyScope::Read, api::auth::KeyScope::Write], key: None };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while server.operations.of(&principal) > 0 {
            assert!(std::time::Instant::now() < deadline, "{} still open", server.operations.of(&principal));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One `graphql-transport-ws` client; `init` sends `connection_init` (unacknowledged yet).
async fn connected(server: &Server) -> Client {
    Client::connect(server.addr, false).await
}

#[tokio::test]
async fn graphql_transport_ws_closes_with_the_protocols_codes() {
    let t = crate::common::TestDb::sqlite().await.migrated().await;
    let mut options = api::state::Options::default();
    options.limits.max_body_bytes = 2048;
    let server = Server::start_with(t.db.clone(), options).await;
    let service = TestApp::service();
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": ROW_CHANGED } });

    let mut binary = connected(&server).await;
    binary
        .send_raw(Message::binary(b"{\"type\":\"connection_init\"}".to_vec()))
        .await;
    let mut invalid = connected(&server).await;
    invalid.send_raw(Message::text("{not json")).await;
    let mut unknown = ready(&server, &service).await;
    unknown.send(json!({ "type": "subscribe_all" })).await;
    let mut no_id = ready(&server, &service).await;
    no_id
        .send(json!({ "type": "subscribe", "payload": { "query": ROW_CHANGED } }))
        .await;
    let mut early = connected(&server).await;
    early.send(subscribe.clone()).await;
    let mut twice = ready(&server, &service).await;
    twice.send(json!({ "type": "connection_init" })).await;
    let mut duplicate = ready(&server, &service).await;
    duplicate
        .send(json!({ "type": "subscribe", "id": "1", "payload": { "query": "{ __typename }" } }))
        .await;
    duplicate.send(subscribe.clone()).await;
    duplicate.send(subscribe.clone()).await;
    let mut big = ready(&server, &service).await;
    big.send_raw(Message::text(format!(
        "{{\"type\":\"ping\",\"payload\":\"{}\"}}",
        "x".repeat(3000)
    )))
    .await;

    let wait = Duration::from_secs(5);
    assert_eq!(binary.closed(wait).await.0, 4400);
    assert_eq!(invalid.closed(wait).await.0, 4400);
    assert_eq!(unknown.closed(wait).await.0, 4400);
    assert_eq!(no_id.closed(wait).await.0, 4400);
    assert_eq!(early.closed(wait).await.0, 4401);
    assert_eq!(twice.closed(wait).await.0, 4429);
    assert_eq!(duplicate.closed(wait).await.0, 4409);
    assert_eq!(big.closed(wait).await.0, 1009);
}

#[tokio::test]
async fn cors_answers_preflights_for_configured_origins_only() {
    let t = crate::common::TestDb::sqlite().await;
    let options = api::state::Options {
        cors_origins: vec!["https://admin.example.com".to_owned()],
        ..Default::default()
    };
    let app = TestApp::with_options(t, options).await;
    let preflight = |origin: &str| {
        Request::options("/graphql")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .body(Body::empty())
            .unwrap()
    };

    let allowed = app.send(preflight("https://admin.example.com")).await;
    let other = app.send(preflight("https://evil.example.com")).await;
    let mut post_from = post(
        Some("application/json"),
        &json!({ "query": "{ __typename }" }).to_string(),
    );
    post_from
        .headers_mut()
        .insert("origin", "https://admin.example.com".parse().unwrap());
    let actual = app.send(post_from).await;

    let header = |reply: &crate::common::app::Reply, name: &str| {
        reply
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert!(allowed.status.is_success(), "{}", allowed.status);
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("https://admin.example.com")
    );
    assert_eq!(
        header(&allowed, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert!(
        header(&allowed, "access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    assert_eq!(
        header(&actual, "access-control-allow-origin").as_deref(),
        Some("https://admin.example.com")
    );

    let t = crate::common::TestDb::sqlite().await;
    let options = api::state::Options {
        cors_origins: vec!["*".to_owned()],
        ..Default::default()
    };
    let any = TestApp::with_options(t, options).await;
    let wildcard = any.send(preflight("https://anyone.example.com")).await;
    assert_eq!(
        header(&wildcard, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&wildcard, "access-control-allow-credentials"),
        None,
        "never * with credentials"
    );
}
