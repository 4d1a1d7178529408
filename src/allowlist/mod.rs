//! Allow lists: pinned thumbprints and source networks, from inline entries, files and a remote
//! URL (`remote`). The sets in force, merged, are `admission::Admission`.

pub(crate) mod networks;
pub(crate) mod remote;
pub(crate) mod thumbprint;

use std::path::{Path, PathBuf};
use std::str::FromStr;

pub(crate) use networks::{Network, SourceNetworks};
pub(crate) use thumbprint::{PinSet, Thumbprint};

/// A list file line that does not parse rejects the whole file, naming file and line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Reads a list file: one entry a line, `#` starts a comment, blank lines are ignored.
pub(crate) fn load_list_file<T>(path: &Path) -> Result<Vec<T>, ListFileError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text = crate::fsio::read_to_string(path).map_err(|source| ListFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_list_text(&text).map_err(|(line, message)| ListFileError::Line {
        path: path.to_owned(),
        line,
        message,
    })
}

/// Parses list text; the error is (1-based line, message).
pub(crate) fn parse_list_text<T>(text: &str) -> Result<Vec<T>, (usize, String)>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    list_lines(text)
        .map(|(line, entry)| entry.parse().map_err(|e: T::Err| (line, e.to_string())))
        .collect()
}

/// The entries of list text with their 1-based line numbers: one a line, `#` starts a comment,
/// whitespace trimmed, blank lines skipped. Files and remote text bodies are read by this alone.
pub(crate) fn list_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(idx, raw)| {
        let entry = raw.split('#').next().unwrap_or_default().trim();
        (!entry.is_empty()).then_some((idx + 1, entry))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_text_skips_comments_and_blank_lines() {
        let text = "# sender's ranges\n\n203.0.113.0/24  # eu\n  198.51.100.7\n";
        let nets: Vec<Network> = parse_list_text(text).expect("valid");
        assert_eq!(nets.len(), 2);
    }

    #[test]
    fn one_bad_line_rejects_the_file_naming_the_line() {
        let text = "203.0.113.0/24\nnot-an-ip\n";
        let err = parse_list_text::<Network>(text).expect_err("bad line");
        assert_eq!(err.0, 2);
        assert!(err.1.contains("not-an-ip"));
    }

    #[test]
    fn list_file_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pins.txt");
        std::fs::write(&path, "abcd\n").expect("write");
        let err = load_list_file::<Thumbprint>(&path).expect_err("bad pin");
        let msg = err.to_string();
        assert!(msg.contains("pins.txt:1:"), "{msg}");
    }
}
