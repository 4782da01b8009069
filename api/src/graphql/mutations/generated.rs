//! The generated mutations: for every table whose declaration allows them,
//! `<object>Create(input:)`, `<object>Update(id:, input:, expectedUpdatedAt:)`,
//! `<object>Delete(id:)` and `<objects>Upsert(inputs:)` (on the table's natural key, 1 to
//! 250 rows). Each returns the row(s) as the caller now reads them, and `userErrors` with
//! the path of each bad field. The writing itself is [`store::write`]'s.

use std::sync::Arc;

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, ResolverContext, SchemaBuilder,
    TypeRef, ValueAccessor,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Out, Payload, Right, UserError, payload_type, perform};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::graphql::docs;
use crate::graphql::ids;
use crate::graphql::model::{GqlTable, model};
use crate::graphql::names::pascal;
use crate::graphql::resolve::{request, run};
use crate::graphql::scalars::{from_graphql, type_of};
use crate::request::RequestContext;
use crate::store::write::{Assignments, Field as At, MAX_UPSERT, Problem, WriteError, Writer};

/// The generated mutations of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Create,
    Update,
    Delete,
    Upsert,
}

/// `product` for `Product`: the payload field and the mutations' prefix.
fn object_name(gql: &GqlTable) -> String {
    let mut chars = gql.type_name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn mutation_name(gql: &GqlTable, verb: Verb) -> String {
    match verb {
        Verb::Create => format!("{}Create", object_name(gql)),
        Verb::Update => format!("{}Update", object_name(gql)),
        Verb::Delete => format!("{}Delete", object_name(gql)),
        Verb::Upsert => format!("{}Upsert", gql.root_field),
    }
}

fn payload_name(gql: &GqlTable, verb: Verb) -> String {
    match verb {
        Verb::Upsert => format!("{}UpsertPayload", pascal(&gql.root_field)),
        _ => format!("{}{verb:?}Payload", gql.type_name),
    }
}

fn has_version(gql: &GqlTable) -> bool {
    gql.table().column_index("updated_at").is_some()
}

/// An input object over `columns` of `gql`'s table, every field optional: what is left
/// out keeps its default (create) or its value (update).
fn input_object(name: String, gql: &GqlTable, columns: &[usize], doc: String) -> InputObject {
    let table = gql.table();
    let owner = table.spec.map(|spec| spec.owner_column);
    columns
        .iter()
        .fold(InputObject::new(name).description(doc), |object, &i| {
            let column = &table.columns[i];
            let mut field =
                InputValue::new(&gql.column_fields[i], TypeRef::named(type_of(column.kind)));
            let doc = if Some(column.name) == owner {
                Some(
                    "The owner. Left out, it follows from the caller or from the parent row; \
                     only `service_role` may name another owner than its own."
                        .to_owned(),
                )
            } else {
                docs::field(table.name, column.name).map(str::to_owned)
            };
            if let Some(doc) = doc {
                field = field.description(doc);
            }
            object.field(field)
        })
}

/// Registers the generated mutations' types; returns their root fields.
pub(super) fn register(mut builder: SchemaBuilder) -> (SchemaBuilder, Vec<Field>) {
    let mut fields = Vec::new();
    for gql in model() {
        let Some(writes) = gql.table().spec.map(|spec| spec.writes) else {
            continue;
        };
        let table = gql.table();
        let object = TypeRef::named(&gql.type_name);
        let name = &gql.type_name;
        if writes.create || !writes.upsert_key.is_empty() {
            builder = builder.register(input_object(
                format!("{name}CreateInput"),
                gql,
                &table.create_columns(),
                format!("A new {name}."),
            ));
        }
        if writes.update {
            builder = builder.register(input_object(
                format!("{name}UpdateInput"),
                gql,
                &table.update_columns(),
                format!("The fields of a {name} to change; those left out keep their value."),
            ));
        }
        let verbs = [
            (Verb::Create, writes.create),
            (Verb::Update, writes.update),
            (Verb::Delete, writes.delete),
            (Verb::Upsert, !writes.upsert_key.is_empty()),
        ];
        for (verb, _) in verbs.into_iter().filter(|(_, on)| *on) {
            let returned = match verb {
                Verb::Create | Verb::Update => vec![(
                    object_name(gql),
                    object.clone(),
                    format!("The {name}, as the caller now reads it."),
                )],
                Verb::Delete => vec![(
                    "deletedId".to_owned(),
                    TypeRef::named(TypeRef::ID),
                    format!("The global id of the deleted {name}."),
                )],
                Verb::Upsert => vec![(
                    gql.root_field.clone(),
                    TypeRef::named_nn_list(&gql.type_name),
                    "The rows, in the order given, as the caller now reads them; null when \
                     nothing was written."
                        .to_owned(),
                )],
            };
            builder = builder.register(payload_type(&payload_name(gql, verb), &returned));
            fields.push(field(gql, verb));
        }
    }
    (builder, fields)
}

fn field(gql: &'static GqlTable, verb: Verb) -> Field {
    let name = &gql.type_name;
    let key = || {
        gql.table()
            .spec
            .map(|spec| spec.writes.upsert_key.join(", "))
            .unwrap_or_default()
    };
    let doc = match verb {
        Verb::Create => format!("Creates a {name}."),
        Verb::Update => format!(
            "Changes a {name}. With `expectedUpdatedAt`, only if it has not changed since (else `STALE`)."
        ),
        Verb::Delete => format!("Deletes a {name}."),
        Verb::Upsert => format!(
            "Creates or updates 1 to {MAX_UPSERT} {name} rows on their key ({}), all or nothing.",
            key()
        ),
    };
    let mut field = Field::new(
        mutation_name(gql, verb),
        TypeRef::named_nn(payload_name(gql, verb)),
        move |ctx| {
            FieldFuture::new(run(async move {
                let req = request(ctx.ctx)?;
                let payload = perform(req, write(&ctx, req, gql, verb)).await?;
                Ok(Some(FieldValue::owned_any(payload)))
            }))
        },
    )
    .description(doc);
    if matches!(verb, Verb::Update | Verb::Delete) {
        field = field.argument(
            InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                .description(format!("The {name}'s global id.")),
        );
    }
    field = match verb {
        Verb::Create => field.argument(InputValue::new(
            "input",
            TypeRef::named_nn(format!("{name}CreateInput")),
        )),
        Verb::Update => field.argument(InputValue::new(
            "input",
            TypeRef::named_nn(format!("{name}UpdateInput")),
        )),
        Verb::Upsert => field.argument(
            InputValue::new(
                "inputs",
                TypeRef::named_nn_list_nn(format!("{name}CreateInput")),
            )
            .description(format!("1 to {MAX_UPSERT} rows.")),
        ),
        Verb::Delete => field,
    };
    if verb == Verb::Update && has_version(gql) {
        field = field.argument(
            InputValue::new("expectedUpdatedAt", TypeRef::named("DateTime")).description(
                "The `updatedAt` the caller last read: if the row changed since, nothing is written.",
            ),
        );
    }
    field
}

/// Why a generated mutation wrote nothing: input problems (`userErrors`) or an error.
enum Refused {
    Input(Vec<UserError>),
    Error(ApiError),
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Self::Error(error)
    }
}

