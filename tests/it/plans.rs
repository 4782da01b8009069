//! Compiled read plans: a read query sent again is answered by its plan, exactly as the
//! executor answers it (data, errors, cost, statement count), for every tenant.

use serde_json::{Value, json};

use crate::common::app::{Reply, TestApp};
use crate::common::on_both_backends;
use crate::common::world::{self, World};

/// The executor's answer: a fresh comment makes the text new, so no plan exists for it.
async fn by_executor(app: &TestApp, token: &str, query: &str, variables: Value) -> Reply {
    let fresh = format!("{query}\n# {}", uuid::Uuid::new_v4());
    app.graphql(Some(token), &fresh, variables).await
}

/// The plan's answer (the document is taught to the cache first), asserting it was the
/// plan that answered.
async fn by_plan(app: &TestApp, token: &str, query: &str, variables: Value) -> Reply {
    app.graphql(Some(token), query, variables.clone()).await;
    let hits = app.plans.hits();
    let reply = app.graphql(Some(token), query, variables).await;
    assert_eq!(
        app.plans.hits(),
        hits + 1,
        "no plan answered {query}: {}",
        reply.body
    );
    reply
}

/// Asserts that plan and executor answer `query` alike, and returns the answer.
async fn alike(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let plan = by_plan(app, token, query, variables.clone()).await;
    let executor = by_executor(app, token, query, variables).await;
    assert_eq!(plan.status, executor.status);
    assert_eq!(
        plan.body, executor.body,
        "plan and executor differ on {query}"
    );
    plan.body
}

const SHOP_TREE: &str = "query Tree($first: Int, $after: String, $domain: String) {
  __typename
  shops(first: $first, after: $after, filter: {domain: {ne: $domain}}, orderBy: [{field: DOMAIN, direction: DESC}]) {
    __typename totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { __typename id rowId domain plan installedAt settings uninstalledAt
      all: products(first: 10, orderBy: [{field: SHOPIFY_ID, nulls: FIRST}]) {
        totalCount
        nodes { title data createdAt shop { domain }
          contentRevisions(last: 2) { pageInfo { startCursor } nodes { version content } } } }
      none: products(first: 5, filter: {title: {eq: \"no such title\"}}) { totalCount nodes { id } }
      experiments(first: 5) { nodes { name allocation
        resultsAggregates(first: 10, orderBy: [{field: VARIANT}]) { nodes { variant revenue visitors posterior } } } }
    } }
  }
}";

const FRAGMENTS: &str = "query Parts { one: shops(first: 1) { ...Page } }
fragment Page on ShopConnection { nodes { ...Row ... on Node { id } } }
fragment Row on Shop { domain products(first: 1) { nodes { ... on Product { handle } } } }";

const USER_TREE: &str = "{ users { nodes { email name role lastLogin
  profile { id } notificationPreference { id }
  apiKeys { totalCount } } } }";

