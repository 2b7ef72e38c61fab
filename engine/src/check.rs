//! Offline verification of a data directory (used by `spate check`).