impl From<UserError> for Refused {
    fn from(error: UserError) -> Self {
        Self::Input(vec![error])
    }
}

async fn write(
    ctx: &ResolverContext<'_>,
    req: &RequestContext,
    gql: &'static GqlTable,
    verb: Verb,
) -> ApiResult<Payload> {
    Right::Write.check(&req.principal)?;
    let returned = match verb {
        Verb::Create | Verb::Update => object_name(gql),
        Verb::Delete => "deletedId".to_owned(),
        Verb::Upsert => gql.root_field.clone(),
    };
    match attempt(ctx, req, gql, verb).await {
        Ok(out) => Ok(Payload::default().with(returned, out)),
        Err(Refused::Input(errors)) => Ok(Payload::rejected(errors)),
        Err(Refused::Error(error)) => Err(error),
    }
}

/// Parses the arguments and writes.
async fn attempt(
    ctx: &ResolverContext<'_>,
    req: &RequestContext,
    gql: &'static GqlTable,
    verb: Verb,
) -> Result<Out, Refused> {
    let table = gql.table();
    let writer = Writer {
        db: &req.db,
        scope: &req.scope,
        outbox: &req.outbox,
        rule: crate::domains::rule(table.name),
    };
    let mark = req.outbox.len();
    let written = |result: Result<Out, WriteError>| {
        result.map_err(|error| match error {
            WriteError::Rejected(problems) => {
                Refused::Input(problems.iter().map(|p| user_error(gql, verb, p)).collect())
            }
            WriteError::Failed(error) => Refused::Error(error),
        })
    };
    let out = match verb {
        Verb::Create => {
            let values = parse(gql, ctx, "input")?;
            let row = writer.create(table, &values).await;
            written(row.map(|row| Out::Row(Arc::new(row))))
        }
        Verb::Update => {
            let id = id_argument(gql, ctx)?;
            let expected = expected_version(ctx)?;
            let values = parse(gql, ctx, "input")?;
            let row = writer.update(table, id, &values, expected).await;
            written(row.map(|row| Out::Row(Arc::new(row))))
        }
        Verb::Delete => {
            let id = id_argument(gql, ctx)?;
            let deleted = writer.delete(table, id).await;
            written(deleted.map(|id| Out::Value(GqlValue::from(ids::encode(&gql.type_name, id)))))
        }
        Verb::Upsert => {
            let list = ctx
                .args
                .try_get("inputs")
                .and_then(|v| v.list())
                .map_err(|_| ApiError::bad_input("inputs", "must be a list of input objects"))?;
            if list.is_empty() || list.len() > MAX_UPSERT {
                return Err(ApiError::bad_input(
                    "inputs",
                    format!("give 1 to {MAX_UPSERT} rows, not {}", list.len()),
                )
                .into());
            }
            let mut rows = Vec::with_capacity(list.len());
            let mut errors = Vec::new();
            for (i, item) in list.iter().enumerate() {
                match assignments(gql, item, "inputs", Some(i)) {
                    Ok(values) => rows.push(values),
                    Err(Refused::Input(mut more)) => errors.append(&mut more),
                    Err(error) => return Err(error),
                }
            }
            if !errors.is_empty() {
                return Err(Refused::Input(errors));
            }
            let upserted = writer.upsert(table, &rows).await;
            written(upserted.map(|rows| Out::Rows(rows.into_iter().map(Arc::new).collect())))
        }
    }?;
    crate::domains::after_writes(&req.work(), &req.outbox.since(mark))
        .await
        .map_err(Refused::Error)?;
    Ok(out)
}

