//! The `spate` binary: a thin wrapper over [`spate_tools::cli`].

fn main() {}
