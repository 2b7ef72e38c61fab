//! The `spate` tools as a library: the Kinesis client and its HTTP/1.1 transport, the
//! operator CLI verbs, and the benchmark harness (`spate bench`). `main.rs` only calls
//! [`cli::main`]; everything testable lives here. Tools talk to servers only over HTTP, so the
//! harness measures what users see. Wire shapes, base64, the event-stream codec, the
//! partition-key hash and Kinesis's limits come from `spate_proto`, the server's own.

pub mod bench;
pub mod cli;
pub mod histogram;
pub mod http;
pub mod kinesis;
pub mod pacer;
pub mod rng;
pub mod sysinfo;
pub mod timefmt;
