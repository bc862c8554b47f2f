//! The job context of a restore: who it runs as, its job number and agent id,
//! its log, pacing, retried creates and polling. Everything here is what a
//! job needs whatever it restores; it is the one place a shared job context
//! will replace.

use std::collections::BTreeMap;
use std::future::Future;

use tokio::time::Instant;

use crate::aws::credentials::TenantSession;
use crate::aws::ec2::Ec2;
use crate::aws::error::{AwsError, Site};
use crate::aws::pace::{Bucket, Pacer};
use crate::aws::rds::Rds;
use crate::aws::retry::create_with_retry;
use crate::aws::tag_filter;
use crate::aws::At;
use crate::config::Plan;
use crate::store::logs::{JobLog, LogFile, Logs};
use crate::tags;

use super::{Options, RestoreError, COMPONENT};

/// vsrst.log component of the removal of what a failed restore made.
const CLEANUP: &str = "CVRestore::Cleanup";

/// What polling a resource found.
pub(super) enum Poll<T> {
    Done(T),
    Pending(String),
    Failed(String),
}

pub(super) struct Context<'a> {
    pub(super) plan: &'a Plan,
    pub(super) session: TenantSession,
    pub(super) account: String,
    pub(super) admin_region: String,
    pub(super) job: u64,
    /// The ledger's agent id: what this job makes is tagged with it, and
    /// only what carries it (and the job number) is this job's to clean up.
    pub(super) agent: String,
    pub(super) log_job: Option<u64>,
    pub(super) dry_run: bool,
    pub(super) logs: &'a Logs,
    pub(super) pacer: Pacer,
    pub(super) options: Options,
    pub(super) deadline: Instant,
    /// The mutating calls made (or, in a dry run, that would be made).
    pub(super) calls: Vec<String>,
    /// Defaults chosen and why.
    pub(super) notes: Vec<String>,
}

impl Context<'_> {
    pub(super) fn log(&self, m: &str) {
        self.logs
            .write(LogFile::Restore, self.log_job, COMPONENT, m);
    }

    pub(super) fn clean_log(&self, m: &str) {
        self.logs.write(LogFile::Restore, self.log_job, CLEANUP, m);
    }

    pub(super) fn note(&mut self, m: String) {
        self.log(&format!("Note: {m}"));
        self.notes.push(m);
    }

    /// Records a mutating call (made, or in a dry run only described).
    pub(super) fn call(&mut self, m: String) {
        self.log(&if self.dry_run {
            format!("Dry run: would call {m}")
        } else {
            format!("Calling {m}")
        });
        self.calls.push(m);
    }

    pub(super) fn site<'s>(&'s self, region: &'s str) -> Site<'s> {
        Site {
            tenant: &self.session.tenant.name,
            region,
        }
    }

    pub(super) fn job_tag(&self) -> String {
        self.job.to_string()
    }

    /// Filters that find only what this job made: its number and its
    /// agent id (another agent's restore job of the same number is not ours).
    pub(super) fn job_filters(&self, job: &str) -> Vec<aws_sdk_ec2::types::Filter> {
        let mut f = vec![tag_filter(tags::BACKUP, job)];
        if !self.agent.is_empty() {
            f.push(tag_filter(tags::AGENT, &self.agent));
        }
        f
    }

    /// Whether a resource's tags say this job made it.
    pub(super) fn is_ours(&self, t: &BTreeMap<String, String>, job: &str) -> bool {
        t.get(tags::BACKUP).map(String::as_str) == Some(job)
            && t.get(tags::AGENT).map_or("", String::as_str) == self.agent
    }

    /// The job number in tags and names; `<job>` in a dry run (no job exists).
    pub(super) fn job_label(&self) -> String {
        if self.dry_run {
            "<job>".into()
        } else {
            self.job.to_string()
        }
    }

    /// One region as the AWS adapters see it: this job's tenant, pacing and log.
    pub(super) fn at<'s>(&'s self, region: &'s str) -> At<'s> {
        At {
            site: self.site(region),
            account: &self.account,
            pacer: &self.pacer,
            log: Some(JobLog {
                logs: self.logs,
                file: LogFile::Restore,
                job: self.log_job,
                component: COMPONENT,
            }),
        }
    }

    /// The EC2 calls of this job in `region`.
    pub(super) fn ec2<'s>(&'s self, region: &'s str) -> Ec2<'s> {
        Ec2::new(self.session.ec2(region), self.at(region))
    }

    /// The RDS calls of this job in `region`.
    pub(super) fn rds<'s>(&'s self, region: &'s str) -> Rds<'s> {
        Rds::new(self.session.rds(region), self.at(region))
    }

    pub(super) async fn take(&self, region: &str, bucket: Bucket) {
        self.pacer.take(&self.account, region, bucket).await;
    }

    /// A create call: retried when throttled, checked with `exists` after an
    /// ambiguous failure so that nothing is made twice.
    pub(super) async fn create<T, C, CF, E, EF>(&self, call: C, exists: E) -> Result<T, AwsError>
    where
        C: FnMut() -> CF,
        CF: Future<Output = Result<T, AwsError>>,
        E: FnMut() -> EF,
        EF: Future<Output = Result<Option<T>, AwsError>>,
    {
        let at = self.at("");
        let (r, _) =
            create_with_retry(self.deadline, call, exists, |e, wait| at.retried(e, wait)).await;
        r
    }

    /// Polls until done, failed or the deadline; backs off from
    /// `poll_initial` to `poll_max`.
    pub(super) async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        mut poll: F,
    ) -> Result<T, RestoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, AwsError>>,
    {
        let mut delay = self.options.poll_initial;
        let mut polls = 0u32;
        loop {
            polls += 1;
            let last = match poll().await {
                Ok(Poll::Done(v)) => {
                    self.log(&format!("{what}: done after {polls} poll(s)"));
                    return Ok(v);
                }
                Ok(Poll::Failed(why)) => {
                    return Err(RestoreError::Failed {
                        what: what.to_string(),
                        why,
                    })
                }
                Ok(Poll::Pending(s)) => s,
                Err(e) => {
                    self.log(&format!("Poll of {what} failed (will retry): {e}"));
                    e.to_string()
                }
            };
            if Instant::now() + delay > self.deadline {
                return Err(RestoreError::TimedOut {
                    what: what.to_string(),
                    last,
                    timeout_secs: self.options.wait_timeout.as_secs(),
                });
            }
            self.log(&format!(
                "Waiting for {what}: {last} (poll {polls}, next in {} ms)",
                delay.as_millis()
            ));
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.options.poll_max);
        }
    }
}

/// Whether tags (key, value) say this job (and agent) made a resource.
pub(super) fn has_job_tag<'t>(
    tags: impl Iterator<Item = (Option<&'t str>, Option<&'t str>)>,
    job: &str,
    agent: &str,
) -> bool {
    let t: Vec<_> = tags.collect();
    t.iter()
        .any(|(k, v)| *k == Some(tags::BACKUP) && *v == Some(job))
        && (agent.is_empty()
            || t.iter()
                .any(|(k, v)| *k == Some(tags::AGENT) && *v == Some(agent)))
}
