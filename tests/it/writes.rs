//! The generated writes (`<object>Create`, `<object>Update`, `<object>Delete`,
//! `<objects>Upsert`), on both backends.
//!
//! - The write isolation matrix: for every table that declares writes, each tenant's
//!   principal aims every generated mutation at the other tenant (its rows, its parents, its
//!   owner key) and is answered as if they did not exist, and nothing of the other tenant
//!   changes; the same probes aimed at the tenant's own rows succeed, so the refusals prove
//!   something. On PostgreSQL the refusals run again with row-level security the only wall.
//! - One transaction per request: a failed mutation rolls back the ones before it, and
//!   subscribers never hear of what was rolled back.
//! - Constraint violations read alike on both backends, `expectedUpdatedAt` settles races,
//!   bulk upserts are bounded and all or nothing, and bad input never answers `INTERNAL`.
//! - Anonymous callers and read-only API keys write nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use api::graphql::names;
use api::tables::{Table, tables};
use entity::registry::RelationKind;
use migration::catalog::{TableSpec, Tenant};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::fixtures::{self, row};
use crate::common::server::{Client, Server};
use crate::common::world::{self, Kind, Side, World, token};
use crate::common::{TestDb, on_both_backends};

// ---------------------------------------------------------------------------------------
// Names and documents
// ---------------------------------------------------------------------------------------

/// The GraphQL names of one table's generated writes.
struct Names {
    /// `CachedOrder`: the object type, and the input types' prefix.
    type_name: String,
    /// `cachedOrder`: the mutations' prefix and the payload's row field.
    object: String,
    /// `ordersCache`: the root query field, the upsert's prefix and its payload field.
    root: String,
}

impl Names {
    fn of(table: &Table) -> Self {
        let type_name = names::type_name(table.name);
        let mut chars = type_name.chars();
        let object = chars
            .next()
            .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
            .unwrap_or_default();
        Self {
            object,
            root: names::camel(table.name),
            type_name,
        }
    }

    fn create(&self) -> String {
        format!(
            "mutation($input: {t}CreateInput!) {{ m: {o}Create(input: $input) {{ userErrors {{ field code message }} {o} {{ id rowId }} }} }}",
            t = self.type_name,
            o = self.object
        )
    }

    fn update(&self) -> String {
        format!(
            "mutation($id: ID!, $input: {t}UpdateInput!) {{ m: {o}Update(id: $id, input: $input) {{ userErrors {{ field code message }} {o} {{ id rowId }} }} }}",
            t = self.type_name,
            o = self.object
        )
    }

    fn delete(&self) -> String {
        format!(
            "mutation($id: ID!) {{ m: {o}Delete(id: $id) {{ userErrors {{ field code message }} deletedId }} }}",
            o = self.object
        )
    }

    fn upsert(&self) -> String {
        format!(
            "mutation($inputs: [{t}CreateInput!]!) {{ m: {r}Upsert(inputs: $inputs) {{ userErrors {{ field code message }} {r} {{ id rowId }} }} }}",
            t = self.type_name,
            r = self.root
        )
    }

    fn gid(&self, id: Uuid) -> String {
        format!("gid://stratix/{}/{id}", self.type_name)
    }
}

/// A short unique text for natural keys and names.
fn tag() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// The payload of the mutation aliased `m`.
fn payload(reply: &Reply) -> &Value {
    &reply.body["data"]["m"]
}

/// Whether the mutation `m` succeeded: no errors, no `userErrors`.
fn succeeded(reply: &Reply) -> bool {
    reply.body.get("errors").is_none() && payload(reply)["userErrors"] == json!([])
}

/// Whether `m`'s `userErrors` hold `code` at `field`.
fn has_error(reply: &Reply, field: &[&str], code: &str) -> bool {
    payload(reply)["userErrors"]
        .as_array()
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e["field"] == json!(field) && e["code"] == code)
        })
}

/// A `userErrors` entry's field path and code.
type FieldError = (Value, String);

