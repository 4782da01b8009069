//! Persisted queries: Apollo's automatic persisted queries, and an allow-list mode.
//!
//! A request may send `extensions.persistedQuery = {version: 1, sha256Hash}` without the
//! query text. A known hash stands for its document: the text goes on to the compiled-plan
//! cache, so a persisted read is answered without parsing. An unknown hash answers
//! `PERSISTED_QUERY_NOT_FOUND`, and the client sends hash and text together, which are
//! checked against each other and remembered (least recently used forgotten first).
//!
//! With `STRATIX_PERSISTED_ONLY`, only the documents of the file loaded at start
//! (`STRATIX_PERSISTED_QUERIES`) run, by hash or by text, and nothing is learned: the
//! production mode for apps that ship their queries.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, ensure};
use async_graphql::{BatchRequest, Value};
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::lru::Lru;

/// The most documents remembered in automatic mode.
const CAPACITY: usize = 10_000;

/// The longest document remembered (bytes); with [`CAPACITY`], what bounds the memory.
const MAX_DOCUMENT: usize = 64 << 10;

/// The documents known by hash.
pub struct Persisted {
    documents: Lru<String, Arc<str>>,
    /// Only the loaded documents run.
    only: bool,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            documents: Lru::new(CAPACITY),
            only: false,
        }
    }
}

/// Why a request was refused, as the client should read it.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The hash is not known: send it again with the query text (Apollo's protocol).
    NotFound,
    /// The text does not hash to the hash sent.
    Mismatch,
    /// Allow-list mode, and the document is not on the list.
    NotAllowed,
    /// The extension is malformed.
    Malformed(&'static str),
}

impl Persisted {
    /// Loads documents from `path`: Apollo's persisted query manifest
    /// (`{"operations": [{"id", "body", ...}]}`), or an object of hash to document. Every
    /// hash is checked against its document. With `only`, nothing else runs.
    pub fn load(path: &Path, only: bool) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the persisted queries {}", path.display()))?;
        let file: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let pairs: Vec<(String, String)> = match file.get("operations") {
            Some(serde_json::Value::Array(operations)) => operations
                .iter()
                .map(|op| {
                    Some((
                        op.get("id")?.as_str()?.to_owned(),
                        op.get("body")?.as_str()?.to_owned(),
                    ))
                })
                .collect::<Option<_>>()
                .context("each operation needs an id and a body")?,
            _ => file
                .as_object()
                .context("expected an object of sha256 hash to document")?
                .iter()
                .map(|(hash, body)| Some((hash.clone(), body.as_str()?.to_owned())))
                .collect::<Option<_>>()
                .context("each hash needs a document as a string")?,
        };
        let persisted = Self {
            documents: Lru::new(pairs.len().max(CAPACITY)),
            only,
        };
        for (hash, body) in pairs {
            ensure!(
                sha256(&body) == hash,
                "{}: {hash} is not the SHA-256 of its document",
                path.display()
            );
            persisted.documents.insert(hash, body.into());
        }
        Ok(persisted)
    }

    /// How many documents are known.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether no document is known.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Gives every request of `batch` its document: from its hash, or checks the text it
    /// came with; why not otherwise (answer it with `into_response`).
    pub fn resolve(&self, batch: &mut BatchRequest) -> Result<(), Refusal> {
        for request in batch.iter_mut() {
            self.resolve_one(request)?;
        }
        Ok(())
    }

    fn resolve_one(&self, request: &mut async_graphql::Request) -> Result<(), Refusal> {
        let hash = match request.extensions.get("persistedQuery") {
            None => None,
            Some(extension) => Some(persisted_hash(extension)?),
        };
        match (hash, request.query.is_empty()) {
            (Some(hash), true) => {
                let document = self.documents.get(hash.as_str()).ok_or(Refusal::NotFound)?;
                request.query = document.to_string();
                Ok(())
            }
            (Some(hash), false) => {
                if sha256(&request.query) != hash {
                    return Err(Refusal::Mismatch);
                }
                if self.only {
                    return self
                        .documents
                        .contains(hash.as_str())
                        .then_some(())
                        .ok_or(Refusal::NotAllowed);
                }
                if request.query.len() <= MAX_DOCUMENT && !self.documents.contains(hash.as_str()) {
                    self.documents.insert(hash, request.query.as_str().into());
                }
                Ok(())
            }
            (None, _) if self.only => {
                let hash = sha256(&request.query);
                self.documents
                    .contains(hash.as_str())
                    .then_some(())
                    .ok_or(Refusal::NotAllowed)
            }
            (None, _) => Ok(()),
        }
    }
}

/// The `sha256Hash` of a `persistedQuery` extension (version 1), lowercase.
fn persisted_hash(extension: &Value) -> Result<String, Refusal> {
    let Value::Object(fields) = extension else {
        return Err(Refusal::Malformed("persistedQuery must be an object"));
    };
    if !matches!(fields.get("version"), Some(Value::Number(n)) if n.as_u64() == Some(1)) {
        return Err(Refusal::Malformed("persistedQuery.version must be 1"));
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(hash.to_ascii_lowercase())
        }
        _ => Err(Refusal::Malformed(
            "persistedQuery.sha256Hash must be 64 hex digits",
        )),
    }
}

/// The SHA-256 of `text`, lowercase hex.
pub fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // Apollo's clients look for this code (and message) to resend with the text.
        let (code, message) = match self {
            Self::NotFound => ("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound"),
            Self::Mismatch => ("BAD_USER_INPUT", "provided sha does not match query"),
            Self::NotAllowed => (
                "FORBIDDEN",
                "only persisted documents run on this server: add this one to its list",
            ),
            Self::Malformed(message) => ("BAD_USER_INPUT", message),
        };
        let body = json!({
            "data": null,
            "errors": [{
                "message": message,
                "extensions": crate::telemetry::record::error_extensions(code),
            }],
        });
        Json(body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, hash: Option<&str>) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(query);
        if let Some(hash) = hash {
            let extension = serde_json::json!({ "version": 1, "sha256Hash": hash });
            request.extensions.insert(
                "persistedQuery".to_owned(),
                Value::from_json(extension).unwrap(),
            );
        }
        request
    }

    #[test]
    fn an_unknown_hash_is_not_found_until_sent_with_its_text() {
        let persisted = Persisted::default();
        let text = "{ shops { totalCount } }";
        let hash = sha256(text);

        let first = persisted.resolve_one(&mut request("", Some(&hash)));
        let with_text = persisted.resolve_one(&mut request(text, Some(&hash)));
        let mut again = request("", Some(&hash));
        let second = persisted.resolve_one(&mut again);

        assert_eq!(first, Err(Refusal::NotFound));
        assert_eq!(with_text, Ok(()));
        assert_eq!(second, Ok(()));
        assert_eq!(again.query, text);
        assert_eq!(
            persisted.resolve_one(&mut request("{ other }", Some(&hash))),
            Err(Refusal::Mismatch)
        );
    }
}
