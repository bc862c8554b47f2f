//! Discovery: what exists in one tenant × region (I/O), and what a plan's
//! groups select from it (a pure function, tested in tables).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::join_all;
use serde::Serialize;

use crate::aws::credentials::TenantSession;
use crate::aws::error::{AwsError, Site};
use crate::config::{glob_match, Group, Plan, Regions, Tenant};
use crate::store::ledger::ItemKind;
use crate::store::logs::{LogFile, Logs};

/// Tenant × regions the process discovers at once. Each one being listed
/// holds its describe answers and its whole inventory (about 3 KB per
/// instance); a run over every account × region of a large fleet would
/// otherwise hold them all together. Listing is a few calls per region, so
/// this costs the nightly run little time.
pub const REGIONS_DISCOVERED_AT_ONCE: usize = 8;

static DISCOVERING: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(REGIONS_DISCOVERED_AT_ONCE);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachedVolume {
    pub volume_id: String,
    pub device: String,
    pub size_gib: i64,
    pub volume_type: Option<String>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub id: String,
    pub az: String,
    pub state: String,
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub security_groups: Vec<String>,
    pub key_name: Option<String>,
    pub iam_profile_arn: Option<String>,
    pub image_id: Option<String>,
    pub root_device: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub volumes: Vec<AttachedVolume>,
}

