//! The tenant-isolation matrix, generated over every table the API serves.
//!
//! For each table of `api::tables::tables()`, the principal of one tenant (a user token for
//! user and distributor tables, a Shopify session token for shop tables) lists, filters,
//! fetches by global id, aggregates and groups, and follows every relation into the table,
//! and must see exactly its own rows (plus the shared rows the catalog allows) and nothing
//! of the other tenant. The principal of the other kind sees nothing at all. Mutations that
//! take a row's id are tried on the other tenant's rows and must change nothing.
//!
//! The world (`common::world`) must hold rows of both tenants in every table, and the
//! matrix counts the tables it checked: a table added without fixtures, an owner rule or a
//! root field fails here. The same matrix runs with the API's own scoping switched off on
//! PostgreSQL, where row-level security alone must hold (and also refuses writes to the
//! other tenant's rows), and under concurrent requests of four principals at once.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use api::graphql::names;
use api::tables::{Table, tables};
use entity::registry::RelationKind;
use migration::catalog::{TABLES, TableSpec, Tenant};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::world::{self, Kind, Rows, Side, World, token};
use crate::common::{TestDb, on_both_backends};

/// The claims the service sets for `side`'s principal of `kind` (PostgreSQL policies).
fn claims(world: &World, side: Side, kind: Kind) -> Value {
    let tenants = world.tenants(side);
    match kind {
        Kind::User => api::auth::Principal::User {
            id: tenants.user,
            scopes: Vec::new(),
            key: None,
        },
        Kind::Shop => api::auth::Principal::Shop { id: tenants.shop },
    }
    .claims()
}

fn spec_of(table: &Table) -> &'static TableSpec {
    table
        .spec
        .unwrap_or_else(|| panic!("{} has no owner rule in the catalog", table.name))
}

/// `side`'s owner id for rows of `spec`'s kind.
fn owner_id(world: &World, side: Side, spec: &TableSpec) -> Uuid {
    let tenants = world.tenants(side);
    match spec.tenant {
        Tenant::User => tenants.user,
        Tenant::Shop => tenants.shop,
        Tenant::Distributor => tenants.distributor,
    }
}

/// What `side` may see of a table: its own rows, and the unowned ones where they are shared.
fn allowed(rows: &Rows, spec: &TableSpec, side: Side) -> BTreeSet<Uuid> {
    let mut set: BTreeSet<Uuid> = rows.of(side).iter().copied().collect();
    if spec.shared_when_null {
        set.extend(rows.unowned.iter().copied());
    }
    set
}

/// What `side` must never see of a table: the other tenant's rows, and the unowned ones
/// unless they are shared.
fn forbidden(rows: &Rows, spec: &TableSpec, side: Side) -> BTreeSet<Uuid> {
    let mut set: BTreeSet<Uuid> = rows.of(side.other()).iter().copied().collect();
    if !spec.shared_when_null {
        set.extend(rows.unowned.iter().copied());
    }
    set
}

fn gid(table: &Table, id: Uuid) -> String {
    format!("gid://stratix/{}/{id}", names::type_name(table.name))
}

fn gids(table: &Table, ids: &BTreeSet<Uuid>) -> Vec<String> {
    ids.iter().map(|id| gid(table, *id)).collect()
}

