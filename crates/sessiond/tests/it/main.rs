//! End-to-end tests of the `sessiond` binary: each spawns the real program on port 0 against a
//! fresh SQLite data directory or a fresh PostgreSQL database.

mod architecture;
mod at_rest;
mod auth;
mod clerk_rs;
mod cli;
mod connections;
mod console;
mod crash;
mod dialects;
mod equisoft;
mod events;
mod harness;
mod isolation;
mod lifecycle;
mod ops;
mod pages;
mod pg_outage;
mod rate_limits;
mod webhooks;
