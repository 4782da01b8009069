//! Secrets at rest: shop access tokens, webhook signing secrets and integration secrets
//! are stored encrypted with AES-256-GCM under `STRATIX_ENCRYPTION_KEY`.
//!
//! Each ciphertext is a text envelope `v1:<key id>:<base64 of nonce + ciphertext>` (stored
//! as the bytes of that text), where the key id is the first 4 bytes of the key's SHA-256 in
//! hex. The id says which key of the [`KeyRing`] opens it, so earlier keys
//! (`STRATIX_ENCRYPTION_KEYS_OLD`) still decrypt while `stratix keys rotate` ([`rotate`])
//! re-encrypts every secret column under the current one. The table and column are the
//! associated data: a ciphertext copied into another column does not open.

pub mod rotate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// A key's length in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// The envelope's format version.
const VERSION: &str = "v1";

/// GCM's nonce length in bytes.
const NONCE_LEN: usize = 12;

/// One AES-256-GCM key and its id. Its `Debug` shows the id only.
#[derive(Clone)]
pub struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("id", &self.id).finish()
    }
}

impl Key {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            id: hex::encode(&digest[..4]),
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    /// The key from its base64 text (as `openssl rand -base64 32` prints it).
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD.decode(text.trim()).context(
            "an encryption key must be base64 (make one with `openssl rand -base64 32`)",
        )?;
        let bytes: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "an encryption key must be {KEY_LEN} bytes, this one is {} (make one with \
                 `openssl rand -base64 32`)",
                bytes.len()
            )
        })?;
        Ok(Self::from_bytes(&bytes))
    }

    /// A new random key, with its base64 text.
    pub fn generate() -> (Self, String) {
        let bytes: [u8; KEY_LEN] = Aes256Gcm::generate_key(&mut OsRng).into();
        (Self::from_bytes(&bytes), STANDARD.encode(bytes))
    }

    /// The key's id: the first 4 bytes of its SHA-256, in hex.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A secret column: the table and column a ciphertext belongs to (its associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub name: &'static str,
}

impl Column {
    fn associated_data(self) -> String {
        format!("{}.{}", self.table, self.name)
    }
}

/// Why a ciphertext did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    /// Not a `v1:<key id>:<base64>` envelope.
    #[error("not an encrypted value (v1:<key id>:<base64>)")]
    Malformed,
    /// Encrypted under a key the ring does not have.
    #[error(
        "encrypted under key {0}, which is neither STRATIX_ENCRYPTION_KEY nor one of \
         STRATIX_ENCRYPTION_KEYS_OLD"
    )]
    UnknownKey(String),
    /// The authentication tag does not match: altered, or moved from another column.
    #[error("the ciphertext does not authenticate under key {0}: it was altered")]
    Tampered(String),
}

impl From<DecryptError> for ApiError {
    fn from(error: DecryptError) -> Self {
        ApiError::Internal(format!("decrypting a stored secret: {error}"))
    }
}

/// The keys secrets are encrypted with (the current one) and opened with (it and the old
/// ones). The default ring has no key: it encrypts nothing (background work that never
/// needs to). Its `Debug` shows key ids only.
#[derive(Clone, Default)]
pub struct KeyRing {
    current: Option<Arc<Key>>,
    old: Vec<Arc<Key>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current_id())
            .field("old", &self.old.iter().map(|k| k.id()).collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// A ring that encrypts under `current` and also opens what `old` keys encrypted.
    pub fn new(current: Key, old: Vec<Key>) -> Self {
        Self {
            current: Some(Arc::new(current)),
            old: old.into_iter().map(Arc::new).collect(),
        }
    }

    /// The id of the key new ciphertexts are made with.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_deref().map(Key::id)
    }

    /// `plaintext` encrypted for `column` under the current key, as its envelope.
    pub fn encrypt(&self, column: Column, plaintext: &[u8]) -> Result<Vec<u8>, ApiError> {
        let key = self.current.as_deref().ok_or_else(|| {
            ApiError::Internal("no encryption key: STRATIX_ENCRYPTION_KEY is not set".to_owned())
        })?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = column.associated_data();
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| ApiError::Internal("encrypting a secret failed".to_owned()))?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&sealed);
        Ok(format!("{VERSION}:{}:{}", key.id, STANDARD.encode(body)).into_bytes())
    }

    /// The plaintext of an envelope [`KeyRing::encrypt`] made for `column`, under any key of
    /// the ring.
    pub fn decrypt(&self, column: Column, envelope: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let (key_id, body) = parse(envelope).ok_or(DecryptError::Malformed)?;
        let key = self
            .keys()
            .find(|k| k.id == key_id)
            .ok_or_else(|| DecryptError::UnknownKey(key_id.to_owned()))?;
        let body = STANDARD.decode(body).map_err(|_| DecryptError::Malformed)?;
        let (nonce, sealed) = body
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(DecryptError::Malformed)?;
        let aad = column.associated_data();
        key.cipher
            .decrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| DecryptError::Tampered(key_id.to_owned()))
    }

    /// The plaintext of an envelope that holds UTF-8 text.
    pub fn decrypt_text(&self, column: Column, envelope: &[u8]) -> Result<Secret, DecryptError> {
        let plain = self.decrypt(column, envelope)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| DecryptError::Malformed)
    }

    /// Whether `envelope` was made under the current key (nothing to rotate).
    pub fn is_current(&self, envelope: &[u8]) -> bool {
        matches!((parse(envelope), self.current_id()), (Some((id, _)), Some(current)) if id == current)
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.current.iter().chain(&self.old).map(Arc::as_ref)
    }
}

