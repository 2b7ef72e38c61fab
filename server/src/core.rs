//! One core's runtime: the `Core` every task on that core holds (`Rc<Core>`).
//!
//! It owns the core's shard logs (`OwnedShard`), its catalog snapshot, its metrics, clock,
//! iterator keys and shutdown signal, and its ends of the channel mesh. It sends messages
//! (`msg::Msg`) to other cores and awaits their replies (`call`, `send`); it does not say what a
//! message does: the handler that `node::run` installs (`node::serve`) serves every message,
//! whether it came from a peer or from this core. The services that run on a core (the
//! controller on core 0, the fan-out subscriptions) belong to that handler, not to `Core`.
//!
//! Cross-core traffic goes through the channel mesh (`mesh.rs`), replies on oneshot channels,
//! with one other path: fan-out events (see `fanout.rs`). A shard's log is touched only by its
//! owning core, so the data path takes no locks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use engine::notify::Notify;
use engine::{Clock, GlommioStorage, ShardLog};
use futures_channel::oneshot;
use futures_lite::future::BoxedLocal;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::http::ShutdownSignal;
use crate::iterator::IteratorKeys;
use crate::mesh::Senders;
use crate::metrics::CoreMetrics;
use crate::msg::{AdminMsg, Msg};
use crate::quota::{OperationLimits, ShardQuotas};

/// What every core shares: set up once by `main`.
pub struct Shared {
    pub config: Config,
    pub iterator_key: [u8; 32],
    pub catalog: Catalog,
    pub signals: crate::systemd::SignalFlag,
    pub ready: std::sync::mpsc::Sender<Result<usize, String>>,
    /// Cores that have opened their shards. No core serves requests before all have: a request
    /// may arrive at any core and be routed to any other.
    pub opened: std::sync::atomic::AtomicUsize,
    /// Cores that have stopped serving HTTP at shutdown. No core closes its logs before all
    /// have (or the shutdown timeout passes): a peer's last requests may still need them.
    pub drained: std::sync::atomic::AtomicUsize,
}

pub struct OwnedShard {
    pub log: Rc<ShardLog<GlommioStorage>>,
    pub quotas: ShardQuotas,
    pub stream: String,
    pub shard_id: String,
}

/// Serves one message on this core (installed by `node::run`: `node::serve`).
pub type Handler = Rc<dyn Fn(Rc<Core>, Msg) -> BoxedLocal<()>>;

/// Everything a core is made of; `Core::new` takes it.
pub struct Parts {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub senders: Option<Senders<Msg>>,
    pub clock: Rc<dyn Clock>,
    pub handler: Handler,
}

pub struct Core {
    id: usize,
    cores: usize,
    shared: Arc<Shared>,
    catalog: RefCell<Arc<Catalog>>,
    /// Woken whenever a newer catalog is installed (writers waiting out a reshard).
    catalog_installed: Notify,
    shards: RefCell<HashMap<(u64, u32), Rc<OwnedShard>>>,
    senders: Option<Senders<Msg>>,
    handler: Handler,
    metrics: CoreMetrics,
    keys: IteratorKeys,
    clock: Rc<dyn Clock>,
    shutdown: ShutdownSignal,
    /// Control-plane rate limits for the read-only operations this core runs.
    operation_limits: OperationLimits,
    request_counter: Cell<u64>,
}

impl Core {
    pub fn new(parts: Parts) -> Core {
        let Parts { id, shared, senders, clock, handler } = parts;
        let cores = shared.config.cores;
        Core {
            id,
            cores,
            catalog: RefCell::new(Arc::new(shared.catalog.clone())),
            catalog_installed: Notify::default(),
            shards: RefCell::new(HashMap::new()),
            senders,
            handler,
            metrics: CoreMetrics::default(),
            keys: IteratorKeys::new(shared.iterator_key),
            clock,
            shutdown: ShutdownSignal::new(),
            operation_limits: OperationLimits::new(
                shared.config.quotas_enabled,
                1.0 / cores as f64,
            ),
            request_counter: Cell::new(0),
            shared,
        }
    }

