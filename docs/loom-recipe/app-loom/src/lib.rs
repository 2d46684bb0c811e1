//! The loom models of `app` live in `tests/`.
