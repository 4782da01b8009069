//! The read API: connections, pagination, filters, ordering, aggregates, relations, limits.

use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::fixtures;
use crate::common::on_both_backends;

const SHOP_PRODUCTS: &str = "query($n: Int!) {
  shops(first: $n, orderBy: [{field: DOMAIN}]) { nodes { domain
    products(first: 50, orderBy: [{field: SHOPIFY_ID}]) { nodes { shopifyId
      contentRevisions(last: 3, orderBy: [{field: VERSION}]) { nodes { version } } } } } } }";

/// `shops` shops with `products` products of `revisions` revisions each.
async fn shops_with_products(app: &TestApp, shops: usize, products: usize, revisions: i32) {
    let db = &app.t.db;
    for s in 0..shops {
        let shop = fixtures::shop(db, &format!("shop-{s:02}.myshopify.com")).await;
        for p in 0..products {
            let product = fixtures::product(db, shop, &format!("{p:03}")).await;
            for v in 1..=revisions {
                fixtures::revision(db, shop, product, v).await;
            }
        }
    }
}

fn names(nodes: &Value, field: &str) -> Vec<String> {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n[field].to_string().trim_matches('"').to_owned())
        .collect()
}

on_both_backends! {
    async fn nested_relations_cost_the_same_statements_for_one_shop_as_for_twenty(t) {
        let app = TestApp::new(t).await;
        shops_with_products(&app, 1, 3, 4).await;
        let one = app.query(SHOP_PRODUCTS, json!({"n": 20})).await;
        shops_with_products_more(&app).await;

        let twenty = app.query(SHOP_PRODUCTS, json!({"n": 20})).await;

        assert_eq!(one.data()["shops"]["nodes"].as_array().unwrap().len(), 1);
        assert_eq!(twenty.data()["shops"]["nodes"].as_array().unwrap().len(), 20);
        let products = &twenty.data()["shops"]["nodes"][0]["products"]["nodes"];
        assert_eq!(products.as_array().unwrap().len(), 3);
        assert_eq!(names(&products[0]["contentRevisions"]["nodes"], "version"), ["2", "3", "4"]);
        assert_eq!(one.statements(), 3, "{}", one.body);
        assert_eq!(twenty.statements(), one.statements(), "{}", twenty.body["extensions"]);
    }

    async fn total_count_and_aggregates_add_one_statement_each(t) {
        let app = TestApp::new(t).await;
        shops_with_products(&app, 3, 2, 2).await;

        let reply = app
            .query(
                "{ shops(first: 10) { totalCount nodes { products(first: 10) { totalCount aggregate { count }
                    nodes { contentRevisions(first: 10) { totalCount } } } } } }",
                json!({}),
            )
            .await;

        let shops = &reply.data()["shops"];
        assert_eq!(shops["totalCount"], 3);
        assert_eq!(shops["nodes"][0]["products"]["totalCount"], 2);
        assert_eq!(shops["nodes"][0]["products"]["aggregate"]["count"], 2);
        assert_eq!(shops["nodes"][0]["products"]["nodes"][0]["contentRevisions"]["totalCount"], 2);
        // shops + count, products + count + aggregate, revision counts (no revision rows
        // are read: only their totalCount is asked for)
        assert_eq!(reply.statements(), 6, "{}", reply.body);
    }

    async fn keyset_pages_stay_correct_when_rows_are_inserted_before_the_cursor(t) {
        let app = TestApp::new(t).await;
        shops_with_products(&app, 5, 0, 0).await;
        let page = "query($after: String) { shops(first: 2, after: $after, orderBy: [{field: DOMAIN}]) {
            nodes { domain } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
        let first = app.query(page, json!({})).await;
        let cursor = first.data()["shops"]["pageInfo"]["endCursor"].clone();
        assert_eq!(names(&first.data()["shops"]["nodes"], "domain"), ["shop-00.myshopify.com", "shop-01.myshopify.com"]);

        fixtures::shop(&app.t.db, "shop-000.myshopify.com").await;
        let second = app.query(page, json!({"after": cursor})).await;

        assert_eq!(names(&second.data()["shops"]["nodes"], "domain"), ["shop-02.myshopify.com", "shop-03.myshopify.com"]);
        assert_eq!(second.data()["shops"]["pageInfo"]["hasNextPage"], true);
        assert_eq!(second.data()["shops"]["pageInfo"]["hasPreviousPage"], true);
    }

    async fn last_and_before_page_backwards(t) {
        let app = TestApp::new(t).await;
        shops_with_products(&app, 5, 0, 0).await;
        let last = app.query("{ shops(last: 2, orderBy: [{field: DOMAIN}]) { nodes { domain } pageInfo { startCursor hasPreviousPage } } }", json!({})).await;
        assert_eq!(names(&last.data()["shops"]["nodes"], "domain"), ["shop-03.myshopify.com", "shop-04.myshopify.com"]);
        let cursor = last.data()["shops"]["pageInfo"]["startCursor"].clone();

        let before = app
            .query("query($c: String) { shops(last: 2, before: $c, orderBy: [{field: DOMAIN}]) { nodes { domain } } }", json!({"c": cursor}))
            .await;

        assert_eq!(names(&before.data()["shops"]["nodes"], "domain"), ["shop-01.myshopify.com", "shop-02.myshopify.com"]);
    }

    async fn filters_combine_with_and_or_not(t) {
        let app = TestApp::new(t).await;
        shops_with_products(&app, 1, 6, 0).await;
        let query = "query($f: ProductFilter) { products(filter: $f, orderBy: [{field: SHOPIFY_ID, direction: DESC}]) { nodes { shopifyId } } }";

        let ids = |reply: &crate::common::app::Reply| names(&reply.data()["products"]["nodes"], "shopifyId");
        let r = app.query(query, json!({"f": {"shopifyId": {"in": ["001", "003", "005"]}, "not": {"shopifyId": {"eq": "003"}}}})).await;
        assert_eq!(ids(&r), ["005", "001"]);
        let r = app.query(query, json!({"f": {"or": [{"shopifyId": {"lt": "001"}}, {"shopifyId": {"gte": "005"}}]}})).await;
        assert_eq!(ids(&r), ["005", "000"]);
        let r = app.query(query, json!({"f": {"title": {"like": "Product 00%"}, "description": {"isNull": true}}})).await;
        assert_eq!(ids(&r).len(), 6);
        let r = app.query(query, json!({"f": {"title": {"like": "product 00%"}}})).await;
        assert_eq!(ids(&r).len(), 0, "like is case-sensitive");
        let r = app.query(query, json!({"f": {"title": {"ilike": "product 002"}}})).await;
        assert_eq!(ids(&r), ["002"]);
    }

    async fn json_contains_matches_top_level_keys(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "a.myshopify.com").await;
        fixtures::experiment(&app.t.db, shop, "e1").await;

        let hit = app.query(r#"{ experiments(filter: {allocation: {contains: {control: 0.5}}}) { totalCount } }"#, json!({})).await;
        let miss = app.query(r#"{ experiments(filter: {allocation: {contains: {control: 0.7}}}) { totalCount } }"#, json!({})).await;

        assert_eq!(hit.data()["experiments"]["totalCount"], 1);
        assert_eq!(miss.data()["experiments"]["totalCount"], 0);
    }

    async fn revenue_and_purchases_per_variant(t) {
        let app = TestApp::new(t).await;
        let db = &app.t.db;
        let shop = fixtures::shop(db, "a.myshopify.com").await;
        let experiment = fixtures::experiment(db, shop, "cta").await;
        fixtures::result(db, shop, experiment, "control", None, 3, "30.50").await;
        fixtures::result(db, shop, experiment, "control", Some("mobile"), 2, "20.25").await;
        fixtures::result(db, shop, experiment, "b", None, 5, "99.99").await;

        let reply = app
            .query(
                "query($e: UUID!) { resultsAggregates(filter: {experimentId: {eq: $e}}) {
                    aggregate { count sum { revenue purchase } max { revenue } }
                    groupBy(by: [{field: VARIANT}]) { key { variant } count sum { revenue purchase } avg { purchase } } } }",
                json!({"e": experiment}),
            )
            .await;

        let results = &reply.data()["resultsAggregates"];
        assert_eq!(results["aggregate"]["count"], 3);
        assert_eq!(results["aggregate"]["sum"]["revenue"], "150.74");
        assert_eq!(results["aggregate"]["sum"]["purchase"], "10");
        assert_eq!(results["aggregate"]["max"]["revenue"], "99.99");
        assert_eq!(
            results["groupBy"],
            json!([
                {"key": {"variant": "b"}, "count": 1, "sum": {"revenue": "99.99", "purchase": "5"}, "avg": {"purchase": 5.0}},
                {"key": {"variant": "control"}, "count": 2, "sum": {"revenue": "50.75", "purchase": "5"}, "avg": {"purchase": 2.5}},
            ])
        );
    }

    async fn events_per_type_per_day(t) {
        let app = TestApp::new(t).await;
        let db = &app.t.db;
        let shop = fixtures::shop(db, "a.myshopify.com").await;
        let day = chrono::Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
        for (kind, hours) in [("page_view", 1), ("page_view", 2), ("add_to_cart", 3), ("page_view", 25)] {
            fixtures::event(db, shop, kind, day - chrono::Duration::days(1) + chrono::Duration::hours(hours)).await;
        }

        let reply = app
            .query(
                "query($s: UUID!) { events(filter: {shopId: {eq: $s}}) {
                    groupBy(by: [{field: TS, truncate: DAY}, {field: EVENT_TYPE}]) { key { ts eventType } count } } }",
                json!({"s": shop}),
            )
            .await;

        let yesterday = (day - chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00Z").to_string();
        let today = day.format("%Y-%m-%dT00:00:00Z").to_string();
        assert_eq!(
            reply.data()["events"]["groupBy"],
            json!([
                {"key": {"ts": yesterday, "eventType": "add_to_cart"}, "count": 1},
                {"key": {"ts": yesterday, "eventType": "page_view"}, "count": 2},
                {"key": {"ts": today, "eventType": "page_view"}, "count": 1},
            ])
        );
    }

    async fn relations_work_both_ways_and_node_fetches_any_row(t) {
        let app = TestApp::new(t).await;
        let db = &app.t.db;
        let shop = fixtures::shop(db, "a.myshopify.com").await;
        let product = fixtures::product(db, shop, "1").await;
        fixtures::revision(db, shop, product, 1).await;

        let reply = app
            .query("{ contentRevisions { nodes { id version product { shopifyId shop { domain } } } } }", json!({}))
            .await;
        let revision = &reply.data()["contentRevisions"]["nodes"][0];
        assert_eq!(revision["product"]["shop"]["domain"], "a.myshopify.com");

        let gid = revision["id"].clone();
        let node = app
            .query("query($id: ID!) { node(id: $id) { id ... on ContentRevision { version product { shopifyId } } } }", json!({"id": gid}))
            .await;
        assert_eq!(node.data()["node"]["version"], 1);
        assert_eq!(node.data()["node"]["product"]["shopifyId"], "1");

        let missing = format!("gid://stratix/Shop/{}", uuid::Uuid::new_v4());
        let nodes = app.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": [missing.clone(), gid]})).await;
        assert_eq!(nodes.data()["nodes"], json!([null, {"id": revision["id"]}]));
        let none = app.query("query($id: ID!) { node(id: $id) { id } }", json!({"id": missing})).await;
        assert_eq!(none.data()["node"], Value::Null);
    }

    async fn bad_input_is_bad_user_input_naming_the_argument(t) {
        let app = TestApp::new(t).await;
        let cases = [
            ("{ shops(first: 251) { totalCount } }", "first"),
            ("{ shops(after: \"nonsense\") { totalCount } }", "after"),
            ("{ node(id: \"gid://stratix/Shop/not-a-uuid\") { id } }", "id"),
            ("{ shops(orderBy: [{field: NOPE}]) { totalCount } }", "orderBy"),
            ("{ shops(filter: {rowId: {eq: \"zzz\"}}) { totalCount } }", "filter.rowId.eq"),
            ("{ shops(first: 1, last: 1) { totalCount } }", "last"),
        ];
        for (query, argument) in cases {
            let reply = app.query(query, json!({})).await;
            assert_eq!(reply.code(), "BAD_USER_INPUT", "{query}: {}", reply.body);
            assert!(reply.message().contains(argument), "{query}: {}", reply.body);
            assert!(!reply.message().to_lowercase().contains("select"), "{}", reply.body);
        }
    }

    async fn a_cursor_from_another_order_is_refused(t) {
        let app = TestApp::new(t).await;
        shops_with_products(&app, 2, 0, 0).await;
        let first = app.query("{ shops(first: 1) { pageInfo { endCursor } } }", json!({})).await;
        let cursor = first.data()["shops"]["pageInfo"]["endCursor"].clone();

        let reply = app
            .query("query($c: String) { shops(after: $c, orderBy: [{field: DOMAIN}]) { totalCount } }", json!({"c": cursor}))
            .await;

        assert_eq!(reply.code(), "BAD_USER_INPUT");
        assert!(reply.message().contains("orderBy"), "{}", reply.body);
    }

    async fn limits_refuse_deep_costly_and_aliased_queries_before_any_sql(t) {
        let app = TestApp::new(t).await;
        let costly = "{ shops(first: 250) { nodes { products(first: 250) { nodes { contentRevisions(first: 250) { nodes { id } } } } } } }";
        let aliases: String = (0..31).map(|i| format!("a{i}: shops {{ totalCount }} ")).collect();
        let deep = "{ contentRevisions { nodes { product { shop { products { nodes { shop { products { nodes { shop { products { nodes { shop { domain } } } } } } } } } } } } } }";
        for query in [costly.to_owned(), format!("{{ {aliases} }}"), deep.to_owned()] {
            let reply = app.query(&query, json!({})).await;
            assert_eq!(reply.code(), "BAD_USER_INPUT", "{}", reply.body);
            assert_eq!(reply.statements(), 0, "{}", reply.body);
        }
        let ok = app.query("{ shops(first: 10) { totalCount } }", json!({})).await;
        assert_eq!(ok.body["extensions"]["cost"]["requestedQueryCost"], 12, "{}", ok.body);
    }

    async fn secrets_are_never_fields(t) {
        let app = TestApp::new(t).await;
        for (ty, field) in [("Shop", "accessTokenEnc"), ("User", "passwordHash"), ("ApiKey", "keyHash"), ("WebhookEndpoint", "secretEnc"), ("ExternalIntegration", "secretsEnc"), ("UserInvitation", "tokenHash")] {
            let reply = app.query(&format!("{{ __type(name: \"{ty}\") {{ fields {{ name }} }} }}"), json!({})).await;
            let fields = names(&reply.data()["__type"]["fields"], "name");
            assert!(!fields.is_empty(), "{ty}");
            assert!(!fields.contains(&field.to_owned()), "{ty}.{field} is exposed");
        }
    }
}

