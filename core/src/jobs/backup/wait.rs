//! Waiting for a region's recovery points: polls begin while the region's
//! later creates are still paced, and ask by id for the points not yet
//! settled; each point ends Completed (an AMI's snapshots tagged first),
//! Failed, or still Pending at the timeout.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tokio::time::Instant;

use super::{item_for, Made, Pending, RegionWork};
use crate::aws::ec2::filter;
use crate::aws::error::AwsError;
use crate::aws::rds::id_filter;
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

/// Polls the region's recovery points in batches, from the first one made
/// until all are done or the deadline passes. Points arrive from `made` as
/// their creates return; polls start while later creates are still being
/// paced (`poll_initial` after the first point, then doubling to `poll_max`)
/// and ask only for the points not yet settled, by id. When the creates end
/// the next poll goes out at once, so the last points are confirmed without
/// waiting out a delay begun long before.
/// Returns the items of the points that completed (to be locked once the
/// region's duplicates are resolved) when `keep` (the plan locks its points);
/// else none: they are in the ledger.
pub(super) async fn wait_all<'w>(
    job: &Job<'_>,
    work: &'w RegionWork,
    mut made: impl futures::Stream<Item = Pending<'w>> + Unpin,
    deadline: Instant,
    keep: bool,
) -> Vec<Item> {
    use futures::StreamExt;
    let mut completed = Vec::new();
    let mut pending: Vec<Pending<'w>> = Vec::new();
    // Whether creates may still send points.
    let mut open = true;
    let mut delay = job.options.poll_initial;
    let mut next = Instant::now() + delay;
    let mut polls = 0u32;
    // The last poll's error, while polls fail: an item still pending at the
    // timeout says why it could not be seen, not only that it was pending.
    let mut poll_error: Option<AwsError>;
    loop {
        // Until the next poll is due, take the points as they are made.
        while open && (pending.is_empty() || Instant::now() < next) {
            tokio::select! {
                p = made.next() => match p {
                    Some(p) => pending.push(p),
                    None => {
                        open = false;
                        next = Instant::now();
                        delay = job.options.poll_initial;
                    }
                },
                _ = tokio::time::sleep_until(next), if !pending.is_empty() => {}
            }
        }
        if pending.is_empty() {
            return completed;
        }
        tokio::time::sleep_until(next).await;
        polls += 1;
        let polled = match poll(job, work, &pending).await {
            Ok(s) => {
                poll_error = None;
                s
            }
            Err(e) if crate::aws::retry::classify(&e.code) == crate::aws::retry::Class::Fatal => {
                // Access denied, a role that can no longer be assumed:
                // waiting longer cannot help, also for points still to come.
                job.log(&format!("Poll failed, giving up on waiting: {e}"));
                let why = format!("its completion could not be checked: {e}");
                for p in pending.drain(..) {
                    job.record(&unseen_item(job, work, &p, ItemStatus::Failed, why.clone()));
                }
                while let Some(p) = made.next().await {
                    job.record(&unseen_item(job, work, &p, ItemStatus::Failed, why.clone()));
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
                Settled::Completed(item) if keep => completed.push(item),
                Settled::Completed(_) => {}
                Settled::Failed => {}
            }
        }
        pending = still;
        if pending.is_empty() {
            if open {
                next = Instant::now() + delay;
                delay = (delay * 2).min(job.options.poll_max);
                continue;
            }
            return completed;
        }
        // The creates keep to the deadline themselves; the timeout is decided
        // once they have all returned.
        if !open && Instant::now() + delay > deadline {
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
            return completed;
        }
        job.log(&format!(
            "Waiting for {} recovery point(s) in [{}/{}] (poll {polls}, next in {} ms)",
            pending.len(),
            work.session.tenant.name,
            work.region,
            delay.as_millis()
        ));
        next = Instant::now() + delay;
        delay = (delay * 2).min(job.options.poll_max);
    }
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
    let mut item = item_for(work, p.src, status, p.made.ids(), Some(error));
    item.detail["name"] = json!(p.name);
    item
}

/// How one point stands after a poll.
enum Settled<'w> {
    Waiting(Pending<'w>),
    Completed(Item),
    Failed,
}

/// Records a point the poll found failed or complete (an AMI's snapshots
/// tagged first); returns it when it is still on its way.
async fn settle<'w>(
    job: &Job<'_>,
    work: &RegionWork,
    mut p: Pending<'w>,
    polled: &Polled,
    deadline: Instant,
) -> Settled<'w> {
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
        let item = item_for(work, p.src, ItemStatus::Failed, created, Some(why));
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
                p.src.id
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
    let mut item = item_for(work, p.src, ItemStatus::Completed, created, None);
    if let Made::Snapshots(set) = &p.made {
        let sizes: Option<Vec<i64>> = set
            .iter()
            .map(|id| polled.sizes.get(&**id).copied())
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
        p.src.id,
        item.created.join(", ")
    ));
    job.record(&item);
    Settled::Completed(item)
}

/// The points not yet settled, asked for by id: one describe call per kind
/// and batch of ids, so a poll costs what is still pending, not the
/// region's whole job.
async fn poll(
    job: &Job<'_>,
    work: &RegionWork,
    pending: &[Pending<'_>],
) -> Result<Polled, AwsError> {
    let mut states = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    let ids = |f: fn(&Made) -> bool| -> Vec<&str> {
        pending
            .iter()
            .filter(|p| f(&p.made))
            .flat_map(|p| p.made.each_id())
            .collect()
    };
    // Not kept: the region's clients are released when its creates end,
    // and a region waiting for its points keeps none.
    let ec2 = job.ec2_passing(&work.session, &work.account, &work.region);
    for chunk in ids(|m| matches!(m, Made::Snapshots(_))).chunks(EC2_IDS_PER_POLL) {
        ec2.each_snapshot(vec![filter("snapshot-id", chunk)], |s| {
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
    for chunk in ids(|m| matches!(m, Made::Image(_))).chunks(EC2_IDS_PER_POLL) {
        for i in ec2.images(vec![filter("image-id", chunk)]).await? {
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
    let rds = job.rds_passing(&work.session, &work.account, &work.region);
    for cluster in [false, true] {
        // Only the job's own snapshots of the kind, by identifier: not every
        // manual snapshot of the region.
        let wanted: BTreeSet<&str> = pending
            .iter()
            .filter(|p| match p.made {
                Made::DbSnapshot(_) => !cluster,
                Made::ClusterSnapshot(_) => cluster,
                _ => false,
            })
            .flat_map(|p| p.made.each_id())
            .collect();
        let wanted: Vec<&str> = wanted.into_iter().collect();
        for ids in wanted.chunks(RDS_IDS_PER_POLL) {
            rds.each_snapshot(cluster, vec![id_filter(cluster, ids)], |s| {
                if ids.contains(&s.id) {
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

/// Snapshot or image ids asked for in one describe call (an EC2 filter
/// takes up to 200 values).
const EC2_IDS_PER_POLL: usize = 200;

/// DB snapshot identifiers asked for in one describe call.
const RDS_IDS_PER_POLL: usize = 100;

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
