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

use crate::aws::ec2::{filter, tag_key};
use crate::aws::pace::Bucket;
use crate::tags;

use super::context::Poll;
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
        } else if let Target::Db(_) = target {
            checks.push("available".to_string());
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
        });
        Ok(())
    }

    /// Removes what earlier drills left (a drill killed half-way): instances
    /// and databases tagged `CV_Integrity_Snap` and `_GX_BACKUP_`, made longer
    /// ago than this drill's wait timeout, in the regions it may restore in.
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
            let ec2 = cx.session.ec2(&region);
            cx.take(&region, Bucket::Describe).await;
            let out = ec2
                .describe_instances()
                .filters(tag_key(tags::INTEGRITY))
                .filters(tag_key(tags::BACKUP))
                .filters(filter(
                    "instance-state-name",
                    &["pending", "running", "stopping", "stopped"],
                ))
                .send()
                .await;
            let old: Vec<String> = match out {
                Ok(o) => o
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter(|i| {
                        i.launch_time()
                            .is_some_and(|t| crate::aws::to_utc(Some(t)) < older_than)
                    })
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect(),
                Err(e) => {
                    cx.log(&format!(
                        "Cannot look for drill leftovers in [{region}]: {}",
                        cx.site(&region)
                            .err("DescribeInstances", None, e.into_service_error())
                    ));
                    continue;
                }
            };
            for id in old {
                cx.take(&region, Bucket::Mutate).await;
                match ec2.terminate_instances().instance_ids(&id).send().await {
                    Ok(_) => {
                        cx.log(&format!(
                            "Terminated [{id}] in [{region}], left by an earlier drill"
                        ));
                        notes.push(format!(
                            "terminated {id}, left in {region} by an earlier drill"
                        ));
                    }
                    Err(e) => cx.log(&format!(
                        "Cannot remove drill leftover [{id}] in [{region}]: {}",
                        cx.site(&region).err(
                            "TerminateInstances",
                            Some(&id),
                            e.into_service_error()
                        )
                    )),
                }
            }
        }
        for n in notes {
            self.cx.note(n);
        }
    }
}