/// The row ids of a connection's `nodes { rowId }`.
fn row_ids(connection: &Value) -> BTreeSet<Uuid> {
    connection["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n["rowId"].as_str())
                .map(|id| Uuid::parse_str(id).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// The GraphQL field of each relation of `table`, named as the schema names them: the
/// relation's camelCase name, with `Ref` / `List` added when a column already has it.
fn relation_fields(table: &Table) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::from(["id".to_owned()]);
    for column in table.columns.iter().filter(|c| !c.secret) {
        taken.insert(names::column_field(column.name));
    }
    table
        .relations
        .iter()
        .map(|relation| {
            let mut name = names::camel(&relation.name);
            if taken.contains(&name) {
                name.push_str(if relation.kind == RelationKind::BelongsTo {
                    "Ref"
                } else {
                    "List"
                });
            }
            taken.insert(name.clone());
            name
        })
        .collect()
}

/// Failures, collected so that one run reports every leak at once.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// The reply's `data`, or `None` after recording its errors.
    fn data(&mut self, reply: &Reply, context: &str) -> Option<Value> {
        if reply.body.get("errors").is_some() || reply.body.get("data").is_none() {
            self.0.push(format!("{context}: errors: {}", reply.body));
            return None;
        }
        Some(reply.body["data"].clone())
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

/// Runs the read matrix as `side`'s principals over every table; returns how many tables
/// were checked.
async fn read_matrix(app: &TestApp, world: &World, side: Side, failures: &mut Failures) -> usize {
    let mut checked = 0;
    for table in &tables().all {
        let rows = world.rows(table.name);
        failures.check(!rows.a.is_empty() && !rows.b.is_empty(), || {
            format!(
                "{}: the world has no rows of tenant A ({}) or B ({}): add them in common/world.rs",
                table.name,
                rows.a.len(),
                rows.b.len()
            )
        });
        if rows.a.is_empty() || rows.b.is_empty() || table.spec.is_none() {
            failures.check(table.spec.is_some(), || {
                format!("{}: no owner rule in migration::catalog", table.name)
            });
            continue;
        }
        let before = failures.0.len();
        check_lists(app, world, table, side, failures).await;
        check_nodes(app, world, table, side, failures).await;
        check_other_kind(app, world, table, side, failures).await;
        check_relations_into(app, world, table, side, failures).await;
        if failures.0.len() == before {
            checked += 1;
        }
    }
    checked
}

/// Lists, filters, aggregates and groups as the table's own principal.
async fn check_lists(
    app: &TestApp,
    world: &World,
    table: &Table,
    side: Side,
    failures: &mut Failures,
) {
    let spec = spec_of(table);
    let rows = world.rows(table.name);
    let kind = Kind::reading(spec.tenant);
    let (mine, theirs) = (allowed(&rows, spec, side), forbidden(&rows, spec, side));
    let root = names::camel(table.name);
    let owner_field = names::column_field(spec.owner_column);
    let owner_enum = names::screaming(spec.owner_column);
    let query = format!(
        "query($mine: [UUID!], $theirs: [UUID!], $theirOwner: UUID) {{
          all: {root}(first: 250) {{ totalCount nodes {{ rowId }} aggregate {{ count }}
            groupBy(by: [{{field: {owner_enum}}}]) {{ count key {{ {owner_field} }} }} }}
          mine: {root}(first: 250, filter: {{rowId: {{in: $mine}}}}) {{ totalCount nodes {{ rowId }} aggregate {{ count }} }}
          theirs: {root}(first: 250, filter: {{rowId: {{in: $theirs}}}}) {{ totalCount nodes {{ rowId }} aggregate {{ count }} }}
          theirOwner: {root}(first: 250, filter: {{{owner_field}: {{eq: $theirOwner}}}}) {{ totalCount nodes {{ rowId }} aggregate {{ count }} }}
          notMine: {root}(first: 250, filter: {{not: {{rowId: {{in: $mine}}}}}}) {{ totalCount nodes {{ rowId }} }}
          either: {root}(first: 250, filter: {{or: [{{rowId: {{in: $theirs}}}}, {{rowId: {{in: $mine}}}}]}}) {{ totalCount nodes {{ rowId }} }}
          last: {root}(last: 250) {{ nodes {{ rowId }} }}
        }}"
    );
    let variables = json!({
        "mine": mine,
        "theirs": theirs,
        "theirOwner": owner_id(world, side.other(), spec),
    });
    let context = format!("{} as {side:?}'s {kind:?}", table.name);
    let reply = app
        .graphql(Some(&token(world, side, kind)), &query, variables)
        .await;
    let Some(data) = failures.data(&reply, &context) else {
        return;
    };
    let expect_ids = |failures: &mut Failures, alias: &str, expected: &BTreeSet<Uuid>| {
        let seen = row_ids(&data[alias]);
        let leaked: Vec<_> = seen.intersection(&theirs).collect();
        failures.check(leaked.is_empty(), || {
            format!("{context}: `{alias}` LEAKED the other tenant's rows {leaked:?}")
        });
        failures.check(&seen == expected, || {
            format!("{context}: `{alias}` listed {seen:?}, expected {expected:?}")
        });
        if let Some(total) = data[alias].get("totalCount") {
            failures.check(total == expected.len(), || {
                format!(
                    "{context}: `{alias}` totalCount {total}, expected {}",
                    expected.len()
                )
            });
        }
        if let Some(count) = data[alias].pointer("/aggregate/count") {
            failures.check(count == expected.len(), || {
                format!(
                    "{context}: `{alias}` aggregate.count {count}, expected {}",
                    expected.len()
                )
            });
        }
    };
    let none = BTreeSet::new();
    expect_ids(failures, "all", &mine);
    expect_ids(failures, "mine", &mine);
    expect_ids(failures, "theirs", &none);
    expect_ids(failures, "theirOwner", &none);
    expect_ids(failures, "notMine", &none);
    expect_ids(failures, "either", &mine);
    expect_ids(failures, "last", &mine);
    // Grouped by owner: only this tenant's key (and null for shared rows), all rows counted.
    let me = owner_id(world, side, spec).to_string();
    let groups = data["all"]["groupBy"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut counted = 0;
    for group in &groups {
        let key = &group["key"][&owner_field];
        let ok = key.as_str() == Some(me.as_str()) || (spec.shared_when_null && key.is_null());
        failures.check(ok, || {
            format!("{context}: groupBy by {owner_field} has a group of another owner: {group}")
        });
        counted += group["count"].as_u64().unwrap_or(0);
    }
    failures.check(counted == mine.len() as u64, || {
        format!(
            "{context}: groupBy counted {counted} rows, expected {}",
            mine.len()
        )
    });
}

/// `node(id:)` and `nodes(ids:)` for every row of both tenants.
async fn check_nodes(
    app: &TestApp,
    world: &World,
    table: &Table,
    side: Side,
    failures: &mut Failures,
) {
    let spec = spec_of(table);
    let rows = world.rows(table.name);
    let kind = Kind::reading(spec.tenant);
    let (mine, theirs) = (allowed(&rows, spec, side), forbidden(&rows, spec, side));
    let context = format!("{} as {side:?}'s {kind:?}", table.name);
    let all: Vec<(Uuid, bool)> = mine
        .iter()
        .map(|id| (*id, true))
        .chain(theirs.iter().map(|id| (*id, false)))
        .collect();
    let params: Vec<String> = (0..all.len()).map(|i| format!("$g{i}: ID!")).collect();
    let fields: Vec<String> = (0..all.len())
        .map(|i| format!("n{i}: node(id: $g{i}) {{ id }}"))
        .collect();
    let query = format!(
        "query({}, $mine: [ID!]!, $theirs: [ID!]!) {{ {} mineNodes: nodes(ids: $mine) {{ id }} theirsNodes: nodes(ids: $theirs) {{ id }} }}",
        params.join(", "),
        fields.join(" ")
    );
    let mut variables = json!({ "mine": gids(table, &mine), "theirs": gids(table, &theirs) });
    for (i, (id, _)) in all.iter().enumerate() {
        variables[format!("g{i}")] = json!(gid(table, *id));
    }
    let reply = app
        .graphql(Some(&token(world, side, kind)), &query, variables)
        .await;
    let Some(data) = failures.data(&reply, &context) else {
        return;
    };
    for (i, (id, visible)) in all.iter().enumerate() {
        let node = &data[format!("n{i}")];
        if *visible {
            failures.check(node["id"] == json!(gid(table, *id)), || {
                format!(
                    "{context}: node({}) of its own row returned {node}",
                    gid(table, *id)
                )
            });
        } else {
            failures.check(node.is_null(), || {
                format!(
                    "{context}: node({}) of the other tenant's row LEAKED {node}",
                    gid(table, *id)
                )
            });
        }
    }
    let listed = |alias: &str| -> BTreeSet<String> {
        data[alias]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let expected: BTreeSet<String> = gids(table, &mine).into_iter().collect();
    let seen = listed("mineNodes");
    failures.check(seen == expected, || {
        format!("{context}: nodes(own ids) returned {seen:?}")
    });
    let seen = listed("theirsNodes");
    failures.check(seen.is_empty(), || {
        format!("{context}: nodes(other tenant's ids) LEAKED {seen:?}")
    });
}

/// The principal of the other kind (a shop for user tables, a user for shop tables) sees
/// no row of the table, not even shared ones.
async fn check_other_kind(
    app: &TestApp,
    world: &World,
    table: &Table,
    side: Side,
    failures: &mut Failures,
) {
    let spec = spec_of(table);
    let rows = world.rows(table.name);
    let kind = Kind::reading(spec.tenant).other();
    let context = format!("{} as {side:?}'s {kind:?}", table.name);
    let root = names::camel(table.name);
    let mine = allowed(&rows, spec, side);
    let query = format!(
        "query($ids: [ID!]!) {{ all: {root}(first: 250) {{ totalCount nodes {{ rowId }} aggregate {{ count }} }} nodes(ids: $ids) {{ id }} }}"
    );
    let reply = app
        .graphql(
            Some(&token(world, side, kind)),
            &query,
            json!({ "ids": gids(table, &mine) }),
        )
        .await;
    let Some(data) = failures.data(&reply, &context) else {
        return;
    };
    failures.check(
        data["all"]["totalCount"] == 0
            && data["all"]["aggregate"]["count"] == 0
            && row_ids(&data["all"]).is_empty()
            && data["nodes"]
                .as_array()
                .is_some_and(|nodes| nodes.iter().all(Value::is_null)),
        || format!("{context}: a principal of another kind LEAKED rows: {data}"),
    );
}

/// Every relation into the table, followed from every parent the principal can list.
async fn check_relations_into(
    app: &TestApp,
    world: &World,
    table: &Table,
    side: Side,
    failures: &mut Failures,
) {
    let spec = spec_of(table);
    let rows = world.rows(table.name);
    let kind = Kind::reading(spec.tenant);
    let (mine, theirs) = (allowed(&rows, spec, side), forbidden(&rows, spec, side));
    let owned: BTreeSet<Uuid> = rows.of(side).iter().copied().collect();
    let owner_root = match spec.tenant {
        Tenant::User => "users",
        Tenant::Shop => "shops",
        Tenant::Distributor => "distributors",
    };
    let mut followed_owner_root = false;
    let mut reached = BTreeSet::new();
    for parent in &tables().all {
        let fields = relation_fields(parent);
        for (relation, field) in parent.relations.iter().zip(&fields) {
            if relation.other != table.index {
                continue;
            }
            let context = format!(
                "{} as {side:?}'s {kind:?}, following {}.{field}",
                table.name,
                names::type_name(parent.name)
            );
            let inner = if relation.kind == RelationKind::HasMany {
                format!("{field}(first: 100) {{ totalCount nodes {{ rowId }} }}")
            } else {
                format!("{field} {{ rowId }}")
            };
            let query = format!(
                "{{ parents: {}(first: 50) {{ nodes {{ rowId related: {inner} }} }} }}",
                names::camel(parent.name)
            );
            let reply = app
                .graphql(Some(&token(world, side, kind)), &query, json!({}))
                .await;
            let Some(data) = failures.data(&reply, &context) else {
                continue;
            };
            let mut seen = BTreeSet::new();
            for node in data["parents"]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let related = &node["related"];
                if relation.kind == RelationKind::HasMany {
                    let ids = row_ids(related);
                    failures.check(related["totalCount"] == ids.len(), || {
                        format!(
                            "{context}: totalCount {} for {} rows listed",
                            related["totalCount"],
                            ids.len()
                        )
                    });
                    seen.extend(ids);
                } else if let Some(id) = related["rowId"].as_str() {
                    seen.insert(Uuid::parse_str(id).unwrap());
                }
            }
            let leaked: Vec<_> = seen.intersection(&theirs).collect();
            failures.check(leaked.is_empty(), || {
                format!("{context}: LEAKED the other tenant's rows {leaked:?}")
            });
            let strange: Vec<_> = seen.difference(&mine).collect();
            failures.check(strange.is_empty(), || {
                format!("{context}: reached rows outside the tenant's own: {strange:?}")
            });
            reached.extend(seen.iter().copied());
            let is_owner_relation = parent.name == owner_root
                && relation.kind != RelationKind::BelongsTo
                && table.columns[relation.foreign_key].name == spec.owner_column;
            if is_owner_relation {
                followed_owner_root = true;
                failures.check(seen == owned, || {
                    format!("{context}: the owner's relation reached {seen:?}, expected {owned:?}")
                });
            }
        }
    }
    let is_root = spec.owner_column == "id";
    failures.check(is_root || followed_owner_root, || {
        format!(
            "{}: no relation from {owner_root} into it was found to follow",
            table.name
        )
    });
    failures.check(!reached.is_empty(), || {
        format!(
            "{} as {side:?}'s {kind:?}: no relation into the table reached any row",
            table.name
        )
    });
}

/// Row mutations only `service_role` calls (the payment provider's side): a tenant is
/// refused them even on its own rows.
const SERVICE_ONLY: [&str; 4] = [
    "paymentApprove",
    "paymentComplete",
    "paymentFail",
    "paymentRefund",
];

/// A mutation the matrix can aim at one row: `<type><Verb>(input: {id: ID!, ...optional})`.
struct RowMutation {
    name: String,
    input_type: String,
    table: &'static Table,
}

/// The schema's mutations that take a row's global id as `input.id` and nothing else
/// required, matched to their table by name (`apiKeyRevoke` -> `api_keys`).
async fn row_mutations(app: &TestApp, failures: &mut Failures) -> Vec<RowMutation> {
    let service = TestApp::service();
    let reply = app
        .graphql(
            Some(&service),
            "{ __schema { mutationType { fields { name args { name type { kind name ofType { kind name } } } } } } }",
            json!({}),
        )
        .await;
    let Some(data) = failures.data(&reply, "introspecting mutations") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let fields = data
        .pointer("/__schema/mutationType/fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for field in fields {
        let name = field["name"].as_str().unwrap_or_default().to_owned();
        let args = field["args"].as_array().cloned().unwrap_or_default();
        let [arg] = args.as_slice() else { continue };
        if arg["name"] != "input" || arg["type"]["kind"] != "NON_NULL" {
            continue;
        }
        let input_type = arg["type"]["ofType"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let reply = app
            .graphql(
                Some(&service),
                "query($t: String!) { __type(name: $t) { inputFields { name type { kind name ofType { kind name } } } } }",
                json!({ "t": input_type }),
            )
            .await;
        let Some(data) = failures.data(&reply, &format!("introspecting {input_type}")) else {
            continue;
        };
        let inputs = data["__type"]["inputFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let takes_id = inputs.iter().any(|f| {
            f["name"] == "id"
                && f["type"]["kind"] == "NON_NULL"
                && f["type"]["ofType"]["name"] == "ID"
        });
        let others_optional = inputs
            .iter()
            .all(|f| f["name"] == "id" || f["type"]["kind"] != "NON_NULL");
        if !takes_id || !others_optional {
            continue;
        }
        let table = tables()
            .all
            .iter()
            .filter(|t| {
                let prefix = names::camel(&entity::registry::singular(t.name));
                let type_prefix = {
                    let ty = names::type_name(t.name);
                    let mut chars = ty.chars();
                    chars
                        .next()
                        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                };
                [prefix, type_prefix].iter().any(|p| {
                    name.strip_prefix(p.as_str())
                        .and_then(|rest| rest.chars().next())
                        .is_some_and(|c| c.is_ascii_uppercase())
                })
            })
            .max_by_key(|t| t.name.len());
        if let Some(table) = table {
            found.push(RowMutation {
                name,
                input_type,
                table,
            });
        }
    }
    found
}

/// Every row mutation, aimed at each of the other tenant's rows as `side`'s principal: it
/// must fail and change nothing. Then once at the tenant's own row, which must work (so a
/// refusal is not just a malformed call). Returns how many mutations were probed.
async fn mutation_matrix(
    app: &TestApp,
    world: &World,
    side: Side,
    failures: &mut Failures,
) -> usize {
    let mutations = row_mutations(app, failures).await;
    for mutation in &mutations {
        let table = mutation.table;
        let spec = spec_of(table);
        let rows = world.rows(table.name);
        let kind = Kind::reading(spec.tenant);
        let theirs = forbidden(&rows, spec, side);
        let context = format!("{} on {} as {side:?}'s {kind:?}", mutation.name, table.name);
        let query = format!(
            "mutation($input: {}!) {{ m: {}(input: $input) {{ userErrors {{ field message code }} }} }}",
            mutation.input_type, mutation.name
        );
        let before = app.snapshot(table, &theirs).await;
        for id in &theirs {
            let reply = app
                .graphql(
                    Some(&token(world, side, kind)),
                    &query,
                    json!({ "input": { "id": gid(table, *id) } }),
                )
                .await;
            let refused = reply.body.get("errors").is_some()
                || reply.body["data"]["m"]["userErrors"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty());
            failures.check(refused, || {
                format!(
                    "{context}: the other tenant's row {id} was ACCEPTED: {}",
                    reply.body
                )
            });
        }
        let after = app.snapshot(table, &theirs).await;
        failures.check(before == after, || {
            format!("{context}: the other tenant's rows CHANGED: {before} -> {after}")
        });
    }
    for mutation in &mutations {
        let table = mutation.table;
        let spec = spec_of(table);
        let kind = Kind::reading(spec.tenant);
        let Some(own) = world.rows(table.name).of(side).first().copied() else {
            continue;
        };
        let service_only = SERVICE_ONLY.contains(&mutation.name.as_str());
        let query = format!(
            "mutation($input: {}!) {{ m: {}(input: $input) {{ userErrors {{ field message code }} }} }}",
            mutation.input_type, mutation.name
        );
        let reply = app
            .graphql(
                Some(&token(world, side, kind)),
                &query,
                json!({ "input": { "id": gid(table, own) } }),
            )
            .await;
        // A state machine may refuse the move the row's state does not allow: the row
        // was found and the caller allowed, which is what this proves.
        let reached =
            |errors: &Value| *errors == json!([]) || errors[0]["code"] == "INVALID_TRANSITION";
        let ok = if service_only {
            reply.body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        } else {
            reply.body.get("errors").is_none() && reached(&reply.body["data"]["m"]["userErrors"])
        };
        failures.check(ok, || {
            if service_only {
                format!(
                    "{} on {}: a tenant was not refused a service_role mutation: {}",
                    mutation.name, table.name, reply.body
                )
            } else {
                format!(
                    "{} on {}: the tenant's own row was refused (so the refusals above prove nothing): {}",
                    mutation.name, table.name, reply.body
                )
            }
        });
    }
    mutations.len()
}

/// Runs the whole matrix as `side` and fails with every leak found.
async fn matrix(app: &TestApp, world: &World, side: Side) {
    let mut failures = Failures::default();
    let checked = read_matrix(app, world, side, &mut failures).await;
    let probed = mutation_matrix(app, world, side, &mut failures).await;
    eprintln!(
        "isolation matrix as {side:?}: {checked} of {} tables isolated, {probed} row mutations probed",
        TABLES.len()
    );
    failures.check(tables().all.len() == TABLES.len(), || {
        format!(
            "the API serves {} tables, the catalog lists {}",
            tables().all.len(),
            TABLES.len()
        )
    });
    failures.check(checked == TABLES.len(), || {
        format!("{checked} of {} tables passed every check", TABLES.len())
    });
    failures.assert_none(&format!("isolation as tenant {side:?}"));
}

/// On PostgreSQL, as `side`'s principal with row-level security the only wall: the other
/// tenant's rows cannot be read, updated or deleted, and the tenant's own rows cannot be
/// handed to the other tenant.
async fn rls_write_matrix(
    app: &TestApp,
    world: &World,
    side: Side,
    failures: &mut Failures,
) -> usize {
    let db = &app.t.db;
    let list = |ids: &BTreeSet<Uuid>| {
        ids.iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut checked = 0;
    for table in &tables().all {
        let spec = spec_of(table);
        let rows = world.rows(table.name);
        let kind = Kind::reading(spec.tenant);
        let claims = claims(world, side, kind);
        let context = format!("{} as {side:?}'s {kind:?} (RLS)", table.name);
        let (own, theirs): (BTreeSet<Uuid>, BTreeSet<Uuid>) = (
            rows.of(side).iter().copied().collect(),
            forbidden(&rows, spec, side),
        );
        let name = table.name;
        let before = failures.0.len();
        let txn = api::db::RequestDb::begin(db, &claims, api::db::Access::Read)
            .await
            .unwrap();
        let count = |sql: String| {
            let txn = txn.clone();
            async move {
                txn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
                    .await
                    .map(|row| row.and_then(|r| r.try_get_by_index::<i64>(0).ok()))
            }
        };
        let n = count(format!(
            "SELECT count(*) FROM {name} WHERE id IN ({})",
            list(&own)
        ))
        .await;
        failures.check(matches!(n, Ok(Some(c)) if c as usize == own.len()), || {
            format!("{context}: reading its own {} rows gave {n:?}", own.len())
        });
        let n = count(format!(
            "SELECT count(*) FROM {name} WHERE id IN ({})",
            list(&theirs)
        ))
        .await;
        failures.check(matches!(n, Ok(Some(0))), || {
            format!("{context}: reading the other tenant's rows gave {n:?}")
        });
        let owner = spec.owner_column;
        let mine = owner_id(world, side, spec);
        for sql in [
            format!("UPDATE {name} SET id = id WHERE id IN ({})", list(&theirs)),
            format!(
                "UPDATE {name} SET {owner} = '{mine}' WHERE id IN ({})",
                list(&theirs)
            ),
            format!("DELETE FROM {name} WHERE id IN ({})", list(&theirs)),
        ] {
            let result = txn.execute_unprepared(&sql).await;
            failures.check(matches!(&result, Ok(r) if r.rows_affected() == 0), || {
                format!("{context}: `{sql}` CHANGED the other tenant's rows: {result:?}")
            });
        }
        txn.finish(api::db::End::Discard).await.unwrap();
        if owner != "id" {
            let other = owner_id(world, side.other(), spec);
            let sql = format!(
                "UPDATE {name} SET {owner} = '{other}' WHERE id IN ({})",
                list(&own)
            );
            let txn = api::db::RequestDb::begin(db, &claims, api::db::Access::Read)
                .await
                .unwrap();
            let result = txn.execute_unprepared(&sql).await;
            txn.finish(api::db::End::Discard).await.unwrap();
            failures.check(result.is_err(), || {
                format!("{context}: `{sql}` handed its rows to the other tenant: {result:?}")
            });
        }
        if failures.0.len() == before {
            checked += 1;
        }
    }
    checked
}

on_both_backends! {
    async fn tenant_a_sees_and_changes_only_its_own_rows_in_every_table(t) {
        let app = TestApp::with_api_scoping(t, true).await;
        let world = world::build(&app.t.db).await;
        matrix(&app, &world, Side::A).await;
    }

    async fn tenant_b_sees_and_changes_only_its_own_rows_in_every_table(t) {
        let app = TestApp::with_api_scoping(t, true).await;
        let world = world::build(&app.t.db).await;
        matrix(&app, &world, Side::B).await;
    }
}

/// With the API's own scoping switched off, PostgreSQL's row-level security alone keeps
/// every table isolated, for reads through the API and for writes in SQL.
mod row_level_security_alone_isolates_every_table {
    use super::*;

    #[tokio::test]
    async fn postgres() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let app = TestApp::with_api_scoping(t, false).await;
        let world = world::build(&app.t.db).await;
        // The raw statements first: the mutation matrix's own-row probes may delete a
        // tenant's row (`webhookEndpointDelete`).
        let mut failures = Failures::default();
        for side in [Side::A, Side::B] {
            let checked = rls_write_matrix(&app, &world, side, &mut failures).await;
            failures.check(checked == TABLES.len(), || {
                format!(
                    "RLS writes as {side:?}: {checked} of {} tables held",
                    TABLES.len()
                )
            });
        }
        failures.assert_none("row-level security on writes");
        matrix(&app, &world, Side::A).await;
        matrix(&app, &world, Side::B).await;
    }
}

/// A small deterministic shuffle (xorshift), seeded per run and printed on failure.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// 200 requests of users A and B and shops A and B, each listing a table (its own kind's
/// or, one time in four, the other kind's), all in flight at once on one app: each sees
/// exactly its own rows, so claims never leak between pooled connections or transactions.
async fn concurrent(app: TestApp) {
    let app = Arc::new(app);
    let world = Arc::new(world::build(&app.t.db).await);
    let seed = Uuid::new_v4().as_u64_pair().0;
    let mut plan = Vec::new();
    for i in 0..200usize {
        let table = &tables().all[i % tables().all.len()];
        let side = if i % 2 == 0 { Side::A } else { Side::B };
        let own_kind = Kind::reading(spec_of(table).tenant);
        let kind = if i % 4 == 3 {
            own_kind.other()
        } else {
            own_kind
        };
        plan.push((table, side, kind));
    }
    shuffle(&mut plan, seed);
    let requests = plan.into_iter().map(|(table, side, kind)| {
        let (app, world) = (app.clone(), world.clone());
        tokio::spawn(async move {
            let spec = spec_of(table);
            let rows = world.rows(table.name);
            let expected = if kind == Kind::reading(spec.tenant) {
                allowed(&rows, spec, side)
            } else {
                BTreeSet::new()
            };
            let query = format!(
                "{{ rows: {}(first: 250) {{ totalCount nodes {{ rowId }} }} }}",
                names::camel(table.name)
            );
            let reply = app.graphql(Some(&token(&world, side, kind)), &query, json!({})).await;
            let seen = row_ids(&reply.body["data"]["rows"]);
            if reply.body.get("errors").is_some() {
                Some(format!("{} as {side:?}'s {kind:?}: errors: {}", table.name, reply.body))
            } else if seen != expected || reply.body["data"]["rows"]["totalCount"] != expected.len() {
                Some(format!(
                    "{} as {side:?}'s {kind:?}: saw {seen:?} (totalCount {}), expected {expected:?}",
                    table.name, reply.body["data"]["rows"]["totalCount"]
                ))
            } else {
                None
            }
        })
    });
    let results = futures_util::future::join_all(requests).await;
    let failures = Failures(results.into_iter().filter_map(|r| r.unwrap()).collect());
    failures.assert_none(&format!("concurrent tenants (shuffle seed {seed})"));
}

mod concurrent_tenants_never_see_each_others_rows {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        concurrent(TestApp::with_api_scoping(TestDb::sqlite().await, true).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        concurrent(TestApp::with_api_scoping(t, true).await).await;
    }

    /// Row-level security alone, so a claim left on a pooled connection would show.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_row_level_security_alone() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        concurrent(TestApp::with_api_scoping(t, false).await).await;
    }
}

/// The claims reach PostgreSQL exactly as the principal's, whatever characters they hold
/// (they go in as a literal, next to `BEGIN`), and the request runs as the app role.
#[tokio::test]
async fn claims_reach_postgres_verbatim() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;
    let claims = json!({"role": "authenticated", "sub": "o'neil\\'); DROP TABLE shops; --\n\u{1}"});
    let db = api::db::RequestDb::begin(&t.db, &claims, api::db::Access::Read)
        .await
        .unwrap();
    let sql = "SELECT current_setting('request.jwt.claims') AS claims, current_user::text AS who";
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    let seen: String = row.try_get("", "claims").unwrap();
    assert_eq!(serde_json::from_str::<Value>(&seen).unwrap(), claims);
    assert_eq!(row.try_get::<String>("", "who").unwrap(), api::db::APP_ROLE);
    db.finish(api::db::End::Discard).await.unwrap();
}
