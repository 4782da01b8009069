//! A distributor's webhook endpoints (admins): the signing secret is returned once, by
//! `webhookEndpointCreate`; and its integrations' secrets, stored encrypted.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{InputValue, TypeRef};
use uuid::Uuid;

use super::{Declaration, Input, Returned, declare, text};
use crate::domains::distribution::integration_secrets::{self, NewSecrets};
use crate::domains::distribution::webhooks::{self, Created, EndpointChange, NewEndpoint};
use crate::error::ApiResult;
use crate::graphql::mutations::Right;

/// The webhook workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "webhookEndpointCreate",
            "Adds a webhook endpoint (admins). Deliveries are POSTed as JSON, signed \
             `Stratix-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>`; the \
             `secret` is returned this once and stored encrypted.",
            Right::Write,
            vec![
                InputValue::new("distributorId", TypeRef::named(TypeRef::ID)).description(
                    "The distributor's global id; needed only by a user who administers several.",
                ),
                InputValue::new("url", TypeRef::named_nn(TypeRef::STRING)).description(
                    "An https:// URL of a public host (http:// to a loopback address only \
                     where the deployment allows it, for development).",
                ),
                events(true),
                text("description", "For people, up to 500 characters."),
            ],
            |input| {
                NewEndpoint::parse(
                    optional_id(input, "distributorId", "Distributor")?,
                    input.string("url")?.unwrap_or_default(),
                    &input.strings("events")?,
                    input.string("description")?,
                )
            },
            |ctx, new| Box::pin(webhooks::create(ctx, new)),
            vec![
                Returned::Row("webhookEndpoint", "webhook_endpoints", |c: &Created| {
                    Some(c.endpoint)
                }),
                Returned::Value(
                    "secret",
                    TypeRef::STRING,
                    "The signing secret, shown this once: the HMAC-SHA256 key of \
                     `Stratix-Signature`.",
                    |c: &Created| Some(GqlValue::from(c.secret.expose())),
                ),
            ],
        ),
        declare(
            "webhookEndpointUpdate",
            "Changes a webhook endpoint (admins); what is not given stays. A switched-off \
             endpoint gets no new deliveries, and its pending ones fail.",
            Right::Write,
            vec![
                endpoint_id(),
                text("url", "A new URL (as for `webhookEndpointCreate`)."),
                events(false),
                text("description", "A new description; empty clears it."),
                InputValue::new("active", TypeRef::named(TypeRef::BOOLEAN))
                    .description("Switches the endpoint on or off."),
            ],
            |input| {
                EndpointChange::parse(
                    input.id("id", "WebhookEndpoint")?,
                    input.string("url")?,
                    match input.get("events") {
                        None => None,
                        Some(_) => Some(input.strings("events")?),
                    },
                    input.string("description")?,
                    input.boolean("active")?,
                )
            },
            |ctx, change| Box::pin(webhooks::update(ctx, change)),
            endpoint_row(),
        ),
        declare(
            "webhookEndpointDelete",
            "Deletes a webhook endpoint and its delivery log (admins).",
            Right::Write,
            vec![endpoint_id()],
            |input| input.id("id", "WebhookEndpoint"),
            |ctx, id| Box::pin(webhooks::delete(ctx, id)),
            vec![Returned::Value(
                "deletedId",
                TypeRef::ID,
                "The deleted endpoint's global id.",
                |id: &Uuid| {
                    Some(GqlValue::from(crate::graphql::ids::encode(
                        "WebhookEndpoint",
                        *id,
                    )))
                },
            )],
        ),
        declare(
            "externalIntegrationSetSecrets",
            "Replaces an integration's secrets (admins): stored encrypted, never returned by \
             any field; `{}` clears them. Settings that are not secret go in `config`.",
            Right::Write,
            vec![
                InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                    .description("The integration's global id."),
                InputValue::new("secrets", TypeRef::named_nn("JSON")).description(
                    "An object of name to text value, like `{\"auth_token\": \"...\"}`.",
                ),
            ],
            |input| {
                NewSecrets::parse(
                    input.id("id", "ExternalIntegration")?,
                    input.json("secrets")?,
                )
            },
            |ctx, new| Box::pin(integration_secrets::set(ctx, new)),
            vec![Returned::Row(
                "externalIntegration",
                "external_integrations",
                |id: &Uuid| Some(*id),
            )],
        ),
    ]
}

fn events(required: bool) -> InputValue {
    let doc = "Events to deliver: `order.created`, `order.status_changed`, \
               `message.received`, `budget.exceeded`.";
    let ty = if required {
        TypeRef::named_nn_list_nn(TypeRef::STRING)
    } else {
        TypeRef::named_nn_list(TypeRef::STRING)
    };
    InputValue::new("events", ty).description(doc)
}

fn endpoint_id() -> InputValue {
    InputValue::new("id", TypeRef::named_nn(TypeRef::ID)).description("The endpoint's global id.")
}

fn endpoint_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row(
        "webhookEndpoint",
        "webhook_endpoints",
        |id| Some(*id),
    )]
}

fn optional_id(input: &Input<'_>, name: &str, type_name: &str) -> ApiResult<Option<Uuid>> {
    match input.get(name) {
        None => Ok(None),
        Some(_) => input.id(name, type_name).map(Some),
    }
}
