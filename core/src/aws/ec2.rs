//! EC2 adapter: the snapshots and images of one tenant × region.
//!
//! Describes take a `Describe` token per call (per page when paged); creates,
//! copies and deletes take a turn of their own bucket for each attempt and
//! have the SDK's retries off, so that no attempt goes around the pacer
//! ([`crate::aws::pace`]). Creates and copies are retried by
//! [`create_with_retry`]: after an ambiguous failure they ask AWS whether the
//! resource exists (by the identity tags the call set) before trying again.

use aws_sdk_ec2::types::{
    Filter, Image, InstanceSpecification, ResourceType, Snapshot, TagSpecification,
};
use tokio::time::Instant;

use super::{ec2_tags, no_sdk_retries_ec2, tag_filter, At};
use crate::aws::error::AwsError;
use crate::aws::pace::Bucket;
use crate::aws::retry::create_with_retry;
use crate::tags;

/// DescribeSnapshots page size (AWS allows 5–1000). Without one, AWS may
/// answer a region's every snapshot at once: one answer of many megabytes.
pub const SNAPSHOTS_PER_PAGE: i32 = 1000;

/// DescribeSnapshots pages read at once over the whole process (requested,
/// parsed and handed to the caller).
pub const SNAPSHOT_PAGES_AT_ONCE: usize = 8;
static SNAPSHOT_PAGES: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(SNAPSHOT_PAGES_AT_ONCE);

/// EC2 calls of one tenant × region.
pub struct Ec2<'a> {
    /// Named for the service: the policy test finds the calls by the field name.
    ec2: aws_sdk_ec2::Client,
    at: At<'a>,
}

/// A `Filter` on one field with several values.
pub fn filter(name: &str, values: &[impl AsRef<str>]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(
            values.iter().map(|v| v.as_ref().to_string()).collect(),
        ))
        .build()
}

/// Resources carrying the tag key `key` (any value).
pub fn tag_key(key: &str) -> Filter {
    Filter::builder().name("tag-key").values(key).build()
}

/// Tags `t` for a resource of `kind`, set by the call that creates it.
pub fn tag_spec(kind: ResourceType, t: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(t)))
        .build()
}

impl<'a> Ec2<'a> {
    pub fn new(client: aws_sdk_ec2::Client, at: At<'a>) -> Ec2<'a> {
        Ec2 { ec2: client, at }
    }

    // ------------------------------------------------------------ describe

    /// Every snapshot this account owns that matches `filters`, page by
    /// page, each given to `each` (a listing of thousands is not held twice).
    pub async fn each_snapshot(
        &self,
        filters: Vec<Filter>,
        each: impl FnMut(&Snapshot),
    ) -> Result<(), AwsError> {
        let req = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(Some(filters));
        self.each_page(req, each).await
    }

    /// The pages of one DescribeSnapshots request, [`SNAPSHOTS_PER_PAGE`] at
    /// a time, each snapshot given to `each`.
    async fn each_page(
        &self,
        req: aws_sdk_ec2::operation::describe_snapshots::builders::DescribeSnapshotsFluentBuilder,
        mut each: impl FnMut(&Snapshot),
    ) -> Result<(), AwsError> {
        // The paginator (the SDK's request state, a few KB) is made once
        // the first page may be read: many regions that poll at once wait
        // with only their request.
        let mut req = Some(req);
        let mut pages = None;
        // Every page is a call, and takes its token: the first here, the
        // next ones when a page says there is more.
        self.at.take(Bucket::Describe).await;
        loop {
            // A page is the largest answer rolesnap reads (up to 1 000
            // snapshots with their tags, parsed): a process reads a few at a
            // time, so that memory does not grow with the regions listing or
            // polling at once. The semaphore is never closed.
            let _reading = SNAPSHOT_PAGES.acquire().await.ok();
            let pages = pages.get_or_insert_with(|| {
                req.take()
                    .expect("the request is taken once")
                    .max_results(SNAPSHOTS_PER_PAGE)
                    .into_paginator()
                    .send()
            });
            let Some(page) = pages.next().await else {
                break;
            };
            let page = page.map_err(|e| {
                self.at
                    .err("DescribeSnapshots", None, e.into_service_error())
            })?;
            if page.next_token().is_some_and(|t| !t.is_empty()) {
                self.at.take(Bucket::Describe).await;
            }
            page.snapshots().iter().for_each(&mut each);
        }
        Ok(())
    }

    /// The snapshots `ids`, asked by id. AWS refuses the whole call with
    /// `InvalidSnapshot.NotFound` when any one of them does not exist, so
    /// then they are asked again with a `snapshot-id` filter, which lists the
    /// ones that do: one missing snapshot does not hide the others.
    pub async fn snapshots_by_id(&self, ids: &[String]) -> Result<Vec<Snapshot>, AwsError> {
        self.at.take(Bucket::Describe).await;
        match self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .set_snapshot_ids(Some(ids.to_vec()))
            .send()
            .await
        {
            Ok(out) => return Ok(out.snapshots.unwrap_or_default()),
            Err(e) => {
                let e = self
                    .at
                    .err("DescribeSnapshots", None, e.into_service_error());
                if e.code != "InvalidSnapshot.NotFound" {
                    return Err(e);
                }
            }
        }
        let mut found = Vec::new();
        self.each_snapshot(vec![filter("snapshot-id", ids)], |s| found.push(s.clone()))
            .await?;
        Ok(found)
    }

    /// The images this account owns that match `filters` (one call: AWS
    /// does not page DescribeImages without MaxResults).
    pub async fn images(&self, filters: Vec<Filter>) -> Result<Vec<Image>, AwsError> {
        self.at.take(Bucket::Describe).await;
        let out = self
            .ec2
            .describe_images()
            .owners("self")
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| self.at.err("DescribeImages", None, e.into_service_error()))?;
        Ok(out.images.unwrap_or_default())
    }

