//! The credential attempts in a request: `signUp` and `signIn` by the email they name,
//! `userInvitationAccept` by the signed-in user. Read from the parsed document before
//! anything runs, so a limited attempt is refused before any email is looked up.

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Value, Variables};
use uuid::Uuid;

use crate::auth::Principal;

/// One attempt at a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// `signUp` or `signIn` for this email (trimmed, lower case; empty when absent).
    Email(String),
    /// `userInvitationAccept` by this user (or by nobody signed in: the nil id).
    User(Uuid),
}

/// The attempts of operation `name` of `document`.
pub fn of(
    document: &ExecutableDocument,
    name: Option<&str>,
    variables: &Variables,
    principal: &Principal,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for (operation_name, operation) in document.operations.iter() {
        let named = name.is_none() || operation_name.map(|n| n.as_str()) == name;
        if named && operation.node.ty == OperationType::Mutation {
            collect(
                document,
                &operation.node.selection_set.node,
                variables,
                principal,
                &mut attempts,
                0,
            );
        }
    }
    attempts
}

fn collect(
    document: &ExecutableDocument,
    set: &SelectionSet,
    variables: &Variables,
    principal: &Principal,
    attempts: &mut Vec<Attempt>,
    level: usize,
) {
    // Fragment cycles are refused by validation later; this bounds the walk meanwhile.
    if level > 16 {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                match field.name.node.as_str() {
                    "signUp" | "signIn" => {
                        let email = field
                            .get_argument("input")
                            .and_then(|input| {
                                input
                                    .node
                                    .clone()
                                    .into_const_with(|var| variables.get(&var).cloned().ok_or(()))
                                    .ok()
                            })
                            .and_then(|input| match input {
                                Value::Object(mut fields) => fields.shift_remove("email"),
                                _ => None,
                            })
                            .and_then(|email| match email {
                                Value::String(email) => Some(email.trim().to_lowercase()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        attempts.push(Attempt::Email(email));
                    }
                    "userInvitationAccept" => attempts.push(Attempt::User(match principal {
                        Principal::User { id, .. } => *id,
                        _ => Uuid::nil(),
                    })),
                    _ => {}
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    let set = &fragment.node.selection_set.node;
                    collect(document, set, variables, principal, attempts, level + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                let set = &inline.node.selection_set.node;
                collect(document, set, variables, principal, attempts, level + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_sign_in_with_its_email() {
        let document = async_graphql::parser::parse_query(
            r#"mutation($e: String!) {
                a: signIn(input: {email: " Ann@Example.com ", password: "x"}) { token }
                b: signIn(input: {email: $e, password: "x"}) { token }
                signUp(input: {password: "x"}) { token }
                productCreate(input: {}) { product { id } }
            }"#,
        )
        .unwrap();
        let variables = Variables::from_json(serde_json::json!({ "e": "bob@example.com" }));
        assert_eq!(
            of(&document, None, &variables, &Principal::Anonymous),
            vec![
                Attempt::Email("ann@example.com".to_owned()),
                Attempt::Email("bob@example.com".to_owned()),
                Attempt::Email(String::new()),
            ]
        );
        let query = async_graphql::parser::parse_query("{ signIn }").unwrap();
        assert!(of(&query, None, &variables, &Principal::Anonymous).is_empty());
    }
}