impl Instance {
    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }
    pub fn size_gib(&self) -> i64 {
        self.volumes.iter().map(|v| v.size_gib).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbInstance {
    pub id: String,
    pub arn: String,
    pub engine: String,
    pub class: Option<String>,
    pub az: Option<String>,
    pub cluster_id: Option<String>,
    pub status: Option<String>,
    pub storage_gib: i64,
    pub encrypted: bool,
    /// The KMS key of an encrypted database (a vault copy cannot share `aws/rds`).
    pub kms_key_id: Option<String>,
    pub subnet_group: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbCluster {
    pub id: String,
    pub arn: String,
    pub engine: String,
    pub status: Option<String>,
    pub members: Vec<String>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub subnet_group: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Everything found in one tenant × region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionInventory {
    pub tenant: String,
    pub account: String,
    pub region: String,
    pub availability_zones: Vec<String>,
    pub instances: Vec<Instance>,
    pub db_instances: Vec<DbInstance>,
    pub db_clusters: Vec<DbCluster>,
}

/// What to read in a region (so a plan without RDS does not call RDS).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    pub ec2: bool,
    pub rds: bool,
    pub aurora: bool,
    /// No DescribeVolumes: the attached volumes' sizes, types and encryption
    /// stay unknown (a snapshot-set backup learns each size from its snapshot).
    pub skip_volumes: bool,
}

impl Wanted {
    pub fn for_groups<'a>(groups: impl IntoIterator<Item = &'a Group>) -> Wanted {
        groups.into_iter().fold(Wanted::default(), |w, g| Wanted {
            ec2: w.ec2 || g.ec2,
            rds: w.rds || g.rds,
            aurora: w.aurora || g.aurora,
            skip_volumes: false,
        })
    }
}

fn tag_map<'a>(
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

/// The regions a group covers for one tenant (`DescribeRegions` for "all").
pub async fn regions_for(
    session: &TenantSession,
    admin_region: &str,
    group_regions: &Regions,
) -> Result<Vec<String>, AwsError> {
    match group_regions {
        Regions::List(l) => Ok(l.clone()),
        Regions::TenantDefault => Ok(session.tenant.regions.clone()),
        Regions::AllEnabled => {
            // Asked once per tenant: no clients are kept for it (nor are a
            // backup's clients of that region dropped).
            let ec2 = session.ec2_passing(admin_region);
            let site = Site {
                tenant: &session.tenant.name,
                region: admin_region,
            };
            // Without AllRegions, DescribeRegions lists only the regions enabled
            // for the account, which is what "all" means here.
            let out = ec2
                .describe_regions()
                .send()
                .await
                .map_err(|e| site.err("DescribeRegions", None, e.into_service_error()))?;
            let mut v: Vec<String> = out
                .regions()
                .iter()
                .filter_map(|r| r.region_name().map(str::to_string))
                .collect();
            v.sort();
            Ok(v)
        }
    }
}

/// Reads one tenant × region. Every list call paginates.
pub async fn discover_region(
    session: &TenantSession,
    account: &str,
    region: &str,
    wanted: Wanted,
    logs: &Logs,
) -> Result<RegionInventory, AwsError> {
    // The semaphore is never closed.
    let _slot = DISCOVERING.acquire().await.ok();
    let tenant = &session.tenant.name;
    let site = Site { tenant, region };
    let job = session.job;
    let mut inv = RegionInventory {
        tenant: tenant.clone(),
        account: account.to_string(),
        region: region.to_string(),
        ..Default::default()
    };
    logs.write(
        LogFile::Discovery,
        job,
        "CAmazonDiscovery::DiscoverRegion",
        &format!("Discovering tenant [{tenant}] account [{account}] region [{region}]"),
    );
    let ec2 = session.ec2(region);
    let rds = session.rds(region);
    // The region's listings go out at once: each is a call of its own (two
    // services, no order between them), so the region is known after the
    // slowest, not after their sum.
    let zones = async {
        let azs = ec2
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| site.err("DescribeAvailabilityZones", None, e.into_service_error()))?;
        let mut v: Vec<String> = azs
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        v.sort();
        Ok::<_, AwsError>(v)
    };
    let instances = async {
        if wanted.ec2 {
            discover_instances(&ec2, &site, !wanted.skip_volumes).await
        } else {
            Ok(Vec::new())
        }
    };
    let db_instances = async {
        let mut v = Vec::new();
        if !(wanted.rds || wanted.aurora) {
            return Ok(v);
        }
        let mut pages = rds.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| site.err("DescribeDBInstances", None, e.into_service_error()))?;
            for d in page.db_instances() {
                v.push(DbInstance {
                    id: d.db_instance_identifier().unwrap_or_default().to_string(),
                    arn: d.db_instance_arn().unwrap_or_default().to_string(),
                    engine: d.engine().unwrap_or_default().to_string(),
                    class: d.db_instance_class().map(str::to_string),
                    az: d.availability_zone().map(str::to_string),
                    cluster_id: d.db_cluster_identifier().map(str::to_string),
                    status: d.db_instance_status().map(str::to_string),
                    storage_gib: i64::from(d.allocated_storage().unwrap_or(0)),
                    encrypted: d.storage_encrypted().unwrap_or(false),
                    kms_key_id: d.kms_key_id().map(str::to_string),
                    subnet_group: d
                        .db_subnet_group()
                        .and_then(|g| g.db_subnet_group_name())
                        .map(str::to_string),
                    tags: tag_map(d.tag_list().iter().map(|t| (t.key(), t.value()))),
                });
            }
        }
        Ok::<_, AwsError>(v)
    };
    let db_clusters = async {
        let mut v = Vec::new();
        if !wanted.aurora {
            return Ok(v);
        }
        let mut pages = rds.describe_db_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| site.err("DescribeDBClusters", None, e.into_service_error()))?;
            for c in page.db_clusters() {
                v.push(DbCluster {
                    id: c.db_cluster_identifier().unwrap_or_default().to_string(),
                    arn: c.db_cluster_arn().unwrap_or_default().to_string(),
                    engine: c.engine().unwrap_or_default().to_string(),
                    status: c.status().map(str::to_string),
                    members: c
                        .db_cluster_members()
                        .iter()
                        .filter_map(|m| m.db_instance_identifier().map(str::to_string))
                        .collect(),
                    encrypted: c.storage_encrypted().unwrap_or(false),
                    kms_key_id: c.kms_key_id().map(str::to_string),
                    subnet_group: c.db_subnet_group().map(str::to_string),
                    tags: tag_map(c.tag_list().iter().map(|t| (t.key(), t.value()))),
                });
            }
        }
        Ok::<_, AwsError>(v)
    };
    let (zones, instances, db_instances, db_clusters) =
        futures::try_join!(zones, instances, db_instances, db_clusters)?;
    inv.availability_zones = zones;
    inv.instances = instances;
    inv.db_instances = db_instances;
    inv.db_clusters = db_clusters;
    logs.write(
        LogFile::Discovery,
        job,
        "CAmazonDiscovery::DiscoverRegion",
        &format!(
            "Tenant [{tenant}] region [{region}]: {} availability zones [{}], {} instances, {} volumes, {} DB instances, {} Aurora clusters",
            inv.availability_zones.len(),
            inv.availability_zones.join(","),
            inv.instances.len(),
            inv.instances.iter().map(|i| i.volumes.len()).sum::<usize>(),
            inv.db_instances.len(),
            inv.db_clusters.len()
        ),
    );
    Ok(inv)
}

