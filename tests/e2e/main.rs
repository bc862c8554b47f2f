mod agent;
mod backup;
mod copy_prune;
mod drills;
mod foundation;
mod harness;
mod iam;
mod restore;
