//! The channels between cores: one bounded single-producer single-consumer glommio shared
//! channel for every ordered pair of cores, built once on the main thread and handed out by
//! core id.
//!
//! This replaces glommio 0.9's `channel_mesh::MeshBuilder`, which keeps its peer list in an
//! `Rc` yet is `Send` and `Clone`: every executor clones and drops it on its own thread, so the
//! non-atomic reference count races and the process could free the list twice (CI saw
//! `malloc(): unaligned tcache chunk detected` and SIGSEGV in `MeshBuilder::join` at startup,
//! about one start in 30 with two cores). Here the only value shared between threads is an
//! `Arc<Mutex<..>>`; each channel end moves to exactly one thread and is connected there.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

/// The unconnected ends that belong to one core.
struct Ends<T: Send + 'static> {
    /// `senders[peer]`: this core's end of the channel to `peer` (`None` for itself).
    senders: Vec<Option<SharedSender<T>>>,
    /// One receiving end per peer (not itself).
    receivers: Vec<SharedReceiver<T>>,
}

/// All channels between `cores` cores, before the cores take their ends.
pub struct Mesh<T: Send + 'static> {
    ends: Mutex<Vec<Option<Ends<T>>>>,
    next_id: AtomicUsize,
}

/// A core's connected sending ends, indexed by destination core.
pub struct Senders<T: Send + 'static> {
    id: usize,
    senders: Vec<Option<ConnectedSender<T>>>,
}

impl<T: Send + 'static> Mesh<T> {
    /// Channels for every ordered pair of `cores` cores, each holding up to `capacity`
    /// messages (a sender waits while its channel is full).
    pub fn new(cores: usize, capacity: usize) -> Mesh<T> {
        let mut receivers: Vec<Vec<SharedReceiver<T>>> = (0..cores).map(|_| Vec::new()).collect();
        let senders: Vec<Vec<Option<SharedSender<T>>>> = (0..cores)
            .map(|from| {
                (0..cores)
                    .map(|to| {
                        (from != to).then(|| {
                            let (sender, receiver) = shared_channel::new_bounded(capacity);
                            receivers[to].push(receiver);
                            sender
                        })
                    })
                    .collect()
            })
            .collect();
        let ends = senders
            .into_iter()
            .zip(receivers)
            .map(|(senders, receivers)| Some(Ends { senders, receivers }))
            .collect();
        Mesh { ends: Mutex::new(ends), next_id: AtomicUsize::new(0) }
    }

    /// Takes the next free core id and connects that core's ends. Must run on the core's own
    /// executor, once per core; it returns when every peer has connected its side of this
    /// core's channels (each `connect` waits for the other end).
    pub async fn join(&self) -> Result<(Senders<T>, Vec<ConnectedReceiver<T>>), String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ends = {
            let mut all = self.ends.lock().unwrap_or_else(|e| e.into_inner());
            all.get_mut(id).and_then(Option::take)
        };
        let Some(Ends { senders, receivers }) = ends else {
            return Err(format!("core {id} joined a mesh built for fewer cores"));
        };
        // Connect every end concurrently: a connect completes only once the peer's side has
        // connected too, and the peers do the same in the opposite order.
        let senders: Vec<_> = senders
            .into_iter()
            .map(|sender| sender.map(|s| glommio::spawn_local(s.connect()).detach()))
            .collect();
        let receivers: Vec<_> =
            receivers.into_iter().map(|r| glommio::spawn_local(r.connect()).detach()).collect();
        let mut connected = Vec::with_capacity(senders.len());
        for sender in senders {
            connected.push(match sender {
                Some(task) => Some(task.await.ok_or("a mesh connect task was cancelled")?),
                None => None,
            });
        }
        let mut connected_receivers = Vec::with_capacity(receivers.len());
        for receiver in receivers {
            connected_receivers.push(receiver.await.ok_or("a mesh connect task was cancelled")?);
        }
        Ok((Senders { id, senders: connected }, connected_receivers))
    }
}

impl<T: Send + 'static> Senders<T> {
    /// The id of the core these senders belong to.
    pub fn peer_id(&self) -> usize {
        self.id
    }

    /// Sends `msg` to core `to`, waiting while its channel is full. Fails (returning nothing
    /// but the fact) if `to` is this core, out of range, or gone.
    pub async fn send_to(&self, to: usize, msg: T) -> Result<(), ()> {
        match self.senders.get(to) {
            Some(Some(sender)) => sender.send(msg).await.map_err(|_| ()),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

    use super::*;

    /// Every core sends to every other core and receives exactly what its peers sent it, in
    /// order per sender, through channels smaller than the traffic (senders must wait for
    /// room); ids are distinct and dense. Repeated so that the concurrent joins interleave
    /// differently (the glommio mesh this replaces crashed here).
    #[test]
    fn every_core_reaches_every_other_core() {
        const CORES: usize = 3;
        const MESSAGES: usize = 50;
        for _ in 0..20 {
            let mesh = Arc::new(Mesh::<(usize, usize)>::new(CORES, 4));
            let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(CORES))
                .io_memory(1 << 20)
                .on_all_shards(move || {
                    let mesh = mesh.clone();
                    async move {
                        let (senders, receivers) = mesh.join().await.unwrap();
                        let id = senders.peer_id();
                        let receiving = glommio::spawn_local(async move {
                            let mut got = Vec::new();
                            for receiver in &receivers {
                                for _ in 0..MESSAGES {
                                    got.push(receiver.recv().await.unwrap());
                                }
                            }
                            got
                        });
                        for n in 0..MESSAGES {
                            for to in 0..CORES {
                                let sent = senders.send_to(to, (id, n)).await;
                                assert_eq!(sent.is_ok(), to != id);
                            }
                        }
                        let got = receiving.await;
                        let want: Vec<_> = (0..CORES)
                            .filter(|&from| from != id)
                            .flat_map(|from| (0..MESSAGES).map(move |n| (from, n)))
                            .collect();
                        assert_eq!(got, want);
                        id
                    }
                })
                .unwrap();
            let mut ids: Vec<usize> = handles.join_all().into_iter().map(|r| r.unwrap()).collect();
            ids.sort();
            assert_eq!(ids, (0..CORES).collect::<Vec<_>>());
        }
    }
}
