//! The distributor platform (seed 003): distributors, roles on every write, invitations.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::{fixtures, on_both_backends};

const CREATE: &str = "mutation($i: DistributorCreateInput!) { distributorCreate(input: $i) { distributor { id rowId name slug } membership { role userId } userErrors { field code message } } }";
const INVITE: &str = "mutation($i: UserInvitationCreateInput!) { userInvitationCreate(input: $i) { userInvitation { id email role expiresAt } token userErrors { field code message } } }";
const ACCEPT: &str = "mutation($i: UserInvitationAcceptInput!) { userInvitationAccept(input: $i) { membership { role distributorId } userErrors { field code message } } }";

/// A signed-in user: id and token.
pub struct Person {
    pub id: Uuid,
    pub token: String,
}

/// A user with this email, signed in.
pub async fn person(app: &TestApp, email: &str) -> Person {
    let id = fixtures::user(&app.t.db, email).await;
    Person {
        id,
        token: TestApp::token("authenticated", &id.to_string()),
    }
}

/// `owner` makes a distributor named `name`: its global id and row id.
pub async fn distributor(app: &TestApp, owner: &Person, name: &str) -> (String, Uuid) {
    let reply = app
        .graphql(Some(&owner.token), CREATE, json!({ "i": { "name": name } }))
        .await;
    let made = &reply.data()["distributorCreate"]["distributor"];
    assert!(made.is_object(), "{}", reply.body);
    (
        made["id"].as_str().unwrap().to_owned(),
        made["rowId"].as_str().unwrap().parse().unwrap(),
    )
}

/// `by` invites `email` as `role`; the reply.
pub async fn invite(app: &TestApp, by: &Person, email: &str, role: &str) -> Reply {
    app.graphql(
        Some(&by.token),
        INVITE,
        json!({ "i": { "email": email, "role": role } }),
    )
    .await
}

/// `who` accepts `token`; the reply.
pub async fn accept(app: &TestApp, who: &Person, token: &str) -> Reply {
    app.graphql(Some(&who.token), ACCEPT, json!({ "i": { "token": token } }))
        .await
}

