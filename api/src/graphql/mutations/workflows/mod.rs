//! The workflows on the schema (`api/src/domains/`), one declaration each: the mutation's
//! name and description, its input fields, how the input becomes the domain's checked
//! input, which domain function runs, and which rows its payload returns (each read by a
//! typed accessor of the domain's output, then as the caller reads it).

use std::sync::Arc;

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, ObjectAccessor, ResolverContext,
    SchemaBuilder, TypeRef,
};
use futures_util::future::BoxFuture;
use uuid::Uuid;

mod accounts;
mod billing;
mod crawling;
mod distribution;
mod experiments;
mod shopify;
mod studio;
mod webhooks;

use super::{Out, Payload, Right, payload_type, perform, read_row};
use crate::domains::{Lease, WriteCtx};
use crate::error::{ApiError, ApiResult};
use crate::graphql::ids;
use crate::graphql::model::model;
use crate::graphql::resolve::{request, run};
use crate::request::RequestContext;
use crate::tables::tables;

/// Every workflow the schema serves, by domain.
fn declarations() -> Vec<Declaration> {
    [
        accounts::declarations(),
        billing::declarations(),
        crawling::declarations(),
        distribution::declarations(),
        experiments::declarations(),
        shopify::declarations(),
        studio::declarations(),
        webhooks::declarations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A payload field: a row of a table (by a typed accessor of the workflow's output), or
/// a plain value.
enum Returned<O> {
    /// Field, table, which row (none: null).
    Row(&'static str, &'static str, fn(&O) -> Option<Uuid>),
    /// Field, GraphQL type, description, the value (none: null).
    Value(
        &'static str,
        &'static str,
        &'static str,
        fn(&O) -> Option<GqlValue>,
    ),
}

impl<O> Clone for Returned<O> {
    fn clone(&self) -> Self {
        match self {
            Self::Row(f, t, pick) => Self::Row(f, t, *pick),
            Self::Value(f, ty, doc, pick) => Self::Value(f, ty, doc, *pick),
        }
    }
}

/// A payload field's value once the workflow ran.
enum Answer {
    Row(&'static str, Option<Uuid>),
    Value(Option<GqlValue>),
}

/// A payload field as the schema declares it: name, type, description.
type Declared = (String, TypeRef, String);

type Body = Arc<
    dyn for<'a> Fn(
            &'a WriteCtx<'a>,
            Input<'a>,
        ) -> BoxFuture<'a, ApiResult<Vec<(&'static str, Answer)>>>
        + Send
        + Sync,
>;

/// One workflow, its types erased for the schema.
struct Declaration {
    name: &'static str,
    doc: &'static str,
    right: Right,
    input: Vec<InputValue>,
    payload: Vec<Declared>,
    body: Body,
    /// Whether the workflow changes the caller's memberships, so that its payload is read
    /// under the scope as it is afterwards.
    rescope: bool,
    /// Input object types its input fields use (a list of events, say).
    types: Vec<InputObject>,
}

impl Declaration {
    /// The workflow changes the caller's memberships (a new distributor, an accepted
    /// invitation): its payload is read under the caller's scope as it now is.
    fn rescoped(self) -> Self {
        Self {
            rescope: true,
            ..self
        }
    }

    /// The workflow's input fields use these input object types.
    fn with_types(self, types: Vec<InputObject>) -> Self {
        Self { types, ..self }
    }
}

/// Declares workflow `name`: `parse` turns its input into the domain's input, `work`
/// runs it, `returned` names the payload's fields.
fn declare<I: Send + 'static, O: Send + Sync + 'static>(
    name: &'static str,
    doc: &'static str,
    right: Right,
    input: Vec<InputValue>,
    parse: fn(&Input<'_>) -> ApiResult<I>,
    work: for<'a> fn(&'a WriteCtx<'a>, I) -> BoxFuture<'a, ApiResult<O>>,
    returned: Vec<Returned<O>>,
) -> Declaration {
    let payload = returned
        .iter()
        .map(|field| match field {
            Returned::Row(field, table, _) => {
                let type_name = tables()
                    .get(table)
                    .map(|t| model()[t.index].type_name.clone())
                    .unwrap_or_default();
                (
                    (*field).to_owned(),
                    TypeRef::named(type_name),
                    format!("The row, as the caller now reads it ({table})."),
                )
            }
            Returned::Value(field, ty, doc, _) => {
                ((*field).to_owned(), TypeRef::named(*ty), (*doc).to_owned())
            }
        })
        .collect();
    let body: Body = Arc::new(move |ctx, input| {
        let returned = returned.clone();
        Box::pin(async move {
            let parsed = parse(&input)?;
            let output = work(ctx, parsed).await?;
            Ok(returned
                .iter()
                .map(|field| match field {
                    Returned::Row(name, table, pick) => (*name, Answer::Row(table, pick(&output))),
                    Returned::Value(name, _, _, pick) => (*name, Answer::Value(pick(&output))),
                })
                .collect())
        })
    });
    Declaration {
        name,
        doc,
        right,
        input,
        payload,
        body,
        rescope: false,
        types: Vec::new(),
    }
}

fn int(name: &str, doc: &str) -> InputValue {
    InputValue::new(name, TypeRef::named_nn(TypeRef::INT)).description(doc)
}

fn text(name: &str, doc: &str) -> InputValue {
    InputValue::new(name, TypeRef::named(TypeRef::STRING)).description(doc)
}

/// A workflow's `input` argument (none for a workflow without input fields), read field
/// by field; errors name `input.<field>`.
struct Input<'a>(Option<ObjectAccessor<'a>>);

impl Input<'_> {
    fn path(name: &str) -> String {
        format!("input.{name}")
    }

    /// Field `name`, if given and not null.
    fn get(&self, name: &str) -> Option<async_graphql::dynamic::ValueAccessor<'_>> {
        self.0.as_ref()?.get(name).filter(|v| !v.is_null())
    }

    fn int(&self, name: &str) -> ApiResult<i64> {
        self.get(name)
            .and_then(|v| v.i64().ok())
            .ok_or_else(|| ApiError::bad_input(Self::path(name), "must be an integer"))
    }

    /// Field `name`: global ids of `type_name` rows.
    fn ids(&self, name: &str, type_name: &str) -> ApiResult<Vec<Uuid>> {
        self.strings(name)?
            .iter()
            .map(|gid| ids::decode_as(&Self::path(name), gid, type_name))
            .collect()
    }

    /// Field `name`: the global id of a `type_name` row.
    fn id(&self, name: &str, type_name: &str) -> ApiResult<Uuid> {
        let gid = self
            .string(name)?
            .ok_or_else(|| ApiError::bad_input(Self::path(name), "is required"))?;
        ids::decode_as(&Self::path(name), &gid, type_name)
    }

    /// `leaseId`: the lease a claim gave.
    fn lease_id(&self) -> ApiResult<Uuid> {
        self.string("leaseId")?
            .and_then(|l| Uuid::parse_str(&l).ok())
            .ok_or_else(|| ApiError::bad_input("input.leaseId", "is not a lease id"))
    }

    /// `leaseSeconds`, 60 by default.
    fn lease(&self) -> ApiResult<Lease> {
        let seconds = match self.get("leaseSeconds") {
            None => 60,
            Some(_) => self.int("leaseSeconds")?,
        };
        Lease::parse("input.leaseSeconds", seconds)
    }

    fn string(&self, name: &str) -> ApiResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => value
                .string()
                .map(|s| Some(s.to_owned()))
                .map_err(|_| ApiError::bad_input(Self::path(name), "must be a string")),
        }
    }

    fn uuid(&self, name: &str) -> ApiResult<Uuid> {
        let text = self
            .string(name)?
            .ok_or_else(|| ApiError::bad_input(Self::path(name), "is required"))?;
        Uuid::parse_str(&text).map_err(|_| ApiError::bad_input(Self::path(name), "is not a uuid"))
    }

    fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => value
                .boolean()
                .map(Some)
                .map_err(|_| ApiError::bad_input(Self::path(name), "must be a boolean")),
        }
    }

    fn strings(&self, name: &str) -> ApiResult<Vec<String>> {
        let Some(list) = self.get(name) else {
            return Ok(Vec::new());
        };
        let list = list
            .list()
            .map_err(|_| ApiError::bad_input(Self::path(name), "must be a list of strings"))?;
        list.iter()
            .map(|v| {
                v.string()
                    .map(str::to_owned)
                    .map_err(|_| ApiError::bad_input(Self::path(name), "must be a list of strings"))
            })
            .collect()
    }

    /// Field `name`, a `Decimal`, as its text (given as a string or a number).
    fn decimal_text(&self, name: &str) -> ApiResult<String> {
        match self.get(name).map(|v| v.as_value().clone().into_json()) {
            Some(Ok(serde_json::Value::String(text))) => Ok(text),
            Some(Ok(serde_json::Value::Number(number))) => Ok(number.to_string()),
            _ => Err(ApiError::bad_input(
                Self::path(name),
                "must be a decimal number, like \"12.50\"",
            )),
        }
    }

    fn json(&self, name: &str) -> ApiResult<Option<serde_json::Value>> {
        self.get(name)
            .map(|v| {
                v.as_value()
                    .clone()
                    .into_json()
                    .map_err(|_| ApiError::bad_input(Self::path(name), "must be JSON"))
            })
            .transpose()
    }
}

