//! Payments: opened by the user, moved by the provider (its signed callback or
//! `service_role`), granting their credits exactly once and taking them back on refund.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{PAYMENTS_SECRET, Reply, TestApp};
use crate::common::{fixtures, on_both_backends};

const CREATE: &str = "mutation($i: PaymentCreateInput!) { paymentCreate(input: $i) { payment { id status amount currency creditsGranted } userErrors { field code message } } }";

/// Opens a payment of `user` for `order` buying `credits`; returns its global id.
async fn open(app: &TestApp, user: Uuid, order: &str, credits: i64) -> String {
    let token = TestApp::token("authenticated", &user.to_string());
    let input = json!({ "i": { "orderId": order, "amount": "9.99", "currency": "eur", "credits": credits } });
    let reply = app.graphql(Some(&token), CREATE, input).await;
    let payment = &reply.data()["paymentCreate"];
    assert_eq!(payment["userErrors"], json!([]), "{}", reply.body);
    assert_eq!(payment["payment"]["status"], "created");
    assert_eq!(payment["payment"]["currency"], "EUR");
    payment["payment"]["id"].as_str().unwrap().to_owned()
}

/// Runs `paymentApprove` / `paymentComplete` / ... as `service_role`.
async fn advance(app: &TestApp, mutation: &str, id: &str) -> Reply {
    let query = format!(
        "mutation($i: {}Input!) {{ m: {mutation}(input: $i) {{ payment {{ status completedAt }} userErrors {{ field code message }} }} }}",
        {
            let mut name = mutation.to_owned();
            name[..1].make_ascii_uppercase();
            name
        }
    );
    app.query(&query, json!({ "i": { "id": id } })).await
}

fn user_errors(reply: &Reply) -> Value {
    reply.data()["m"]["userErrors"].clone()
}

