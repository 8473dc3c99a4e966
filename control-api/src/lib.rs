//! IronVS control plane: the desired configuration, its REST API, Prometheus metrics and the
//! saved state file; the `ironvsadm` binary speaks ipvsadm over the API.
//!
//! The daemon implements [`Dataplane`] and calls [`ControlPlane::start`] (or [`serve`]) on its
//! own tokio runtime. Every accepted change is validated, saved atomically, then published with
//! [`Dataplane::apply`]; a refused change leaves everything as it was.
#![deny(unsafe_code)]

pub mod api;
pub mod baseline;
pub mod config;
pub mod dataplane;
pub mod estimator;
pub mod metrics;
pub mod persist;
pub mod store;
pub mod validate;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use baseline::Baselines;
pub use config::{Config, RealServerEntry, ServiceEntry};
pub use dataplane::{
    ConnEntry, ConnFilter, ConnPage, ConnTableStats, Counters, Dataplane, MemoryDataplane,
    PortStats, RealServerStats, ServiceStats, StatsSnapshot, WorkerStats,
};
pub use estimator::{Estimator, Rates};
pub use persist::PersistError;
pub use store::{Store, StoreError};
pub use validate::ConfigError;

/// Default listen address: localhost only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9180";

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The saved state could not be read.
    #[error(transparent)]
    State(#[from] PersistError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

/// How to run the control plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address of the REST API (default [`DEFAULT_LISTEN`]).
    pub listen: SocketAddr,
    /// Bearer token required for changes, if any.
    pub token: Option<String>,
    /// Where the configuration is saved and restored from, if anywhere.
    pub state_file: Option<PathBuf>,
}

/// A running control plane: REST server and rate estimator tasks.
pub struct ControlPlane {
    local_addr: SocketAddr,
    store: Arc<Store>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<io::Result<()>>,
    estimator: JoinHandle<()>,
}

impl ControlPlane {
    /// Restores the saved state, publishes it, binds the listener and spawns the server and the
    /// rate estimator on the current tokio runtime.
    pub async fn start(opts: Options, dp: Arc<dyn Dataplane>) -> Result<ControlPlane, StartError> {
        let store = Arc::new(Store::open(opts.state_file, dp)?);
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: opts.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: opts.listen,
            source,
        })?;
        let rates = Arc::new(Mutex::new(Estimator::default()));
        let state = api::AppState {
            store: store.clone(),
            rates: rates.clone(),
            token: opts.token.map(Arc::from),
        };
        let estimator = tokio::spawn(run_estimator(store.clone(), rates));
        let (tx, rx) = oneshot::channel::<()>();
        let app = api::router(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(ControlPlane {
            local_addr,
            store,
            shutdown: Some(tx),
            server,
            estimator,
        })
    }

    /// The address the API listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Stops accepting requests, finishes those in flight and stops the estimator.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.estimator.abort();
        self.server.await.unwrap_or(Ok(()))
    }

    /// Runs until the server stops.
    pub async fn wait(mut self) -> io::Result<()> {
        let res = (&mut self.server).await.unwrap_or(Ok(()));
        self.estimator.abort();
        res
    }
}

async fn run_estimator(store: Arc<Store>, rates: Arc<Mutex<Estimator>>) {
    let mut tick = tokio::time::interval(estimator::INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snap = store.dataplane().stats();
        rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(&snap);
    }
}

/// Runs the control plane until its server stops: [`ControlPlane::start`] then wait.
pub async fn serve(
    addr: SocketAddr,
    token: Option<String>,
    state_file: Option<PathBuf>,
    dataplane: Arc<dyn Dataplane>,
) -> Result<(), StartError> {
    let cp = ControlPlane::start(
        Options {
            listen: addr,
            token,
            state_file,
        },
        dataplane,
    )
    .await?;
    let addr = cp.local_addr();
    cp.wait()
        .await
        .map_err(|source| StartError::Bind { addr, source })
}
