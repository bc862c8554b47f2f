//! Restore drills (`rolesnap drill`): a restore into a throw-away target
//! that proves a recovery point restores. Everything it makes carries
//! `CV_Integrity_Snap` = the drill job beside `_GX_BACKUP_`; it waits until
//! the restored resource is healthy (an instance running with both EC2
//! status checks `ok`; a database `available`), records the RTO, and
//! removes all it made whether it passed or not. A drill killed half-way
//! leaves resources tagged `CV_Integrity_Snap`: the next drill removes those
//! older than its wait timeout before it starts.

use chrono::Utc;
use serde_json::Value;

use crate::aws::pace::Bucket;
use crate::tags;

use super::context::Poll;

/// How long a drill's TCP connect to a restored database may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
use super::{DrillResult, RestoreError, Restorer, Target};

impl Restorer<'_> {
    /// The provenance tags of what the job makes (see `choose::provenance`);
    /// a drill's carry `CV_Integrity_Snap` too.
    pub(super) fn prov(&self, source: &str, point: &str, name: &str) -> Vec<(String, String)> {
        let mut t = super::choose::provenance(
            &self.cx.job_label(),
            &self.cx.agent,
            source,
            &self.origin(point),
            name,
        );
        if self.drill {
            t.push((tags::INTEGRITY.into(), self.cx.job_label()));
        }
        t
    }

    /// On a drill's instances and databases (never its images, which the
    /// catalog would take for recovery points): `_GX_PLAN_`, so that `prune`
    /// removes only its own plan's drill leftovers.
    pub(super) fn drill_owner(&self) -> Vec<(String, String)> {
        if self.drill {
            vec![(tags::PLAN.into(), self.cx.plan.name.clone())]
        } else {
            vec![]
        }
    }

    /// Waits until what the drill restored is healthy; records the RTO.
    pub(super) async fn check_health(
        &mut self,
        target: &Target,
        restored: &Value,
    ) -> Result<(), RestoreError> {
        let mut checks = Vec::new();
        if let Target::Instance(_) = target {
            let id = restored["instance_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let region = self.region.clone().unwrap_or_default();
            let what = format!("instance {id} to pass its status checks");
            let cx = &self.cx;
            let ec2 = cx.session.ec2(&region);
            cx.wait_for(&what, || async {
                cx.take(&region, Bucket::Describe).await;
                let out = match ec2
                    .describe_instance_status()
                    .instance_ids(&id)
                    .include_all_instances(true)
                    .send()
                    .await
                {
                    Ok(o) => o,
                    Err(e) => {
                        let e = cx.site(&region).err(
                            "DescribeInstanceStatus",
                            Some(&id),
                            e.into_service_error(),
                        );
                        // Waiting cures throttling, not a refusal.
                        if crate::aws::retry::classify(&e.code) == crate::aws::retry::Class::Fatal {
                            return Ok(Poll::Failed(format!("the health check failed: {e}")));
                        }
                        return Err(e);
                    }
                };
                let Some(s) = out.instance_statuses().first() else {
                    return Ok(Poll::Pending("not listed yet".into()));
                };
                let state = s
                    .instance_state()
                    .and_then(|x| x.name())
                    .map_or("unknown", |n| n.as_str());
                let system = s
                    .system_status()
                    .and_then(|x| x.status())
                    .map_or("unknown", |n| n.as_str());
                let instance = s
                    .instance_status()
                    .and_then(|x| x.status())
                    .map_or("unknown", |n| n.as_str());
                Ok(match (state, system, instance) {
                    ("running", "ok", "ok") => Poll::Done(()),
                    ("terminated" | "stopped" | "shutting-down", _, _) => {
                        Poll::Failed(format!("the instance is {state}"))
                    }
                    (_, "impaired", _) | (_, _, "impaired") => Poll::Failed(format!(
                        "status checks impaired (system {system}, instance {instance})"
                    )),
                    _ => Poll::Pending(format!(
                        "{state}, system status {system}, instance status {instance}"
                    )),
                })
            })
            .await?;
            checks.push("running; EC2 system and instance status checks ok".to_string());
            if let Some(cmd) = self.check.clone() {
                checks.push(self.run_check(&region, &id, &cmd).await?);
            }
        } else if let Target::Db(spec) = target {
            checks.push("available".to_string());
            if self.connect {
                checks.push(self.connect_to(spec).await?);
            }
        } else {
            checks.push("volume created and attached".to_string());
        }
        let rto = Utc::now().timestamp() - self.started;
        self.cx.log(&format!(
            "Drill healthy after {rto} s: {}",
            checks.join("; ")
        ));
        self.drilled = Some(DrillResult {
            healthy: true,
            rto_seconds: Some(rto),
            checks,
            reason: None,
            check: self.checked.clone(),
        });
        Ok(())
    }

    /// Runs the drill's check command in the instance through SSM Run
    /// Command (`AWS-RunShellScript`: SendCommand, then GetCommandInvocation
    /// until it has ended); the outcome is kept for the job's record. Exit
    /// code 0 is healthy; anything else, or no end within the wait timeout,
    /// fails the drill with the reason.
    async fn run_check(
        &mut self,
        region: &str,
        id: &str,
        cmd: &str,
    ) -> Result<String, RestoreError> {
        let cx = &self.cx;
        let ssm = cx.session.ssm(region);
        let left = cx
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        cx.log(&format!(
            "Running the check command in [{id}] through SSM Run Command: {cmd}"
        ));
        cx.take(region, Bucket::Mutate).await;
        let sent = ssm
            .send_command()
            .document_name("AWS-RunShellScript")
            .instance_ids(id)
            .parameters("commands", vec![cmd.to_string()])
            .comment(format!("rolesnap drill job {}", cx.job_label()))
            .timeout_seconds(i32::try_from(left.as_secs().clamp(30, 2_592_000)).unwrap_or(3600))
            .send()
            .await
            .map_err(|e| {
                cx.site(region)
                    .err("SendCommand", Some(id), e.into_service_error())
            })?;
        let command_id = sent
            .command()
            .and_then(|c| c.command_id())
            .unwrap_or_default()
            .to_string();
        let what = format!("the check command in instance {id} (SSM command {command_id})");
        let ended = cx
            .wait_for(&what, || async {
                cx.take(region, Bucket::Describe).await;
                let out = match ssm
                    .get_command_invocation()
                    .command_id(&command_id)
                    .instance_id(id)
                    .send()
                    .await
                {
                    Ok(o) => o,
                    Err(e) => {
                        let e = cx.site(region).err(
                            "GetCommandInvocation",
                            Some(id),
                            e.into_service_error(),
                        );
                        // Not there yet: SSM lists an invocation a moment
                        // after SendCommand.
                        if e.code == "InvocationDoesNotExist" {
                            return Ok(Poll::Pending("not listed yet".into()));
                        }
                        if crate::aws::retry::classify(&e.code) == crate::aws::retry::Class::Fatal {
                            return Ok(Poll::Failed(format!("cannot read its result: {e}")));
                        }
                        return Err(e);
                    }
                };
                let status = out.status().map_or("unknown", |s| s.as_str()).to_string();
                if matches!(
                    status.as_str(),
                    "Pending" | "InProgress" | "Delayed" | "unknown"
                ) {
                    return Ok(Poll::Pending(status));
                }
                let mut output = out
                    .standard_output_content()
                    .unwrap_or_default()
                    .to_string();
                let err = out.standard_error_content().unwrap_or_default();
                if !err.is_empty() {
                    output.push_str(err);
                }
                let output: String = output.chars().take(super::CHECK_OUTPUT_CHARS).collect();
                Ok(Poll::Done(super::CheckOutcome {
                    command: cmd.to_string(),
                    command_id: Some(command_id.clone()),
                    status,
                    exit_code: Some(out.response_code()),
                    output,
                }))
            })
            .await;
        let outcome = match ended {
            Ok(o) => o,
            Err(e) => {
                self.checked = Some(super::CheckOutcome {
                    command: cmd.to_string(),
                    command_id: Some(command_id.clone()),
                    status: "no result".into(),
                    exit_code: None,
                    output: String::new(),
                });
                return Err(e);
            }
        };
        self.checked = Some(outcome.clone());
        let first_line = outcome
            .output
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        if outcome.status == "Success" && outcome.exit_code == Some(0) {
            self.cx
                .log(&format!("Check command in [{id}] exited 0: {first_line}"));
            Ok(format!(
                "check command `{cmd}` exited 0 (SSM {})",
                outcome.status
            ))
        } else {
            Err(RestoreError::Failed {
                what: format!("instance {id}"),
                why: format!(
                    "the check command `{cmd}` exited {} (SSM status {}): {first_line}",
                    outcome
                        .exit_code
                        .map_or("without a code".to_string(), |c| c.to_string()),
                    outcome.status
                ),
            })
        }
    }

    /// The restored database's endpoint (DescribeDBInstances, or
    /// DescribeDBClusters for Aurora) answers a TCP connect from this node
    /// within [`CONNECT_TIMEOUT`] (or what is left of the wait timeout).
    async fn connect_to(&self, spec: &super::DbSpec) -> Result<String, RestoreError> {
        let region = self.region.clone().unwrap_or_default();
        let cx = &self.cx;
        let rds = cx.session.rds(&region);
        let id = &spec.target_id;
        cx.take(&region, Bucket::Rds).await;
        let (address, port) = if spec.cluster {
            let out = rds
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map_err(|e| {
                    cx.site(&region)
                        .err("DescribeDBClusters", Some(id), e.into_service_error())
                })?;
            let c = out.db_clusters().first();
            (
                c.and_then(|c| c.endpoint()).map(str::to_string),
                c.and_then(|c| c.port()),
            )
        } else {
            let out = rds
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map_err(|e| {
                    cx.site(&region)
                        .err("DescribeDBInstances", Some(id), e.into_service_error())
                })?;
            let ep = out.db_instances().first().and_then(|d| d.endpoint());
            (
                ep.and_then(|e| e.address()).map(str::to_string),
                ep.and_then(|e| e.port()),
            )
        };
        let what = format!("database {id} in {region}");
        let (Some(address), Some(port)) = (address, port.and_then(|p| u16::try_from(p).ok()))
        else {
            return Err(RestoreError::Failed {
                what,
                why: "it is available but reports no endpoint address and port to connect to"
                    .into(),
            });
        };
        let left = cx
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let limit = CONNECT_TIMEOUT
            .min(left)
            .max(std::time::Duration::from_secs(1));
        let endpoint = format!("{address}:{port}");
        cx.log(&format!(
            "Connecting to [{endpoint}] of {what} (TCP, {} s at most)",
            limit.as_secs()
        ));
        match tokio::time::timeout(limit, tokio::net::TcpStream::connect((address.as_str(), port))).await {
            Ok(Ok(_stream)) => Ok(format!("TCP connect to {endpoint} from the access node succeeded")),
            Ok(Err(e)) => Err(RestoreError::Failed {
                what,
                why: format!("the TCP connect from the access node to its endpoint {endpoint} failed: {e}"),
            }),
            Err(_) => Err(RestoreError::Failed {
                what,
                why: format!(
                    "the TCP connect from the access node to its endpoint {endpoint} timed out after {} s",
                    limit.as_secs()
                ),
            }),
        }
    }

    /// Removes what earlier drills left (a drill killed half-way): instances,
    /// DB instances and Aurora clusters tagged `CV_Integrity_Snap` and
    /// `_GX_BACKUP_` (databases named `rolesnap-drill-*`), made longer ago
    /// than this drill's wait timeout, in the regions it may restore in
    /// (see `leftovers`).
    pub(super) async fn remove_drill_leftovers(&mut self) {
        let regions = match &self.which.region {
            Some(r) => vec![r.clone()],
            None => self.candidate_regions().await,
        };
        let older_than = Utc::now()
            - chrono::Duration::from_std(self.cx.options.wait_timeout)
                .unwrap_or(chrono::Duration::zero());
        let mut notes = Vec::new();
        for region in regions {
            let cx = &self.cx;
            let sweep = super::leftovers::Sweep {
                session: &cx.session,
                account: &cx.account,
                pacer: &cx.pacer,
                region: &region,
                older_than,
                dry_run: false,
                plan: None,
            };
            let (found, _) = sweep.run(&|m| cx.log(m)).await;
            for f in found.into_iter().filter(|f| f.error.is_none()) {
                notes.push(format!(
                    "{} {}, left in {region} by an earlier drill",
                    if f.kind == crate::store::ledger::ItemKind::Instance {
                        "terminated"
                    } else {
                        "deleted"
                    },
                    f.id
                ));
            }
        }
        for n in notes {
            self.cx.note(n);
        }
    }
}
