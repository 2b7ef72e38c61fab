//! The `spate` tools as a library: the Kinesis client and its HTTP/1.1 transport, the
//! operator CLI verbs, and the benchmark harness (`spate bench`). `main.rs` only calls
//! [`cli::main`]; everything testable lives here. Tools talk to servers only over HTTP, so the
//! harness measures what users see.

pub mod base64;
pub mod bench;
pub mod cli;
pub mod eventstream;
pub mod histogram;
pub mod http;
pub mod kinesis;
pub mod pacer;
pub mod rng;
pub mod sysinfo;
pub mod timefmt;