/// A new member of `owner`'s distributor with `role`, invited and accepted.
pub async fn member(app: &TestApp, owner: &Person, email: &str, role: &str) -> Person {
    let invited = invite(app, owner, email, role).await;
    let token = invited.data()["userInvitationCreate"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", invited.body))
        .to_owned();
    let who = person(app, email).await;
    let accepted = accept(app, &who, &token).await;
    assert_eq!(
        accepted.data()["userInvitationAccept"]["membership"]["role"],
        role,
        "{}",
        accepted.body
    );
    who
}

/// The `userErrors` of mutation `field`.
pub fn user_errors(reply: &Reply, field: &str) -> Value {
    reply.data()[field]["userErrors"].clone()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let rows = app
        .t
        .query(&format!("SELECT count(*) FROM {table}"), vec![])
        .await;
    rows[0].try_get_by_index::<i64>(0).unwrap()
}

on_both_backends! {
    async fn distributor_create_makes_the_creator_its_owner(t) {
        let app = TestApp::new(t).await;
        let ada = person(&app, "ada@example.com").await;

        let reply = app.graphql(Some(&ada.token), CREATE, json!({ "i": { "name": "Acme Foods" } })).await;
        let taken = app.graphql(Some(&ada.token), CREATE, json!({ "i": { "name": "Other", "slug": "acme-foods" } })).await;
        let anonymous = app.graphql(None, CREATE, json!({ "i": { "name": "Nobody's" } })).await;

        let made = &reply.data()["distributorCreate"];
        assert_eq!(made["distributor"]["slug"], "acme-foods", "{}", reply.body);
        assert_eq!(made["membership"]["role"], "owner");
        assert_eq!(made["membership"]["userId"], ada.id.to_string());
        assert_eq!(user_errors(&taken, "distributorCreate")[0]["code"], "TAKEN", "{}", taken.body);
        assert_eq!(anonymous.code(), "UNAUTHENTICATED");
        assert_eq!(count(&app, "distributors").await, 1);
        assert_eq!(count(&app, "user_profiles").await, 1);
        // A user may belong to several distributors.
        distributor(&app, &ada, "Second").await;
        assert_eq!(count(&app, "user_profiles").await, 2);
    }

    async fn each_role_writes_only_what_it_may(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let viewer = member(&app, &owner, "viewer@example.com", "viewer").await;
        let staff = member(&app, &owner, "member@example.com", "member").await;
        let admin = member(&app, &owner, "admin@example.com", "admin").await;
        let customer = "mutation { customerCreate(input: {name: \"Bob\"}) { customer { name } userErrors { code field } } }";
        let product = "mutation { catalogProductCreate(input: {sku: \"A-1\", name: \"Apples\", price: \"1.50\"}) { catalogProduct { sku } userErrors { code field } } }";
        let rename = "mutation($id: ID!) { distributorUpdate(id: $id, input: {name: \"Renamed\"}) { distributor { name } userErrors { code field } } }";

        let viewer_customer = app.graphql(Some(&viewer.token), customer, json!({})).await;
        let member_customer = app.graphql(Some(&staff.token), customer, json!({})).await;
        let member_product = app.graphql(Some(&staff.token), product, json!({})).await;
        let admin_product = app.graphql(Some(&admin.token), product, json!({})).await;
        let admin_rename = app.graphql(Some(&admin.token), rename, json!({ "id": gid })).await;
        let member_invites = invite(&app, &staff, "x@example.com", "member").await;
        let admin_invites_owner = invite(&app, &admin, "y@example.com", "owner").await;
        let owner_rename = app.graphql(Some(&owner.token), rename, json!({ "id": gid })).await;

        assert!(viewer_customer.data()["customerCreate"]["customer"].is_null());
        assert!(!user_errors(&viewer_customer, "customerCreate").as_array().unwrap().is_empty(), "{}", viewer_customer.body);
        assert_eq!(member_customer.data()["customerCreate"]["customer"]["name"], "Bob", "{}", member_customer.body);
        assert!(member_product.data()["catalogProductCreate"]["catalogProduct"].is_null(), "{}", member_product.body);
        assert_eq!(admin_product.data()["catalogProductCreate"]["catalogProduct"]["sku"], "A-1", "{}", admin_product.body);
        assert!(admin_rename.data()["distributorUpdate"]["distributor"].is_null(), "{}", admin_rename.body);
        assert_eq!(member_invites.code(), "FORBIDDEN", "{}", member_invites.body);
        assert_eq!(user_errors(&admin_invites_owner, "userInvitationCreate")[0]["field"], json!(["input", "role"]), "{}", admin_invites_owner.body);
        assert_eq!(owner_rename.data()["distributorUpdate"]["distributor"]["name"], "Renamed", "{}", owner_rename.body);
        assert_eq!(count(&app, "customers").await, 1);
        assert_eq!(count(&app, "catalog_products").await, 1);
        // The viewer still reads the distributor's rows.
        let read = app.graphql(Some(&viewer.token), "{ customers { totalCount } catalogProducts { totalCount } }", json!({})).await;
        assert_eq!(read.data()["customers"]["totalCount"], 1);
        assert_eq!(read.data()["catalogProducts"]["totalCount"], 1);
    }

    async fn an_invitation_token_is_shown_once_stored_hashed_and_accepted_once(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (_, distributor_id) = distributor(&app, &owner, "Acme").await;
        let invited = invite(&app, &owner, " Eve@Example.com ", "member").await;
        let token = invited.data()["userInvitationCreate"]["token"].as_str().unwrap().to_owned();
        let eve = person(&app, "eve@example.com").await;
        let mallory = person(&app, "mallory@example.com").await;

        let wrong_user = accept(&app, &mallory, &token).await;
        let accepted = accept(&app, &eve, &token).await;
        let reused = accept(&app, &eve, &token).await;

        let row = &invited.data()["userInvitationCreate"]["userInvitation"];
        assert_eq!(row["email"], "eve@example.com");
        let expires: chrono::DateTime<chrono::Utc> = row["expiresAt"].as_str().unwrap().parse().unwrap();
        let days = (expires - chrono::Utc::now()).num_hours();
        assert!((167..=168).contains(&days), "{days}");
        let stored = app.t.query("SELECT token_hash FROM user_invitations", vec![]).await;
        let hash: String = stored[0].try_get_by_index(0).unwrap();
        assert_ne!(hash, token);
        assert!(!hash.contains(&token));
        assert_eq!(user_errors(&wrong_user, "userInvitationAccept")[0]["code"], "INVALID", "{}", wrong_user.body);
        let membership = &accepted.data()["userInvitationAccept"]["membership"];
        assert_eq!(membership["role"], "member", "{}", accepted.body);
        assert_eq!(membership["distributorId"], distributor_id.to_string());
        let refusal = &user_errors(&reused, "userInvitationAccept")[0];
        assert_eq!(refusal["code"], "INVALID", "{}", reused.body);
        assert_eq!(refusal["message"], user_errors(&wrong_user, "userInvitationAccept")[0]["message"]);
        assert_eq!(count(&app, "user_profiles").await, 2);
    }

    async fn expired_and_revoked_invitations_are_refused_alike(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        distributor(&app, &owner, "Acme").await;
        let expired = invite(&app, &owner, "old@example.com", "member").await;
        let revoked = invite(&app, &owner, "gone@example.com", "viewer").await;
        let token = |r: &Reply| r.data()["userInvitationCreate"]["token"].as_str().unwrap().to_owned();
        let (expired_token, revoked_token) = (token(&expired), token(&revoked));
        app.t.execute("UPDATE user_invitations SET expires_at = $1 WHERE email = 'old@example.com'",
            vec![(chrono::Utc::now() - chrono::Duration::minutes(1)).into()]).await.unwrap();
        let revoke = app.graphql(Some(&owner.token),
            "mutation($id: ID!) { userInvitationDelete(id: $id) { deletedId userErrors { code } } }",
            json!({ "id": revoked.data()["userInvitationCreate"]["userInvitation"]["id"] })).await;
        assert!(revoke.data()["userInvitationDelete"]["deletedId"].is_string(), "{}", revoke.body);
        let old = person(&app, "old@example.com").await;
        let gone = person(&app, "gone@example.com").await;

        let late = accept(&app, &old, &expired_token).await;
        let after_revoke = accept(&app, &gone, &revoked_token).await;
        let unknown = accept(&app, &gone, "inv_nonsense").await;

        let refusal = |r: &Reply| user_errors(r, "userInvitationAccept")[0].clone();
        assert_eq!(refusal(&late)["code"], "INVALID", "{}", late.body);
        assert_eq!(refusal(&late), refusal(&after_revoke));
        assert_eq!(refusal(&late), refusal(&unknown));
        assert_eq!(count(&app, "user_profiles").await, 1);
    }

    async fn another_distributor_sees_and_writes_nothing_of_this_one(t) {
        let app = TestApp::new(t).await;
        let ada = person(&app, "ada@example.com").await;
        let bob = person(&app, "bob@example.com").await;
        let (ada_gid, _) = distributor(&app, &ada, "Ada's").await;
        distributor(&app, &bob, "Bob's").await;
        app.graphql(Some(&ada.token), "mutation { customerCreate(input: {name: \"C\"}) { customer { id } } }", json!({})).await;

        let read = app.graphql(Some(&bob.token), "{ customers { totalCount } distributors { totalCount } userInvitations { totalCount } }", json!({})).await;
        let rename = app.graphql(Some(&bob.token),
            "mutation($id: ID!) { distributorUpdate(id: $id, input: {name: \"Mine\"}) { distributor { name } userErrors { code } } }",
            json!({ "id": ada_gid })).await;
        let invite_into = app.graphql(Some(&bob.token), INVITE,
            json!({ "i": { "email": "x@example.com", "role": "admin", "distributorId": ada_gid } })).await;

        assert_eq!(read.data()["customers"]["totalCount"], 0);
        assert_eq!(read.data()["distributors"]["totalCount"], 1);
        assert_eq!(user_errors(&rename, "distributorUpdate")[0]["code"], "NOT_FOUND", "{}", rename.body);
        assert_eq!(user_errors(&invite_into, "userInvitationCreate")[0]["code"], "NOT_FOUND", "{}", invite_into.body);
        assert_eq!(count(&app, "user_invitations").await, 0);
    }
}

/// Seed 003's `get_current_distributor_id()` under `claims`, as the app's role.
async fn current_distributor(app: &TestApp, claims: Value) -> Option<Uuid> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let txn = app.t.db.begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "SELECT set_config('request.jwt.claims', '{claims}', true), set_config('role', '{}', true)",
        migration::APP_ROLE
    ))
    .await
    .unwrap();
    let row = txn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT get_current_distributor_id()",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

