//! Batch inputs (storefront events, performance metrics): a list of 1 to some most items,
//! each checked field by field, every problem reported at `<at>.<index>.<field>` so that
//! `userErrors` names each bad item, and the batch refused whole.

use serde_json::Value as Json;

use crate::error::{ApiError, ApiResult, InputCode};

/// The items of the batch given at input path `at`: a list of 1 to `max` `what`s.
pub fn items<'a>(at: &str, value: &'a Json, max: usize, what: &str) -> ApiResult<&'a [Json]> {
    let Some(list) = value.as_array() else {
        return Err(ApiError::bad_input(at, format!("must be a list of {what}")));
    };
    if list.is_empty() || list.len() > max {
        return Err(ApiError::refused(
            at,
            InputCode::Invalid,
            format!("give 1 to {max} {what}, not {}", list.len()),
        ));
    }
    Ok(list)
}

/// The problems found in a batch.
pub struct Problems<'a> {
    at: &'a str,
    found: Vec<ApiError>,
}

impl<'a> Problems<'a> {
    /// None yet, for the batch at input path `at`.
    pub fn new(at: &'a str) -> Self {
        Self {
            at,
            found: Vec::new(),
        }
    }

    /// A problem with `field` of item `index`.
    pub fn add(&mut self, index: usize, field: &str, code: InputCode, message: impl Into<String>) {
        let field = format!("{}.{index}.{field}", self.at);
        self.found.push(ApiError::refused(field, code, message));
    }

    /// A problem with item `index` as a whole.
    pub fn add_item(&mut self, index: usize, code: InputCode, message: impl Into<String>) {
        let at = format!("{}.{index}", self.at);
        self.found.push(ApiError::refused(at, code, message));
    }

    /// How many were found: a mark to tell whether an item added any.
    pub fn count(&self) -> usize {
        self.found.len()
    }

    /// The batch refused with every problem, or nothing wrong.
    pub fn into_result(self) -> ApiResult<()> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Several(self.found))
        }
    }
}

/// The input paths a refused batch names, in the order found (for the parsers' tests).
#[cfg(test)]
pub fn refused_fields<T>(parsed: ApiResult<T>) -> Vec<String> {
    let Some(ApiError::Several(problems)) = parsed.err() else {
        panic!("the batch should be refused, each problem named");
    };
    problems
        .iter()
        .map(|problem| match problem {
            ApiError::Refused { field, .. } => field.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}
