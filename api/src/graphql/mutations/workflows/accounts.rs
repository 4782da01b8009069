//! The accounts domain's workflows: notifications.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{InputValue, TypeRef};

use super::{Declaration, Returned, declare};
use crate::domains::accounts::notifications::{self, Unread};
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "notificationsMarkRead",
            "Marks some of the signed-in user's notifications read.",
            Right::Write,
            vec![
                InputValue::new("ids", TypeRef::named_nn_list_nn(TypeRef::ID))
                    .description("The notifications' global ids, at most 250."),
            ],
            |input| Ok(Unread::Ids(input.ids("ids", "Notification")?)),
            |ctx, which| Box::pin(notifications::mark_read(ctx, which)),
            marked(),
        ),
        declare(
            "notificationsMarkAllRead",
            "Marks every unread notification of the signed-in user read.",
            Right::Write,
            Vec::new(),
            |_| Ok(Unread::All),
            |ctx, which| Box::pin(notifications::mark_read(ctx, which)),
            marked(),
        ),
    ]
}

fn marked() -> Vec<Returned<u64>> {
    vec![Returned::Value(
        "count",
        TypeRef::INT,
        "How many notifications were unread and are now read.",
        |n| Some(GqlValue::from(*n)),
    )]
}