/// `m`'s `userErrors` as (field, code) pairs, in order.
fn errors_of(reply: &Reply) -> Vec<FieldError> {
    payload(reply)["userErrors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].clone(),
                        e["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn field_error(field: &[&str], code: &str) -> FieldError {
    (json!(field), code.to_owned())
}

/// How many rows `table` holds, as `service_role` counts them.
async fn count(app: &TestApp, table: &Table) -> u64 {
    let reply = app
        .query(
            &format!(
                "{{ c: {}(first: 1) {{ totalCount }} }}",
                names::camel(table.name)
            ),
            json!({}),
        )
        .await;
    reply.body["data"]["c"]["totalCount"]
        .as_u64()
        .unwrap_or_else(|| panic!("counting {}: {}", table.name, reply.body))
}

/// Failures, collected so that one run reports every one at once.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn assert_none(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} failure(s):\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

// ---------------------------------------------------------------------------------------
// 1. The write isolation matrix
// ---------------------------------------------------------------------------------------

/// `side`'s owner id for rows of `spec`'s kind.
fn owner_id(world: &World, side: Side, spec: &TableSpec) -> Uuid {
    let tenants = world.tenants(side);
    match spec.tenant {
        Tenant::User => tenants.user,
        Tenant::Shop => tenants.shop,
        Tenant::Distributor => tenants.distributor,
    }
}

/// Who the matrix runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The service as deployed: the API's write rule, and on PostgreSQL RLS beneath it.
    Api,
    /// PostgreSQL with the API's scoping switched off: `WITH CHECK` and `USING` alone.
    RowLevelSecurityAlone,
}

/// The columns of a valid new row of `table` other than its references and owner: what a
/// client must give (plus unique values where the table has a natural key).
fn plain_input(table: &str, tag: &str) -> Value {
    match table {
        "profiles" => json!({ "displayName": tag }),
        "notification_preferences" => json!({ "digestFrequency": "daily" }),
        "notifications" => json!({ "type": "system", "title": tag, "body": "body" }),
        "projects" => json!({ "name": tag }),
        "crawl_jobs" => json!({ "name": tag }),
        "images" => json!({ "url": format!("https://img.test/{tag}.png"), "source": "google" }),
        "ai_clones" => json!({ "name": tag, "modelType": "gpt" }),
        "ai_tasks" => json!({ "taskName": tag }),
        "products" => json!({ "shopifyId": tag, "handle": tag, "title": tag }),
        "performance_metrics" => json!({ "metricType": "conversion_rate", "value": "0.5" }),
        "ai_models" => json!({ "name": "copywriter", "version": tag }),
        "cache" => json!({ "key": tag, "value": { "tag": tag }, "type": "json" }),
        "orders_cache" => {
            json!({ "orderId": tag, "total": "42.00", "createdAt": "2026-12-01T10:00:00Z" })
        }
        "recommendations" => json!({
            "entityType": "product", "entityId": tag, "category": "seo",
            "ruleId": "title_length", "severity": "low", "rationale": "too short",
        }),
        "experiments" => json!({
            "name": tag, "target": "product_page:cta",
            "allocation": { "control": 0.5, "b": 0.5 }, "variants": { "control": {}, "b": {} },
        }),
        "distributors" => json!({ "name": tag }),
        "user_profiles" => json!({ "fullName": tag }),
        "user_invitations" => json!({}),
        "customers" => json!({ "name": tag, "whatsappId": tag }),
        "customer_labels" => json!({ "label": tag }),
        "conversations" => json!({ "channel": "whatsapp" }),
        "messages" => json!({ "direction": "inbound", "channel": "whatsapp", "body": tag }),
        "catalog_products" => json!({ "sku": tag, "name": tag, "price": "3.50" }),
        "product_categories" => json!({ "name": tag }),
        "orders" => json!({ "orderNumber": tag }),
        "order_products" => json!({
            "productName": tag, "quantity": "1", "unitPrice": "1.00", "lineTotal": "1.00",
        }),
        "external_integrations" => json!({ "provider": tag }),
        other => panic!("{other} declares writes: give it a valid input in plain_input"),
    }
}

/// The references a client gives among `columns` (the owner key aside): (column, parent).
fn references(table: &Table, columns: &[usize]) -> Vec<(usize, &'static Table)> {
    let owner = table.spec.map(|spec| spec.owner_column);
    let mut found: Vec<(usize, &'static Table)> = Vec::new();
    for relation in &table.relations {
        let column = relation.foreign_key;
        if relation.kind == RelationKind::BelongsTo
            && columns.contains(&column)
            && Some(table.columns[column].name) != owner
            && !found.iter().any(|(c, _)| *c == column)
        {
            found.push((column, &tables().all[relation.other]));
        }
    }
    found
}

fn field_of(table: &Table, column: usize) -> String {
    names::column_field(table.columns[column].name)
}

/// `side`'s parent of `parent`'s kind, from the world.
fn parent_row(world: &World, side: Side, parent: &Table) -> Uuid {
    *world
        .rows(parent.name)
        .of(side)
        .first()
        .unwrap_or_else(|| panic!("the world has no {} row of {side:?}", parent.name))
}

/// A valid new row of `table` with `side`'s parents (the owner left out).
fn new_row(world: &World, side: Side, table: &Table) -> Value {
    let mut input = plain_input(table.name, &tag());
    for (column, parent) in references(table, &table.create_columns()) {
        input[field_of(table, column)] = json!(parent_row(world, side, parent));
    }
    input
}

/// A valid change to a row of `table`: its plain columns that may change.
fn change(table: &Table) -> Value {
    let settable: BTreeSet<String> = table
        .update_columns()
        .into_iter()
        .map(|c| field_of(table, c))
        .collect();
    let mut input = plain_input(table.name, &tag());
    if let Some(object) = input.as_object_mut() {
        object.retain(|field, _| settable.contains(field));
    }
    input
}

/// Runs every refusal, then (with the API's scoping) the positive controls, for every
/// table with generated writes, as `side`'s principal; returns how many tables held.
async fn write_matrix(
    app: &TestApp,
    world: &World,
    side: Side,
    mode: Mode,
    failures: &mut Failures,
) -> usize {
    let mut checked = 0;
    for table in tables().all.iter().filter(|t| writes_any(t)) {
        let before = failures.0.len();
        write_probes(app, world, table, side, mode, failures).await;
        if failures.0.len() == before {
            checked += 1;
        }
    }
    checked
}

fn writes_any(table: &Table) -> bool {
    table.spec.is_some_and(|spec| spec.writes.any())
}

/// One table of the matrix: every refusal, then the checks that nothing of the other
/// tenant changed, then (with the API's scoping) the positive controls.
async fn write_probes(
    app: &TestApp,
    world: &World,
    table: &'static Table,
    side: Side,
    mode: Mode,
    failures: &mut Failures,
) {
    let Some(spec) = table.spec else {
        return;
    };
    let writes = spec.writes;
    let n = Names::of(table);
    let kind = Kind::reading(spec.tenant);
    let token = token(world, side, kind);
    let rows = world.rows(table.name);
    let context = format!("{} as {side:?}'s {kind:?} ({mode:?})", table.name);
    let (Some(&own), false) = (rows.of(side).first(), rows.of(side.other()).is_empty()) else {
        failures.0.push(format!(
            "{context}: the world needs rows of both tenants: add them in common/world.rs"
        ));
        return;
    };
    // Not the tenant's to write: the other tenant's rows, and shared rows (service only).
    let theirs: BTreeSet<Uuid> = rows
        .of(side.other())
        .iter()
        .chain(&rows.unowned)
        .copied()
        .collect();
    let own_set = BTreeSet::from([own]);
    let owner_field = names::column_field(spec.owner_column);
    let has_owner_field = table
        .create_columns()
        .iter()
        .any(|&c| table.columns[c].name == spec.owner_column);
    let mine = owner_id(world, side, spec);
    let other = owner_id(world, side.other(), spec);
    let before = app.snapshot(table, &theirs).await;
    let own_before = app.snapshot(table, &own_set).await;
    let count_before = count(app, table).await;
    // What was accepted that had to be refused, for the report.
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = |failures: &mut Failures, what: String, reply: &Reply, field: &[&str]| {
        if succeeded(reply) {
            accepted.push(format!("{what}: {}", reply.body));
        }
        if mode == Mode::Api {
            failures.check(has_error(reply, field, "NOT_FOUND"), || {
                format!(
                    "{context}: {what}: expected NOT_FOUND at {field:?}, got {}",
                    reply.body
                )
            });
        }
        check_not_internal(failures, false, &context, &what, reply);
    };

    if writes.update {
        let input = change(table);
        let missing = app
            .graphql(
                Some(&token),
                &n.update(),
                json!({ "id": n.gid(Uuid::new_v4()), "input": input }),
            )
            .await;
        refused(
            failures,
            "update of a missing id".to_owned(),
            &missing,
            &["id"],
        );
        for &id in &theirs {
            let reply = app
                .graphql(
                    Some(&token),
                    &n.update(),
                    json!({ "id": n.gid(id), "input": input }),
                )
                .await;
            refused(
                failures,
                format!("update of their row {id}"),
                &reply,
                &["id"],
            );
            if mode == Mode::Api {
                failures.check(payload(&reply) == payload(&missing), || {
                    format!(
                        "{context}: update of their row {id} answered {} but a missing id {}",
                        reply.body, missing.body
                    )
                });
            }
        }
        // The tenant's own row, pointed at the other tenant's parents.
        for (column, parent) in references(table, &table.update_columns()) {
            let field = field_of(table, column);
            let reply = app
                .graphql(
                    Some(&token),
                    &n.update(),
                    json!({ "id": n.gid(own), "input": { (field.clone()): parent_row(world, side.other(), parent) } }),
                )
                .await;
            refused(
                failures,
                format!("update of its own row to their {} as {field}", parent.name),
                &reply,
                &["input", &field],
            );
        }
    }
    if writes.delete {
        let missing = app
            .graphql(
                Some(&token),
                &n.delete(),
                json!({ "id": n.gid(Uuid::new_v4()) }),
            )
            .await;
        refused(
            failures,
            "delete of a missing id".to_owned(),
            &missing,
            &["id"],
        );
        for &id in &theirs {
            let reply = app
                .graphql(Some(&token), &n.delete(), json!({ "id": n.gid(id) }))
                .await;
            refused(
                failures,
                format!("delete of their row {id}"),
                &reply,
                &["id"],
            );
            if mode == Mode::Api {
                failures.check(payload(&reply) == payload(&missing), || {
                    format!(
                        "{context}: delete of their row {id} answered {} but a missing id {}",
                        reply.body, missing.body
                    )
                });
            }
        }
    }
    // New rows: under the other tenant's parents, or naming the other tenant as owner.
    let upsert_key = !writes.upsert_key.is_empty();
    let mut attempts: Vec<(String, Value, String)> = Vec::new();
    for (column, parent) in references(table, &table.create_columns()) {
        let field = field_of(table, column);
        let mut input = new_row(world, side, table);
        input[&field] = json!(parent_row(world, side.other(), parent));
        attempts.push((
            format!("under their {}", parent.name),
            input.clone(),
            field.clone(),
        ));
        if has_owner_field {
            input[&owner_field] = json!(mine);
            attempts.push((
                format!("naming itself as owner, under their {}", parent.name),
                input,
                field,
            ));
        }
    }
    if has_owner_field {
        let mut input = new_row(world, side, table);
        input[&owner_field] = json!(other);
        attempts.push((
            "naming them as owner".to_owned(),
            input,
            owner_field.clone(),
        ));
        let mut input = new_row(world, side.other(), table);
        input[&owner_field] = json!(other);
        attempts.push((
            "naming them as owner, under their parents".to_owned(),
            input,
            owner_field.clone(),
        ));
    }
    for (what, input, field) in &attempts {
        if writes.create {
            let reply = app
                .graphql(Some(&token), &n.create(), json!({ "input": input }))
                .await;
            refused(
                failures,
                format!("create {what}"),
                &reply,
                &["input", field],
            );
        }
        if upsert_key {
            let reply = app
                .graphql(Some(&token), &n.upsert(), json!({ "inputs": [input] }))
                .await;
            refused(
                failures,
                format!("upsert {what}"),
                &reply,
                &["inputs", "0", field],
            );
        }
    }

    let after = app.snapshot(table, &theirs).await;
    failures.check(before == after, || {
        format!("{context}: the other tenant's rows CHANGED: {before} -> {after}")
    });
    let own_after = app.snapshot(table, &own_set).await;
    failures.check(own_before == own_after, || {
        format!("{context}: a refused write CHANGED its own row: {own_before} -> {own_after}")
    });
    let count_after = count(app, table).await;
    failures.check(count_before == count_after, || {
        format!("{context}: refused writes changed the row count {count_before} -> {count_after}")
    });
    if !accepted.is_empty() {
        let accepted = accepted.join("\n    ");
        match mode {
            Mode::Api => failures
                .0
                .push(format!("{context}: ACCEPTED:\n    {accepted}")),
            // The answers may differ there; a success that changed nothing is not a leak.
            Mode::RowLevelSecurityAlone if before != after || count_before != count_after => {
                failures
                    .0
                    .push(format!("{context}: ACCEPTED:\n    {accepted}"));
            }
            Mode::RowLevelSecurityAlone => {
                eprintln!("{context}: answered success but changed nothing:\n    {accepted}");
            }
        }
    }
    if mode == Mode::Api {
        positive_controls(app, world, table, side, &token, &before, failures).await;
        let last = app.snapshot(table, &theirs).await;
        failures.check(before == last, || {
            format!("{context}: the tenant's own writes CHANGED the other tenant's rows: {before} -> {last}")
        });
        let count_last = count(app, table).await;
        failures.check(count_before == count_last, || {
            format!("{context}: rows created and deleted again left the count {count_before} -> {count_last}")
        });
    }
}

/// The same mutations aimed at the tenant itself work: updates of its own row, creates and
/// upserts with its own parents (owner left out or named as itself, or with the natural key
/// of one of the other tenant's rows), each created row deleted again.
async fn positive_controls(
    app: &TestApp,
    world: &World,
    table: &'static Table,
    side: Side,
    token: &str,
    theirs_before: &Value,
    failures: &mut Failures,
) {
    let Some(spec) = table.spec else {
        return;
    };
    let writes = spec.writes;
    let n = Names::of(table);
    let context = format!("{} as {side:?}'s own", table.name);
    let own = world.rows(table.name).of(side)[0];
    let ok = |failures: &mut Failures, what: &str, reply: &Reply| {
        failures.check(succeeded(reply), || {
            format!(
                "{context}: {what} was refused (so the refusals prove nothing): {}",
                reply.body
            )
        });
    };
    if writes.update {
        for input in [change(table), json!({})] {
            let reply = app
                .graphql(
                    Some(token),
                    &n.update(),
                    json!({ "id": n.gid(own), "input": input }),
                )
                .await;
            ok(failures, &format!("update with {input}"), &reply);
            failures.check(payload(&reply)[&n.object]["id"] == n.gid(own), || {
                format!("{context}: update returned {}", reply.body)
            });
        }
    }
    let mut created: Vec<Value> = Vec::new();
    let owner_named = table
        .create_columns()
        .iter()
        .any(|&c| table.columns[c].name == spec.owner_column);
    let owner_field = names::column_field(spec.owner_column);
    let mine = owner_id(world, side, spec);
    let fresh = |named: bool| {
        let mut input = new_row(world, side, table);
        if named {
            input[&owner_field] = json!(mine);
        }
        input
    };
    let variants: &[(&str, bool)] = if owner_named {
        &[("owner left out", false), ("owner named as itself", true)]
    } else {
        &[("owner left out", false)]
    };
    for &(what, named) in variants {
        if writes.create {
            let reply = app
                .graphql(Some(token), &n.create(), json!({ "input": fresh(named) }))
                .await;
            ok(failures, &format!("create, {what}"), &reply);
            created.push(payload(&reply)[&n.object]["id"].clone());
        }
        if !writes.upsert_key.is_empty() {
            let input = fresh(named);
            let reply = app
                .graphql(Some(token), &n.upsert(), json!({ "inputs": [input] }))
                .await;
            ok(failures, &format!("upsert, {what}"), &reply);
            let id = payload(&reply)[&n.root][0]["id"].clone();
            // The same row upserted again is the same row.
            let again = app
                .graphql(Some(token), &n.upsert(), json!({ "inputs": [input] }))
                .await;
            ok(failures, &format!("the same upsert again, {what}"), &again);
            failures.check(payload(&again)[&n.root][0]["id"] == id, || {
                format!(
                    "{context}: upserted again, {id} came back as {}",
                    again.body
                )
            });
            created.push(id);
        }
    }
    // The other tenant's natural key makes a row of the tenant's own, and leaves theirs.
    if !writes.upsert_key.is_empty() {
        let root = names::camel(table.name);
        let their_ids: BTreeSet<String> = world
            .rows(table.name)
            .of(side.other())
            .iter()
            .map(Uuid::to_string)
            .collect();
        let theirs = theirs_before[&root]["nodes"]
            .as_array()
            .and_then(|nodes| {
                nodes.iter().find(|node| {
                    node["rowId"]
                        .as_str()
                        .is_some_and(|id| their_ids.contains(id))
                })
            })
            .cloned()
            .unwrap_or(Value::Null);
        let mut input = new_row(world, side, table);
        for column in writes.upsert_key {
            if *column != spec.owner_column {
                let field = names::column_field(column);
                input[&field] = theirs[&field].clone();
            }
        }
        let reply = app
            .graphql(Some(token), &n.upsert(), json!({ "inputs": [input] }))
            .await;
        ok(
            failures,
            "upsert with the other tenant's natural key",
            &reply,
        );
        let id = payload(&reply)[&n.root][0]["id"].clone();
        failures.check(id != theirs["id"], || {
            format!(
                "{context}: an upsert on their natural key returned THEIR row {}",
                reply.body
            )
        });
        created.push(id);
    }
    for id in created.into_iter().filter(|id| id.is_string()) {
        let reply = app
            .graphql(Some(token), &n.delete(), json!({ "id": id }))
            .await;
        ok(failures, &format!("delete of its new row {id}"), &reply);
        failures.check(payload(&reply)["deletedId"] == id, || {
            format!("{context}: delete of {id} answered {}", reply.body)
        });
    }
}

/// No error of `reply` is `INTERNAL`; with `strict`, neither is an executor failure without
/// a code (`internal: non-null types require a return value`, say).
fn check_not_internal(
    failures: &mut Failures,
    strict: bool,
    context: &str,
    what: &str,
    reply: &Reply,
) {
    let internal = reply.body["errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            e["extensions"]["code"] == "INTERNAL"
                || (strict
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.to_lowercase().starts_with("internal")))
        })
    });
    failures.check(!internal, || {
        format!("{context}: {what}: INTERNAL error: {}", reply.body)
    });
}

