//! One error type for the API, with the stable codes clients switch on.

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

/// Everything a request can fail with. Each variant names its `extensions.code`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    /// `UNAUTHENTICATED`: no valid credentials where they are required.
    #[error("{0}")]
    Unauthenticated(String),
    /// `FORBIDDEN`: the principal may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// `NOT_FOUND`: no such record (or not the principal's: the two read alike).
    #[error("{0} not found")]
    NotFound(String),
    /// `BAD_USER_INPUT`: an argument is invalid; `field` names it.
    #[error("{field}: {message}")]
    BadUserInput {
        /// The argument (or input path) at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// `BAD_USER_INPUT`: a workflow refused the input for a reason of its own
    /// (`INSUFFICIENT_CREDITS`, ...); in a mutation's payload, a `userErrors` entry.
    #[error("{field}: {message}")]
    Refused {
        /// The input path at fault (`input.amount`).
        field: String,
        /// Why.
        code: InputCode,
        /// For people.
        message: String,
    },
    /// `BAD_USER_INPUT`: several input fields are wrong at once (each a `BadUserInput` or
    /// `Refused`, never empty); in a mutation's payload, one `userErrors` entry each.
    #[error("{} input problems, the first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Several(Vec<ApiError>),
    /// `BAD_USER_INPUT`: the request is over one of the limits; `extensions.limit` names it.
    #[error("{message}")]
    Limit {
        /// The limit's name (`maxTokens`, `maxDepth`, ...).
        limit: &'static str,
        /// What was over it, and by how much.
        message: String,
    },
    /// `TIMEOUT`: the request, or one of its statements, ran longer than allowed.
    #[error("{0}")]
    Timeout(String),
    /// `CONFLICT`: the write collides with existing data (a unique key, say).
    #[error("{0}")]
    Conflict(String),
    /// `THROTTLED`: too many requests or too costly a query.
    #[error("{0}")]
    Throttled(String),
    /// `THROTTLED`: the principal's points (or sign-in attempts) are spent for now;
    /// `extensions.retryAfter` says in how many seconds the request would fit.
    #[error("{message}")]
    Exhausted {
        /// What was short.
        message: String,
        /// Seconds to wait (to the millisecond).
        retry_after: f64,
    },
    /// `MAX_COST_EXCEEDED`: one operation costs more points than the principal's bucket
    /// holds; `extensions.cost` and `extensions.maxCost` say how many.
    #[error("Query cost is {cost}, which exceeds the single query max cost limit ({maximum})")]
    MaxCost {
        /// The operation's requested cost.
        cost: u64,
        /// The bucket's maximum.
        maximum: u64,
    },
    /// `INTERNAL`: anything unexpected. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

/// What is wrong with one input field, as a mutation's `userErrors` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputCode {
    /// A required value is missing or null.
    Blank,
    /// The value is not acceptable (wrong form, out of range, not allowed).
    Invalid,
    /// Another row already has this value.
    Taken,
    /// The row referred to does not exist, or is not the caller's (the two read alike).
    NotFound,
    /// The text is longer than the column allows.
    TooLong,
    /// The row changed since the caller read it (`expectedUpdatedAt`).
    Stale,
    /// The credentials were refused (sign-in).
    Unauthenticated,
    /// Not run: an earlier mutation of the same request failed, and nothing of the
    /// request was kept.
    NotRun,
    /// The credit balance is short of the amount.
    InsufficientCredits,
    /// The worker's lease on the task expired, or another worker holds it.
    LeaseLost,
    /// The row's state does not allow the change (a payment completed twice over, a
    /// finished job cancelled).
    InvalidTransition,
    /// The distributor's monthly AI budget is spent.
    BudgetExceeded,
}

impl InputCode {
    /// Every code, for the GraphQL enum.
    pub const ALL: [Self; 12] = [
        Self::Blank,
        Self::Invalid,
        Self::Taken,
        Self::NotFound,
        Self::TooLong,
        Self::Stale,
        Self::Unauthenticated,
        Self::NotRun,
        Self::InsufficientCredits,
        Self::LeaseLost,
        Self::InvalidTransition,
        Self::BudgetExceeded,
    ];

