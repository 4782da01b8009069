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
    /// `CONFLICT`: the write collides with existing data (a unique key, say).
    #[error("{0}")]
    Conflict(String),
    /// `THROTTLED`: too many requests or too costly a query.
    #[error("{0}")]
    Throttled(String),
    /// `INTERNAL`: anything unexpected. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
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
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::Throttled(_) => "THROTTLED",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        tracing::error!(%err, "database error");
        Self::Internal(err.to_string())
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let mut error = async_graphql::Error::new(self.to_string());
        error = error.extend_with(|_, ext| ext.set("code", self.code()));
        if let Self::BadUserInput { field, .. } = self {
            let field = field.clone();
            error = error.extend_with(move |_, ext| ext.set("field", field.clone()));
        }
        error
    }
}