/// The ids of a region's sources that still exist: instances that are not
/// terminated or shutting down, DB instances and Aurora clusters. It is all
/// the prune needs to keep the newest point of a live source, and lighter
/// than [`discover_region`]: AWS answers only live instances, and there is no
/// DescribeVolumes or DescribeAvailabilityZones.
pub async fn live_sources(
    session: &TenantSession,
    account: &str,
    region: &str,
    logs: &Logs,
) -> Result<BTreeSet<String>, AwsError> {
    // The semaphore is never closed.
    let _slot = DISCOVERING.acquire().await.ok();
    let tenant = &session.tenant.name;
    let site = Site { tenant, region };
    let mut live = BTreeSet::new();
    let ec2 = session.ec2(region);
    let mut pages = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| site.err("DescribeInstances", None, e.into_service_error()))?;
        for r in page.reservations() {
            live.extend(
                r.instances()
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_string)),
            );
        }
    }
    let instances = live.len();
    let rds = session.rds(region);
    let mut pages = rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| site.err("DescribeDBInstances", None, e.into_service_error()))?;
        live.extend(
            page.db_instances()
                .iter()
                .filter_map(|d| d.db_instance_identifier().map(str::to_string)),
        );
    }
    let mut pages = rds.describe_db_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| site.err("DescribeDBClusters", None, e.into_service_error()))?;
        live.extend(
            page.db_clusters()
                .iter()
                .filter_map(|c| c.db_cluster_identifier().map(str::to_string)),
        );
    }
    logs.write(
        LogFile::Discovery,
        session.job,
        "CAmazonDiscovery::LiveSources",
        &format!(
            "Tenant [{tenant}] account [{account}] region [{region}]: {instances} live instances, {} DB instances and clusters",
            live.len() - instances
        ),
    );
    Ok(live)
}

