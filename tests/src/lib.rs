//! Integration test support: see the tests in `tests/tests/`.