/// The user's ledger rows of `kind`.
async fn ledger(app: &TestApp, user: Uuid, kind: &str) -> Vec<Value> {
    let reply = app
        .query(
            "query($u: UUID!, $k: String!) { creditTransactions(filter: {userId: {eq: $u}, kind: {eq: $k}}) { nodes { amount reference } } }",
            json!({ "u": user, "k": kind }),
        )
        .await;
    reply.data()["creditTransactions"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

on_both_backends! {
    /// The provider's signed callbacks approve and complete a payment; completing grants
    /// its credits in the same transaction, and a retried callback changes nothing.
    async fn a_signed_callback_completes_a_payment_and_its_credits_are_granted_once(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "buyer@example.com").await;
        open(&app, user, "ORDER-1", 500).await;

        let approved = app.payment_callback(PAYMENTS_SECRET, "payment.approved", "ORDER-1").await;
        let completions = [
            app.payment_callback(PAYMENTS_SECRET, "payment.completed", "ORDER-1").await,
            app.payment_callback(PAYMENTS_SECRET, "payment.completed", "ORDER-1").await,
        ];

        assert_eq!(approved.status, 200, "{}", approved.body);
        for completed in &completions {
            assert_eq!(completed.status, 200, "{}", completed.body);
            assert_eq!(completed.body["status"], "completed");
        }
        assert_eq!(app.balance_and_ledger(user).await, (600, 600));
        assert_eq!(ledger(&app, user, "purchase").await, vec![json!({ "amount": 500, "reference": "ORDER-1" })]);
        let token = TestApp::token("authenticated", &user.to_string());
        let seen = app
            .graphql(Some(&token), "{ payments { nodes { status completedAt } } notifications { nodes { type title } } }", json!({}))
            .await;
        assert_eq!(seen.data()["payments"]["nodes"][0]["status"], "completed");
        assert!(seen.data()["payments"]["nodes"][0]["completedAt"].is_string());
        assert_eq!(seen.data()["notifications"]["nodes"], json!([{ "type": "billing", "title": "Payment completed" }]));
    }

    /// Ten copies of the completing callback at once (a provider's retries): the credits
    /// are granted once.
    async fn concurrent_completions_grant_the_credits_once(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "burst@example.com").await;
        open(&app, user, "ORDER-9", 250).await;
        app.payment_callback(PAYMENTS_SECRET, "payment.approved", "ORDER-9").await;

        let replies = futures_util::future::join_all(
            (0..10).map(|_| app.payment_callback(PAYMENTS_SECRET, "payment.completed", "ORDER-9")),
        )
        .await;

        assert!(replies.iter().all(|r| r.status == 200), "{:?}", replies.iter().map(|r| &r.body).collect::<Vec<_>>());
        assert_eq!(app.balance_and_ledger(user).await, (350, 350));
        assert_eq!(ledger(&app, user, "purchase").await.len(), 1);
    }

    /// A callback with a bad or missing signature is 401 and writes nothing; an unknown
    /// order is 404; an unreadable body 400.
    async fn a_callback_that_is_not_signed_by_the_provider_changes_nothing(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "forged@example.com").await;
        let id = open(&app, user, "ORDER-2", 50).await;
        advance(&app, "paymentApprove", &id).await;

        let forged = app.payment_callback(b"not-the-secret", "payment.completed", "ORDER-2").await;
        let unsigned = app
            .send(
                axum::http::Request::post("/webhooks/payments")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(json!({ "event": "payment.completed", "orderId": "ORDER-2" }).to_string()))
                    .unwrap(),
            )
            .await;
        let unknown = app.payment_callback(PAYMENTS_SECRET, "payment.completed", "ORDER-404").await;
        let nonsense = app.payment_callback(PAYMENTS_SECRET, "payment.exploded", "ORDER-2").await;

        assert_eq!(forged.status, 401);
        assert_eq!(unsigned.status, 401);
        assert_eq!(unknown.status, 404);
        assert_eq!(nonsense.status, 400);
        assert_eq!(app.balance_and_ledger(user).await, (100, 100));
        let status = app.query("{ payments { nodes { status } } }", json!({})).await;
        assert_eq!(status.data()["payments"]["nodes"], json!([{ "status": "approved" }]));
    }

    /// Only the moves of the lifecycle are taken; any other is INVALID_TRANSITION with
    /// nothing written, and only `service_role` moves a payment.
    async fn a_payment_moves_only_along_its_lifecycle(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "lifecycle@example.com").await;
        let id = open(&app, user, "ORDER-3", 10).await;
        let token = TestApp::token("authenticated", &user.to_string());

        let early = advance(&app, "paymentComplete", &id).await;
        let early_refund = advance(&app, "paymentRefund", &id).await;
        let by_user = app
            .graphql(Some(&token), "mutation($i: PaymentCompleteInput!) { paymentComplete(input: $i) { payment { status } } }", json!({ "i": { "id": id } }))
            .await;
        advance(&app, "paymentFail", &id).await;
        let after_failure = advance(&app, "paymentApprove", &id).await;
        let conflict = app.payment_callback(PAYMENTS_SECRET, "payment.completed", "ORDER-3").await;

        for reply in [&early, &early_refund, &after_failure] {
            assert_eq!(user_errors(reply)[0]["code"], "INVALID_TRANSITION", "{}", reply.body);
            assert_eq!(reply.body["extensions"]["transaction"], "ROLLED_BACK");
        }
        assert_eq!(by_user.code(), "FORBIDDEN");
        assert_eq!(conflict.status, 409, "{}", conflict.body);
        assert_eq!(app.balance_and_ledger(user).await, (100, 100));
        let status = app.query("{ payments { nodes { status } } }", json!({})).await;
        assert_eq!(status.data()["payments"]["nodes"], json!([{ "status": "failed" }]));
    }

    /// A refund takes the granted credits back; when they are spent it is refused with
    /// INSUFFICIENT_CREDITS and the payment stays completed.
    async fn a_refund_takes_the_credits_back_or_is_refused_when_they_are_spent(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "refund@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let kept = open(&app, user, "ORDER-4", 300).await;
        let spent = open(&app, user, "ORDER-5", 300).await;
        for id in [&kept, &spent] {
            advance(&app, "paymentApprove", id).await;
            assert_eq!(user_errors(&advance(&app, "paymentComplete", id).await), json!([]));
        }
        let spend = app
            .graphql(Some(&token), "mutation { creditsSpend(input: {amount: 350}) { userErrors { code } } }", json!({}))
            .await;
        assert_eq!(spend.data()["creditsSpend"]["userErrors"], json!([]));

        let refunded = advance(&app, "paymentRefund", &kept).await;
        let refused = advance(&app, "paymentRefund", &spent).await;

        assert_eq!(user_errors(&refunded), json!([]), "{}", refunded.body);
        assert_eq!(refunded.data()["m"]["payment"]["status"], "refunded");
        assert_eq!(user_errors(&refused)[0]["code"], "INSUFFICIENT_CREDITS", "{}", refused.body);
        // 100 + 300 + 300 - 350 - 300 = 50: a second refund of 300 would go below zero.
        assert_eq!(app.balance_and_ledger(user).await, (50, 50));
        assert_eq!(ledger(&app, user, "refund").await, vec![json!({ "amount": -300, "reference": "ORDER-4" })]);
        let statuses = app.query("{ payments(orderBy: [{field: ORDER_ID}]) { nodes { status } } }", json!({})).await;
        assert_eq!(statuses.data()["payments"]["nodes"], json!([{ "status": "refunded" }, { "status": "completed" }]));
    }

    /// Every bad input is a userErrors entry at its field, with nothing written.
    async fn bad_payment_input_is_refused_at_its_field_and_writes_nothing(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "careless@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        open(&app, user, "TAKEN-1", 10).await;
        let cases = [
            (json!({ "orderId": "A", "amount": "0" }), "amount"),
            (json!({ "orderId": "A", "amount": "-5" }), "amount"),
            (json!({ "orderId": "A", "amount": "1.234" }), "amount"),
            (json!({ "orderId": "A", "amount": "ten" }), "amount"),
            (json!({ "orderId": "A", "amount": "5", "currency": "EURO" }), "currency"),
            (json!({ "orderId": "A", "amount": "5", "currency": "XYZ" }), "currency"),
            (json!({ "orderId": "A", "amount": "5", "credits": -3 }), "credits"),
            (json!({ "orderId": "A", "amount": "5", "credits": 0 }), "credits"),
            (json!({ "orderId": " ", "amount": "5" }), "orderId"),
            (json!({ "orderId": "TAKEN-1", "amount": "5" }), "orderId"),
        ];

        for (input, field) in cases {
            let reply = app.graphql(Some(&token), CREATE, json!({ "i": input })).await;
            let errors = &reply.data()["paymentCreate"]["userErrors"];
            assert_eq!(errors[0]["field"], json!(["input", field]), "{input}: {}", reply.body);
            assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let nul = app
            .graphql(Some(&token), CREATE, json!({ "i": { "orderId": "A\u{0}B", "amount": "5" } }))
            .await;
        assert_eq!(nul.data()["paymentCreate"]["userErrors"][0]["code"], "INVALID", "{}", nul.body);
        let fractional = app
            .graphql(Some(&token), CREATE, json!({ "i": { "orderId": "A", "amount": "5", "credits": 1.5 } }))
            .await;
        assert!(fractional.body["errors"].is_array(), "{}", fractional.body);
        let count = app.query("{ payments { totalCount } }", json!({})).await;
        assert_eq!(count.data()["payments"]["totalCount"], 1);
    }
}