/// Registers the workflows' types; returns their root fields.
pub(super) fn register(mut builder: SchemaBuilder) -> (SchemaBuilder, Vec<Field>) {
    let mut fields = Vec::new();
    for mut declaration in declarations() {
        let prefix = crate::graphql::names::pascal(declaration.name);
        for input_type in std::mem::take(&mut declaration.types) {
            builder = builder.register(input_type);
        }
        let fields_in = std::mem::take(&mut declaration.input);
        let takes_input = !fields_in.is_empty();
        if takes_input {
            let input = fields_in.into_iter().fold(
                InputObject::new(format!("{prefix}Input")),
                InputObject::field,
            );
            builder = builder.register(input);
        }
        builder = builder.register(payload_type(
            &format!("{prefix}Payload"),
            &declaration.payload,
        ));
        fields.push(field(declaration, &prefix, takes_input));
    }
    (builder, fields)
}

fn field(declaration: Declaration, prefix: &str, takes_input: bool) -> Field {
    let declaration = Arc::new(declaration);
    let doc = declaration.doc;
    let name = declaration.name;
    let field = Field::new(
        name,
        TypeRef::named_nn(format!("{prefix}Payload")),
        move |ctx| {
            let declaration = declaration.clone();
            FieldFuture::new(run(async move {
                let req = request(ctx.ctx)?;
                let payload = perform(req, respond(&ctx, req, &declaration)).await?;
                Ok(Some(FieldValue::owned_any(payload)))
            }))
        },
    )
    .description(doc);
    if takes_input {
        field.argument(InputValue::new(
            "input",
            TypeRef::named_nn(format!("{prefix}Input")),
        ))
    } else {
        field
    }
}