/// The key id and base64 body of an envelope.
fn parse(envelope: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(envelope).ok()?;
    let rest = text.strip_prefix(VERSION)?.strip_prefix(':')?;
    rest.split_once(':')
}

/// `N` bytes from the operating system's random source (secrets, jitter).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use aes_gcm::aead::rand_core::RngCore as _;
    let mut bytes = [0; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A secret in the clear (an access token, a signing secret): its `Debug` and `Display`
/// never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `STRATIX_ENCRYPTION_KEY` and the keys it replaced: for `serve` and `keys rotate`.
#[derive(Clone, Default, clap::Args)]
pub struct EncryptionConfig {
    /// The AES-256-GCM key secrets are stored under: 32 bytes, base64 (make one with
    /// `openssl rand -base64 32`). Required on PostgreSQL; on SQLite, when unset, a key is
    /// made once into `<database file>.key` beside the database.
    #[arg(long, env = "STRATIX_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// Earlier encryption keys, comma-separated, that still decrypt what they encrypted
    /// until `stratix keys rotate` has re-encrypted it under STRATIX_ENCRYPTION_KEY.
    #[arg(
        long,
        env = "STRATIX_ENCRYPTION_KEYS_OLD",
        hide_env_values = true,
        default_value = ""
    )]
    pub encryption_keys_old: String,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionConfig")
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "<set>"),
            )
            .field("encryption_keys_old", &self.old_keys().count())
            .finish()
    }
}

impl EncryptionConfig {
    /// The key ring for the database at `database_url`, and a notice to print when a
    /// development key was made or read from its file. Without STRATIX_ENCRYPTION_KEY,
    /// PostgreSQL is refused: secrets must survive a redeploy, so the key must be kept
    /// outside the machine.
    pub fn key_ring(&self, database_url: &str) -> anyhow::Result<(KeyRing, Option<String>)> {
        let old = self
            .old_keys()
            .map(Key::from_base64)
            .collect::<anyhow::Result<Vec<_>>>()
            .context("STRATIX_ENCRYPTION_KEYS_OLD")?;
        if let Some(text) = &self.encryption_key {
            let current = Key::from_base64(text).context("STRATIX_ENCRYPTION_KEY")?;
            return Ok((KeyRing::new(current, old), None));
        }
        if !database_url.starts_with("sqlite") {
            anyhow::bail!(
                "STRATIX_ENCRYPTION_KEY must be set to serve {}: shop access tokens and webhook \
                 signing secrets are stored encrypted under it. Make one with \
                 `openssl rand -base64 32`, keep it with your other secrets (what it encrypted \
                 cannot be read without it), and set STRATIX_ENCRYPTION_KEY to it",
                crate::redact(database_url)
            );
        }
        let Some(file) = key_file(database_url) else {
            let (key, _) = Key::generate();
            let notice = format!(
                "no STRATIX_ENCRYPTION_KEY: secrets in this in-memory database are encrypted \
                 under a key made for this process ({})",
                key.id()
            );
            return Ok((KeyRing::new(key, old), Some(notice)));
        };
        let (key, made) = development_key(&file)?;
        let notice = format!(
            "no STRATIX_ENCRYPTION_KEY: secrets are encrypted under the development key {} {} {} \
             (set STRATIX_ENCRYPTION_KEY to it, or to a new key from `openssl rand -base64 32` \
             with this one in STRATIX_ENCRYPTION_KEYS_OLD and `stratix keys rotate`)",
            key.id(),
            if made { "made into" } else { "read from" },
            file.display()
        );
        Ok((KeyRing::new(key, old), Some(notice)))
    }

