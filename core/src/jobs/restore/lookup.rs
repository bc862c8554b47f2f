//! What the restore reads from AWS (instances, subnets, security groups, key
//! pairs, DB tags) and the small builders of EC2 requests, shared by the
//! restore targets and the cleanup.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::ec2::filter;
use crate::aws::ec2_tag_map;
use crate::aws::error::AwsError;
use crate::aws::pace::Bucket;

use super::context::Context;
use super::RestoreError;

pub(super) fn tag_list(t: &[(String, String)]) -> String {
    t.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, Clone)]
pub(super) struct Described {
    pub(super) state: String,
    pub(super) reason: String,
    pub(super) az: String,
    pub(super) subnet: Option<String>,
    pub(super) instance_type: Option<String>,
    pub(super) image_id: Option<String>,
    pub(super) root_device: Option<String>,
    /// (device, volume id)
    pub(super) devices: Vec<(String, String)>,
    pub(super) tags: BTreeMap<String, String>,
}

pub(super) fn described(i: &aws_sdk_ec2::types::Instance) -> Described {
    Described {
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        reason: i
            .state_reason()
            .and_then(|r| r.message())
            .unwrap_or_default()
            .to_string(),
        az: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string(),
        subnet: i.subnet_id().map(str::to_string),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        image_id: i.image_id().map(str::to_string),
        root_device: i.root_device_name().map(str::to_string),
        devices: i
            .block_device_mappings()
            .iter()
            .map(|m| {
                (
                    m.device_name().unwrap_or_default().to_string(),
                    m.ebs()
                        .and_then(|e| e.volume_id())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect(),
        tags: ec2_tag_map(i.tags(), |_| true),
    }
}

pub(super) async fn describe_instance(
    cx: &Context<'_>,
    region: &str,
    id: &str,
) -> Result<Option<Described>, AwsError> {
    let ec2 = cx.session.ec2(region);
    cx.take(region, Bucket::Describe).await;
    match ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .map(described)),
        Err(e) => {
            let e = cx
                .site(region)
                .err("DescribeInstances", Some(id), e.into_service_error());
            if e.code.contains("NotFound") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Instances tagged with this job, not terminated.
pub(super) async fn job_instances(
    cx: &Context<'_>,
    region: &str,
    job: &str,
) -> Result<Vec<String>, AwsError> {
    let ec2 = cx.session.ec2(region);
    cx.take(region, Bucket::Describe).await;
    let out = ec2
        .describe_instances()
        .set_filters(Some(cx.job_filters(job)))
        .filters(filter(
            "instance-state-name",
            &["pending", "running", "stopping", "stopped", "shutting-down"],
        ))
        .send()
        .await
        .map_err(|e| {
            cx.site(region)
                .err("DescribeInstances", None, e.into_service_error())
        })?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect())
}

/// (AZ, VPC) of a subnet id.
pub(super) async fn subnet_info(
    cx: &Context<'_>,
    region: &str,
    subnet: &str,
) -> Result<(String, Option<String>), RestoreError> {
    let ec2 = cx.session.ec2(region);
    cx.take(region, Bucket::Describe).await;
    let out = ec2
        .describe_subnets()
        .subnet_ids(subnet)
        .send()
        .await
        .map_err(|e| {
            cx.site(region)
                .err("DescribeSubnets", Some(subnet), e.into_service_error())
        })?;
    let s = out.subnets().first().ok_or_else(|| {
        RestoreError::BadRequest(format!("subnet {subnet} not found in {region}"))
    })?;
    Ok((
        s.availability_zone().unwrap_or_default().to_string(),
        s.vpc_id().map(str::to_string),
    ))
}

pub(super) async fn subnet_az(
    cx: &Context<'_>,
    region: &str,
    subnet: &str,
) -> Result<String, RestoreError> {
    Ok(subnet_info(cx, region, subnet).await?.0)
}

/// The VPCs of security groups.
pub(super) async fn security_group_vpcs(
    cx: &Context<'_>,
    region: &str,
    groups: &[String],
) -> Result<BTreeSet<String>, AwsError> {
    let ec2 = cx.session.ec2(region);
    cx.take(region, Bucket::Describe).await;
    let out = ec2
        .describe_security_groups()
        .set_group_ids(Some(groups.to_vec()))
        .send()
        .await
        .map_err(|e| {
            cx.site(region)
                .err("DescribeSecurityGroups", None, e.into_service_error())
        })?;
    Ok(out
        .security_groups()
        .iter()
        .filter_map(|g| g.vpc_id().map(str::to_string))
        .collect())
}

/// The default subnet of `region`, preferring the AZ whose letter matches
/// `like_az` (`us-east-1b` → `us-west-2b`). (subnet, AZ)
pub(super) async fn default_subnet(
    cx: &Context<'_>,
    region: &str,
    like_az: Option<&str>,
) -> Result<Option<(String, String)>, AwsError> {
    let ec2 = cx.session.ec2(region);
    cx.take(region, Bucket::Describe).await;
    let out = ec2
        .describe_subnets()
        .filters(filter("default-for-az", &["true"]))
        .send()
        .await
        .map_err(|e| {
            cx.site(region)
                .err("DescribeSubnets", None, e.into_service_error())
        })?;
    let mut subnets: Vec<(String, String)> = out
        .subnets()
        .iter()
        .filter_map(|s| {
            Some((
                s.subnet_id()?.to_string(),
                s.availability_zone()?.to_string(),
            ))
        })
        .collect();
    subnets.sort_by(|a, b| a.1.cmp(&b.1));
    let letter = like_az.and_then(|az| az.chars().last());
    Ok(subnets
        .iter()
        .find(|(_, az)| letter.is_some() && az.chars().last() == letter)
        .or(subnets.first())
        .cloned())
}

pub(super) async fn key_exists(cx: &Context<'_>, region: &str, key: &str) -> bool {
    let ec2 = cx.session.ec2(region);
    cx.take(region, Bucket::Describe).await;
    ec2.describe_key_pairs()
        .key_names(key)
        .send()
        .await
        .is_ok_and(|o| !o.key_pairs().is_empty())
}

/// Whether a DB instance or cluster with this identifier exists; its tags if so.
pub(super) async fn db_tags(
    cx: &Context<'_>,
    region: &str,
    id: &str,
    cluster: bool,
) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let rds = cx.session.rds(region);
    let site = cx.site(region);
    cx.take(region, Bucket::Rds).await;
    let tags_of = |t: &[aws_sdk_rds::types::Tag]| -> BTreeMap<String, String> {
        t.iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    };
    let r = if cluster {
        rds.describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
            .map(|o| o.db_clusters().first().map(|c| tags_of(c.tag_list())))
            .map_err(|e| site.err("DescribeDBClusters", Some(id), e.into_service_error()))
    } else {
        rds.describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .map(|o| o.db_instances().first().map(|d| tags_of(d.tag_list())))
            .map_err(|e| site.err("DescribeDBInstances", Some(id), e.into_service_error()))
    };
    match r {
        Ok(t) => Ok(t),
        Err(e) if e.code.contains("NotFound") => Ok(None),
        Err(e) => Err(e),
    }
}