async fn matrix(app: &TestApp, mode: Mode) {
    let world = world::build(&app.t.db).await;
    let declaring = tables().all.iter().filter(|t| writes_any(t)).count();
    let mut failures = Failures::default();
    for side in [Side::A, Side::B] {
        let checked = write_matrix(app, &world, side, mode, &mut failures).await;
        eprintln!("write matrix as {side:?} ({mode:?}): {checked} of {declaring} tables held");
        failures.check(checked == declaring, || {
            format!("as {side:?}: {checked} of the {declaring} tables declaring writes held")
        });
    }
    failures.check(declaring > 20, || {
        format!("only {declaring} tables declare writes")
    });
    failures.assert_none(&format!("write isolation ({mode:?})"));
}

on_both_backends! {
    /// Every generated mutation of every table refuses the other tenant's rows, parents and
    /// owner key as if they did not exist, and changes nothing of theirs.
    async fn every_generated_write_treats_the_other_tenant_as_missing_and_changes_nothing_of_it(t) {
        let app = TestApp::new(t).await;

        matrix(&app, Mode::Api).await;
    }
}

/// With the API's own scoping switched off, PostgreSQL's row-level security alone keeps
/// every generated write away from the other tenant.
mod row_level_security_alone_refuses_every_generated_write_to_the_other_tenant {
    use super::*;

