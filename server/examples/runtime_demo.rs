//! A throwaway check of the runtime pieces (http, systemd, config's logging) without Kinesis.
//!
//! Starts 2 glommio executors on 127.0.0.1:<port> (argument, or a free port), each answering
//! `hello from core N`, `/stream` with 5 chunks 100 ms apart, and `POST /echo` with a 16-byte
//! body limit. SIGTERM or SIGINT shuts it down gracefully; the process then exits 0.
//! `runtime_demo --spated-help` prints the help text of `spated`'s flags instead.

use std::net::SocketAddr;
use std::time::Duration;

use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};
use hyper::body::Incoming;
use hyper::{Request, Response};
use spate_server::http::{self, Body, ShutdownSignal};
use spate_server::{config, systemd};

const CORES: usize = 2;
const STREAM_CHUNKS: usize = 5;

async fn handle(
    request: Request<Incoming>,
    core: usize,
    shutdown: ShutdownSignal,
) -> Response<Body> {
    match request.uri().path() {
        "/stream" => {
            let (sender, receiver) = glommio::channels::local_channel::new_bounded(4);
            glommio::spawn_local(async move {
                for index in 0..STREAM_CHUNKS {
                    let chunk = format!("chunk {index} from core {core}\n");
                    if sender.send(chunk.into()).await.is_err() {
                        return; // The client went away.
                    }
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            })
            .detach();
            let body = http::stream_body_until(http::receiver_stream(receiver), &shutdown);
            Response::new(body)
        }
        "/echo" => {
            match http::read_body_limited(request.into_body(), 16, http::BODY_STALL_TIMEOUT).await {
                Ok(bytes) => Response::new(http::full(bytes)),
                Err(error) => Response::builder()
                    .status(413)
                    .body(http::full(format!("{error}\n")))
                    .expect("valid response"),
            }
        }
        "/slow" => {
            glommio::timer::sleep(Duration::from_secs(2)).await;
            Response::new(http::full(format!("slow hello from core {core}\n")))
        }
        _ => Response::new(http::full(format!("hello from core {core}\n"))),
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--spated-help") {
        // Shows `spated --help` (clap reports help as an "error" through from_iter).
        print!("{}", config::Config::from_iter(["spated", "--help"]).unwrap_err());
        return;
    }
    config::init_logging("info,spate_server=debug");
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse().expect("port number"),
        None => {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe bind");
            probe.local_addr().expect("probe address").port()
        }
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let signals = systemd::install_signal_handlers().expect("signal handlers");
    let (ready_sender, ready_receiver) = std::sync::mpsc::channel::<usize>();

    let handles =
        LocalExecutorPoolBuilder::new(PoolPlacement::MaxSpread(CORES, CpuSet::online().ok()))
            .io_memory(1 << 20)
            .on_all_shards(move || {
                let signals = signals.clone();
                let ready_sender = ready_sender.clone();
                async move {
                    let core = glommio::executor().id();
                    let shutdown = ShutdownSignal::new();
                    glommio::spawn_local({
                        let shutdown = shutdown.clone();
                        async move {
                            signals.wait().await;
                            shutdown.trigger();
                        }
                    })
                    .detach();
                    let listener = glommio::net::TcpListener::bind(address).expect("bind");
                    ready_sender.send(core).expect("report ready");
                    let handler = {
                        let shutdown = shutdown.clone();
                        move |request| handle(request, core, shutdown.clone())
                    };
                    http::serve_with(listener, handler, shutdown, http::ServeOptions::default())
                        .await;
                    tracing::info!(core, "core stopped serving");
                }
            })
            .expect("start executors");

    for _ in 0..CORES {
        ready_receiver.recv().expect("a core started");
    }
    systemd::notify_ready();
    println!("listening on http://{address}");

    for result in handles.join_all() {
        result.expect("executor finished cleanly");
    }
    systemd::notify_stopping();
    println!("stopped");
}
