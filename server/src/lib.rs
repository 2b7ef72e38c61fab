//! spated: the Kinesis Data Streams API on thread-per-core glommio and hyper.
pub mod config;
pub mod http;
pub mod systemd;