    #[tokio::test]
    async fn postgres() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let app = TestApp::with_api_scoping(t, false).await;

        matrix(&app, Mode::RowLevelSecurityAlone).await;
    }
}

// ---------------------------------------------------------------------------------------
// 2. One transaction per request, published after commit
// ---------------------------------------------------------------------------------------

const PRODUCT_CHANGES: &str =
    "subscription { rowChanged(tables: [PRODUCTS]) { op table rowId node { id } } }";

fn create_product(alias: &str, shopify_id: &str) -> String {
    format!(
        "{alias}: productCreate(input: {{shopifyId: \"{shopify_id}\", handle: \"{shopify_id}\", title: \"{shopify_id}\"}}) {{ userErrors {{ field code message }} product {{ rowId }} }}"
    )
}

on_both_backends! {
    /// A request whose second mutation fails keeps nothing of the first, says
    /// `ROLLED_BACK`, and publishes nothing; a later request's create is heard.
    async fn a_failed_mutation_rolls_back_the_request_and_subscribers_never_hear_of_it(t) {
        let t = t.migrated().await;
        let domain = "rollback.myshopify.com";
        fixtures::shop(&t.db, domain).await;
        let server = Server::start(t.db.clone()).await;
        let token = TestApp::shop_token(domain);
        let mut subscriber = Client::connect(server.addr, false).await;
        subscriber.init(&token).await;
        subscriber.subscribe("products", PRODUCT_CHANGES, json!({})).await;
        server.subscribed(1).await;
        let sentinel = server
            .post(&token, &format!("mutation {{ {} }}", create_product("m", "sentinel")))
            .await;
        let sentinel = sentinel["data"]["m"]["product"]["rowId"].clone();
        subscriber.until("products", Duration::from_secs(10), |e| e["data"]["rowChanged"]["rowId"] == sentinel).await;

        let failed = server
            .post(
                &token,
                &format!(
                    "mutation {{ {} {} {} }}",
                    create_product("first", "dup"),
                    create_product("second", "dup"),
                    create_product("third", "other")
                ),
            )
            .await;
        let later = server
            .post(&token, &format!("mutation {{ {} }}", create_product("m", "later")))
            .await;
        let later_id = later["data"]["m"]["product"]["rowId"].clone();
        subscriber.until("products", Duration::from_secs(10), |e| e["data"]["rowChanged"]["rowId"] == later_id).await;
        let kept = server
            .post(
                &TestApp::service(),
                "{ products(first: 10, orderBy: [{field: SHOPIFY_ID}]) { nodes { shopifyId } } }",
            )
            .await;

        assert!(failed.get("errors").is_none(), "{failed}");
        assert_eq!(failed["data"]["first"]["userErrors"], json!([]), "{failed}");
        let first_id = failed["data"]["first"]["product"]["rowId"].clone();
        assert!(first_id.is_string(), "{failed}");
        assert_eq!(failed["data"]["second"]["userErrors"][0]["code"], "TAKEN", "{failed}");
        assert_eq!(failed["data"]["third"]["userErrors"][0]["code"], "NOT_RUN", "{failed}");
        assert_eq!(failed["data"]["third"]["product"], Value::Null, "{failed}");
        assert_eq!(failed["extensions"]["transaction"], "ROLLED_BACK", "{failed}");
        assert_eq!(later["data"]["m"]["userErrors"], json!([]), "{later}");
        assert!(later["extensions"].get("transaction").is_none(), "{later}");
        assert_eq!(
            kept["data"]["products"]["nodes"],
            json!([{ "shopifyId": "later" }, { "shopifyId": "sentinel" }]),
            "{kept}"
        );
        let heard: Vec<(Value, Value)> = subscriber
            .events["products"]
            .iter()
            .map(|e| (e["data"]["rowChanged"]["op"].clone(), e["data"]["rowChanged"]["rowId"].clone()))
            .collect();
        assert!(
            !heard.iter().any(|(_, id)| *id == first_id),
            "the subscriber heard of the rolled-back row {first_id}: {heard:?}"
        );
        assert_eq!(
            heard,
            vec![(json!("INSERT"), sentinel), (json!("INSERT"), later_id)],
            "{:?}",
            subscriber.events["products"]
        );
        // Last, so that the transaction is checked whatever the answer names.
        assert_eq!(
            failed["data"]["second"]["userErrors"][0]["field"],
            json!(["input", "shopifyId"]),
            "{failed}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Constraint violations read alike on both backends
// ---------------------------------------------------------------------------------------

const PROJECT_CREATE: &str = "mutation($input: ProjectCreateInput!) { m: projectCreate(input: $input) { userErrors { field code message } project { id } } }";
const PROJECT_UPDATE: &str = "mutation($id: ID!, $input: ProjectUpdateInput!) { m: projectUpdate(id: $id, input: $input) { userErrors { field code message } project { id } } }";
const PRODUCT_CREATE: &str = "mutation($input: ProductCreateInput!) { m: productCreate(input: $input) { userErrors { field code message } product { id } } }";
const IMAGE_CREATE: &str = "mutation($input: ImageCreateInput!) { m: imageCreate(input: $input) { userErrors { field code message } image { id } } }";

/// Every row of these tables, as `service_role` reads them, to show nothing changed.
async fn everything(app: &TestApp, names: &[&str]) -> Value {
    let mut all = json!({});
    for name in names {
        let table = tables().get(name).unwrap();
        let ids: BTreeSet<Uuid> = app
            .t
            .query(&format!("SELECT id FROM {name}"), vec![])
            .await
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id").unwrap())
            .collect();
        all[*name] = json!({ "count": ids.len(), "rows": app.snapshot(table, &ids).await });
    }
    all
}

on_both_backends! {
    /// TAKEN, BLANK (null and missing), TOO_LONG, INVALID and NOT_FOUND, each at the field
    /// at fault, the same on both backends, and nothing written.
    async fn every_constraint_kind_answers_the_same_user_error_on_both_backends(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "constraints@example.com").await;
        let project = row(&app.t.db, "projects", vec![("name", "kept".into()), ("user_id", user.into())]).await;
        let domain = "constraints.myshopify.com";
        let shop = fixtures::shop(&app.t.db, domain).await;
        fixtures::product(&app.t.db, shop, "p-1").await;
        let as_user = TestApp::token("authenticated", &user.to_string());
        let as_shop = TestApp::shop_token(domain);
        let project_gid = format!("gid://stratix/Project/{project}");
        let cases: Vec<(&str, &str, &str, Value, Vec<FieldError>)> = vec![
            ("TAKEN: a shopifyId the shop already has", &as_shop, PRODUCT_CREATE,
                json!({ "input": { "shopifyId": "p-1", "handle": "again", "title": "Again" } }),
                vec![field_error(&["input", "shopifyId"], "TAKEN")]),
            ("BLANK: null for a required column", &as_user, PROJECT_CREATE,
                json!({ "input": { "name": null } }),
                vec![field_error(&["input", "name"], "BLANK")]),
            ("BLANK: a required column left out", &as_user, PROJECT_CREATE,
                json!({ "input": { "description": "no name" } }),
                vec![field_error(&["input", "name"], "BLANK")]),
            ("BLANK: null for a required column, on update", &as_user, PROJECT_UPDATE,
                json!({ "id": project_gid, "input": { "name": null } }),
                vec![field_error(&["input", "name"], "BLANK")]),
            ("TOO_LONG: varchar(100) given 101 characters", &as_user, PROJECT_CREATE,
                json!({ "input": { "name": "x".repeat(101) } }),
                vec![field_error(&["input", "name"], "TOO_LONG")]),
            ("TOO_LONG: varchar(100) given 101 characters, on update", &as_user, PROJECT_UPDATE,
                json!({ "id": project_gid, "input": { "name": "é".repeat(101) } }),
                vec![field_error(&["input", "name"], "TOO_LONG")]),
            ("INVALID: a status outside projects_status_check", &as_user, PROJECT_CREATE,
                json!({ "input": { "name": "checked", "status": "deleted" } }),
                vec![field_error(&["input", "status"], "INVALID")]),
            ("INVALID: a status outside projects_status_check, on update", &as_user, PROJECT_UPDATE,
                json!({ "id": project_gid, "input": { "status": "deleted" } }),
                vec![field_error(&["input", "status"], "INVALID")]),
            ("NOT_FOUND: a parent that does not exist", &as_user, IMAGE_CREATE,
                json!({ "input": { "crawlJobId": Uuid::new_v4(), "url": "https://img.test/orphan.png", "source": "google" } }),
                vec![field_error(&["input", "crawlJobId"], "NOT_FOUND")]),
        ];
        let before = everything(&app, &["projects", "images", "products"]).await;

        let mut failures = Failures::default();
        for (what, token, query, variables, expected) in &cases {
            let reply = app.graphql(Some(token), query, variables.clone()).await;
            failures.check(reply.body.get("errors").is_none() && errors_of(&reply) == *expected, || {
                format!("{what}: expected {expected:?}, got {}", reply.body)
            });
            failures.check(payload(&reply)["userErrors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), || {
                format!("{what}: no message: {}", reply.body)
            });
            failures.check(reply.body["extensions"]["transaction"] == "ROLLED_BACK", || {
                format!("{what}: not ROLLED_BACK: {}", reply.body)
            });
        }
        let after = everything(&app, &["projects", "images", "products"]).await;
        // Exactly `varchar(100)` fits: the limit is the column's, in characters.
        let fits = app.graphql(Some(&as_user), PROJECT_CREATE, json!({ "input": { "name": "é".repeat(100) } })).await;

        failures.check(before == after, || format!("refused writes changed rows: {before} -> {after}"));
        failures.check(succeeded(&fits), || format!("100 characters in varchar(100) refused: {}", fits.body));
        failures.assert_none("constraint violations");
    }
}

// ---------------------------------------------------------------------------------------
// 4. expectedUpdatedAt
// ---------------------------------------------------------------------------------------

const PROJECT_VERSIONED_UPDATE: &str = "mutation($id: ID!, $input: ProjectUpdateInput!, $at: DateTime) { m: projectUpdate(id: $id, input: $input, expectedUpdatedAt: $at) { userErrors { field code message } project { name updatedAt } } }";

on_both_backends! {
    /// Two updates expecting the same `updatedAt`, sent at once: one wins, the other is
    /// STALE; a stale expectation stays STALE, a fresh one works.
    async fn of_two_concurrent_updates_expecting_the_same_version_exactly_one_wins(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "races@example.com").await;
        let project = row(&app.t.db, "projects", vec![("name", "original".into()), ("user_id", user.into())]).await;
        let token = TestApp::token("authenticated", &user.to_string());
        let id = format!("gid://stratix/Project/{project}");
        let read = || async {
            let reply = app.graphql(Some(&token), "query($id: ID!) { node(id: $id) { ... on Project { name updatedAt } } }", json!({ "id": id })).await;
            reply.data()["node"].clone()
        };
        let original = read().await;
        let at = original["updatedAt"].clone();
        let update = |name: &'static str, at: Value| {
            let (app, token, id) = (&app, &token, &id);
            async move {
                app.graphql(Some(token), PROJECT_VERSIONED_UPDATE, json!({ "id": id, "input": { "name": name }, "at": at })).await
            }
        };

        let (one, two) = tokio::join!(update("one", at.clone()), update("two", at.clone()));
        let won = read().await;
        let stale_again = update("three", at.clone()).await;
        let still = read().await;
        let fresh = update("four", won["updatedAt"].clone()).await;
        let last = read().await;

        let stale = vec![field_error(&["expectedUpdatedAt"], "STALE")];
        let outcomes = [(&one, "one"), (&two, "two")];
        let winners: Vec<&str> = outcomes.iter().filter(|(r, _)| succeeded(r)).map(|(_, n)| *n).collect();
        let losers: Vec<&str> = outcomes.iter().filter(|(r, _)| errors_of(r) == stale).map(|(_, n)| *n).collect();
        assert!(at.is_string(), "{original}");
        assert_eq!(winners.len(), 1, "one: {} two: {}", one.body, two.body);
        assert_eq!(losers.len(), 1, "one: {} two: {}", one.body, two.body);
        assert_eq!(won["name"], winners[0], "{won}");
        assert_ne!(won["updatedAt"], at, "{won}");
        assert_eq!(errors_of(&stale_again), stale, "{}", stale_again.body);
        assert_eq!(still, won);
        assert!(succeeded(&fresh), "{}", fresh.body);
        assert_eq!(payload(&fresh)["project"]["name"], "four");
        assert_eq!(last["name"], "four");
        assert_eq!(payload(&fresh)["project"]["updatedAt"], last["updatedAt"]);
    }
}

