//! Shops: installed by `service_role` with the access token encrypted (never readable,
//! rotated by `stratix keys rotate`), uninstalled by the shop or Shopify's webhook alike,
//! re-activated by a new install, and their settings checked.

use api::crypto::{Key, KeyRing};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::app::{ENCRYPTION_KEY, Reply, SHOPIFY_SECRET, TestApp, encryption};
use crate::common::on_both_backends;
use crate::common::process::stratix;

const INSTALL: &str = "mutation($i: ShopInstallInput!) { m: shopInstall(input: $i) { shop { id domain scope plan uninstalledAt settings } userErrors { field code message } } }";
const UNINSTALL: &str = "mutation($i: ShopUninstallInput!) { m: shopUninstall(input: $i) { shop { domain uninstalledAt } userErrors { field code message } } }";
const SETTINGS: &str = "mutation($i: ShopUpdateSettingsInput!) { m: shopUpdateSettings(input: $i) { shop { settings } userErrors { field code message } } }";

fn install_input(domain: &str, token: &str) -> Value {
    json!({ "i": { "domain": domain, "accessToken": token, "scope": "read_products,write_products", "plan": "growth" } })
}

/// `shopInstall` as service_role.
async fn install(app: &TestApp, domain: &str, token: &str) -> Reply {
    app.graphql(
        Some(&TestApp::service()),
        INSTALL,
        install_input(domain, token),
    )
    .await
}

/// The stored access token of `domain`'s shop.
async fn stored_token(app: &TestApp, domain: &str) -> Vec<u8> {
    app.t
        .query(
            "SELECT access_token_enc FROM shops WHERE domain = $1",
            vec![domain.into()],
        )
        .await[0]
        .try_get::<Vec<u8>>("", "access_token_enc")
        .unwrap()
}

/// A `userErrors` field path.
fn path(field: &str) -> Value {
    json!(field.split('.').collect::<Vec<_>>())
}

async fn shop_count(app: &TestApp) -> usize {
    app.t.query("SELECT id FROM shops", vec![]).await.len()
}

/// An `app/uninstalled` delivery for `domain`, signed.
async fn uninstalled_webhook(app: &TestApp, domain: &str, id: &str) -> Reply {
    let body = json!({ "domain": domain }).to_string();
    let digest = api::webhooks::digest(SHOPIFY_SECRET, body.as_bytes());
    let request = axum::http::Request::post("/webhooks/shopify")
        .header("content-type", "application/json")
        .header(
            "x-shopify-hmac-sha256",
            base64::engine::general_purpose::STANDARD.encode(digest),
        )
        .header("x-shopify-topic", "app/uninstalled")
        .header("x-shopify-webhook-id", id)
        .header("x-shopify-shop-domain", domain)
        .body(axum::body::Body::from(body))
        .unwrap();
    app.send(request).await
}

