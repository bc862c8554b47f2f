//! Waiting for a region's recovery points: one describe per kind and poll
//! finds every point of the job by its tags; each point ends Completed (an
//! AMI's snapshots tagged first), Failed, or still Pending at the timeout.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tokio::time::Instant;

use super::{item_for, Made, Pending, RegionWork};
use crate::aws::error::AwsError;
use crate::aws::rds::id_filter;
use crate::aws::tag_filter;
use crate::jobs::work::Job;
use crate::store::ledger::{Item, ItemStatus};
use crate::tags;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Pending(String),
    Done,
    Failed(String),
}

/// What one poll saw: each point's state, and the size of each EBS snapshot
/// (GiB, its volume's), from which a snapshot set's item takes its size: a
/// snapshot-set backup does not describe the volumes (discovery.rs).
#[derive(Debug, Default)]
struct Polled {
    states: BTreeMap<String, State>,
    sizes: BTreeMap<String, i64>,
}

/// Polls every pending recovery point of the region in batches until all are
/// done or the deadline passes.
/// Returns the items of the points that completed (to be locked once the
/// region's duplicates are resolved).
pub(super) async fn wait_all(
    job: &Job<'_>,
    work: &RegionWork,
    mut pending: Vec<Pending<'_>>,
    deadline: Instant,
) -> Vec<Item> {
    let mut completed = Vec::new();
    let mut delay = job.options.poll_initial;
    let mut polls = 0u32;
    // The last poll's error, while polls fail: an item still pending at the
    // timeout says why it could not be seen, not only that it was pending.
    let mut poll_error: Option<AwsError>;
    while !pending.is_empty() {
        polls += 1;
        let polled = match poll(job, work, &pending).await {
            Ok(s) => {
                poll_error = None;
                s
            }
            Err(e) if crate::aws::retry::classify(&e.code) == crate::aws::retry::Class::Fatal => {
                // Access denied, a role that can no longer be assumed:
                // waiting longer cannot help.
                job.log(&format!("Poll failed, giving up on waiting: {e}"));
                for p in pending.drain(..) {
                    let why = format!("its completion could not be checked: {e}");
                    job.record(&unseen_item(job, work, &p, ItemStatus::Failed, why));
                }
                return completed;
            }
            Err(e) => {
                job.log(&format!("Poll failed (will retry): {e}"));
                poll_error = Some(e);
                Polled::default()
            }
        };
        let mut still = Vec::new();
        for p in pending {
            match settle(job, work, p, &polled, deadline).await {
                Settled::Waiting(p) => still.push(p),
                Settled::Completed(item) => completed.push(item),
                Settled::Failed => {}
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() + delay > deadline {
            for p in pending.drain(..) {
                let why = match &poll_error {
                    Some(e) => format!("could not be checked: the polls failed, the last with {e}"),
                    None => "still pending".to_string(),
                };
                let why = format!(
                    "{why} after the {} s wait timeout",
                    job.options.wait_timeout.as_secs()
                );
                let item = unseen_item(job, work, &p, ItemStatus::Pending, why);
                job.log(item.error.as_deref().unwrap_or_default());
                job.record(&item);
            }
            break;
        }
        job.log(&format!(
            "Waiting for {} recovery point(s) in [{}/{}] (poll {polls}, next in {} ms)",
            pending.len(),
            work.session.tenant.name,
            work.region,
            delay.as_millis()
        ));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(job.options.poll_max);
    }
    completed
}

/// The item of a point whose completion the job could not see: made, and
/// found later by its tags.
fn unseen_item(
    job: &Job<'_>,
    work: &RegionWork,
    p: &Pending<'_>,
    status: ItemStatus,
    why: String,
) -> Item {
    let ids = p.made.ids().join(",");
    let error = format!(
        "tenant {} region {}: {ids} {why}; it stays tagged _GX_BACKUP_={} _GX_AGENT_={} and is found by `rolesnap list`",
        work.session.tenant.name, work.region, job.number, job.identity.agent
    );
    let mut item = item_for(work, p.selected, status, p.made.ids(), Some(error));
    item.detail["name"] = json!(p.name);
    item
}

/// How one point stands after a poll.
enum Settled<'a> {
    Waiting(Pending<'a>),
    Completed(Item),
    Failed,
}

/// Records a point the poll found failed or complete (an AMI's snapshots
/// tagged first); returns it when it is still on its way.
async fn settle<'a>(
    job: &Job<'_>,
    work: &RegionWork,
    mut p: Pending<'a>,
    polled: &Polled,
    deadline: Instant,
) -> Settled<'a> {
    let (tenant, region) = (&work.session.tenant.name, &work.region);
    let ids = p.made.ids();
    let st: Vec<State> = ids
        .iter()
        .map(|id| {
            polled
                .states
                .get(id)
                .cloned()
                .unwrap_or(State::Pending("not listed yet".into()))
        })
        .collect();
    let fail = |created: Vec<String>, why: String| {
        let item = item_for(work, p.selected, ItemStatus::Failed, created, Some(why));
        job.log(item.error.as_deref().unwrap_or_default());
        job.record(&item);
        Settled::Failed
    };
    if let Some(State::Failed(why)) = st.iter().find(|s| matches!(s, State::Failed(_))) {
        let mut created = ids.clone();
        created.extend(p.extra.clone());
        return fail(
            created,
            format!(
                "tenant {tenant} region {region}: recovery point {} of {} failed: {why}",
                ids.join(","),
                p.selected.resource.id()
            ),
        );
    }
    if !st.iter().all(|s| *s == State::Done) {
        return Settled::Waiting(p);
    }
    if let Made::Image(image) = &p.made {
        match tag_image_snapshots(job, work, image, deadline).await {
            Ok(snaps) => p.extra = snaps,
            Err(e) => {
                return fail(
                    ids.clone(),
                    format!(
                        "image {image} is available but its snapshots could not be tagged: {e}"
                    ),
                )
            }
        }
    }
    let mut created = ids.clone();
    created.extend(p.extra.clone());
    let mut item = item_for(work, p.selected, ItemStatus::Completed, created, None);
    if let Made::Snapshots(set) = &p.made {
        let sizes: Option<Vec<i64>> = set
            .iter()
            .map(|(id, _)| polled.sizes.get(id).copied())
            .collect();
        if let Some(sizes) = sizes {
            item.size_gib = sizes.iter().sum();
        }
    }
    item.detail["name"] = json!(p.name);
    item.detail["method"] = json!(match p.made {
        Made::Snapshots(_) => "snapshot-set",
        Made::Image(_) => "ami",
        Made::DbSnapshot(_) => "db-snapshot",
        Made::ClusterSnapshot(_) => "db-cluster-snapshot",
    });
    job.log(&format!(
        "Recovery point of [{}] completed in [{tenant}/{region}]: [{}]",
        p.selected.resource.id(),
        item.created.join(", ")
    ));
    job.record(&item);
    Settled::Completed(item)
}

