//! spated: the Kinesis Data Streams API on thread-per-core glommio and hyper.
//!
//! `main.rs` parses the configuration and starts one `core::run` per CPU. See
//! `ARCHITECTURE.md` for the map.
pub mod api;
pub mod catalog;
pub mod config;
pub mod control;
pub mod core;
pub mod failpoint;
pub mod fanout;
pub mod hash;
pub mod http;
pub mod iterator;
pub mod mesh;
pub mod metrics;
pub mod quota;
pub mod reshard;
pub mod systemd;
