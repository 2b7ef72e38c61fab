//! The `spate` binary: a thin wrapper over [`spate_tools::cli`], which owns the command line.

fn main() {
    std::process::exit(spate_tools::cli::main());
}
