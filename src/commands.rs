//! The CLI commands behind `main.rs`: `run`, `check`, `thumbprint` (and `demo` in [`crate::demo`]).
//! Each returns the process exit code of SPEC §1: 0 clean, 1 configuration or start-up error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::start::{build_runtime, init_logging, load, start, stop_runtime};

pub use crate::start::LogOverrides;

/// `hookgate check`: builds everything `run` would and prints what is enforced.
pub fn check(path: &Path) -> ExitCode {
    let loaded = load(path, &Arc::new(Metrics::new(crate::VERSION))).and_then(|loaded| {
        let mut snapshot = loaded.snapshot;
        // SPEC §9.8: the store must open (here: the directory is writable, the database answers).
        if let Some(warning) = probe_store(&snapshot.config)? {
            snapshot.warnings.push(warning);
        }
        Ok(snapshot)
    });
    match loaded {
        Ok(snapshot) => {
            for w in &snapshot.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", crate::summary::summary(&snapshot));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// How long `check` waits for the database of `store.url` to answer.
const STORE_PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `check`'s store probe; returns a warning for a `store.url` written inline.
fn probe_store(config: &Config) -> Result<Option<String>, crate::config::ConfigError> {
    use crate::config::StoreBackend;
    use crate::store::Store;
    match config.store.as_ref().map(|s| &s.path) {
        None => Ok(None),
        Some(StoreBackend::Path(dir)) => Store::probe(dir)
            .map(|()| None)
            .map_err(|e| config.error("store.path", e.to_string())),
        Some(StoreBackend::Url(source)) => {
            let url = source
                .resolve(&config.dir)
                .map_err(|e| config.error("store.url", e.to_string()))?;
            Store::probe_url(&url, &config.dir, STORE_PROBE_LIMIT)
                .map_err(|e| config.error("store.url", e.to_string()))?;
            Ok(source.is_inline().then(|| {
                "store.url is written inline in the config file; prefer { env = \"NAME\" } or { file = \"PATH\" }".to_owned()
            }))
        }
    }
}

/// `hookgate run`: serves until SIGTERM/SIGINT, then drains and exits 0.
pub fn run(path: &Path, log: &LogOverrides) -> ExitCode {
    // First, before hookgate opens a descriptor of its own (see `activation`).
    let passed = match crate::activation::take() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let metrics = Arc::new(Metrics::new(crate::VERSION));
    let loaded = match load(path, &metrics) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for w in &loaded.snapshot.warnings {
        eprintln!("warning: {w}");
    }
    if let Err(e) = init_logging(&loaded.snapshot.config, log) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let runtime = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        match start(loaded, metrics, path.to_owned(), passed).await {
            Ok(running) => {
                running.wait().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    });
    stop_runtime(runtime);
    code
}

pub use crate::store_cli::StoreAction;

/// `hookgate store ...`: see [`crate::store_cli`].
pub fn store(config: &Path, action: StoreAction) -> ExitCode {
    crate::store_cli::run(config, action)
}

/// `hookgate demo`: see [`crate::demo`].
pub fn demo(config: Option<PathBuf>, store: bool, log: &LogOverrides) -> ExitCode {
    crate::demo::run(config, store, log)
}

/// `hookgate thumbprint FILE...`: one line per certificate.
pub fn thumbprint(files: &[PathBuf]) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for file in files {
        match crate::tls::pem::load_certs(file) {
            Ok(certs) => {
                for der in certs {
                    match crate::tls::describe::line(&der) {
                        Ok(line) => println!("{} {line}", file.display()),
                        Err(e) => {
                            eprintln!("error: {}: {e}", file.display());
                            status = ExitCode::from(1);
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                status = ExitCode::from(1);
            }
        }
    }
    status
}
