//! The credits ledger: a balance moves only with its ledger row, never below zero, under
//! any concurrency.

use serde_json::json;
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::{fixtures, on_both_backends};

const SPEND: &str = "mutation($i: CreditsSpendInput!) { creditsSpend(input: $i) { creditAccount { balance } creditTransaction { amount balanceAfter kind reference } userErrors { field code message } } }";
const GRANT: &str = "mutation($i: CreditsGrantInput!) { creditsGrant(input: $i) { creditAccount { balance } userErrors { field code } } }";

fn errors(reply: &Reply, field: &str) -> serde_json::Value {
    reply.data()[field]["userErrors"].clone()
}

on_both_backends! {
    async fn fifty_concurrent_spends_of_three_on_a_hundred_leave_exactly_one(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "spender@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());

        let replies = futures_util::future::join_all((0..50).map(|i| {
            let token = token.clone();
            let app = &app;
            async move {
                app.graphql(Some(&token), SPEND, json!({ "i": { "amount": 3, "reference": format!("spend-{i}") } }))
                    .await
            }
        }))
        .await;

        let succeeded = replies
            .iter()
            .filter(|r| errors(r, "creditsSpend") == json!([]))
            .count();
        let short = replies
            .iter()
            .filter(|r| errors(r, "creditsSpend")[0]["code"] == "INSUFFICIENT_CREDITS")
            .count();
        assert_eq!((succeeded, short), (33, 17));
        assert_eq!(app.balance_and_ledger(user).await, (1, 1));
        // Every spend counted, none lost to a concurrent one.
        let usage = app
            .query(
                "query($u: UUID!) { usageMetrics(filter: {userId: {eq: $u}, metric: {eq: \"credits_spent\"}}) { nodes { value } } }",
                json!({ "u": user }),
            )
            .await;
        assert_eq!(usage.data()["usageMetrics"]["nodes"], json!([{ "value": "99" }]));
    }

    async fn a_short_balance_refuses_the_spend_and_changes_nothing(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "short@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());

        let short = app.graphql(Some(&token), SPEND, json!({ "i": { "amount": 101 } })).await;
        let zero = app.graphql(Some(&token), SPEND, json!({ "i": { "amount": 0 } })).await;
        let spent = app.graphql(Some(&token), SPEND, json!({ "i": { "amount": 40, "reference": "job-1" } })).await;

        let refusal = &errors(&short, "creditsSpend")[0];
        assert_eq!(refusal["code"], "INSUFFICIENT_CREDITS", "{}", short.body);
        assert_eq!(refusal["field"], json!(["input", "amount"]));
        assert_eq!(errors(&zero, "creditsSpend")[0]["code"], "INVALID", "{}", zero.body);
        let ledger_row = &spent.data()["creditsSpend"]["creditTransaction"];
        assert_eq!(ledger_row["amount"], -40);
        assert_eq!(ledger_row["balanceAfter"], 60);
        assert_eq!(ledger_row["kind"], "usage");
        assert_eq!(ledger_row["reference"], "job-1");
        assert_eq!(app.balance_and_ledger(user).await, (60, 60));
        // The spend left one log row with the balance before and after.
        let logs = app
            .graphql(Some(&token), "{ activityLogs(filter: {action: {eq: \"credits.spent\"}}) { nodes { details } } }", json!({}))
            .await;
        let details = &logs.data()["activityLogs"]["nodes"][0]["details"];
        assert_eq!(details["from"]["balance"], 100, "{}", logs.body);
        assert_eq!(details["to"]["balance"], 60);
        assert_eq!(logs.data()["activityLogs"]["nodes"].as_array().unwrap().len(), 1);
    }

    async fn only_the_service_grants_credits(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "granted@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let input = json!({ "i": { "userId": user, "amount": 25 } });

        let by_user = app.graphql(Some(&token), GRANT, input.clone()).await;
        let by_service = app.query(GRANT, input).await;
        let unknown = app.query(GRANT, json!({ "i": { "userId": Uuid::new_v4(), "amount": 5 } })).await;

        assert_eq!(by_user.code(), "FORBIDDEN", "{}", by_user.body);
        assert_eq!(by_service.data()["creditsGrant"]["creditAccount"]["balance"], 125);
        assert_eq!(errors(&unknown, "creditsGrant")[0]["code"], "NOT_FOUND", "{}", unknown.body);
        assert_eq!(app.balance_and_ledger(user).await, (125, 125));
    }
}

on_both_backends! {
    async fn the_database_keeps_every_balance_equal_to_its_ledger(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "books@example.com").await;

        let direct = app
            .t
            .execute("UPDATE credit_accounts SET balance = 500 WHERE user_id = $1", vec![user.into()])
            .await;
        let clean = api::ops::check::run(&app.t.db).await.unwrap();
        // A ledger row written without its balance: the books no longer agree.
        app.t
            .execute(
                "INSERT INTO credit_transactions (id, credit_account_id, amount, balance_after, kind, user_id)
                 SELECT $1, id, 7, 107, 'adjustment', user_id FROM credit_accounts WHERE user_id = $2",
                vec![Uuid::new_v4().into(), user.into()],
            )
            .await
            .unwrap();
        let drifted = api::ops::check::run(&app.t.db).await.unwrap();

        assert!(direct.is_err(), "a balance moved without its ledger row");
        assert_eq!(app.balance_and_ledger(user).await, (100, 107));
        assert!(clean.passed(), "{clean}");
        assert!(!drifted.passed());
        assert!(drifted.to_string().contains("balance 100, ledger 107"), "{drifted}");
    }
}

/// Two instances of the service on one PostgreSQL database, each with its own pool: the
/// row lock holds across processes as it does within one.
mod fifty_spends_from_two_instances_leave_exactly_one {
    use super::*;
    use crate::common::TestDb;

    #[tokio::test]
    async fn postgres() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let first = TestApp::new(t).await;
        let second = first.another_instance().await;
        let user = fixtures::user(&first.t.db, "two-instances@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());

        let replies = futures_util::future::join_all((0..50).map(|i| {
            let (token, app) = (token.clone(), if i % 2 == 0 { &first } else { &second });
            async move {
                let input = json!({ "i": { "amount": 3, "reference": format!("spend-{i}") } });
                app.graphql(Some(&token), SPEND, input).await
            }
        }))
        .await;

        let succeeded = replies
            .iter()
            .filter(|r| errors(r, "creditsSpend") == json!([]))
            .count();
        assert_eq!(succeeded, 33);
        assert_eq!(first.balance_and_ledger(user).await, (1, 1));
    }
}
