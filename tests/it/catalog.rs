//! The distributor's catalog: categories stay a tree, whatever write moves them.

use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::on_both_backends;
use crate::distribution::{distributor, member, person, user_errors};

const CREATE: &str = "mutation($i: ProductCategoryCreateInput!) { productCategoryCreate(input: $i) { productCategory { id rowId } userErrors { field code } } }";
const MOVE: &str = "mutation($id: ID!, $parent: UUID) { productCategoryUpdate(id: $id, input: {parentId: $parent}) { productCategory { parentId } userErrors { field code message } } }";
const UPSERT: &str = "mutation($rows: [ProductCategoryCreateInput!]!) { productCategoriesUpsert(inputs: $rows) { productCategories { name parentId } userErrors { field code message } } }";

/// Makes a category under `parent`: (global id, row id).
async fn category(
    app: &TestApp,
    token: &str,
    name: &str,
    parent: Option<&str>,
) -> (String, String) {
    let reply = app
        .graphql(
            Some(token),
            CREATE,
            json!({ "i": { "name": name, "parentId": parent } }),
        )
        .await;
    let made = &reply.data()["productCategoryCreate"]["productCategory"];
    assert!(made.is_object(), "{}", reply.body);
    (
        made["id"].as_str().unwrap().to_owned(),
        made["rowId"].as_str().unwrap().to_owned(),
    )
}

async fn parents(app: &TestApp) -> Vec<(String, Option<String>)> {
    let reply = app
        .query(
            "{ productCategories(orderBy: [{field: NAME}]) { nodes { name parentId } } }",
            json!({}),
        )
        .await;
    reply.data()["productCategories"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["parentId"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

on_both_backends! {
    async fn a_category_cannot_become_its_own_ancestor(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        distributor(&app, &owner, "Acme").await;
        let admin = member(&app, &owner, "admin@example.com", "admin").await;
        let (food, food_id) = category(&app, &admin.token, "Food", None).await;
        let (_, fruit_id) = category(&app, &admin.token, "Fruit", Some(&food_id)).await;
        let (apples, apples_id) = category(&app, &admin.token, "Apples", Some(&fruit_id)).await;
        let before = parents(&app).await;

        let under_grandchild = app.graphql(Some(&admin.token), MOVE, json!({ "id": food, "parent": apples_id })).await;
        let under_itself = app.graphql(Some(&admin.token), MOVE, json!({ "id": food, "parent": food_id })).await;
        // Two rows of one upsert pointing at each other.
        let crossed = app
            .graphql(
                Some(&admin.token),
                UPSERT,
                json!({ "rows": [
                    { "name": "Food", "parentId": fruit_id },
                    { "name": "Fruit", "parentId": food_id },
                ] }),
            )
            .await;

        for (reply, field) in [(&under_grandchild, "productCategoryUpdate"), (&crossed, "productCategoriesUpsert")] {
            let errors = user_errors(reply, field);
            assert_eq!(errors[0]["code"], "INVALID", "{}", reply.body);
            assert!(errors[0]["message"].as_str().unwrap().contains("own ancestor"), "{}", reply.body);
        }
        // The table's own CHECK refuses the shortest loop.
        assert_eq!(user_errors(&under_itself, "productCategoryUpdate")[0]["code"], "INVALID", "{}", under_itself.body);
        assert_eq!(user_errors(&under_grandchild, "productCategoryUpdate")[0]["field"], json!(["input", "parentId"]));
        assert_eq!(parents(&app).await, before, "nothing changed");

        // Moves that keep a tree go through: Apples to the top, then Food under Apples.
        let top = app.graphql(Some(&admin.token), MOVE, json!({ "id": apples, "parent": Value::Null })).await;
        let under = app.graphql(Some(&admin.token), MOVE, json!({ "id": food, "parent": apples_id })).await;
        assert!(top.data()["productCategoryUpdate"]["productCategory"]["parentId"].is_null(), "{}", top.body);
        assert_eq!(under.data()["productCategoryUpdate"]["productCategory"]["parentId"], apples_id.as_str(), "{}", under.body);
    }
}
