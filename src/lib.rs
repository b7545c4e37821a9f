//! partnerwatch: polls the Microsoft Partner Center and Partner Insights APIs, keeps every
//! snapshot in sled, detects what changed and tells the right people.
//!
//! The modules follow the data flow of DESIGN.md §1:
//! `clock` → `sources` (over `http` and `auth`) → `store` → `detect` → `rules` (with
//! `templates`) → `notify` (the outbox and the channels). `pipeline` drives one cycle through
//! all of them; `sim` is the local Partner Center used by the demo and the tests; `cli` is the
//! command line.

#![recursion_limit = "256"]

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cron;
pub mod detect;
pub mod digest;
pub mod duration;
pub mod health;
pub mod http;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod retry;
pub mod rules;
pub mod samples;
pub mod scheduler;
pub mod shipped;
pub mod sim;
pub mod sources;
pub mod store;
pub mod templates;