async fn discover_instances(
    ec2: &aws_sdk_ec2::Client,
    site: &Site<'_>,
    volumes: bool,
) -> Result<Vec<Instance>, AwsError> {
    let mut instances = Vec::new();
    let mut pages = ec2.describe_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| site.err("DescribeInstances", None, e.into_service_error()))?;
        for r in page.reservations() {
            for i in r.instances() {
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default();
                instances.push(Instance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    az: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or_default()
                        .to_string(),
                    state,
                    instance_type: i.instance_type().map(|t| t.as_str().to_string()),
                    subnet_id: i.subnet_id().map(str::to_string),
                    vpc_id: i.vpc_id().map(str::to_string),
                    security_groups: i
                        .security_groups()
                        .iter()
                        .filter_map(|g| g.group_id().map(str::to_string))
                        .collect(),
                    key_name: i.key_name().map(str::to_string),
                    iam_profile_arn: i
                        .iam_instance_profile()
                        .and_then(|p| p.arn())
                        .map(str::to_string),
                    image_id: i.image_id().map(str::to_string),
                    root_device: i.root_device_name().map(str::to_string),
                    tags: tag_map(i.tags().iter().map(|t| (t.key(), t.value()))),
                    volumes: i
                        .block_device_mappings()
                        .iter()
                        .filter_map(|m| {
                            let ebs = m.ebs()?;
                            Some(AttachedVolume {
                                volume_id: ebs.volume_id()?.to_string(),
                                device: m.device_name().unwrap_or_default().to_string(),
                                size_gib: 0,
                                volume_type: None,
                                encrypted: false,
                                kms_key_id: None,
                                delete_on_termination: ebs.delete_on_termination().unwrap_or(false),
                            })
                        })
                        .collect(),
                });
            }
        }
    }
    if !volumes {
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        return Ok(instances);
    }
    // Sizes, types and encryption come from DescribeVolumes, filtered to the
    // attached volumes in batches (a filter takes up to 200 values).
    let ids: Vec<String> = instances
        .iter()
        .flat_map(|i| i.volumes.iter().map(|v| v.volume_id.clone()))
        .collect();
    let mut details = BTreeMap::new();
    for chunk in ids.chunks(200) {
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("volume-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let mut pages = ec2
            .describe_volumes()
            .filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| site.err("DescribeVolumes", None, e.into_service_error()))?;
            for v in page.volumes() {
                if let Some(id) = v.volume_id() {
                    details.insert(id.to_string(), v.clone());
                }
            }
        }
    }
    for inst in &mut instances {
        for vol in &mut inst.volumes {
            if let Some(v) = details.get(&vol.volume_id) {
                vol.size_gib = i64::from(v.size().unwrap_or(0));
                vol.volume_type = v.volume_type().map(|t| t.as_str().to_string());
                vol.encrypted = v.encrypted().unwrap_or(false);
                vol.kms_key_id = v.kms_key_id().map(str::to_string);
            }
        }
    }
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(instances)
}

// ---------------------------------------------------------------- selection

/// A resource a plan protects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resource {
    Instance(Instance),
    DbInstance(DbInstance),
    DbCluster(DbCluster),
}