    /// This core's id (0 runs the controller).
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many cores the server runs.
    pub fn cores(&self) -> usize {
        self.cores
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// This core's catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Woken whenever a newer catalog is installed.
    pub fn catalog_installed(&self) -> &Notify {
        &self.catalog_installed
    }

    pub fn metrics(&self) -> &CoreMetrics {
        &self.metrics
    }

    pub fn keys(&self) -> &IteratorKeys {
        &self.keys
    }

    pub fn clock(&self) -> &Rc<dyn Clock> {
        &self.clock
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn shutdown(&self) -> &ShutdownSignal {
        &self.shutdown
    }

    pub fn operation_limits(&self) -> &OperationLimits {
        &self.operation_limits
    }

    /// A fresh request id (per core, unique within the process run).
    pub fn request_id(&self) -> String {
        let n = self.request_counter.get() + 1;
        self.request_counter.set(n);
        let salt = (self.shared.iterator_key[0] as u64) << 8 | self.shared.iterator_key[1] as u64;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (self.now_ms() as u64) & 0xffff_ffff,
            self.id,
            salt & 0xfff,
            (n >> 48) & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }

    /// Sends `msg` to `core` (or handles it here) and awaits the reply.
    pub async fn call<T>(
        self: &Rc<Self>,
        core: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Msg,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let msg = make(tx);
        self.send(core, msg).await;
        rx.await.ok()
    }

    /// Delivers a message without waiting for its reply.
    pub async fn send(self: &Rc<Self>, core: usize, msg: Msg) {
        if core == self.id || self.senders.is_none() {
            let me = self.clone();
            glommio::spawn_local((self.handler)(me, msg)).detach();
        } else if let Some(senders) = &self.senders
            && senders.send_to(core, msg).await.is_err()
        {
            tracing::warn!(core, "peer core is gone; message dropped");
        }
    }

    pub fn owned(&self, incarnation: u64, shard: u32) -> Option<Rc<OwnedShard>> {
        self.shards.borrow().get(&(incarnation, shard)).cloned()
    }

    /// Every shard this core owns.
    pub fn owned_shards(&self) -> Vec<((u64, u32), Rc<OwnedShard>)> {
        self.shards.borrow().iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Takes ownership of an opened shard log.
    pub fn adopt(&self, incarnation: u64, index: u32, shard: OwnedShard) {
        self.shards.borrow_mut().insert((incarnation, index), Rc::new(shard));
    }

    /// Gives up the shards `doomed` selects; the caller closes their logs.
    pub fn release(&self, doomed: impl Fn(&(u64, u32)) -> bool) -> Vec<Rc<OwnedShard>> {
        let mut shards = self.shards.borrow_mut();
        let keys: Vec<(u64, u32)> = shards.keys().filter(|k| doomed(k)).copied().collect();
        keys.iter().filter_map(|k| shards.remove(k)).collect()
    }

    pub fn install_catalog(&self, catalog: Arc<Catalog>) {
        let mut current = self.catalog.borrow_mut();
        if catalog.version >= current.version {
            *current = catalog;
            drop(current);
            self.catalog_installed.notify_all();
        }
    }

    /// Every core's metrics, merged into Prometheus text.
    pub async fn scrape(self: &Rc<Self>) -> String {
        let mut snapshots = Vec::with_capacity(self.cores);
        for core in 0..self.cores {
            if let Some(s) = self.call(core, |reply| Msg::Admin(AdminMsg::Metrics { reply })).await
            {
                snapshots.push(s);
            }
        }
        crate::metrics::render(&snapshots)
    }

    /// Publishes a catalog snapshot to every core and waits until all have installed it.
    pub async fn publish(self: &Rc<Self>, catalog: Arc<Catalog>) {
        self.install_catalog(catalog.clone());
        for core in 0..self.cores {
            if core != self.id {
                let catalog = catalog.clone();
                self.call(core, |reply| Msg::Admin(AdminMsg::Publish { catalog, reply })).await;
            }
        }
    }
}
