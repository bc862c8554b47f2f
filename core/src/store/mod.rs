//! What rolesnap keeps on the access node: the job history ([`ledger`], one
//! SQLite file per state directory) and the GxTail log files ([`logs`]).
//! The recovery points themselves are never stored here: AWS is the catalog.

pub mod ledger;
pub mod logs;