/// The path of a problem, as `userErrors.field` gives it.
fn user_error(gql: &GqlTable, verb: Verb, problem: &Problem) -> UserError {
    let mut path = Vec::new();
    match problem.row {
        Some(row) => path.extend(["inputs".to_owned(), row.to_string()]),
        None if matches!(problem.field, At::Column(_)) => path.push("input".to_owned()),
        None => {}
    }
    match problem.field {
        At::Column(column) => path.push(gql.column_fields[column].clone()),
        At::Id => path.push("id".to_owned()),
        At::Version => path.push("expectedUpdatedAt".to_owned()),
        At::Whole if verb == Verb::Upsert && path.is_empty() => path.push("inputs".to_owned()),
        At::Whole => {}
    }
    UserError::new(
        (!path.is_empty()).then_some(path),
        problem.code,
        problem.message.clone(),
    )
}

/// Argument `name` as a row's values.
fn parse(gql: &GqlTable, ctx: &ResolverContext<'_>, name: &str) -> Result<Assignments, Refused> {
    let value = ctx
        .args
        .try_get(name)
        .map_err(|e| ApiError::bad_input(name, e.message))?;
    assignments(gql, value, name, None)
}

/// An input object's fields as column values (the schema's input types allow only
/// settable columns; the store checks again).
fn assignments(
    gql: &GqlTable,
    value: ValueAccessor<'_>,
    argument: &str,
    row: Option<usize>,
) -> Result<Assignments, Refused> {
    let mut path = vec![argument.to_owned()];
    path.extend(row.map(|r| r.to_string()));
    let object = value
        .object()
        .map_err(|_| ApiError::bad_input(path.join("."), "must be an input object"))?;
    let table = gql.table();
    let mut values = Assignments::new();
    let mut errors = Vec::new();
    for (name, value) in object.iter() {
        let Some(column) = gql.column(name.as_str()) else {
            return Err(
                ApiError::bad_input(path.join("."), format!("unknown field {name}")).into(),
            );
        };
        let mut at = path.clone();
        at.push(name.to_string());
        match from_graphql(&at.join("."), table.columns[column].kind, value.as_value()) {
            Ok(value) => values.push((column, value)),
            Err(error) => errors.push(UserError::new(
                Some(at),
                InputCode::Invalid,
                match error {
                    ApiError::BadUserInput { message, .. } => message,
                    other => other.to_string(),
                },
            )),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(Refused::Input(errors))
    }
}

/// The `id` argument: a global id of this table's type.
fn id_argument(gql: &GqlTable, ctx: &ResolverContext<'_>) -> Result<Uuid, Refused> {
    let gid = ctx
        .args
        .try_get("id")
        .and_then(|v| v.string().map(str::to_owned))
        .map_err(|e| ApiError::bad_input("id", e.message))?;
    ids::decode_as("id", &gid, &gql.type_name).map_err(|error| {
        let message = match error {
            ApiError::BadUserInput { message, .. } => message,
            other => other.to_string(),
        };
        UserError::new(Some(vec!["id".to_owned()]), InputCode::Invalid, message).into()
    })
}

/// The `expectedUpdatedAt` argument, if given.
fn expected_version(ctx: &ResolverContext<'_>) -> Result<Option<DateTime<Utc>>, Refused> {
    let Some(value) = ctx.args.get("expectedUpdatedAt").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    value
        .string()
        .ok()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| Some(at.with_timezone(&Utc)))
        .ok_or_else(|| {
            UserError::new(
                Some(vec!["expectedUpdatedAt".to_owned()]),
                InputCode::Invalid,
                "is not an RFC 3339 time",
            )
            .into()
        })
}