on_both_backends! {
    /// Install stores the token encrypted under the current key and never serves it;
    /// uninstall (the shop's own mutation, or the webhook) and re-install go through one
    /// path; only service_role installs; bad input writes nothing.
    async fn shops_install_uninstall_and_reinstall_with_the_token_encrypted(t) {
        let app = TestApp::new(t).await;
        let domain = "acme.myshopify.com";
        let installed = install(&app, domain, "shpat_first").await;
        assert_eq!(installed.data()["m"]["userErrors"], json!([]), "{}", installed.body);
        let shop = installed.data()["m"]["shop"].clone();
        assert_eq!(
            (shop["domain"].clone(), shop["scope"].clone(), shop["plan"].clone(), shop["uninstalledAt"].clone()),
            (json!(domain), json!("read_products,write_products"), json!("growth"), Value::Null)
        );
        let sealed = stored_token(&app, domain).await;
        let key_id = encryption().current_id().unwrap().to_owned();
        assert!(sealed.starts_with(format!("v1:{key_id}:").as_bytes()));
        assert!(!String::from_utf8_lossy(&sealed).contains("shpat_first"));
        assert_eq!(
            encryption().decrypt(api::domains::shopify::shops::ACCESS_TOKEN, &sealed).unwrap(),
            b"shpat_first"
        );
        // No field serves it, by any name.
        let asked = app.query("{ shops { nodes { accessTokenEnc } } }", json!({})).await;
        assert!(!asked.body.to_string().contains("shpat_first"));
        assert!(asked.body["errors"][0]["message"].as_str().unwrap().contains("accessTokenEnc"), "{}", asked.body);

        // Only service_role installs; bad input is refused with nothing written.
        let user = TestApp::token("authenticated", &uuid::Uuid::new_v4().to_string());
        let by_user = app.graphql(Some(&user), INSTALL, install_input("other.myshopify.com", "t")).await;
        assert_eq!(by_user.code(), "FORBIDDEN", "{}", by_user.body);
        for (input, field) in [
            (install_input("acme.example.com", "t"), "input.domain"),
            (install_input("other.myshopify.com", "has space"), "input.accessToken"),
        ] {
            let refused = app.graphql(Some(&TestApp::service()), INSTALL, input).await;
            assert_eq!(refused.data()["m"]["userErrors"][0]["field"], path(field), "{}", refused.body);
        }
        assert_eq!(shop_count(&app).await, 1);

        // The shop uninstalls itself; its session token stops working; again is refused.
        let token = TestApp::shop_token(domain);
        let gone = app.graphql(Some(&token), UNINSTALL, json!({ "i": {} })).await;
        assert_eq!(gone.data()["m"]["userErrors"], json!([]), "{}", gone.body);
        assert!(gone.data()["m"]["shop"]["uninstalledAt"].is_string());
        let after = app.graphql(Some(&token), "{ shops { totalCount } }", json!({})).await;
        assert_eq!(after.code(), "UNAUTHENTICATED", "{}", after.body);
        let shop_id = shop["id"].clone();
        let again = app.graphql(Some(&TestApp::service()), UNINSTALL, json!({ "i": { "shopId": shop_id } })).await;
        assert_eq!(again.data()["m"]["userErrors"][0]["code"], "INVALID_TRANSITION", "{}", again.body);

        // Re-installing re-activates the same shop with the new token, settings kept.
        let back = install(&app, domain, "shpat_second").await;
        assert_eq!(back.data()["m"]["shop"]["id"], shop_id);
        assert_eq!(back.data()["m"]["shop"]["uninstalledAt"], Value::Null);
        assert_eq!(
            encryption().decrypt(api::domains::shopify::shops::ACCESS_TOKEN, &stored_token(&app, domain).await).unwrap(),
            b"shpat_second"
        );
        // Shopify's webhook uninstalls through the same function.
        let hook = uninstalled_webhook(&app, domain, "u-1").await;
        assert_eq!(hook.status, 200, "{}", hook.body);
        let shops = app.query("{ shops { nodes { uninstalledAt } } }", json!({})).await;
        assert!(shops.data()["shops"]["nodes"][0]["uninstalledAt"].is_string(), "{}", shops.body);
        assert_eq!(shop_count(&app).await, 1);
    }

    /// Settings change one at a time and are checked; another shop's are out of reach.
    async fn shop_settings_are_validated_and_merged(t) {
        let app = TestApp::new(t).await;
        install(&app, "acme.myshopify.com", "t1").await;
        let other = install(&app, "other.myshopify.com", "t2").await;
        let other_id = other.data()["m"]["shop"]["id"].clone();
        let token = TestApp::shop_token("acme.myshopify.com");
        let set = |input: Value| {
            let app = &app;
            let token = token.clone();
            async move { app.graphql(Some(&token), SETTINGS, json!({ "i": input })).await }
        };
        let first = set(json!({ "brandVoice": "Warm and brief", "dataRetentionDays": 90 })).await;
        assert_eq!(first.data()["m"]["userErrors"], json!([]), "{}", first.body);
        let second = set(json!({ "autopilotLimits": { "patches_per_day": 5 }, "allowWriteProducts": true })).await;
        assert_eq!(
            second.data()["m"]["shop"]["settings"],
            json!({ "brand_voice": "Warm and brief", "data_retention_days": 90, "autopilot_limits": { "patches_per_day": 5 }, "allow_write_products": true }),
            "{}", second.body
        );
        for (input, field) in [
            (json!({ "dataRetentionDays": 0 }), "input.dataRetentionDays"),
            (json!({ "dataRetentionDays": 3651 }), "input.dataRetentionDays"),
            (json!({ "autopilotLimits": { "patches_per_day": -1 } }), "input.autopilotLimits"),
            (json!({ "brandVoice": "x".repeat(2001) }), "input.brandVoice"),
            (json!({}), "input"),
            (json!({ "shopId": other_id, "brandVoice": "Mine now" }), "input.shopId"),
        ] {
            let refused = set(input).await;
            assert_eq!(refused.data()["m"]["userErrors"][0]["field"], path(field), "{}", refused.body);
        }
        let shops = app.query("{ shops(orderBy: [{field: DOMAIN}]) { nodes { settings } } }", json!({})).await;
        assert_eq!(shops.data()["shops"]["nodes"][0]["settings"]["data_retention_days"], 90);
        assert_eq!(shops.data()["shops"]["nodes"][1]["settings"], json!({}));
        let unnamed = app.graphql(Some(&TestApp::service()), SETTINGS, json!({ "i": { "brandVoice": "x" } })).await;
        assert_eq!(unnamed.data()["m"]["userErrors"][0]["field"], path("input.shopId"), "{}", unnamed.body);
    }

    /// Tokens installed through the API survive `stratix keys rotate`: the old key opens
    /// them during the rotation, the new one alone afterwards.
    async fn installed_tokens_are_rotated_to_a_new_key(t) {
        let app = TestApp::new(t).await;
        let tokens = [("a.myshopify.com", "shpat_a"), ("b.myshopify.com", "shpat_b")];
        for (domain, token) in tokens {
            install(&app, domain, token).await;
        }
        let new = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
        let out = stratix(&app.t)
            .args(["keys", "rotate"])
            .env("STRATIX_ENCRYPTION_KEY", &new)
            .env("STRATIX_ENCRYPTION_KEYS_OLD", ENCRYPTION_KEY)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let only_new = KeyRing::new(Key::from_base64(&new).unwrap(), Vec::new());
        for (domain, token) in tokens {
            let sealed = stored_token(&app, domain).await;
            assert!(only_new.is_current(&sealed));
            assert_eq!(
                only_new.decrypt(api::domains::shopify::shops::ACCESS_TOKEN, &sealed).unwrap(),
                token.as_bytes()
            );
        }
    }
}
