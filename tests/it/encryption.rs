//! Secrets at rest: `stratix keys rotate` moves every encrypted column onto the current
//! key while the old one still opens what it sealed; an altered ciphertext or a missing
//! old key stops it; PostgreSQL refuses to serve without a key.

use api::crypto::{Column, Key, KeyRing};
use base64::Engine as _;

use crate::common::process::stratix;
use crate::common::{TestDb, fixtures, on_both_backends};

const TOKEN: Column = api::domains::shopify::shops::ACCESS_TOKEN;
const HOOK: Column = api::domains::distribution::webhooks::SIGNING_SECRET;
const INTEGRATION: Column = api::domains::distribution::integration_secrets::SECRETS;

/// A key from one repeated byte, with its base64 text.
fn key(byte: u8) -> (Key, String) {
    let bytes = [byte; api::crypto::KEY_LEN];
    (
        Key::from_bytes(&bytes),
        base64::engine::general_purpose::STANDARD.encode(bytes),
    )
}

/// A shop whose access token `token` is sealed under `ring`.
async fn shop(t: &TestDb, domain: &str, ring: &KeyRing, token: &str) -> uuid::Uuid {
    fixtures::row(
        &t.db,
        "shops",
        vec![
            ("domain", domain.into()),
            (
                "access_token_enc",
                ring.encrypt(TOKEN, token.as_bytes()).unwrap().into(),
            ),
        ],
    )
    .await
}

/// Every shop's stored access token, by domain.
async fn stored(t: &TestDb) -> Vec<(String, Vec<u8>)> {
    t.query(
        "SELECT domain, access_token_enc FROM shops ORDER BY domain",
        vec![],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get::<String>("", "domain").unwrap(),
            r.try_get::<Vec<u8>>("", "access_token_enc").unwrap(),
        )
    })
    .collect()
}

/// Runs `stratix keys rotate` under `current` with `old`; its success and output.
async fn rotate(t: &TestDb, current: &str, old: &[&str]) -> (bool, String) {
    let out = stratix(t)
        .args(["keys", "rotate"])
        .env("STRATIX_ENCRYPTION_KEY", current)
        .env("STRATIX_ENCRYPTION_KEYS_OLD", old.join(","))
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

on_both_backends! {
    async fn rotation_moves_every_secret_to_the_new_key_and_refuses_altered_ones(t) {
        let t = t.migrated().await;
        let (a, a_text) = key(1);
        let (b, b_text) = key(2);
        let under_a = KeyRing::new(a.clone(), Vec::new());
        let tokens = [("a.myshopify.com", "shpat_a"), ("b.myshopify.com", "shpat_b")];
        for (domain, token) in tokens {
            shop(&t, domain, &under_a, token).await;
        }
        // A webhook signing secret and an integration's secrets: every encrypted column.
        let distributor = fixtures::row(&t.db, "distributors", vec![("name", "Acme".into()), ("slug", "acme".into())]).await;
        let hook = fixtures::row(&t.db, "webhook_endpoints", vec![
            ("url", "https://hooks.example.com/".into()),
            ("secret_enc", under_a.encrypt(HOOK, b"whsec_a").unwrap().into()),
            ("distributor_id", distributor.into()),
        ]).await;
        let integration = fixtures::row(&t.db, "external_integrations", vec![
            ("provider", "twilio".into()),
            ("secrets_enc", under_a.encrypt(INTEGRATION, br#"{"auth_token":"tok"}"#).unwrap().into()),
            ("distributor_id", distributor.into()),
        ]).await;

        // The old key, listed as old, still opens what it sealed; after the rotation
        // everything is under the new key, which alone opens it.
        let (ok, out) = rotate(&t, &b_text, &[&a_text]).await;
        assert!(ok, "{out}");
        assert!(out.contains("shops.access_token_enc: 2 values, 2 re-encrypted"), "{out}");
        assert!(out.contains("webhook_endpoints.secret_enc: 1 values, 1 re-encrypted"), "{out}");
        assert!(out.contains("external_integrations.secrets_enc: 1 values, 1 re-encrypted"), "{out}");
        let only_b = KeyRing::new(b.clone(), Vec::new());
        let one = |table: &str, column: &str, id: uuid::Uuid| {
            let sql = format!("SELECT {column} FROM {table} WHERE id = $1");
            let t = &t;
            async move { t.query(&sql, vec![id.into()]).await[0].try_get_by_index::<Vec<u8>>(0).unwrap() }
        };
        assert_eq!(only_b.decrypt(HOOK, &one("webhook_endpoints", "secret_enc", hook).await).unwrap(), b"whsec_a");
        assert_eq!(only_b.decrypt(INTEGRATION, &one("external_integrations", "secrets_enc", integration).await).unwrap(), br#"{"auth_token":"tok"}"#);
        for ((domain, sealed), (expected_domain, token)) in stored(&t).await.iter().zip(tokens) {
            assert_eq!(domain, expected_domain);
            assert!(sealed.starts_with(format!("v1:{}:", b.id()).as_bytes()));
            assert_eq!(only_b.decrypt(TOKEN, sealed).unwrap(), token.as_bytes());
        }

        // Again: nothing left to do, nothing changed.
        let before = stored(&t).await;
        let (ok, out) = rotate(&t, &b_text, &[&a_text]).await;
        assert!(ok, "{out}");
        assert!(out.contains("2 values, 0 re-encrypted"), "{out}");
        assert_eq!(stored(&t).await, before);

        // A value sealed under a key the ring lacks, or altered, stops the rotation and
        // names the row; what it had not reached stays as it was.
        let lost = shop(&t, "c.myshopify.com", &under_a, "shpat_c").await;
        let (ok, out) = rotate(&t, &b_text, &[]).await;
        assert!(!ok, "{out}");
        assert!(out.contains(&lost.to_string()) && out.contains(a.id()), "{out}");
        let mut altered = stored(&t).await[2].1.clone();
        // A character in the middle of the base64 body: still base64, another ciphertext.
        let middle = altered.len() - 20;
        altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
        t.execute(
            "UPDATE shops SET access_token_enc = $1 WHERE id = $2",
            vec![altered.clone().into(), lost.into()],
        )
        .await
        .unwrap();
        let (_, c_text) = key(3);
        let (ok, out) = rotate(&t, &c_text, &[&a_text, &b_text]).await;
        assert!(!ok, "{out}");
        assert!(out.contains("altered"), "{out}");
        assert_eq!(stored(&t).await[2].1, altered);
    }
}

/// Without STRATIX_ENCRYPTION_KEY, PostgreSQL is refused with the way to make a key.
#[tokio::test]
async fn postgres_refuses_to_serve_without_an_encryption_key() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let out = stratix(&t)
        .arg("serve")
        .env_remove("STRATIX_ENCRYPTION_KEY")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("STRATIX_ENCRYPTION_KEY must be set"),
        "{text}"
    );
    assert!(text.contains("openssl rand -base64 32"), "{text}");
}
