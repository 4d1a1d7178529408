//! The on-disk copy of the last good fetch (`cache = "..."`): written atomically so a crash
//! or a full disk leaves either the old or the new body, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Distinguishes temp files of concurrent writers in one process (pid covers other processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `data` atomically: temp file in the same directory (so `rename` cannot
/// cross filesystems), fsync, rename over, fsync the directory so the rename itself is durable.
/// On error the temp file is removed and `path` is untouched. Blocking: call it from
/// `spawn_blocking` in async code.
pub(crate) fn store_cache(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let temp = temp_path(path, &dir)?;
    let result = write_synced(&temp, data).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&temp);
        return result;
    }
    sync_dir(&dir)
}

/// Reads the cache; `Ok(None)` when it does not exist yet (first run), any other error as is.
pub(crate) fn load_cache(path: &Path) -> io::Result<Option<Bytes>> {
    match crate::fsio::read(path) {
        Ok(data) => Ok(Some(Bytes::from(data))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// When the cached response was fetched: the cache is written right after each good fetch, so
/// its modification time (UNIX seconds) is that fetch's.
pub(crate) fn cached_at(path: &Path) -> Option<f64> {
    let modified = fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since.as_secs_f64())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_path(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "cache path has no file name")
    })?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp.{}.{n}", std::process::id()));
    Ok(dir.join(temp_name))
}

fn write_synced(temp: &Path, data: &[u8]) -> io::Result<()> {
    // create_new: never follow or clobber something an attacker pre-placed at the temp name.
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for fsync on Windows; rename durability is the OS's job.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_a_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ips.cache");
        store_cache(&path, b"1.2.3.0/24\n").expect("store");
        assert_eq!(
            load_cache(&path).expect("load").as_deref(),
            Some(&b"1.2.3.0/24\n"[..])
        );
    }

    #[test]
    fn replaces_an_existing_cache_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ips.cache");
        store_cache(&path, b"old, longer content\n").expect("store old");
        store_cache(&path, b"new\n").expect("store new");
        assert_eq!(fs::read(&path).expect("read"), b"new\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["ips.cache"]);
    }

    #[test]
    fn loads_none_when_the_cache_is_absent() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load_cache(&dir.path().join("missing")).expect("load"), None);
    }

    #[test]
    fn fails_when_the_cache_directory_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("ips.cache");
        assert!(store_cache(&path, b"x").is_err());
    }

    #[test]
    fn reports_a_directory_in_place_of_the_cache_as_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load_cache(dir.path()).is_err());
        // rename over a directory fails; the temp file must be cleaned up.
        let target = dir.path().join("sub");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("keep"), b"k").expect("write");
        assert!(store_cache(&target, b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).expect("read_dir").count(), 1);
    }
}
