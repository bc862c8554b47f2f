mod agent;
mod backup;
mod copy_prune;
mod foundation;
mod harness;
