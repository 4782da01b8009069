//! Global ids: `gid://stratix/<Type>/<uuid>`, the form Shopify's Admin API uses.

use uuid::Uuid;

use crate::error::ApiError;

const PREFIX: &str = "gid://stratix/";

/// The global id of the row `id` of type `type_name`.
pub fn encode(type_name: &str, id: Uuid) -> String {
    format!("{PREFIX}{type_name}/{id}")
}

/// Splits a global id into its type name and uuid; `argument` names the input in errors.
pub fn decode<'a>(argument: &str, gid: &'a str) -> Result<(&'a str, Uuid), ApiError> {
    let invalid = || ApiError::bad_input(argument, format!("{gid:?} is not a valid global id"));
    let rest = gid.strip_prefix(PREFIX).ok_or_else(invalid)?;
    let (type_name, id) = rest.split_once('/').ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((type_name, id))
}

/// The uuid of `gid`, which must be a global id of type `type_name`; any other id is
/// refused, naming `argument`.
pub fn decode_as(argument: &str, gid: &str, type_name: &str) -> Result<Uuid, ApiError> {
    match decode(argument, gid)? {
        (found, id) if found == type_name => Ok(id),
        _ => Err(ApiError::bad_input(
            argument,
            format!("{gid:?} is not a {type_name} id"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_bad_ones_name_the_argument() {
        let id = Uuid::new_v4();
        let gid = encode("Shop", id);
        assert_eq!(
            decode("id", &gid).unwrap_or(("", Uuid::nil())),
            ("Shop", id)
        );
        let err = decode("ids", "gid://other/Shop/1")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("ids:")));
    }
}