impl Resource {
    pub fn id(&self) -> &str {
        match self {
            Resource::Instance(i) => &i.id,
            Resource::DbInstance(d) => &d.id,
            Resource::DbCluster(c) => &c.id,
        }
    }
    pub fn kind(&self) -> &'static str {
        self.item_kind().as_str()
    }
    pub fn item_kind(&self) -> ItemKind {
        match self {
            Resource::Instance(_) => ItemKind::Instance,
            Resource::DbInstance(_) => ItemKind::DbInstance,
            Resource::DbCluster(_) => ItemKind::DbCluster,
        }
    }
    /// AZ for instances and DB instances; clusters span AZs.
    pub fn az(&self) -> Option<&str> {
        match self {
            Resource::Instance(i) => Some(&i.az),
            Resource::DbInstance(d) => d.az.as_deref(),
            Resource::DbCluster(_) => None,
        }
    }
    pub fn size_gib(&self) -> i64 {
        match self {
            Resource::Instance(i) => i.size_gib(),
            Resource::DbInstance(d) => d.storage_gib,
            Resource::DbCluster(_) => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selected {
    pub resource: Resource,
    /// The group that selected it (the first one, when several would).
    pub group: String,
    pub reason: String,
}

impl Selected {
    /// What a backup keeps of a selected resource while its job runs: ids,
    /// AZ, size, volumes and the configuration its recovery point records
    /// ([`crate::tags::instance_config`]). The resource's own tags (read only
    /// to select it), the reason it was selected and fields no recovery point
    /// records are dropped: a fleet's whole selection is held until every
    /// create of the job has been made.
    pub fn for_backup(mut self) -> Selected {
        self.reason = String::new();
        match &mut self.resource {
            Resource::Instance(i) => {
                i.tags = BTreeMap::new();
                i.state = String::new();
                i.vpc_id = None;
                i.image_id = None;
                for v in &mut i.volumes {
                    v.volume_type = None;
                    v.kms_key_id = None;
                }
                i.volumes.shrink_to_fit();
            }
            Resource::DbInstance(d) => d.tags = BTreeMap::new(),
            Resource::DbCluster(c) => c.tags = BTreeMap::new(),
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub id: String,
    pub kind: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    pub selected: Vec<Selected>,
    pub skipped: Vec<Skipped>,
}

/// Why a group takes or leaves one instance.
fn instance_decision(g: &Group, i: &Instance) -> Result<String, String> {
    if matches!(i.state.as_str(), "terminated" | "shutting-down") {
        return Err(format!("instance is {}", i.state));
    }
    if !g.availability_zones.is_empty() && !g.availability_zones.contains(&i.az) {
        return Err(format!("AZ {} not in group {}", i.az, g.name));
    }
    if g.exclude_instances.contains(&i.id) {
        return Err(format!("excluded by id in group {}", g.name));
    }
    if let Some(rule) = g.exclude_tags.iter().find(|r| r.matches(&i.tags)) {
        return Err(format!("excluded by tag {rule} in group {}", g.name));
    }
    if g.instances.contains(&i.id) {
        return Ok("listed by id".to_string());
    }
    if let Some(rule) = g.include_tags.iter().find(|r| r.matches(&i.tags)) {
        return Ok(format!("tag {rule}"));
    }
    if g.instances.is_empty() && g.include_tags.is_empty() {
        return Ok("all instances".to_string());
    }
    Err(format!("no id or tag rule of group {} matches", g.name))
}

fn db_decision(g: &Group, id: &str, patterns: &[String], what: &str) -> Result<String, String> {
    if let Some(p) = g.exclude_databases.iter().find(|p| glob_match(p, id)) {
        return Err(format!("excluded by {p} in group {}", g.name));
    }
    if patterns.is_empty() {
        return Ok(format!("all {what}"));
    }
    match patterns.iter().find(|p| glob_match(p, id)) {
        Some(p) => Ok(format!("matches {p}")),
        None => Err(format!("not listed in group {}", g.name)),
    }
}

/// Applies the groups that cover `inv.tenant` and `inv.region` to an inventory.
/// `group_regions` gives, per group name, the regions it resolved to for this
/// tenant. Pure: no I/O.
pub fn select(inv: &RegionInventory, groups: &[&Group]) -> Selection {
    let mut sel = Selection::default();
    let mut taken = BTreeSet::new();
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut take =
        |sel: &mut Selection, r: Resource, g: &Group, why: Result<String, String>| match why {
            Ok(reason) => {
                if taken.insert(r.id().to_string()) {
                    sel.selected.push(Selected {
                        resource: r,
                        group: g.name.clone(),
                        reason,
                    });
                }
            }
            Err(why) => reasons.entry(r.id().to_string()).or_default().push(why),
        };
    for g in groups {
        if g.ec2 {
            for i in &inv.instances {
                take(
                    &mut sel,
                    Resource::Instance(i.clone()),
                    g,
                    instance_decision(g, i),
                );
            }
        }
        if g.rds {
            // Aurora members are protected through their cluster.
            for d in inv.db_instances.iter().filter(|d| d.cluster_id.is_none()) {
                let why = match (&d.az, g.availability_zones.is_empty()) {
                    (Some(az), false) if !g.availability_zones.contains(az) => {
                        Err(format!("AZ {az} not in group {}", g.name))
                    }
                    _ => db_decision(g, &d.id, &g.rds_instances, "DB instances"),
                };
                take(&mut sel, Resource::DbInstance(d.clone()), g, why);
            }
        }
        if g.aurora {
            for c in &inv.db_clusters {
                let why = db_decision(g, &c.id, &g.aurora_clusters, "Aurora clusters");
                take(&mut sel, Resource::DbCluster(c.clone()), g, why);
            }
        }
    }
    let all: Vec<(&str, &'static str)> = inv
        .instances
        .iter()
        .map(|i| (i.id.as_str(), "instance"))
        .chain(
            inv.db_instances
                .iter()
                .map(|d| (d.id.as_str(), "db-instance")),
        )
        .chain(
            inv.db_clusters
                .iter()
                .map(|c| (c.id.as_str(), "db-cluster")),
        )
        .collect();
    for (id, kind) in all {
        if taken.contains(id) {
            continue;
        }
        let member_of = inv
            .db_instances
            .iter()
            .find(|d| d.id == id)
            .and_then(|d| d.cluster_id.as_deref());
        let reason = match (reasons.remove(id), member_of) {
            (Some(r), _) => r.join("; "),
            (None, Some(c)) if taken.contains(c) => {
                format!("member of Aurora cluster {c}, protected through the cluster")
            }
            (None, Some(c)) => {
                format!("member of Aurora cluster {c} (set aurora = true to protect the cluster)")
            }
            (None, None) => "no group covers this resource type".to_string(),
        };
        sel.skipped.push(Skipped {
            id: id.to_string(),
            kind,
            reason,
        });
    }
    sel
}

/// One tenant × region, discovered and selected.
#[derive(Debug, Clone, Serialize)]
pub struct RegionResult {
    pub tenant: String,
    pub region: String,
    pub inventory: Option<RegionInventory>,
    pub selection: Selection,
    pub error: Option<AwsError>,
}

/// The groups of `plan` that cover `tenant`.
pub fn groups_for<'a>(plan: &'a Plan, tenant: &Tenant) -> Vec<&'a Group> {
    plan.groups
        .iter()
        .filter(|g| g.tenants.contains(&tenant.name))
        .collect()
}

/// Discovers every region a tenant's groups cover, concurrently, and applies
/// the selection. A failing region is reported in its result; the others go on.
pub async fn discover_tenant(
    plan: &Plan,
    session: &TenantSession,
    account: &str,
    admin_region: &str,
    region_filter: Option<&str>,
    logs: &Logs,
    for_backup: bool,
) -> Vec<RegionResult> {
    let groups = groups_for(plan, &session.tenant);
    let (mut results, per_region) =
        tenant_regions(session, admin_region, region_filter, &groups).await;
    let futures = per_region.into_iter().map(|(region, gs)| {
        let wanted = Wanted::for_groups(gs.iter().copied());
        region_result(session, account, region, gs, wanted, logs, for_backup)
    });
    results.extend(join_all(futures).await);
    results
}

/// How a backup discovers a tenant.
#[derive(Clone, Copy)]
pub struct BackupDiscovery<'a> {
    /// Whether the attached volumes are described (their sizes); a
    /// snapshot-set backup takes each size from its snapshot instead.
    pub volumes: bool,
    /// A region's discovery starts only once it has one of these permits,
    /// which comes with its result: the caller bounds the regions discovered
    /// and not yet taken up by holding the permits (a failed group has none).
    pub ahead: &'a Arc<tokio::sync::Semaphore>,
}

/// For a backup: a tenant's regions, each as soon as it is discovered (its
/// selection in the backup form, [`Selected::for_backup`]), so that a
/// region's creates start while other regions are still being listed.
pub async fn discover_tenant_for_backup<'a>(
    plan: &'a Plan,
    session: &'a TenantSession,
    account: &'a str,
    admin_region: &'a str,
    region_filter: Option<&'a str>,
    logs: &'a Logs,
    BackupDiscovery { volumes, ahead }: BackupDiscovery<'a>,
) -> impl futures::Stream<Item = (RegionResult, Option<tokio::sync::OwnedSemaphorePermit>)> + 'a {
    let groups = groups_for(plan, &session.tenant);
    let (failed, per_region) = tenant_regions(session, admin_region, region_filter, &groups).await;
    let regions: futures::stream::FuturesUnordered<_> = per_region
        .into_iter()
        .map(|(region, gs)| async move {
            // The semaphore is never closed.
            let permit = ahead.clone().acquire_owned().await.ok();
            let mut wanted = Wanted::for_groups(gs.iter().copied());
            wanted.skip_volumes = !volumes;
            let r = region_result(session, account, region, gs, wanted, logs, true).await;
            (r, permit)
        })
        .collect();
    futures::StreamExt::chain(
        futures::stream::iter(failed.into_iter().map(|r| (r, None))),
        regions,
    )
}