// ---------------------------------------------------------------------------------------
// 5. Bulk upsert
// ---------------------------------------------------------------------------------------

const PRODUCTS_UPSERT: &str = "mutation($inputs: [ProductCreateInput!]!) { m: productsUpsert(inputs: $inputs) { userErrors { field code message } products { id shopifyId title } } }";
const CATALOG_UPSERT: &str = "mutation($inputs: [CatalogProductCreateInput!]!) { m: catalogProductsUpsert(inputs: $inputs) { userErrors { field code message } catalogProducts { id } } }";

fn products(n: usize, title: &str) -> Vec<Value> {
    (0..n)
        .map(|i| json!({ "shopifyId": format!("bulk-{i:03}"), "handle": format!("bulk-{i}"), "title": format!("{title} {i}") }))
        .collect()
}

/// A user who owns a distributor; returns (user, distributor).
async fn distributor_owner(db: &DatabaseConnection, email: &str, slug: &str) -> (Uuid, Uuid) {
    let user = fixtures::user(db, email).await;
    let distributor = row(
        db,
        "distributors",
        vec![("name", slug.into()), ("slug", slug.into())],
    )
    .await;
    row(
        db,
        "user_profiles",
        vec![
            ("user_id", user.into()),
            ("role", "owner".into()),
            ("distributor_id", distributor.into()),
        ],
    )
    .await;
    (user, distributor)
}