on_both_backends! {
    async fn get_current_distributor_id_follows_the_claims_on_postgres(t) {
        let app = TestApp::new(t).await;
        if !app.t.is_postgres() {
            return;
        }
        let ada = person(&app, "ada@example.com").await;
        let (_, first) = distributor(&app, &ada, "First").await;
        let sub = ada.id.to_string();

        let only = current_distributor(&app, json!({ "sub": sub, "role": "authenticated" })).await;
        let (_, second) = distributor(&app, &ada, "Second").await;
        let ambiguous = current_distributor(&app, json!({ "sub": sub, "role": "authenticated" })).await;
        let chosen = current_distributor(&app, json!({ "sub": sub, "role": "authenticated", "distributor_id": second })).await;
        let foreign = current_distributor(&app, json!({ "sub": sub, "role": "authenticated", "distributor_id": Uuid::new_v4() })).await;

        assert_eq!(only, Some(first));
        assert_eq!(ambiguous, None);
        assert_eq!(chosen, Some(second));
        assert_eq!(foreign, None);
    }
}

on_both_backends! {
    /// A batch of writes: every operation runs, in order, in the request's one
    /// transaction (each `distributorCreate` takes a step on the service's account).
    async fn a_batch_of_writes_runs_every_operation_in_one_transaction(t) {
        let app = TestApp::new(t).await;
        let ada = person(&app, "ada@example.com").await;
        let batch: Vec<Value> = (0..8)
            .map(|i| json!({ "query": CREATE, "variables": { "i": { "name": format!("Batch {i}") } } }))
            .collect();
        let request = axum::http::Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", ada.token))
            .body(axum::body::Body::from(Value::Array(batch).to_string()))
            .unwrap();

        let reply = app.send(request).await;

        let answers = reply.body.as_array().unwrap_or_else(|| panic!("{}", reply.body));
        for answer in answers {
            assert!(answer.get("errors").is_none(), "{answer}");
            assert_eq!(answer["data"]["distributorCreate"]["membership"]["role"], "owner", "{answer}");
        }
        assert_eq!(count(&app, "distributors").await, 8);
        assert_eq!(count(&app, "user_profiles").await, 8);
    }
}