on_both_backends! {
    async fn repeated_reads_are_answered_by_their_plan_as_the_executor_answers_them(t) {
        let app = TestApp::new(t).await;
        let world = world::build(&app.t.db).await;
        let service = TestApp::service();

        let first = alike(&app, &service, SHOP_TREE, json!({"first": 1})).await;
        let shops = &first["data"]["shops"];
        assert_eq!(shops["edges"].as_array().unwrap().len(), 1, "{first}");
        assert!(shops["totalCount"].as_i64().unwrap() >= 2);
        // The next page through the same plan, by the first page's cursor.
        let after = shops["pageInfo"]["endCursor"].clone();
        let next = alike(&app, &service, SHOP_TREE, json!({"first": 1, "after": after})).await;
        assert_ne!(next["data"]["shops"]["edges"][0], shops["edges"][0]);
        alike(&app, &service, SHOP_TREE, json!({"domain": world.a.shop_domain})).await;
        alike(&app, &service, FRAGMENTS, json!({})).await;
        alike(&app, &service, USER_TREE, json!({})).await;
    }

    async fn tenants_sharing_a_plan_see_only_their_own_rows(t) {
        let app = TestApp::new(t).await;
        let world = world::build(&app.t.db).await;
        for tenants in [&world.a, &world.b] {
            let token = world::shop_session_token(&tenants.shop_domain);
            let body = alike(&app, &token, SHOP_TREE, json!({})).await;
            let shops = body["data"]["shops"]["edges"].as_array().unwrap();
            assert_eq!(shops.len(), 1, "{body}");
            assert_eq!(shops[0]["node"]["domain"], json!(tenants.shop_domain));
            assert_only(&world, &body, tenants.shop);

            let token = TestApp::token("authenticated", &tenants.user.to_string());
            let body = alike(&app, &token, USER_TREE, json!({})).await;
            assert_eq!(body["data"]["users"]["nodes"].as_array().unwrap().len(), 1, "{body}");
        }
    }

    async fn bad_variables_and_limits_go_back_to_the_executor(t) {
        let app = TestApp::new(t).await;
        world::build(&app.t.db).await;
        let service = TestApp::service();
        by_plan(&app, &service, SHOP_TREE, json!({"first": 1})).await;

        let cases = [
            (json!({"first": "one"}), "first"),
            (json!({"first": 1, "after": "not a cursor"}), "after"),
            (json!({"first": 251}), "first"),
            (json!({"first": 1.5}), "first"),
        ];
        for (variables, argument) in cases {
            let hits = app.plans.hits();
            let plan = app.graphql(Some(&service), SHOP_TREE, variables.clone()).await;
            assert_eq!(app.plans.hits(), hits, "a plan answered {variables}");
            let executor = by_executor(&app, &service, SHOP_TREE, variables.clone()).await;
            assert_eq!(without_request_ids(&plan.body), without_request_ids(&executor.body));
            assert_eq!(plan.code(), "BAD_USER_INPUT", "{}", plan.body);
            assert!(plan.message().contains(argument), "{}", plan.body);
        }

        // The cost depends on `first`: a plan re-checks the limits with each request's values.
        let costly = "query($n: Int) { shops(first: $n) { nodes {
            products(first: $n) { nodes { contentRevisions(first: $n) { nodes { id } } } } } } }";
        by_plan(&app, &service, costly, json!({"n": 2})).await;
        let hits = app.plans.hits();
        let refused = app.graphql(Some(&service), costly, json!({"n": 250})).await;
        assert_eq!(app.plans.hits(), hits);
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{}", refused.body);
        assert!(refused.message().contains("cost"), "{}", refused.body);
    }

    async fn documents_beyond_a_plan_stay_with_the_executor(t) {
        let app = TestApp::new(t).await;
        world::build(&app.t.db).await;
        let service = TestApp::service();
        let beyond = [
            "{ shops { aggregate { count } } }",
            "{ nodes(ids: []) { id } }",
            "{ __schema { queryType { name } } }",
            "query($skip: Boolean!) { shops { nodes { domain @skip(if: $skip) } } }",
            "query($order: [ShopOrderBy!]) { shops(orderBy: $order) { nodes { domain } } }",
        ];
        for query in beyond {
            let variables = json!({"skip": false, "order": [{"field": "DOMAIN"}]});
            let first = app.graphql(Some(&service), query, variables.clone()).await;
            let hits = app.plans.hits();
            let again = app.graphql(Some(&service), query, variables).await;
            assert_eq!(app.plans.hits(), hits, "a plan answered {query}");
            assert_eq!(first.body["data"], again.body["data"]);
            assert!(again.body.get("errors").is_none(), "{}", again.body);
        }
    }
}

/// Asserts every `shopId` in `body` is `shop`'s.
fn assert_only(world: &World, body: &Value, shop: uuid::Uuid) {
    let other = [world.a.shop, world.b.shop]
        .into_iter()
        .find(|s| *s != shop)
        .unwrap();
    let text = body.to_string();
    assert!(
        !text.contains(&other.to_string()),
        "another tenant's row: {text}"
    );
}

/// `body` without its errors' request ids, which differ from request to request.
fn without_request_ids(body: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    if let Some(errors) = body["errors"].as_array_mut() {
        for error in errors {
            if let Some(extensions) = error["extensions"].as_object_mut() {
                extensions.remove("requestId");
            }
        }
    }
    body
}