    /// The code's name, as clients see it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blank => "BLANK",
            Self::Invalid => "INVALID",
            Self::Taken => "TAKEN",
            Self::NotFound => "NOT_FOUND",
            Self::TooLong => "TOO_LONG",
            Self::Stale => "STALE",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::NotRun => "NOT_RUN",
            Self::InsufficientCredits => "INSUFFICIENT_CREDITS",
            Self::LeaseLost => "LEASE_LOST",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::BudgetExceeded => "BUDGET_EXCEEDED",
        }
    }

    /// What the code means, for the schema.
    pub fn description(self) -> &'static str {
        match self {
            Self::Blank => "A required value is missing or null.",
            Self::Invalid => "The value is not acceptable (wrong form, out of range, not allowed).",
            Self::Taken => "Another row already has this value.",
            Self::NotFound => "The row referred to does not exist, or is not the caller's.",
            Self::TooLong => "The text is longer than the field allows.",
            Self::Stale => "The row changed since `expectedUpdatedAt`; nothing was written.",
            Self::Unauthenticated => "The credentials were refused.",
            Self::NotRun => {
                "Not run: an earlier mutation of the request failed, so nothing of it was kept."
            }
            Self::InsufficientCredits => "The credit balance is short of the amount.",
            Self::LeaseLost => "The lease expired, or another worker holds the task.",
            Self::InvalidTransition => "The row's state does not allow this change.",
            Self::BudgetExceeded => "The distributor's monthly AI budget is spent.",
        }
    }
}

/// The API's result type.
pub type ApiResult<T, E = ApiError> = Result<T, E>;

impl ApiError {
    /// A `BAD_USER_INPUT` error for `field`.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A workflow's refusal of input `field`, with its own `code`.
    pub fn refused(field: impl Into<String>, code: InputCode, message: impl Into<String>) -> Self {
        Self::Refused {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// This error, blamed on input `field` when it is about an input (a domain function
    /// called by another knows better which of its caller's fields was at fault).
    pub fn at(self, field: &str) -> Self {
        match self {
            Self::BadUserInput { message, .. } => Self::bad_input(field, message),
            Self::Refused { code, message, .. } => Self::refused(field, code, message),
            other => other,
        }
    }

    /// This error as a GraphQL error carrying its code.
    pub fn into_graphql(self) -> async_graphql::Error {
        self.extend()
    }

    /// The stable code for `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. }
            | Self::Refused { .. }
            | Self::Several(_)
            | Self::Limit { .. } => "BAD_USER_INPUT",
            Self::Timeout(_) => "TIMEOUT",
            Self::Conflict(_) => "CONFLICT",
            Self::Throttled(_) | Self::Exhausted { .. } => "THROTTLED",
            Self::MaxCost { .. } => "MAX_COST_EXCEEDED",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl ApiError {
    /// This error as a GraphQL response error (no location, no path).
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        let error = self.extend();
        let mut server = async_graphql::ServerError::new(error.message, None);
        server.extensions = error.extensions;
        server
    }
}

/// PostgreSQL's `query_canceled`: `statement_timeout` ended the statement.
const QUERY_CANCELED: &str = "57014";

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        if sqlstate(&err).as_deref() == Some(QUERY_CANCELED) {
            tracing::warn!(%err, "statement timed out");
            return Self::Timeout(
                "a database statement took too long and was cancelled".to_owned(),
            );
        }
        tracing::error!(%err, "database error");
        Self::Internal(err.to_string())
    }
}

/// The SQLSTATE code of a database error, if it has one.
fn sqlstate(err: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    let runtime = match err {
        DbErr::Query(runtime) | DbErr::Exec(runtime) | DbErr::Conn(runtime) => runtime,
        _ => return None,
    };
    match runtime {
        RuntimeErr::SqlxError(error) => error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|code| code.into_owned()),
        _ => None,
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let mut error = async_graphql::Error::new(self.to_string());
        error = error.extend_with(|_, ext| ext.set("code", self.code()));
        if let Self::Limit { limit, .. } = self {
            let limit = *limit;
            error = error.extend_with(move |_, ext| ext.set("limit", limit));
        }
        if let Self::Exhausted { retry_after, .. } = self {
            let retry_after = *retry_after;
            error = error.extend_with(move |_, ext| ext.set("retryAfter", retry_after));
        }
        if let Self::MaxCost { cost, maximum } = self {
            let (cost, maximum) = (*cost, *maximum);
            error = error.extend_with(move |_, ext| {
                ext.set("cost", cost);
                ext.set("maxCost", maximum);
            });
        }
        if let Self::BadUserInput { field, .. } | Self::Refused { field, .. } = self {
            let field = field.clone();
            error = error.extend_with(move |_, ext| ext.set("field", field.clone()));
        }
        error
    }
}