    fn old_keys(&self) -> impl Iterator<Item = &str> {
        self.encryption_keys_old
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }
}

/// The development key file of a SQLite database: `<file>.key` beside it (`*.db.key` is
/// ignored by git); none for an in-memory database.
fn key_file(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(format!("{path}.key")))
}

/// The key in `file`, made there first (readable by its owner only) when it is missing;
/// whether it was made.
fn development_key(file: &Path) -> anyhow::Result<(Key, bool)> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok((
            Key::from_base64(&text).with_context(|| format!("the key in {}", file.display()))?,
            false,
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (key, text) = Key::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut out = options
                .open(file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            std::io::Write::write_all(&mut out, format!("{text}\n").as_bytes())
                .with_context(|| format!("cannot write {}", file.display()))?;
            Ok((key, true))
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMN: Column = Column {
        table: "shops",
        name: "access_token_enc",
    };

    fn ring() -> KeyRing {
        KeyRing::new(Key::from_bytes(&[7; KEY_LEN]), Vec::new())
    }

    #[test]
    fn what_is_encrypted_opens_and_names_its_key() {
        let ring = ring();
        let sealed = ring.encrypt(COLUMN, b"shpat_123").unwrap();
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(text.starts_with(&format!("v1:{}:", ring.current_id().unwrap())));
        assert!(!text.contains("shpat_123"));
        assert_eq!(ring.decrypt(COLUMN, &sealed).unwrap(), b"shpat_123");
        // A fresh nonce each time.
        assert_ne!(ring.encrypt(COLUMN, b"shpat_123").unwrap(), sealed);
    }

    #[test]
    fn altered_or_moved_ciphertexts_are_refused() {
        let ring = ring();
        let sealed = ring.encrypt(COLUMN, b"secret").unwrap();
        let mut altered = sealed.clone();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            ring.decrypt(COLUMN, &altered),
            Err(DecryptError::Tampered(_) | DecryptError::Malformed)
        ));
        let other = Column {
            table: "webhook_endpoints",
            name: "secret_enc",
        };
        assert!(matches!(
            ring.decrypt(other, &sealed),
            Err(DecryptError::Tampered(_))
        ));
        assert_eq!(ring.decrypt(COLUMN, b"plain"), Err(DecryptError::Malformed));
    }

    #[test]
    fn old_keys_still_open_and_unknown_ones_are_named() {
        let old = Key::from_bytes(&[1; KEY_LEN]);
        let before = KeyRing::new(old.clone(), Vec::new());
        let sealed = before.encrypt(COLUMN, b"secret").unwrap();
        let after = KeyRing::new(Key::from_bytes(&[2; KEY_LEN]), vec![old.clone()]);
        assert_eq!(after.decrypt(COLUMN, &sealed).unwrap(), b"secret");
        assert!(!after.is_current(&sealed));
        let without = KeyRing::new(Key::from_bytes(&[2; KEY_LEN]), Vec::new());
        assert_eq!(
            without.decrypt(COLUMN, &sealed),
            Err(DecryptError::UnknownKey(old.id().to_owned()))
        );
    }

    #[test]
    fn debug_output_shows_no_key_or_secret() {
        let ring = ring();
        let shown = format!("{ring:?} {:?}", Secret::new("shpat_123".to_owned()));
        assert!(shown.contains(ring.current_id().unwrap()));
        assert!(!shown.contains("shpat_123"));
        let config = EncryptionConfig {
            encryption_key: Some(STANDARD.encode([9; KEY_LEN])),
            encryption_keys_old: String::new(),
        };
        assert!(!format!("{config:?}").contains(&STANDARD.encode([9; KEY_LEN])));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(Key::from_base64("not base64!").is_err());
        assert!(Key::from_base64(&STANDARD.encode([1; 16])).is_err());
        assert!(Key::from_base64(&STANDARD.encode([1; 32])).is_ok());
    }

    #[test]
    fn postgres_needs_a_key_and_sqlite_makes_one_into_a_file() {
        let config = EncryptionConfig::default();
        let refused = config
            .key_ring("postgres://u:p@localhost/db")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("openssl rand -base64 32"), "{refused}");
        assert!(!refused.contains(":p@"));
        let dir = std::env::temp_dir().join(format!("stratix-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/s.db?mode=rwc", dir.display());
        let (made, notice) = config.key_ring(&url).unwrap();
        assert!(notice.unwrap().contains("made into"));
        let (read, notice) = config.key_ring(&url).unwrap();
        assert!(notice.unwrap().contains("read from"));
        assert_eq!(made.current_id(), read.current_id());
        std::fs::remove_dir_all(dir).ok();
    }
}
