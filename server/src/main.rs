//! `spated`: parse the configuration, load the catalog, start one executor per core.

use std::sync::Arc;

use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};
use spate_server::catalog::{CATALOG_FILE, Catalog};
use spate_server::config::{Config, init_logging};
use spate_server::core::Shared;
use spate_server::mesh::Mesh;
use spate_server::node;
use spate_server::{iterator, systemd};

fn main() {
    let config = Config::from_args().unwrap_or_else(|e| {
        eprintln!("spated: {e}");
        std::process::exit(2);
    });
    init_logging(&config.log_level);
    if let Err(e) = run(config) {
        tracing::error!("{e}");
        eprintln!("spated: {e}");
        std::process::exit(1);
    }
}

fn run(mut config: Config) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", config.data_dir.display()))?;
    // Every path the server opens is built from this one, so it is made absolute and free of
    // `.`, `..` and symlinks once: glommio opens relative paths against an invalid directory
    // descriptor (a relative `--data-dir`, the default `./spate-data` included, failed every
    // CreateStream with EBADF).
    config.data_dir = std::fs::canonicalize(&config.data_dir)
        .map_err(|e| format!("cannot resolve data directory {}: {e}", config.data_dir.display()))?;
    let data_dir = &config.data_dir;
    let catalog = match std::fs::read(data_dir.join(CATALOG_FILE)) {
        Ok(bytes) => Catalog::from_json(&bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Catalog::default(),
        Err(e) => return Err(format!("reading the catalog: {e}")),
    };
    remove_orphans(&config, &catalog);
    let iterator_key = iterator::load_or_create_key(&data_dir.join("node.key"))
        .map_err(|e| format!("node key: {e}"))?;
    let signals = systemd::install_signal_handlers().map_err(|e| format!("signals: {e}"))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let cores = config.cores;
    let listen = config.listen;
    let shared = Arc::new(Shared {
        config,
        iterator_key,
        catalog,
        signals,
        ready: ready_tx,
        opened: Default::default(),
        drained: Default::default(),
    });
    let mesh = (cores > 1).then(|| Arc::new(Mesh::new(cores, 1024)));
    let io_memory = shared.config.io_memory_bytes;
    let handles =
        LocalExecutorPoolBuilder::new(PoolPlacement::MaxSpread(cores, CpuSet::online().ok()))
            .io_memory(io_memory)
            .name("spate-core")
            .on_all_shards(move || {
                let shared = shared.clone();
                let mesh = mesh.clone();
                async move {
                    let ready = shared.ready.clone();
                    let result = node::run(shared, mesh).await;
                    if let Err(e) = &result {
                        let _ = ready.send(Err(e.clone()));
                    }
                    result
                }
            })
            .map_err(|e| format!("starting executors: {e}"))?;
    // Ready once every core listens.
    let mut ready = 0;
    while ready < cores {
        match ready_rx.recv() {
            Ok(Ok(_)) => ready += 1,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a core exited during startup".into()),
        }
    }
    tracing::info!("spated listening on http://{listen} with {cores} cores");
    systemd::notify_ready();
    let mut failure = None;
    for result in handles.join_all() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(format!("executor: {e}")),
        }
    }
    systemd::notify_stopping();
    match failure {
        Some(e) => Err(e),
        None => {
            tracing::info!("spated stopped");
            Ok(())
        }
    }
}

/// Removes stream directories the catalog does not know (a crash between creating logs and
/// committing the catalog, or during a deletion).
fn remove_orphans(config: &Config, catalog: &Catalog) {
    let streams = config.data_dir.join("streams");
    let Ok(entries) = std::fs::read_dir(&streams) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(incarnation) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else { continue };
        match catalog.stream_by_incarnation(incarnation) {
            None => {
                tracing::info!("removing orphan stream directory {}", entry.path().display());
                let _ = std::fs::remove_dir_all(entry.path());
            }
            Some(stream) => {
                // Shard directories the catalog does not list (a reshard that never committed).
                if let Ok(shards) = std::fs::read_dir(entry.path()) {
                    for shard in shards.flatten() {
                        let index = shard.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
                        if index.is_none_or(|i| stream.shard(i).is_none()) {
                            let _ = std::fs::remove_dir_all(shard.path());
                        }
                    }
                }
            }
        }
    }
}