/// The regions `groups` cover for the tenant, each with the groups applied
/// there; a group whose regions cannot be resolved is a failed result.
async fn tenant_regions<'g>(
    session: &TenantSession,
    admin_region: &str,
    region_filter: Option<&str>,
    groups: &[&'g Group],
) -> (Vec<RegionResult>, BTreeMap<String, Vec<&'g Group>>) {
    // Resolve each group's regions; a group is applied in every region it covers.
    let mut per_region: BTreeMap<String, Vec<&Group>> = BTreeMap::new();
    let mut results = Vec::new();
    for g in groups {
        match regions_for(session, admin_region, &g.regions).await {
            Ok(regions) => {
                for r in regions {
                    if region_filter.is_none_or(|f| f == r) {
                        per_region.entry(r).or_default().push(g);
                    }
                }
            }
            Err(e) => results.push(RegionResult {
                tenant: session.tenant.name.clone(),
                region: admin_region.to_string(),
                inventory: None,
                selection: Selection::default(),
                error: Some(e),
            }),
        }
    }
    (results, per_region)
}

/// Discovers one region and applies its groups' selection.
async fn region_result(
    session: &TenantSession,
    account: &str,
    region: String,
    gs: Vec<&Group>,
    wanted: Wanted,
    logs: &Logs,
    for_backup: bool,
) -> RegionResult {
    match discover_region(session, account, &region, wanted, logs).await {
        Ok(inv) => {
            let selection = select(&inv, &gs);
            for s in &selection.selected {
                logs.write(
                    LogFile::Discovery,
                    session.job,
                    "CAmazonDiscovery::SelectResources",
                    &format!(
                        "Selected {} [{}] in [{}/{}] by group [{}]: {}",
                        s.resource.kind(),
                        s.resource.id(),
                        region,
                        s.resource.az().unwrap_or("-"),
                        s.group,
                        s.reason
                    ),
                );
            }
            for s in &selection.skipped {
                logs.write(
                    LogFile::Discovery,
                    session.job,
                    "CAmazonDiscovery::SelectResources",
                    &format!(
                        "Skipped {} [{}] in [{}]: {}",
                        s.kind, s.id, region, s.reason
                    ),
                );
            }
            if for_backup {
                // Only what the backup needs is kept, as soon as each
                // region is known (other regions may still be listing).
                drop(inv);
                return RegionResult {
                    tenant: session.tenant.name.clone(),
                    region,
                    inventory: None,
                    selection: Selection {
                        selected: selection
                            .selected
                            .into_iter()
                            .map(Selected::for_backup)
                            .collect(),
                        skipped: Vec::new(),
                    },
                    error: None,
                };
            }
            RegionResult {
                tenant: session.tenant.name.clone(),
                region,
                inventory: Some(inv),
                selection,
                error: None,
            }
        }
        Err(e) => {
            logs.write(
                LogFile::Discovery,
                session.job,
                "CAmazonDiscovery::DiscoverRegion",
                &format!("Discovery failed: {e}"),
            );
            RegionResult {
                tenant: session.tenant.name.clone(),
                region,
                inventory: None,
                selection: Selection::default(),
                error: Some(e),
            }
        }
    }
}

#[cfg(test)]
mod tests;
