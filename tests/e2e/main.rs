mod backup;
mod foundation;
mod harness;