/// One describe call per kind present, filtered by the job's tag.
async fn poll(
    job: &Job<'_>,
    work: &RegionWork,
    pending: &[Pending<'_>],
) -> Result<Polled, AwsError> {
    let mut states = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    let has = |f: fn(&Made) -> bool| pending.iter().any(|p| f(&p.made));
    let ec2 = job.ec2(&work.session, &work.account, &work.region);
    if has(|m| matches!(m, Made::Snapshots(_))) {
        ec2.each_snapshot(job_filters(job), |s| {
            let st = match s.state().map(|x| x.as_str()) {
                Some("completed") => State::Done,
                Some("error") => State::Failed(s.state_message().unwrap_or("error").to_string()),
                other => State::Pending(format!(
                    "{} {}",
                    other.unwrap_or("?"),
                    s.progress().unwrap_or("")
                )),
            };
            let id = s.snapshot_id().unwrap_or_default().to_string();
            if let Some(gib) = s.volume_size() {
                sizes.insert(id.clone(), i64::from(gib));
            }
            states.insert(id, st);
        })
        .await?;
    }
    if has(|m| matches!(m, Made::Image(_))) {
        for i in ec2.images(job_filters(job)).await? {
            let st = match i.state().map(|x| x.as_str()) {
                Some("available") => State::Done,
                Some("pending") | None => State::Pending("pending".into()),
                Some(other) => State::Failed(format!(
                    "image state {other}: {}",
                    i.state_reason().and_then(|r| r.message()).unwrap_or("")
                )),
            };
            states.insert(i.image_id().unwrap_or_default().to_string(), st);
        }
    }
    let rds = job.rds(&work.session, &work.account, &work.region);
    for cluster in [false, true] {
        // Only the job's own snapshots of the kind, by identifier: not every
        // manual snapshot of the region.
        let wanted: BTreeSet<String> = pending
            .iter()
            .filter(|p| match p.made {
                Made::DbSnapshot(_) => !cluster,
                Made::ClusterSnapshot(_) => cluster,
                _ => false,
            })
            .flat_map(|p| p.made.ids())
            .collect();
        let wanted: Vec<String> = wanted.into_iter().collect();
        for ids in wanted.chunks(RDS_IDS_PER_POLL) {
            rds.each_snapshot(cluster, vec![id_filter(cluster, ids)], |s| {
                if ids.iter().any(|id| id == s.id) {
                    let st = match s.status {
                        Some("available") => State::Done,
                        Some("creating" | "copying" | "pending") | None => {
                            State::Pending(s.status.unwrap_or("?").to_string())
                        }
                        Some(other) => State::Failed(format!("status {other}")),
                    };
                    states.insert(s.id.to_string(), st);
                }
            })
            .await?;
        }
    }
    Ok(Polled { states, sizes })
}

/// DB snapshot identifiers asked for in one describe call.
const RDS_IDS_PER_POLL: usize = 100;

/// This job's tag, and those of killed jobs whose points it adopted; all of
/// this agent (another ledger's jobs of the same numbers are not ours).
fn job_filters(job: &Job<'_>) -> Vec<aws_sdk_ec2::types::Filter> {
    let job_tags: Vec<String> = std::iter::once(job.number)
        .chain(job.adopt.iter().map(|k| k.job))
        .map(|j| j.to_string())
        .collect();
    let mut f = vec![crate::aws::ec2::filter(
        &format!("tag:{}", tags::BACKUP),
        &job_tags,
    )];
    if !job.identity.agent.is_empty() {
        f.push(tag_filter(tags::AGENT, &job.identity.agent));
    }
    f
}

/// Adds `_GX_AMI_` to the snapshots backing an available AMI. They got the
/// rest of the contract (`_GX_BACKUP_` …) at creation, from CreateImage's
/// snapshot TagSpecification; the tenant policy allows this one tag, and only
/// on snapshots that already carry `_GX_BACKUP_` (policy::AMI_SNAPSHOT_TAG).
async fn tag_image_snapshots(
    job: &Job<'_>,
    work: &RegionWork,
    image: &str,
    deadline: Instant,
) -> Result<Vec<String>, AwsError> {
    let t = vec![(tags::AMI.to_string(), image.to_string())];
    job.ec2(&work.session, &work.account, &work.region)
        .tag_image_snapshots(image, &t, deadline)
        .await
}
