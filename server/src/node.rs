//! A core's life and its message handling: `run` starts a core (joins the mesh, opens the
//! shards placed on it, serves HTTP through `edge.rs`, drains at shutdown) and `serve` is the
//! one `match` over every cross-core message (`msg::Msg`), routing it to the module that does
//! the work: `owner.rs` (shard logs), `control/` (the controller, core 0), `fanout.rs`.
//!
//! The services a core runs besides its shards (the controller on core 0, the fan-out
//! subscriptions of the shards it owns) live here in `Services`, handed to `serve`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use engine::{Clock, SystemClock};

use crate::catalog::StreamStatus;
use crate::control::Controller;
use crate::core::{Core, Handler, Parts, Shared};
use crate::fanout::Subscriptions;
use crate::mesh::Mesh;
use crate::msg::{AdminMsg, ControlMsg, DataMsg, FanoutMsg, Msg};
use crate::{owner, placement};

/// What a core runs besides its shards.
pub struct Services {
    /// On core 0 only.
    controller: Option<Rc<Controller>>,
    subscriptions: Rc<Subscriptions>,
}

/// Serves one message on this core, whether a peer or this core sent it.
pub async fn serve(core: Rc<Core>, services: Rc<Services>, msg: Msg) {
    match msg {
        Msg::Data(DataMsg::Append { incarnation, shard, records, reply }) => {
            let _ = reply.send(owner::append(&core, incarnation, shard, records).await);
        }
        Msg::Data(DataMsg::Read { incarnation, shard, offset, limit, reply }) => {
            let _ = reply.send(owner::read(&core, incarnation, shard, offset, limit));
        }
        Msg::Data(DataMsg::Position { incarnation, shard, query, charge_iterator, reply }) => {
            let _ = reply.send(owner::position(&core, incarnation, shard, query, charge_iterator));
        }
        Msg::Control(ControlMsg::Request { request, reply }) => {
            let answer = match &services.controller {
                Some(controller) => crate::control::execute(&core, controller, *request).await,
                None => Err(spate_proto::ApiError::internal(
                    "control request reached a non-controller core",
                )),
            };
            let _ = reply.send(answer);
        }
        Msg::Control(ControlMsg::Reclaim { incarnation, shards, reply }) => {
            if let Some(controller) = &services.controller {
                crate::control::reclaim_shards(&core, controller, incarnation, &shards).await;
            }
            let _ = reply.send(());
        }
        Msg::Fanout(FanoutMsg::Subscribe(request)) => {
            crate::fanout::start_on_owner(&core, &services.subscriptions, *request).await;
        }
        Msg::Fanout(FanoutMsg::EndConsumer { incarnation, consumer, reply }) => {
            services.subscriptions.end_consumer(incarnation, &consumer);
            let _ = reply.send(());
        }
        Msg::Admin(AdminMsg::Open { shards, reply }) => {
            let _ = reply.send(owner::open_shards(&core, shards).await);
        }
        Msg::Admin(AdminMsg::Seal { incarnation, shard, reply }) => {
            let _ = reply.send(owner::seal(&core, incarnation, shard).await);
        }
        Msg::Admin(AdminMsg::Unseal { incarnation, shard, reply }) => {
            let _ = reply.send(owner::unseal(&core, incarnation, shard).await);
        }
        Msg::Admin(AdminMsg::DropStream { incarnation, reply }) => {
            // End live subscriptions first: they send their error event and stop.
            services.subscriptions.end_stream(incarnation);
            owner::drop_stream(&core, incarnation).await;
            let _ = reply.send(());
        }
        Msg::Admin(AdminMsg::DropShards { incarnation, shards, reply }) => {
            owner::drop_shards(&core, incarnation, &shards).await;
            let _ = reply.send(());
        }
        Msg::Admin(AdminMsg::Publish { catalog, reply }) => {
            core.install_catalog(catalog);
            let _ = reply.send(());
        }
        Msg::Admin(AdminMsg::Metrics { reply }) => {
            let _ = reply.send(core.metrics().snapshot(core.id()));
        }
        Msg::Admin(AdminMsg::Stop { reply }) => {
            core.shutdown().trigger();
            let _ = reply.send(());
        }
    }
}

