//! Start-up, shared by `hookgate run` and `hookgate demo`: the first load (off the thread,
//! under the load limit), logging, the runtime, binding the listeners (or taking the ones systemd
//! passed, [`crate::activation`]), opening the store and spawning every task (server, admin,
//! reload, deliveries, signals). A start-up error is a message for the command to print and exit
//! 1 with.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::activation::Passed;
use crate::admission::{Admission, AdmissionCell};
use crate::config::Config;
use crate::logging::{self, LogFormat};
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;
use crate::{admin, reload, server, Gate};

/// `--log-format` / `--log-level` from the command line, which override `[log]`.
#[derive(Debug, Default, Clone)]
pub struct LogOverrides {
    pub format: Option<String>,
    pub level: Option<String>,
}

/// Ends the runtime without waiting for a load still stuck in a blocking read (a reload of a
/// secret on a hung mount, see `fsio`): the drain is over, nothing else is left to finish.
pub(crate) fn stop_runtime(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
}

/// The first snapshot, and the admission cell its TLS verifier reads (the gate's from then on).
pub(crate) struct Loaded {
    pub snapshot: Snapshot,
    admission: AdmissionCell,
}

/// Loads and builds the first snapshot (off this thread, under the load time limit).
pub(crate) fn load(
    path: &Path,
    metrics: &Arc<Metrics>,
) -> Result<Loaded, crate::config::ConfigError> {
    let owned = path.to_owned();
    let metrics = metrics.clone();
    let admission = Admission::default().into_cell();
    let cell = admission.clone();
    let snapshot = crate::fsio::bounded(crate::fsio::LOAD_LIMIT, move || {
        Config::load(&owned).and_then(|c| Snapshot::build(c, &cell, &metrics))
    })
    .map_err(|stuck| crate::config::ConfigError::stuck(path, &stuck))??;
    Ok(Loaded {
        snapshot,
        admission,
    })
}

pub(crate) fn init_logging(config: &Config, log: &LogOverrides) -> Result<(), String> {
    let format = match &log.format {
        Some(f) => f.parse::<LogFormat>().map_err(|e| e.to_string())?,
        None => config.log_format,
    };
    let level = log.level.as_deref().unwrap_or(&config.log_level);
    logging::init(format, level).map_err(|e| e.to_string())
}

/// One worker thread (`TOKIO_WORKER_THREADS=1`, or one CPU) runs on tokio's current-thread
/// scheduler, which skips the work-stealing machinery; otherwise one worker per CPU.
pub(crate) fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

/// A started gate: its listeners are bound and its tasks spawned.
pub(crate) struct Running {
    pub address: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
    /// The delivery loop of the store, if there is one.
    deliver: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits until the server and the deliveries have drained after SIGTERM/SIGINT.
    pub(crate) async fn wait(self) {
        let _ = self.server.await;
        if let Some(deliver) = self.deliver {
            let _ = deliver.await;
        }
        tracing::info!("stopped");
    }
}

/// Binds the listeners that `passed` (socket activation) does not give (a port in use is a
/// start-up error) and spawns every task.
pub(crate) async fn start(
    loaded: Loaded,
    metrics: Arc<Metrics>,
    config_path: PathBuf,
    passed: Passed,
) -> Result<Running, String> {
    let Loaded {
        snapshot,
        admission,
    } = loaded;
    if passed.any() {
        let from = |p: &Option<crate::activation::PassedListener>, key: &str| {
            p.as_ref()
                .map_or_else(|| format!("{key} (bound)"), |p| format!("fd {}", p.fd))
        };
        tracing::info!(
            listen = from(&passed.listen, "listen.address"),
            admin = from(&passed.admin, "admin.address"),
            "socket activation (LISTEN_FDS): serving on the passed sockets; the addresses the \
             config gives them are not bound"
        );
    }
    let listener = match passed.listen {
        Some(p) => TcpListener::from_std(p.listener)
            .map_err(|e| format!("fd {} (LISTEN_FDS, listen): {e}", p.fd))?,
        None => {
            let addr = snapshot.config.listen.address;
            server::bind(addr, snapshot.config.listen.max_connections)
                .map_err(|e| format!("cannot listen on {addr} (listen.address): {e}"))?
        }
    };
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_listener = match (passed.admin, snapshot.config.admin) {
        (Some(p), Some(_)) => Some(
            TcpListener::from_std(p.listener)
                .map_err(|e| format!("fd {} (LISTEN_FDS, admin): {e}", p.fd))?,
        ),
        (Some(p), None) => {
            return Err(format!(
                "fd {} is passed as the admin socket (LISTEN_FDS), but admin.address = \"\" \
                 disables the admin listener",
                p.fd
            ))
        }
        (None, Some(addr)) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (admin.address): {e}"))?,
        ),
        (None, None) => None,
    };
    let admin_address = admin_listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let store = match &snapshot.config.store {
        Some(s) => Some(Arc::new(open_store(s, &snapshot.config.dir).await?)),
        None => None,
    };
    let gate = Arc::new(Gate::new(snapshot, admission, metrics, store));
    crate::refresh::sync(&gate);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Signals and the watcher first: once /healthz and /readyz answer, neither a signal nor a
    // file change can be missed.
    reload::spawn(gate.clone(), config_path, shutdown_rx.clone()).await;
    spawn_signal_handler(gate.clone(), shutdown_tx);
    if let Some(l) = admin_listener {
        tokio::spawn(admin::serve(l, gate.clone()));
    }
    tracing::info!(address = %address, admin = admin_address, version = crate::VERSION, "listening");
    let deliver = gate.store.clone().map(|store| {
        tokio::spawn(crate::deliver::run(
            gate.clone(),
            store,
            shutdown_rx.clone(),
        ))
    });
    let server = tokio::spawn(server::serve(listener, gate, shutdown_rx));
    Ok(Running {
        address,
        server,
        deliver,
    })
}

/// Opens `store.path` or connects to `store.url` (resolved now: a secret is read at start).
async fn open_store(
    s: &crate::config::StoreConfig,
    dir: &Path,
) -> Result<crate::store::Store, String> {
    use crate::config::StoreBackend;
    use crate::store::Store;
    match &s.path {
        StoreBackend::Path(path) => {
            Store::open(path, s.max_bytes).map_err(|e| format!("{e} (store.path)"))
        }
        StoreBackend::Url(source) => {
            let url = source.resolve(dir).map_err(|e| format!("store.url: {e}"))?;
            Store::open_url(&url, dir, s.max_bytes)
                .await
                .map_err(|e| format!("{e} (store.url)"))
        }
    }
}

fn spawn_signal_handler(gate: Arc<Gate>, shutdown: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install SIGTERM/SIGINT handlers");
        return;
    };
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        // Readiness fails first, so load balancers stop sending while we drain.
        gate.draining.store(true, Ordering::Release);
        let grace = gate.snapshot().config.listen.shutdown_grace;
        tracing::info!(signal = name, grace_s = grace.as_secs_f64(), "draining");
        let _ = shutdown.send(true);
    });
}