/// Runs a workflow and reads the rows its payload returns under the caller's scope.
async fn respond(
    ctx: &ResolverContext<'_>,
    req: &RequestContext,
    declaration: &Declaration,
) -> ApiResult<Payload> {
    declaration.right.check(&req.principal)?;
    let input = match ctx.args.get("input") {
        None => None,
        Some(value) => {
            // The one check of text the database could not hold, for every field at once.
            crate::graphql::scalars::input_json("input", value.as_value())?;
            Some(
                value
                    .object()
                    .map_err(|_| ApiError::bad_input("input", "must be an input object"))?,
            )
        }
    };
    let answers = (declaration.body)(&req.work(), Input(input)).await?;
    let rescoped;
    let scope = if declaration.rescope {
        rescoped = crate::auth::scope_of(&req.db, &req.principal).await?;
        &rescoped
    } else {
        &req.scope
    };
    let mut payload = Payload::default();
    for (field, answer) in answers {
        match answer {
            Answer::Row(table, Some(id)) => {
                if let Some(row) = read_row(&req.db, scope, table, id).await? {
                    payload = payload.with(field, Out::Row(row));
                }
            }
            Answer::Value(Some(value)) => payload = payload.with(field, Out::Value(value)),
            Answer::Row(_, None) | Answer::Value(None) => {}
        }
    }
    Ok(payload)
}