/// Runs one core until shutdown: joins the mesh, opens its shards, serves HTTP.
pub async fn run(shared: Arc<Shared>, mesh: Option<Arc<Mesh<Msg>>>) -> Result<(), String> {
    let (id, senders, receivers) = match mesh {
        Some(mesh) => {
            let (senders, receivers) = mesh.join().await?;
            (senders.peer_id(), Some(senders), Some(receivers))
        }
        None => (0, None, None),
    };
    let cores = shared.config.cores;
    let clock: Rc<dyn Clock> = match crate::failpoint::test_clock_offset_ms() {
        Some(offset_ms) => Rc::new(engine::OffsetClock { offset_ms }),
        None => Rc::new(SystemClock),
    };
    let services = Rc::new(Services {
        controller: (id == 0).then(|| {
            Rc::new(Controller::new(shared.catalog.clone(), shared.config.quotas_enabled))
        }),
        subscriptions: Rc::new(Subscriptions::default()),
    });
    let handler: Handler = {
        let services = services.clone();
        Rc::new(move |core, msg| Box::pin(serve(core, services.clone(), msg)))
    };
    let core = Rc::new(Core::new(Parts { id, shared: shared.clone(), senders, clock, handler }));
    // Serve peers: one task per incoming channel, one task per message (bounded).
    let inflight = Rc::new(glommio::sync::Semaphore::new(8192));
    if let Some(receivers) = receivers {
        for stream in receivers {
            let core = core.clone();
            let services = services.clone();
            let inflight = inflight.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = stream.recv().await {
                    let Ok(permit) = inflight.acquire_static_permit(1).await else { break };
                    let core = core.clone();
                    let services = services.clone();
                    glommio::spawn_local(async move {
                        serve(core, services, msg).await;
                        drop(permit);
                    })
                    .detach();
                }
            })
            .detach();
        }
    }
    // Open the shards placed on this core (open and closed: closed ones stay readable).
    let catalog = core.catalog();
    // Recover this core's shards concurrently: their I/O overlaps in io_uring.
    let opening: Vec<_> = catalog
        .streams
        .values()
        .filter(|s| s.status != StreamStatus::Deleting)
        .flat_map(|s| s.shards.iter().map(move |shard| (s.incarnation, shard)))
        .filter(|&(_, shard)| placement::owner(shard, cores) == id)
        .map(|(incarnation, shard)| {
            let index = shard.index;
            let core = core.clone();
            glommio::spawn_local(async move { owner::open_shard(&core, incarnation, index).await })
        })
        .collect();
    for task in opening {
        task.await?;
    }
    for stream in catalog.streams.values() {
        if stream.status == StreamStatus::Deleting {
            continue;
        }
        for shard in &stream.shards {
            if placement::owner(shard, cores) == id {
                let Some(owned) = core.owned(stream.incarnation, shard.index) else { continue };
                match (shard.ending_offset, owned.log.sealed()) {
                    // Closed in the catalog: the log was sealed before the commit; idempotent.
                    (Some(_), _) => {
                        owned.log.seal().await.map_err(|e| e.to_string())?;
                        core.metrics()
                            .shard(&owned.stream, &owned.shard_id, |c| c.open = Some(false));
                    }
                    // Sealed on disk but open in the catalog: a reshard crashed before its
                    // catalog commit. The catalog is the truth; reopen the log.
                    (None, Some(_)) => owned.log.unseal().await.map_err(|e| e.to_string())?,
                    (None, None) => {}
                }
            }
        }
    }
    // Bridge process signals to this core's shutdown.
    {
        let signals = shared.signals.clone();
        let shutdown = core.shutdown().clone();
        glommio::spawn_local(async move {
            signals.wait().await;
            shutdown.trigger();
        })
        .detach();
    }
    owner::spawn_maintenance(&core);
    // Startup barrier: a core that listened before its peers had opened their shards would
    // route requests to shards that are not there yet ("does not exist" right after a restart).
    all_cores_reach(&shared.opened, cores, None).await;
    let listener = glommio::net::TcpListener::bind(shared.config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", shared.config.listen))?;
    let _ = shared.ready.send(Ok(id));
    if let Some(controller) = &services.controller {
        controller.start(&core).await;
    }
    let options = crate::http::ServeOptions {
        shutdown_timeout: shared.config.shutdown_timeout,
        ..Default::default()
    };
    let handler_core = core.clone();
    crate::http::serve_with(
        listener,
        move |request| crate::edge::handle_http(handler_core.clone(), request),
        core.shutdown().clone(),
        options,
    )
    .await;
    // Shutdown barrier: peers may still be finishing requests routed to this core's shards.
    // A busy peer arrives up to the shutdown timeout plus the forced-close wait after an idle
    // one, so this core waits at least that long (plus a margin) before closing its logs; the
    // bound only matters for a peer that never arrives.
    let longest_peer =
        shared.config.shutdown_timeout + crate::http::FORCED_CLOSE_WAIT + Duration::from_secs(1);
    all_cores_reach(&shared.drained, cores, Some(longest_peer)).await;
    // Drain: close every log (flush + sync).
    for (_, shard) in core.owned_shards() {
        if let Err(e) = shard.log.close().await {
            tracing::error!("closing {}: {e}", shard.log.dir().display());
        }
    }
    // Give peers a moment to finish talking to us before the executor exits.
    glommio::timer::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// A barrier between cores: counts this core in `reached`, then waits (polling an executor
/// timer, so the core keeps serving its peers' messages) until all `cores` have, or `timeout`.
async fn all_cores_reach(
    reached: &std::sync::atomic::AtomicUsize,
    cores: usize,
    timeout: Option<Duration>,
) {
    use std::sync::atomic::Ordering;
    reached.fetch_add(1, Ordering::AcqRel);
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    while reached.load(Ordering::Acquire) < cores
        && deadline.is_none_or(|d| std::time::Instant::now() < d)
    {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}
