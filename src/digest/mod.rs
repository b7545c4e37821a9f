//! The weekly digest (DESIGN §1, second line): on its cron schedule, the week's events and the
//! current state of the store become one message per channel — an email with charts, a Teams
//! card, or text.
//!
//! - [`content`]: what it says, from the store and the event log;
//! - [`schedule`]: cron slots in the configured time zone, and the one-day catch-up window.

pub mod chart;
pub mod content;
pub mod schedule;
