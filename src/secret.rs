//! Secrets from the config: inline, `{ env = "NAME" }` or `{ file = "PATH" }`.
//! A resolved [`Secret`] never prints its value and compares in constant time.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A secret as written in the config file, before it is resolved.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum SecretSource {
    Inline(String),
    Env { env: String },
    File { file: PathBuf },
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("inline(<redacted>)"),
            SecretSource::Env { env } => write!(f, "env({env})"),
            SecretSource::File { file } => write!(f, "file({})", file.display()),
        }
    }
}

/// Why a secret could not be resolved; never contains the value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("environment variable {0} is not set (or not valid UTF-8)")]
    EnvMissing(String),
    #[error("cannot read secret file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret is empty")]
    Empty,
}

impl SecretSource {
    /// True for a secret written into the config file itself (`check` warns about these).
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self, SecretSource::Inline(_))
    }

    /// Reads the value; relative file paths are taken from `base` (the config's directory).
    pub(crate) fn resolve(&self, base: &Path) -> Result<Secret, SecretError> {
        let value = match self {
            SecretSource::Inline(v) => v.clone().into_bytes(),
            SecretSource::Env { env } => std::env::var(env)
                .map_err(|_| SecretError::EnvMissing(env.clone()))?
                .into_bytes(),
            SecretSource::File { file } => {
                let path = base.join(file);
                let mut bytes = crate::fsio::read(&path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                // Files written by editors and `kubectl create secret --from-file` often end in a newline.
                while matches!(bytes.last(), Some(b'\n' | b'\r')) {
                    bytes.pop();
                }
                bytes
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret(value))
    }
}

/// A resolved secret value. `Debug` prints `<redacted>`; equality is constant-time.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison: the time taken does not depend on where the inputs differ.
    /// (Only the length may leak, which tells an attacker nothing useful about the value.)
    pub(crate) fn matches(&self, candidate: &[u8]) -> bool {
        self.0.ct_eq(candidate).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// True when `candidate` equals any of `secrets`; every secret is compared (no early exit),
/// so timing does not reveal which one matched.
pub(crate) fn matches_any(secrets: &[Secret], candidate: &[u8]) -> bool {
    secrets
        .iter()
        .fold(false, |found, s| found | s.matches(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(v: &str) -> Secret {
        SecretSource::Inline(v.into())
            .resolve(Path::new("."))
            .expect("inline secret")
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = secret("hunter2");
        assert!(s.matches(b"hunter2"));
        assert!(!s.matches(b"hunter"));
        assert!(!s.matches(b"hunter22"));
        assert!(!s.matches(b"Hunter2"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn any_of_several_values_matches_for_rotation() {
        let list = [secret("old"), secret("new")];
        assert!(matches_any(&list, b"old"));
        assert!(matches_any(&list, b"new"));
        assert!(!matches_any(&list, b"other"));
    }

    #[test]
    fn debug_never_prints_the_value() {
        let s = secret("top-secret-value");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let src = SecretSource::Inline("top-secret-value".into());
        assert!(!format!("{src:?}").contains("top-secret"));
    }

    #[test]
    fn file_secret_is_read_relative_to_the_config_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("s.txt"), "value\n").expect("write");
        let s = SecretSource::File {
            file: "s.txt".into(),
        }
        .resolve(dir.path())
        .expect("resolves");
        assert_eq!(s.expose(), b"value");
    }

    #[test]
    fn missing_env_secret_names_the_variable() {
        let err = SecretSource::Env {
            env: "HOOKGATE_TEST_SURELY_UNSET".into(),
        }
        .resolve(Path::new("."))
        .expect_err("unset");
        assert!(err.to_string().contains("HOOKGATE_TEST_SURELY_UNSET"));
    }

    #[test]
    fn empty_secret_is_rejected() {
        assert!(matches!(
            SecretSource::Inline(String::new()).resolve(Path::new(".")),
            Err(SecretError::Empty)
        ));
    }
}