    /// This account's images that `account` may launch (an explicit launch
    /// permission for it), among those matching `filters`.
    pub async fn images_shared_with(
        &self,
        account: &str,
        filters: Vec<Filter>,
    ) -> Result<Vec<Image>, AwsError> {
        self.at.take(Bucket::Describe).await;
        let out = self
            .ec2
            .describe_images()
            .owners("self")
            .executable_users(account)
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| self.at.err("DescribeImages", None, e.into_service_error()))?;
        Ok(out.images.unwrap_or_default())
    }

    /// The images `ids`, asked by id; as for snapshots, an
    /// `InvalidAMIID.*` for the list is asked again with an `image-id` filter.
    pub async fn images_by_id(&self, ids: &[String]) -> Result<Vec<Image>, AwsError> {
        self.at.take(Bucket::Describe).await;
        match self
            .ec2
            .describe_images()
            .owners("self")
            .set_image_ids(Some(ids.to_vec()))
            .send()
            .await
        {
            Ok(out) => return Ok(out.images.unwrap_or_default()),
            Err(e) => {
                let e = self.at.err("DescribeImages", None, e.into_service_error());
                if !e.code.starts_with("InvalidAMIID.") {
                    return Err(e);
                }
            }
        }
        self.images(vec![filter("image-id", ids)]).await
    }

    /// The snapshots backing `image`.
    pub async fn image_snapshots(&self, image: &str) -> Result<Vec<String>, AwsError> {
        self.at.take(Bucket::Describe).await;
        let out = self
            .ec2
            .describe_images()
            .image_ids(image)
            .send()
            .await
            .map_err(|e| {
                self.at
                    .err("DescribeImages", Some(image), e.into_service_error())
            })?;
        Ok(out
            .images()
            .iter()
            .flat_map(|i| i.block_device_mappings())
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect())
    }

    // ------------------------------------------------------------ create

    /// One CreateSnapshots call for every volume of `instance` (a
    /// crash-consistent set), tagged `t` at creation. After an ambiguous
    /// failure the set is looked up by `mine` (the job's identity filters)
    /// and the instance: returns (snapshot id, volume id) pairs.
    pub async fn create_snapshot_set(
        &self,
        instance: &str,
        description: String,
        t: &[(String, String)],
        mine: Vec<Filter>,
        deadline: Instant,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let spec = tag_spec(ResourceType::Snapshot, t);
        let tries = &self.at.tries(Bucket::CreateSnapshot);
        let (r, _) = create_with_retry(
            deadline,
            || {
                let (spec, description) = (spec.clone(), description.clone());
                async move {
                    let _turn = tries.turn().await;
                    let out = Box::pin(
                        self.ec2
                            .create_snapshots()
                            .instance_specification(
                                InstanceSpecification::builder()
                                    .instance_id(instance)
                                    .exclude_boot_volume(false)
                                    .build(),
                            )
                            .description(description)
                            .tag_specifications(spec)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send(),
                    )
                    .await
                    .map_err(|e| {
                        self.at
                            .err("CreateSnapshots", Some(instance), e.into_service_error())
                    })?;
                    Ok(out
                        .snapshots()
                        .iter()
                        .filter_map(|x| {
                            Some((
                                x.snapshot_id()?.to_string(),
                                x.volume_id().unwrap_or_default().to_string(),
                            ))
                        })
                        .collect::<Vec<_>>())
                }
            },
            || Box::pin(self.find_set(instance, mine.clone())),
            |e, wait| self.at.retried(e, wait),
        )
        .await;
        r
    }

    /// After an ambiguous CreateSnapshots failure: did AWS make the set
    /// anyway? Looks for the snapshots of `instance` that carry `mine`.
    pub async fn find_set(
        &self,
        instance: &str,
        mut mine: Vec<Filter>,
    ) -> Result<Option<Vec<(String, String)>>, AwsError> {
        mine.push(tag_filter(tags::SOURCE, instance));
        let mut found = Vec::new();
        self.each_snapshot(mine, |s| {
            if let Some(id) = s.snapshot_id() {
                found.push((
                    id.to_string(),
                    s.volume_id().unwrap_or_default().to_string(),
                ));
            }
        })
        .await?;
        if !found.is_empty() {
            self.at.note(&format!(
                "Adopted existing snapshot set of [{instance}] after an ambiguous failure"
            ));
        }
        Ok((!found.is_empty()).then_some(found))
    }

    /// CreateImage with NoReboot; the image tagged `image_tags`, its
    /// snapshots `snapshot_tags`, both at creation. After an ambiguous
    /// failure the image is looked up by `mine` and the instance.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_image(
        &self,
        instance: &str,
        name: &str,
        description: String,
        image_tags: &[(String, String)],
        snapshot_tags: &[(String, String)],
        mine: Vec<Filter>,
        deadline: Instant,
    ) -> Result<String, AwsError> {
        let spec = tag_spec(ResourceType::Image, image_tags);
        let snap_spec = tag_spec(ResourceType::Snapshot, snapshot_tags);
        let tries = &self.at.tries(Bucket::CreateImage);
        let (r, _) = create_with_retry(
            deadline,
            || {
                let (spec, snap_spec, description) =
                    (spec.clone(), snap_spec.clone(), description.clone());
                async move {
                    let _turn = tries.turn().await;
                    let out = Box::pin(
                        self.ec2
                            .create_image()
                            .instance_id(instance)
                            .name(name)
                            .description(description)
                            .no_reboot(true)
                            .tag_specifications(spec)
                            .tag_specifications(snap_spec)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send(),
                    )
                    .await
                    .map_err(|e| {
                        self.at
                            .err("CreateImage", Some(instance), e.into_service_error())
                    })?;
                    Ok(out.image_id().unwrap_or_default().to_string())
                }
            },
            || self.find_image(instance, mine.clone()),
            |e, wait| self.at.retried(e, wait),
        )
        .await;
        r
    }

    /// After an ambiguous CreateImage failure: did AWS make the image anyway?
    /// Looks for an image of `instance` that carries `mine`.
    pub async fn find_image(
        &self,
        instance: &str,
        mut mine: Vec<Filter>,
    ) -> Result<Option<String>, AwsError> {
        mine.push(tag_filter(tags::SOURCE, instance));
        let found = self.images(mine).await?;
        Ok(found.first().and_then(|i| i.image_id()).map(str::to_string))
    }

    /// Tags every snapshot backing `image` with `t` (retried; tagging twice
    /// is harmless); returns their ids.
    pub async fn tag_image_snapshots(
        &self,
        image: &str,
        t: &[(String, String)],
        deadline: Instant,
    ) -> Result<Vec<String>, AwsError> {
        let snaps = self.image_snapshots(image).await?;
        if snaps.is_empty() {
            return Ok(snaps);
        }
        let tag_list = ec2_tags(t);
        let (r, _) = create_with_retry(
            deadline,
            || {
                let (snaps, tag_list) = (snaps.clone(), tag_list.clone());
                async move {
                    self.at.take(Bucket::CreateTags).await;
                    self.ec2
                        .create_tags()
                        .set_resources(Some(snaps))
                        .set_tags(Some(tag_list))
                        .send()
                        .await
                        .map_err(|e| {
                            self.at
                                .err("CreateTags", Some(image), e.into_service_error())
                        })?;
                    Ok(())
                }
            },
            || async { Ok(None) },
            |e, wait| self.at.retried(e, wait),
        )
        .await;
        r?;
        self.at.note(&format!(
            "Tagged snapshots [{}] of image [{image}] with {}",
            snaps.join(", "),
            t.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(snaps)
    }

    // ------------------------------------------------------------ copy

    /// Copies snapshot `sid` of `src` here, tagged `t` at creation (which
    /// must hold `_GX_COPY_OF_`: after an ambiguous failure the copy is found
    /// by it). Re-encrypted with `kms` when given.
    pub async fn copy_snapshot(
        &self,
        src: &str,
        sid: &str,
        description: String,
        t: &[(String, String)],
        kms: Option<String>,
        deadline: Instant,
    ) -> Result<String, AwsError> {
        let spec = tag_spec(ResourceType::Snapshot, t);
        // A region copy is found by `_GX_COPY_OF_`, a vault copy by `_GX_VAULT_OF_`.
        let (key, copy_of) = t
            .iter()
            .find(|(k, _)| k == tags::VAULT_OF)
            .or_else(|| t.iter().find(|(k, _)| k == tags::COPY_OF))
            .cloned()
            .unwrap_or_else(|| (tags::COPY_OF.to_string(), String::new()));
        let tries = &self.at.tries(Bucket::CopySnapshot);
        let (r, _) = create_with_retry(
            deadline,
            || {
                let (spec, kms, description) = (spec.clone(), kms.clone(), description.clone());
                async move {
                    let _turn = tries.turn().await;
                    let mut req = self
                        .ec2
                        .copy_snapshot()
                        .source_region(src)
                        .source_snapshot_id(sid)
                        .description(description)
                        .tag_specifications(spec);
                    if let Some(k) = kms {
                        req = req.encrypted(true).kms_key_id(k);
                    }
                    let out = req
                        .customize()
                        .config_override(no_sdk_retries_ec2())
                        .send()
                        .await
                        .map_err(|e| {
                            self.at
                                .err("CopySnapshot", Some(sid), e.into_service_error())
                        })?;
                    Ok(out.snapshot_id().unwrap_or_default().to_string())
                }
            },
            || async {
                let mut found = None;
                self.each_snapshot(vec![tag_filter(&key, &copy_of)], |s| {
                    if found.is_none() {
                        found = s.snapshot_id().map(str::to_string);
                    }
                })
                .await?;
                Ok(found)
            },
            |e, wait| self.at.retried(e, wait),
        )
        .await;
        r
    }

    /// Copies image `image` of `src` here as `name`, the image tagged `t` and
    /// its snapshots `snapshot_tags` at creation. `token` makes a repeated
    /// call the same copy on AWS's side.
    #[allow(clippy::too_many_arguments)]
    pub async fn copy_image(
        &self,
        src: &str,
        image: &str,
        name: &str,
        token: &str,
        t: &[(String, String)],
        snapshot_tags: &[(String, String)],
        kms: Option<String>,
        deadline: Instant,
    ) -> Result<String, AwsError> {
        let spec = tag_spec(ResourceType::Image, t);
        let snap_spec = tag_spec(ResourceType::Snapshot, snapshot_tags);
        let tries = &self.at.tries(Bucket::CopyImage);
        let (r, _) = create_with_retry(
            deadline,
            || {
                let (spec, snap_spec, kms) = (spec.clone(), snap_spec.clone(), kms.clone());
                async move {
                    let _turn = tries.turn().await;
                    let mut req = self
                        .ec2
                        .copy_image()
                        .source_region(src)
                        .source_image_id(image)
                        .name(name)
                        .client_token(token)
                        .tag_specifications(spec)
                        .tag_specifications(snap_spec);
                    if let Some(k) = kms {
                        req = req.encrypted(true).kms_key_id(k);
                    }
                    let out = req
                        .customize()
                        .config_override(no_sdk_retries_ec2())
                        .send()
                        .await
                        .map_err(|e| {
                            self.at
                                .err("CopyImage", Some(image), e.into_service_error())
                        })?;
                    Ok(out.image_id().unwrap_or_default().to_string())
                }
            },
            || async { Ok(None) },
            |e, wait| self.at.retried(e, wait),
        )
        .await;
        r
    }

    // ------------------------------------------------------------ share (vault copies)

    /// Shares snapshot `id` with `account` (`add`), or stops sharing it:
    /// ModifySnapshotAttribute `createVolumePermission`. Stopping a share of
    /// a snapshot already gone counts as done.
    pub async fn share_snapshot(
        &self,
        id: &str,
        account: &str,
        add: bool,
        deadline: Instant,
    ) -> Result<(), AwsError> {
        use aws_sdk_ec2::types::{
            CreateVolumePermission, CreateVolumePermissionModifications, OperationType,
        };
        let perm = CreateVolumePermission::builder().user_id(account).build();
        let change = if add {
            CreateVolumePermissionModifications::builder().add(perm)
        } else {
            CreateVolumePermissionModifications::builder().remove(perm)
        }
        .build();
        super::idempotent_with_retry(&self.at, Bucket::Mutate, deadline, || async {
            let sent = self
                .ec2
                .modify_snapshot_attribute()
                .snapshot_id(id)
                .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                .operation_type(if add {
                    OperationType::Add
                } else {
                    OperationType::Remove
                })
                .user_ids(account)
                .create_volume_permission(change.clone())
                .customize()
                .config_override(no_sdk_retries_ec2())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    self.at
                        .err("ModifySnapshotAttribute", Some(id), e.into_service_error())
                });
            match sent {
                Err(e) if !add && super::gone(&e.code) => Ok(()),
                r => r,
            }
        })
        .await
    }

    /// Shares image `id` with `account` (`add`: launch permission), or stops
    /// sharing it. AWS copies a shared AMI only when its snapshots are
    /// shared too ([`Ec2::share_snapshot`]).
    pub async fn share_image(
        &self,
        id: &str,
        account: &str,
        add: bool,
        deadline: Instant,
    ) -> Result<(), AwsError> {
        use aws_sdk_ec2::types::{LaunchPermission, LaunchPermissionModifications};
        let perm = LaunchPermission::builder().user_id(account).build();
        let change = if add {
            LaunchPermissionModifications::builder().add(perm)
        } else {
            LaunchPermissionModifications::builder().remove(perm)
        }
        .build();
        super::idempotent_with_retry(&self.at, Bucket::Mutate, deadline, || async {
            let sent = self
                .ec2
                .modify_image_attribute()
                .image_id(id)
                // Named, so that the tenant policy's `ec2:Attribute` condition
                // (launchPermission) is met whatever AWS infers.
                .attribute("launchPermission")
                .launch_permission(change.clone())
                .customize()
                .config_override(no_sdk_retries_ec2())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    self.at
                        .err("ModifyImageAttribute", Some(id), e.into_service_error())
                });
            match sent {
                Err(e) if !add && super::gone(&e.code) => Ok(()),
                r => r,
            }
        })
        .await
    }

    /// The snapshots of account `owner` that are shared with this account
    /// (`RestorableByUserIds=self`), page by page: what a vault finds still
    /// shared with it after a run that ended before it could stop a share.
    pub async fn each_shared_snapshot(
        &self,
        owner: &str,
        each: impl FnMut(&Snapshot),
    ) -> Result<(), AwsError> {
        let req = self
            .ec2
            .describe_snapshots()
            .owner_ids(owner)
            .restorable_by_user_ids("self");
        self.each_page(req, each).await
    }

    // ------------------------------------------------------------ delete

    /// Deletes snapshot `id`; one already gone counts as deleted.
    pub async fn delete_snapshot(&self, id: &str, deadline: Instant) -> Result<(), AwsError> {
        self.delete(Bucket::DeleteSnapshot, deadline, || async {
            self.ec2
                .delete_snapshot()
                .snapshot_id(id)
                .customize()
                .config_override(no_sdk_retries_ec2())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    self.at
                        .err("DeleteSnapshot", Some(id), e.into_service_error())
                })
        })
        .await
    }

    /// Deregisters image `id`; one already gone counts as deregistered.
    pub async fn deregister_image(&self, id: &str, deadline: Instant) -> Result<(), AwsError> {
        self.delete(Bucket::DeregisterImage, deadline, || async {
            self.ec2
                .deregister_image()
                .image_id(id)
                .customize()
                .config_override(no_sdk_retries_ec2())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    self.at
                        .err("DeregisterImage", Some(id), e.into_service_error())
                })
        })
        .await
    }

    async fn delete<F, Fut>(
        &self,
        bucket: Bucket,
        deadline: Instant,
        call: F,
    ) -> Result<(), AwsError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), AwsError>>,
    {
        super::delete_with_retry(&self.at, bucket, deadline, call).await
    }
}