on_both_backends! {
    /// 250 rows in one upsert are written, and upserted again they are updated in place;
    /// 251 rows are refused whole (a userError on `inputs`).
    async fn a_bulk_upsert_takes_up_to_250_rows_and_updates_them_in_place(t) {
        let app = TestApp::new(t).await;
        let domain = "bulk.myshopify.com";
        fixtures::shop(&app.t.db, domain).await;
        let token = TestApp::shop_token(domain);
        let products_table = tables().get("products").unwrap();

        let first = app.graphql(Some(&token), PRODUCTS_UPSERT, json!({ "inputs": products(250, "First") })).await;
        let count_first = count(&app, products_table).await;
        let second = app.graphql(Some(&token), PRODUCTS_UPSERT, json!({ "inputs": products(250, "Second") })).await;
        let count_second = count(&app, products_table).await;
        let too_many = app.graphql(Some(&token), PRODUCTS_UPSERT, json!({ "inputs": products(251, "Third") })).await;
        let titles = app.query("{ products(first: 250, filter: {title: {like: \"Third%\"}}) { totalCount } }", json!({})).await;

        assert!(succeeded(&first), "{}", first.body);
        assert!(succeeded(&second), "{}", second.body);
        let rows = |reply: &Reply| payload(reply)["products"].as_array().cloned().unwrap_or_default();
        let (first_rows, second_rows) = (rows(&first), rows(&second));
        assert_eq!(first_rows.len(), 250);
        assert_eq!(count_first, 250);
        assert_eq!(count_second, 250, "the second upsert must update, not add");
        for (i, (a, b)) in first_rows.iter().zip(&second_rows).enumerate() {
            assert_eq!(a["shopifyId"], format!("bulk-{i:03}"), "rows come back in the order given");
            assert_eq!(a["id"], b["id"], "row {i} changed its id");
            assert_eq!(a["title"], format!("First {i}"));
            assert_eq!(b["title"], format!("Second {i}"));
        }
        assert_eq!(titles.data()["products"]["totalCount"], 0);
        assert_eq!(count(&app, products_table).await, 250);
        let refusal = &payload(&too_many)["userErrors"];
        assert_eq!(refusal[0]["code"], "INVALID", "{}", too_many.body);
        assert_eq!(refusal[0]["field"], json!(["inputs"]), "{}", too_many.body);
        assert!(too_many.body.get("errors").is_none(), "{}", too_many.body);
    }

    /// A batch with bad rows at indexes 3 and 7 names both, and writes none of its rows.
    async fn a_bulk_upsert_with_bad_rows_names_each_and_writes_nothing(t) {
        let app = TestApp::new(t).await;
        let domain = "badrows.myshopify.com";
        fixtures::shop(&app.t.db, domain).await;
        let (user, _) = distributor_owner(&app.t.db, "bulk@example.com", "bulk").await;
        let as_shop = TestApp::shop_token(domain);
        let as_user = TestApp::token("authenticated", &user.to_string());
        let mut catalog: Vec<Value> = (0..10)
            .map(|i| json!({ "sku": format!("SKU-{i}"), "name": format!("Item {i}"), "price": "1.00" }))
            .collect();
        catalog[3]["name"] = json!("n".repeat(256));
        catalog[7]["name"] = json!("n".repeat(300));
        let mut shop_rows = products(10, "Bad");
        shop_rows[3]["title"] = Value::Null;
        shop_rows[7]["shopifyId"] = Value::Null;
        let before = everything(&app, &["catalog_products", "products"]).await;

        let too_long = app.graphql(Some(&as_user), CATALOG_UPSERT, json!({ "inputs": catalog })).await;
        let blank = app.graphql(Some(&as_shop), PRODUCTS_UPSERT, json!({ "inputs": shop_rows })).await;
        let after = everything(&app, &["catalog_products", "products"]).await;

        assert_eq!(
            errors_of(&too_long),
            vec![field_error(&["inputs", "3", "name"], "TOO_LONG"), field_error(&["inputs", "7", "name"], "TOO_LONG")],
            "{}",
            too_long.body
        );
        assert_eq!(payload(&too_long)["catalogProducts"], Value::Null, "{}", too_long.body);
        assert_eq!(
            errors_of(&blank),
            vec![field_error(&["inputs", "3", "title"], "BLANK"), field_error(&["inputs", "7", "shopifyId"], "BLANK")],
            "{}",
            blank.body
        );
        assert_eq!(too_long.body["extensions"]["transaction"], "ROLLED_BACK");
        assert_eq!(before, after);
        assert_eq!(after["catalog_products"]["count"], 0);
        assert_eq!(after["products"]["count"], 0);
        // A rejected upsert is a payload with userErrors and nothing else.
        assert!(too_long.body.get("errors").is_none(), "{}", too_long.body);
        assert!(blank.body.get("errors").is_none(), "{}", blank.body);
    }
}