async fn shops_with_products_more(app: &TestApp) {
    let db = &app.t.db;
    for s in 1..20 {
        let shop = fixtures::shop(db, &format!("shop-{s:02}.myshopify.com")).await;
        for p in 0..3 {
            let product = fixtures::product(db, shop, &format!("{p:03}")).await;
            for v in 1..=4 {
                fixtures::revision(db, shop, product, v).await;
            }
        }
    }
}

#[test]
fn schema_graphql_is_up_to_date() {
    let sdl = api::graphql::schema(api::graphql::Limits::default())
        .unwrap()
        .sdl();
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
            .unwrap_or_default();
    assert!(
        sdl == checked_in,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

on_both_backends! {
    async fn a_present_but_invalid_token_is_refused_with_401(t) {
        let app = TestApp::new(t).await;

        let reply = app.graphql(Some("not.a.token"), "{ shops { totalCount } }", json!({})).await;

        assert_eq!(reply.status, axum::http::StatusCode::UNAUTHORIZED);
        assert_eq!(reply.code(), "UNAUTHENTICATED");
    }

    async fn get_serves_queries(t) {
        let app = TestApp::new(t).await;
        let request = axum::http::Request::get("/graphql?query=%7B%20shops%20%7B%20totalCount%20%7D%20%7D")
            .header("authorization", format!("Bearer {}", TestApp::service()))
            .body(axum::body::Body::empty())
            .unwrap();

        let reply = app.send(request).await;

        assert_eq!(reply.status, axum::http::StatusCode::OK);
        assert_eq!(reply.data()["shops"]["totalCount"], 0);
    }

    async fn a_user_reads_only_their_own_rows(t) {
        let app = TestApp::new(t).await;
        let ada = fixtures::user(&app.t.db, "ada@example.com").await;
        fixtures::user(&app.t.db, "grace@example.com").await;
        let token = TestApp::token("authenticated", &ada.to_string());

        let reply = app.graphql(Some(&token), "{ users { nodes { email creditAccount { balance } } } profiles { totalCount } }", json!({})).await;

        assert_eq!(reply.data()["users"]["nodes"], json!([{"email": "ada@example.com", "creditAccount": {"balance": 100}}]));
        assert_eq!(reply.data()["profiles"]["totalCount"], 1);
    }
}
