//! Shopify's webhooks: verified before anything is read, applied once per delivery.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::app::{Reply, SHOPIFY_SECRET, TestApp};
use crate::common::{fixtures, on_both_backends};

/// A delivery of `topic` to `domain`, signed with `secret`.
async fn deliver(
    app: &TestApp,
    secret: &[u8],
    domain: &str,
    topic: &str,
    id: &str,
    body: &str,
) -> Reply {
    let digest = api::webhooks::digest(secret, body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(digest);
    let request = axum::http::Request::post("/webhooks/shopify")
        .header("content-type", "application/json")
        .header("x-shopify-hmac-sha256", signature)
        .header("x-shopify-topic", topic)
        .header("x-shopify-webhook-id", id)
        .header("x-shopify-shop-domain", domain)
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    app.send(request).await
}

async fn products(app: &TestApp) -> Value {
    let reply = app.query("{ products(orderBy: [{field: SHOPIFY_ID}]) { nodes { shopifyId title description shop { domain } } } }", json!({})).await;
    reply.data()["products"]["nodes"].clone()
}

on_both_backends! {
    /// Products and orders follow the webhooks; a retried delivery is applied once; a bad
    /// or missing signature, an unknown topic and a body that is not JSON write nothing.
    async fn signed_deliveries_are_applied_once_and_unsigned_ones_never(t) {
        let app = TestApp::new(t).await;
        let domain = "hooks.myshopify.com";
        fixtures::shop(&app.t.db, domain).await;
        let product = json!({ "id": 632910392, "title": "IPod Nano", "handle": "ipod-nano", "body_html": "<p>It's the small iPod.</p>" }).to_string();
        let renamed = json!({ "id": 632910392, "title": "IPod Nano 8GB", "handle": "ipod-nano" }).to_string();

        let created = deliver(&app, SHOPIFY_SECRET, domain, "products/create", "d-1", &product).await;
        let retried = deliver(&app, SHOPIFY_SECRET, domain, "products/update", "d-1", &renamed).await;
        let forged = deliver(&app, b"wrong-secret", domain, "products/update", "d-2", &renamed).await;
        let unknown = deliver(&app, SHOPIFY_SECRET, domain, "products/explode", "d-3", &renamed).await;
        let garbled = deliver(&app, SHOPIFY_SECRET, domain, "products/update", "d-4", "{not json").await;
        let stranger = deliver(&app, SHOPIFY_SECRET, "nobody.myshopify.com", "products/update", "d-5", &renamed).await;
        let after_refusals = products(&app).await;
        let updated = deliver(&app, SHOPIFY_SECRET, domain, "products/update", "d-6", &renamed).await;
        let order = json!({ "id": 450789469, "total_price": "598.94", "subtotal_price": "597.00", "line_items": [{}, {}], "created_at": "2026-12-01T10:00:00-05:00" }).to_string();
        let ordered = deliver(&app, SHOPIFY_SECRET, domain, "orders/create", "d-7", &order).await;

        assert_eq!(created.status, 200, "{}", created.body);
        assert_eq!(created.body["duplicate"], false);
        assert_eq!((retried.status, retried.body["duplicate"].clone()), (axum::http::StatusCode::OK, json!(true)));
        assert_eq!(forged.status, 401);
        assert_eq!(unknown.status, 400);
        assert_eq!(garbled.status, 400);
        assert_eq!(stranger.status, 404);
        assert_eq!(after_refusals, json!([{ "shopifyId": "632910392", "title": "IPod Nano", "description": "<p>It's the small iPod.</p>", "shop": { "domain": domain } }]));
        assert_eq!(updated.status, 200);
        assert_eq!(products(&app).await[0]["title"], "IPod Nano 8GB");
        assert_eq!(ordered.status, 200, "{}", ordered.body);
        let orders = app.query("{ ordersCache { nodes { orderId total subtotal lineCount createdAt } } }", json!({})).await;
        assert_eq!(orders.data()["ordersCache"]["nodes"], json!([{ "orderId": "450789469", "total": "598.94", "subtotal": "597", "lineCount": 2, "createdAt": "2026-12-01T15:00:00Z" }]));
    }

    /// app/uninstalled marks the shop; shop/redact erases its rows and no other shop's.
    async fn uninstalling_marks_the_shop_and_redacting_erases_only_its_data(t) {
        let app = TestApp::new(t).await;
        let gone = fixtures::shop(&app.t.db, "gone.myshopify.com").await;
        let kept = fixtures::shop(&app.t.db, "kept.myshopify.com").await;
        fixtures::product(&app.t.db, gone, "g-1").await;
        fixtures::product(&app.t.db, kept, "k-1").await;
        let body = json!({ "shop_id": 954889, "shop_domain": "gone.myshopify.com" }).to_string();

        let uninstalled = deliver(&app, SHOPIFY_SECRET, "gone.myshopify.com", "app/uninstalled", "u-1", &body).await;
        let marked = app.query("{ shops(orderBy: [{field: DOMAIN}]) { nodes { domain uninstalledAt } } }", json!({})).await;
        let data_request = deliver(&app, SHOPIFY_SECRET, "gone.myshopify.com", "customers/data_request", "u-2", &body).await;
        let redacted = deliver(&app, SHOPIFY_SECRET, "gone.myshopify.com", "shop/redact", "u-3", &body).await;
        let again = deliver(&app, SHOPIFY_SECRET, "gone.myshopify.com", "shop/redact", "u-4", &body).await;

        assert_eq!(uninstalled.status, 200);
        assert!(marked.data()["shops"]["nodes"][0]["uninstalledAt"].is_string(), "{}", marked.body);
        assert!(marked.data()["shops"]["nodes"][1]["uninstalledAt"].is_null());
        assert_eq!(data_request.status, 200);
        assert_eq!(redacted.status, 200, "{}", redacted.body);
        assert_eq!(again.status, 200);
        let left = products(&app).await;
        assert_eq!(left.as_array().unwrap().len(), 1);
        assert_eq!(left[0]["shop"]["domain"], "kept.myshopify.com");
        let shops = app.query("{ shops { nodes { rowId } } }", json!({})).await;
        assert_eq!(shops.data()["shops"]["nodes"], json!([{ "rowId": kept }]));
    }

    /// An order's attribution holds where it came from and, through its
    /// `_stratix_anon_id` cart attribute, the visitor's variants in the shop's own
    /// experiments; another shop's assignments never match.
    async fn orders_are_attributed_to_the_visitors_variants_in_the_shops_experiments(t) {
        let app = TestApp::new(t).await;
        let (mine, theirs) = ("attr.myshopify.com", "rival.myshopify.com");
        let shop = fixtures::shop(&app.t.db, mine).await;
        let rival = fixtures::shop(&app.t.db, theirs).await;
        let experiment = fixtures::experiment(&app.t.db, shop, "cta").await;
        let other_experiment = fixtures::experiment(&app.t.db, rival, "cta").await;
        let assign = |shop: uuid::Uuid, experiment: uuid::Uuid, anon: &'static str, variant: &'static str| {
            let db = &app.t.db;
            async move {
                fixtures::row(db, "assignments", vec![
                    ("experiment_id", experiment.into()), ("anon_id", anon.into()), ("session_id", "s".into()),
                    ("variant", variant.into()), ("shop_id", shop.into()),
                ]).await;
            }
        };
        assign(shop, experiment, "visitor-1", "b").await;
        assign(rival, other_experiment, "visitor-1", "control").await;
        assign(rival, other_experiment, "visitor-2", "b").await;
        let order = |id: u64, anon: &str| json!({
            "id": id, "total_price": "10.00", "source_name": "web", "landing_site": "/products/hat?utm_source=news",
            "referring_site": "https://news.example.com/", "note_attributes": [{ "name": "gift", "value": "no" }, { "name": "_stratix_anon_id", "value": anon }],
        }).to_string();
        let bare = json!({ "id": 4, "total_price": "1.00" }).to_string();

        let replies = [
            deliver(&app, SHOPIFY_SECRET, mine, "orders/create", "o-1", &order(1, "visitor-1")).await,
            deliver(&app, SHOPIFY_SECRET, mine, "orders/updated", "o-2", &order(1, "visitor-1")).await,
            deliver(&app, SHOPIFY_SECRET, mine, "orders/create", "o-3", &order(2, "visitor-2")).await,
            deliver(&app, SHOPIFY_SECRET, theirs, "orders/create", "o-4", &order(3, "nobody")).await,
            deliver(&app, SHOPIFY_SECRET, mine, "orders/create", "o-5", &bare).await,
        ];

        for reply in &replies {
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        let cached = app.query("{ ordersCache(orderBy: [{field: ORDER_ID}]) { nodes { orderId attribution } } }", json!({})).await;
        let from = json!({ "source_name": "web", "landing_site": "/products/hat?utm_source=news", "referring_site": "https://news.example.com/" });
        let mut attributed = from.clone();
        attributed["anon_id"] = json!("visitor-1");
        attributed["experiments"] = json!([{ "experimentId": format!("gid://stratix/Experiment/{experiment}"), "variant": "b" }]);
        assert_eq!(cached.data()["ordersCache"]["nodes"], json!([
            { "orderId": "1", "attribution": attributed },
            { "orderId": "2", "attribution": from },
            { "orderId": "3", "attribution": from },
            { "orderId": "4", "attribution": { "source_name": null, "landing_site": null, "referring_site": null } },
        ]), "{}", cached.body);
    }
}
