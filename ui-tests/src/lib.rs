//! Nothing here: the compile-fail cases are in `tests/ui/`.