// ---------------------------------------------------------------------------------------
// 6. Bad input
// ---------------------------------------------------------------------------------------

on_both_backends! {
    /// Wrong scalars, ids of other types, non-objects and unknown fields are refused as
    /// input problems (a userError or a GraphQL error that is not INTERNAL), and change
    /// nothing.
    async fn bad_input_is_refused_without_an_internal_error_and_changes_nothing(t) {
        let app = TestApp::new(t).await;
        let domain = "badinput.myshopify.com";
        let shop = fixtures::shop(&app.t.db, domain).await;
        let product = fixtures::product(&app.t.db, shop, "kept").await;
        let token = TestApp::shop_token(domain);
        let product_gid = format!("gid://stratix/Product/{product}");
        let shop_gid = format!("gid://stratix/Shop/{shop}");
        let valid = json!({ "shopifyId": "new", "handle": "new", "title": "New" });
        let with = |field: &str, value: Value| {
            let mut input = valid.clone();
            input[field] = value;
            input
        };
        const UPDATE: &str = "mutation($id: ID!, $input: ProductUpdateInput!) { m: productUpdate(id: $id, input: $input) { userErrors { field code message } product { id } } }";
        const VERSIONED: &str = "mutation($id: ID!, $at: DateTime) { m: productUpdate(id: $id, input: {title: \"x\"}, expectedUpdatedAt: $at) { userErrors { field code message } product { id } } }";
        const DELETE: &str = "mutation($id: ID!) { m: productDelete(id: $id) { userErrors { field code message } deletedId } }";
        const METRIC: &str = "mutation($input: PerformanceMetricCreateInput!) { m: performanceMetricCreate(input: $input) { userErrors { field code message } performanceMetric { id } } }";
        const ORDER: &str = "mutation($input: CachedOrderCreateInput!) { m: cachedOrderCreate(input: $input) { userErrors { field code message } cachedOrder { id } } }";
        const CACHE: &str = "mutation($input: CacheEntryCreateInput!) { m: cacheEntryCreate(input: $input) { userErrors { field code message } cacheEntry { id } } }";
        let literal = |input: &str| {
            format!("mutation {{ m: productCreate(input: {input}) {{ userErrors {{ field code message }} product {{ id }} }} }}")
        };
        let cases: Vec<(&str, String, Value)> = vec![
            ("a non-uuid owner, in a literal", literal(r#"{shopifyId: "new", handle: "new", title: "New", shopId: "not-a-uuid"}"#), json!({})),
            ("a non-uuid owner, in variables", PRODUCT_CREATE.to_owned(), json!({ "input": with("shopId", json!("not-a-uuid")) })),
            ("a non-uuid parent", METRIC.to_owned(), json!({ "input": { "productId": "nope", "metricType": "ctr", "value": "1" } })),
            ("a number for a String", PRODUCT_CREATE.to_owned(), json!({ "input": with("title", json!(42)) })),
            ("a number for a String, in a literal", literal(r#"{shopifyId: "new", handle: "new", title: 42}"#), json!({})),
            ("an object for a String", PRODUCT_CREATE.to_owned(), json!({ "input": with("handle", json!({ "a": 1 })) })),
            ("a list for a UUID", PRODUCT_CREATE.to_owned(), json!({ "input": with("shopId", json!([shop])) })),
            ("text for a Decimal", ORDER.to_owned(), json!({ "input": { "orderId": "o-1", "total": "abc" } })),
            ("an Int out of range", ORDER.to_owned(), json!({ "input": { "orderId": "o-2", "total": "1", "lineCount": 99_999_999_999_i64 } })),
            ("a float for an Int", ORDER.to_owned(), json!({ "input": { "orderId": "o-3", "total": "1", "lineCount": 1.5 } })),
            ("text for a DateTime", CACHE.to_owned(), json!({ "input": { "key": "k", "value": {}, "type": "json", "expiresAt": "yesterday" } })),
            ("the id of a Shop in productUpdate", UPDATE.to_owned(), json!({ "id": shop_gid, "input": { "title": "x" } })),
            ("the id of a Shop in productDelete", DELETE.to_owned(), json!({ "id": shop_gid })),
            ("a raw uuid for an id", UPDATE.to_owned(), json!({ "id": product.to_string(), "input": { "title": "x" } })),
            ("garbage for an id", UPDATE.to_owned(), json!({ "id": "gid://stratix/Product/not-a-uuid", "input": { "title": "x" } })),
            ("a number for an id", UPDATE.to_owned(), json!({ "id": 7, "input": { "title": "x" } })),
            ("text for expectedUpdatedAt", VERSIONED.to_owned(), json!({ "id": product_gid, "at": "last tuesday" })),
            ("text for input", PRODUCT_CREATE.to_owned(), json!({ "input": "shopifyId: new" })),
            ("a number for input", PRODUCT_CREATE.to_owned(), json!({ "input": 42 })),
            ("a list for input", PRODUCT_CREATE.to_owned(), json!({ "input": [valid] })),
            ("null for input", PRODUCT_CREATE.to_owned(), json!({ "input": null })),
            ("text for an update's input", UPDATE.to_owned(), json!({ "id": product_gid, "input": "title" })),
            ("text for inputs", PRODUCTS_UPSERT.to_owned(), json!({ "inputs": "rows" })),
            ("numbers in inputs", PRODUCTS_UPSERT.to_owned(), json!({ "inputs": [1, 2] })),
            ("no rows in inputs", PRODUCTS_UPSERT.to_owned(), json!({ "inputs": [] })),
            ("an unknown field, in a literal", literal(r#"{shopifyId: "new", handle: "new", title: "New", bogus: 1}"#), json!({})),
            ("an unknown field, in variables", PRODUCT_CREATE.to_owned(), json!({ "input": with("bogus", json!(1)) })),
            ("a server-set field (id)", PRODUCT_CREATE.to_owned(), json!({ "input": with("id", json!(Uuid::new_v4())) })),
            ("a server-set field (createdAt)", PRODUCT_CREATE.to_owned(), json!({ "input": with("createdAt", json!("2020-01-01T00:00:00Z")) })),
            ("a fixed field on update", UPDATE.to_owned(), json!({ "id": product_gid, "input": { "shopifyId": "moved" } })),
            ("the owner on update", UPDATE.to_owned(), json!({ "id": product_gid, "input": { "shopId": shop } })),
            ("an unknown field in an upsert row", PRODUCTS_UPSERT.to_owned(), json!({ "inputs": [valid, with("bogus", json!(true))] })),
        ];
        let tables_touched = ["products", "performance_metrics", "orders_cache", "cache"];
        let before = everything(&app, &tables_touched).await;

        let mut failures = Failures::default();
        for (what, query, variables) in &cases {
            let reply = app.graphql(Some(&token), query, variables.clone()).await;
            let errors = reply.body["errors"].as_array().cloned().unwrap_or_default();
            let user_errors = payload(&reply)["userErrors"].as_array().cloned().unwrap_or_default();
            failures.check(!errors.is_empty() || !user_errors.is_empty(), || {
                format!("{what}: neither an error nor a userError: {}", reply.body)
            });
            failures.check(reply.status.is_success() || reply.status.is_client_error(), || {
                format!("{what}: HTTP {}: {}", reply.status, reply.body)
            });
            check_not_internal(&mut failures, true, "bad input", what, &reply);
            failures.check(!reply.body.to_string().to_lowercase().contains("insert into"), || {
                format!("{what}: the answer shows SQL: {}", reply.body)
            });
        }
        let after = everything(&app, &tables_touched).await;

        failures.check(before == after, || format!("bad input changed rows: {before} -> {after}"));
        failures.assert_none("bad input");
    }
}

// ---------------------------------------------------------------------------------------
// Who may write at all
// ---------------------------------------------------------------------------------------

on_both_backends! {
    /// Anonymous callers get UNAUTHENTICATED, a READ-scoped API key FORBIDDEN, and neither
    /// writes; a WRITE-scoped key of the same user may.
    async fn anonymous_callers_and_read_only_keys_cannot_write(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "keys@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let key = |scope: &'static str| {
            let (app, token) = (&app, &token);
            async move {
                let reply = app.graphql(Some(token), "mutation($s: [ApiKeyScope!]) { m: apiKeyCreate(input: {name: \"k\", scopes: $s}) { userErrors { field code message } secret } }", json!({ "s": [scope] })).await;
                payload(&reply)["secret"].as_str().unwrap_or_else(|| panic!("no key: {}", reply.body)).to_owned()
            }
        };
        let (read_key, write_key) = (key("READ").await, key("WRITE").await);
        let with_key = |key: String, name: &'static str| {
            let app = &app;
            async move {
                let body = json!({ "query": PROJECT_CREATE, "variables": { "input": { "name": name } } }).to_string();
                let request = axum::http::Request::post("/graphql")
                    .header("content-type", "application/json")
                    .header("x-api-key", key)
                    .body(axum::body::Body::from(body))
                    .unwrap();
                app.send(request).await
            }
        };
        let projects_table = tables().get("projects").unwrap();

        let anonymous = app.graphql(None, PROJECT_CREATE, json!({ "input": { "name": "anonymous" } })).await;
        let read_only = with_key(read_key, "read only").await;
        let count_refused = count(&app, projects_table).await;
        let writer = with_key(write_key, "writer").await;

        assert_eq!(anonymous.code(), "UNAUTHENTICATED", "{}", anonymous.body);
        assert_eq!(read_only.code(), "FORBIDDEN", "{}", read_only.body);
        assert_eq!(count_refused, 0);
        assert!(succeeded(&writer), "{}", writer.body);
        assert_eq!(count(&app, projects_table).await, 1);
    }
}

on_both_backends! {
    /// `service_role` names owners; one that does not exist is `NOT_FOUND` on its field
    /// on both backends (the foreign key says so, not a lookup).
    async fn a_service_write_naming_a_missing_owner_is_not_found(t) {
        let app = TestApp::new(t).await;
        let create = "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { id } userErrors { field code } } }";
        let upsert = "mutation($i: [ProductCreateInput!]!) { productsUpsert(inputs: $i) { products { id } userErrors { field code } } }";
        let row = json!({ "shopId": Uuid::new_v4(), "shopifyId": "1", "handle": "h", "title": "T" });

        let created = app.query(create, json!({ "i": row })).await;
        let upserted = app.query(upsert, json!({ "i": [row] })).await;

        let expected = json!([{ "field": ["input", "shopId"], "code": "NOT_FOUND" }]);
        assert_eq!(created.data()["productCreate"]["userErrors"], expected, "{}", created.body);
        assert_eq!(
            upserted.data()["productsUpsert"]["userErrors"],
            json!([{ "field": ["inputs", "0", "shopId"], "code": "NOT_FOUND" }]),
            "{}",
            upserted.body
        );
    }
}

on_both_backends! {
    /// A table's domain rules apply to its generated writes: `profileUpdate` takes only an
    /// https avatar, a bio of at most 500 characters, an IANA zone and a BCP 47 locale.
    async fn profile_updates_follow_the_profile_rules(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "profiled@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let mine = app.graphql(Some(&token), "{ profiles { nodes { id } } }", json!({})).await;
        let id = mine.data()["profiles"]["nodes"][0]["id"].clone();
        let update = "mutation($id: ID!, $i: ProfileUpdateInput!) { profileUpdate(id: $id, input: $i) { profile { avatarUrl timezone locale } userErrors { field code } } }";

        let bad = app
            .graphql(
                Some(&token),
                update,
                json!({ "id": id, "i": { "avatarUrl": "http://x.example/a.png", "bio": "b".repeat(501), "timezone": "Mars/Olympus Mons", "locale": "klingon" } }),
            )
            .await;
        let good = app
            .graphql(
                Some(&token),
                update,
                json!({ "id": id, "i": { "avatarUrl": "https://cdn.example.com/a.png", "timezone": "Europe/Paris", "locale": "pt-BR" } }),
            )
            .await;

        assert_eq!(
            bad.data()["profileUpdate"]["userErrors"],
            json!([
                { "field": ["input", "avatarUrl"], "code": "INVALID" },
                { "field": ["input", "bio"], "code": "TOO_LONG" },
                { "field": ["input", "locale"], "code": "INVALID" },
                { "field": ["input", "timezone"], "code": "INVALID" },
            ]),
            "{}",
            bad.body
        );
        assert_eq!(
            good.data()["profileUpdate"]["profile"],
            json!({ "avatarUrl": "https://cdn.example.com/a.png", "timezone": "Europe/Paris", "locale": "pt-BR" })
        );
    }
}
