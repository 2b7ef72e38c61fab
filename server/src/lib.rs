//! spated: the Kinesis Data Streams API on thread-per-core glommio and hyper.
//!
//! `main.rs` parses the configuration and starts one `node::run` per CPU. See
//! `ARCHITECTURE.md` for the map.
pub mod api;
pub mod catalog;
pub mod config;
pub mod control;
pub mod core;
pub mod edge;
pub mod failpoint;
pub mod fanout;
pub mod hash;
pub mod http;
pub mod iterator;
pub mod lookup;
pub mod mesh;
pub mod metrics;
pub mod msg;
pub mod node;
pub mod owner;
pub mod placement;
pub mod quota;
pub mod systemd;
pub mod wire;

// The engine does not depend on `proto`: its storage bounds are tied to the API's limits here.
// A frame holds the largest record the API accepts, and one GetRecords call can carry the
// largest frame (so a read always makes progress).
const _: () =
    assert!(engine::limits::RECORD_DATA_BYTES_MAX >= spate_proto::limits::RECORD_DATA_BYTES_MAX);
const _: () = assert!(
    engine::limits::PARTITION_KEY_BYTES_MAX >= spate_proto::limits::PARTITION_KEY_BYTES_MAX
);
const _: () =
    assert!(spate_proto::limits::GET_RECORDS_BYTES_MAX >= engine::limits::FRAME_BYTES_MAX);
