//! Pure decisions, no AWS calls: which recovery points a plan keeps
//! ([`retention`]) and when a plan is due ([`schedule`]). Each is a function
//! of its inputs with table and property tests; the jobs act on the answers.

pub mod drill;
pub mod expiry;
pub mod retention;
pub mod schedule;
