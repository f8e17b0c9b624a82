//! Baselines for `bench/run`; see the binaries.
