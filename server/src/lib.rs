//! spated library.
