//! Reading the configuration and every file it names under a time limit, off the runtime's
//! threads: a read that hangs (a hung NFS or FUSE mount, a FIFO nobody writes) must not stop
//! the listeners, `/metrics` or later reloads. The loaders read through [`read`] and
//! [`read_to_string`], which note the path, so a read that does not finish is reported by name.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long loading a configuration (every file and secret it names) may take.
pub(crate) const LOAD_LIMIT: Duration = Duration::from_secs(10);

type Noted = Arc<Mutex<Option<PathBuf>>>;

thread_local! {
    /// The load running on this thread, if it runs under [`bounded`].
    static LOAD: RefCell<Option<Noted>> = const { RefCell::new(None) };
}

/// A load did not finish within its limit; `path` is the file it was reading, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stuck {
    pub path: Option<PathBuf>,
    pub limit: Duration,
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(
                f,
                "reading {} did not finish within {:?} (a hung mount or a FIFO?)",
                p.display(),
                self.limit
            ),
            None => write!(f, "loading did not finish within {:?}", self.limit),
        }
    }
}

/// `std::fs::read`, noted for [`bounded`].
pub(crate) fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    note(path);
    std::fs::read(path)
}

/// `std::fs::read_to_string`, noted for [`bounded`].
pub(crate) fn read_to_string(path: &Path) -> std::io::Result<String> {
    note(path);
    std::fs::read_to_string(path)
}

fn note(path: &Path) {
    LOAD.with(|load| {
        if let Some(noted) = &*load.borrow() {
            if let Ok(mut p) = noted.lock() {
                *p = Some(path.to_owned());
            }
        }
    });
}

/// Runs `load` on a thread of its own and waits at most `limit` for it. A load that does not
/// finish is left to its thread (a read stuck in the kernel cannot be cancelled) and reported.
pub(crate) fn bounded<T: Send + 'static>(
    limit: Duration,
    load: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stuck> {
    let (noted, run) = prepare(load);
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("hookgate-load".into())
        .spawn(move || {
            let _ = tx.send(run());
        });
    if spawned.is_err() {
        return Err(stuck(&noted, limit));
    }
    rx.recv_timeout(limit).map_err(|_| stuck(&noted, limit))
}

/// [`bounded`] for async callers: the load runs on tokio's blocking pool.
pub(crate) async fn bounded_async<T: Send + 'static>(
    limit: Duration,
    load: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stuck> {
    let (noted, run) = prepare(load);
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(run)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) | Err(_) => Err(stuck(&noted, limit)),
    }
}

fn prepare<T>(load: impl FnOnce() -> T) -> (Noted, impl FnOnce() -> T) {
    let noted: Noted = Arc::default();
    let mine = noted.clone();
    let run = move || {
        LOAD.with(|l| *l.borrow_mut() = Some(mine));
        let value = load();
        LOAD.with(|l| *l.borrow_mut() = None);
        value
    };
    (noted, run)
}

fn stuck(noted: &Noted, limit: Duration) -> Stuck {
    Stuck {
        path: noted.lock().ok().and_then(|p| p.clone()),
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_hangs_is_reported_by_path_within_the_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("secret");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let path = fifo.clone();
        let started = std::time::Instant::now();
        let result = bounded(Duration::from_millis(300), move || read(&path).map(|_| ()));
        assert!(started.elapsed() < Duration::from_secs(2));
        let err = result.expect_err("a FIFO without a writer never finishes");
        assert_eq!(err.path.as_deref(), Some(fifo.as_path()));
        assert!(
            err.to_string().contains("did not finish within 300ms"),
            "{err}"
        );
        // Let the stuck thread finish, so the test leaves nothing behind.
        let _ = std::fs::write(&fifo, b"x");
    }

    #[test]
    fn a_load_that_finishes_returns_its_value() {
        assert_eq!(bounded(LOAD_LIMIT, || 7), Ok(7));
    }
}
