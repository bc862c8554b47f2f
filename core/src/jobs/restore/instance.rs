//! Restoring a full instance: from an AMI point with RunInstances, from a
//! snapshot set through a temporary image (RegisterImage, RunInstances,
//! DeregisterImage once the instance runs). Also the launch configuration and
//! RunInstances, which the volume restore uses for a new host instance.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification,
    InstanceType, ResourceType, VolumeType,
};
use chrono::Utc;
use serde_json::{json, Value};

use crate::aws::error::AwsError;
use crate::aws::no_sdk_retries_ec2;
use crate::aws::pace::Bucket;
use crate::catalog::{Kinds, PointKind, RecoveryPoint};
use crate::tags;

use super::choose::truncate;
use super::context::Poll;
use super::lookup::{
    default_subnet, describe_instance, job_instances, key_exists, security_group_vpcs, subnet_info,
    tag_list, Described,
};
use super::point::Mapped;
use super::{
    architecture_for, carried_tags, recorded_region, same_device, selected_on, InstanceSpec,
    RestoreError, Restorer,
};
use crate::aws::ec2::{filter, tag_spec};

/// What RunInstances gets.
#[derive(Debug, Clone, Default)]
pub(super) struct Launch {
    pub(super) instance_type: String,
    pub(super) subnet: Option<String>,
    pub(super) az: Option<String>,
    pub(super) security_groups: Vec<String>,
    pub(super) key_name: Option<String>,
    pub(super) iam_profile: Option<String>,
}

impl Restorer<'_> {
    /// The launch configuration: the recorded one, overridden by the request;
    /// in a region other than the recorded one, sensible defaults (said so).
    async fn launch_config(
        &mut self,
        p: &RecoveryPoint,
        spec: &InstanceSpec,
        region: &str,
    ) -> Result<Launch, RestoreError> {
        let t = &p.tags;
        let recorded = recorded_region(p);
        let same_region = recorded == region;
        let instance_type = spec
            .instance_type
            .clone()
            .or_else(|| t.get(tags::INSTANCE_TYPE).cloned())
            .ok_or_else(|| {
                RestoreError::BadRequest(format!(
                    "recovery point {} records no instance type ({}): pass --instance-type",
                    p.id(),
                    tags::INSTANCE_TYPE
                ))
            })?;
        let recorded_az = t.get(tags::AZ).cloned();
        let (subnet, az, vpc) = match (&spec.subnet, same_region) {
            (Some(s), _) => {
                let (az, vpc) = subnet_info(&self.cx, region, s).await?;
                (Some(s.clone()), Some(az), vpc)
            }
            (None, true) => (t.get(tags::SUBNET).cloned(), recorded_az.clone(), None),
            (None, false) => match default_subnet(&self.cx, region, recorded_az.as_deref()).await? {
                Some((s, az)) => {
                    self.cx.note(format!(
                        "restoring in {region}, not in the recorded region {recorded}: the recorded subnet {} does not exist here, so the default subnet {s} ({az}) of the default VPC is used (choose with --subnet)",
                        t.get(tags::SUBNET).map_or("-", String::as_str)
                    ));
                    (Some(s), Some(az), None)
                }
                None => {
                    return Err(RestoreError::BadRequest(format!(
                        "restoring in {region}, not in the recorded region {recorded}: the recorded subnet does not exist here and {region} has no default VPC; pass --subnet"
                    )))
                }
            },
        };
        let recorded_sgs: Vec<String> = t
            .get(tags::SECURITY_GROUPS)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let security_groups = if !spec.security_groups.is_empty() {
            spec.security_groups.clone()
        } else if recorded_sgs.is_empty() {
            vec![]
        } else if same_region && spec.subnet.is_none() {
            recorded_sgs
        } else {
            // A chosen subnet: the recorded groups only if they are in its VPC.
            let fits = match (same_region, &vpc) {
                (true, Some(v)) => security_group_vpcs(&self.cx, region, &recorded_sgs)
                    .await
                    .is_ok_and(|vpcs| vpcs.len() == 1 && vpcs.contains(v)),
                _ => false,
            };
            if fits {
                recorded_sgs
            } else {
                self.cx.note(format!(
                    "the recorded security groups [{}] are not in the VPC of {}; the new instance gets that VPC's default security group (choose with --security-groups)",
                    recorded_sgs.join(" "),
                    subnet.as_deref().unwrap_or("the subnet")
                ));
                vec![]
            }
        };
        let key_name = match (&spec.key_name, t.get(tags::KEY_NAME)) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(k)) if same_region => Some(k.clone()),
            (None, Some(k)) => {
                if key_exists(&self.cx, region, k).await {
                    self.cx
                        .note(format!("key pair {k} exists in {region} too and is used"));
                    Some(k.clone())
                } else {
                    self.cx.note(format!(
                        "key pair {k} does not exist in {region}: the instance is launched without a key pair (choose with --key-name)"
                    ));
                    None
                }
            }
            (None, None) => None,
        };
        Ok(Launch {
            instance_type,
            subnet,
            az,
            security_groups,
            key_name,
            iam_profile: t.get(tags::IAM_PROFILE).cloned(),
        })
    }

    /// RunInstances, tagged at creation. Returns the instance id.
    pub(super) async fn run_instance(
        &mut self,
        region: &str,
        image: &str,
        l: &Launch,
        bdms: &[BlockDeviceMapping],
        instance_tags: &[(String, String)],
        volume_tags: &[(String, String)],
    ) -> Result<String, RestoreError> {
        self.cx.call(format!(
            "RunInstances ImageId={image} InstanceType={} SubnetId={} SecurityGroupIds=[{}] KeyName={}{}{} Tags[instance]={} Tags[volume]={}",
            l.instance_type,
            l.subnet.as_deref().unwrap_or("-"),
            l.security_groups.join(","),
            l.key_name.as_deref().unwrap_or("-"),
            l.iam_profile
                .as_ref()
                .map(|p| format!(" IamInstanceProfile={p}"))
                .unwrap_or_default(),
            if bdms.is_empty() {
                String::new()
            } else {
                format!(
                    " BlockDeviceMappings=[{}]",
                    bdms.iter()
                        .map(|m| format!(
                            "{}={}",
                            m.device_name().unwrap_or_default(),
                            m.ebs()
                                .and_then(|e| e.snapshot_id())
                                .unwrap_or("(image root)")
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            tag_list(instance_tags),
            tag_list(volume_tags)
        ));
        if self.cx.dry_run {
            return Ok("<new instance>".into());
        }
        let me: &Self = self;
        let ec2 = me.cx.session.ec2(region);
        let site = me.cx.site(region);
        let job = me.cx.job_tag();
        let token = format!("rolesnap-restore-{}", me.cx.job);
        let (itags, vtags) = (
            tag_spec(ResourceType::Instance, instance_tags),
            tag_spec(ResourceType::Volume, volume_tags),
        );
        let id = me
            .cx
            .create(
                || {
                    let (ec2, itags, vtags, token) =
                        (&ec2, itags.clone(), vtags.clone(), token.clone());
                    async move {
                        me.cx.take(region, Bucket::Mutate).await;
                        let out = ec2
                            .run_instances()
                            .image_id(image)
                            .instance_type(InstanceType::from(l.instance_type.as_str()))
                            .min_count(1)
                            .max_count(1)
                            .set_subnet_id(l.subnet.clone())
                            .set_security_group_ids(
                                (!l.security_groups.is_empty()).then(|| l.security_groups.clone()),
                            )
                            .set_key_name(l.key_name.clone())
                            .set_iam_instance_profile(
                                l.iam_profile.as_ref().map(|p| {
                                    IamInstanceProfileSpecification::builder().arn(p).build()
                                }),
                            )
                            .set_block_device_mappings((!bdms.is_empty()).then(|| bdms.to_vec()))
                            .tag_specifications(itags)
                            .tag_specifications(vtags)
                            .client_token(token)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("RunInstances", Some(image), e.into_service_error())
                            })?;
                        Ok(out
                            .instances()
                            .first()
                            .and_then(|i| i.instance_id())
                            .unwrap_or_default()
                            .to_string())
                    }
                },
                || async {
                    Ok(job_instances(&me.cx, region, &job)
                        .await?
                        .into_iter()
                        .next())
                },
            )
            .await?;
        self.cleanup.made("instance", &id, region);
        self.cx
            .log(&format!("Launched instance [{id}] in [{region}]"));
        Ok(id)
    }

    pub(super) async fn wait_running(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Described, RestoreError> {
        self.cx
            .wait_for(&format!("instance {id} to be running"), || async {
                match describe_instance(&self.cx, region, id).await {
                    Ok(Some(d)) => Ok(match d.state.as_str() {
                        "running" => Poll::Done(d),
                        "pending" | "" => Poll::Pending(d.state.clone()),
                        other => Poll::Failed(format!("instance is {other}: {}", d.reason)),
                    }),
                    Ok(None) => Ok(Poll::Pending("not visible yet".into())),
                    Err(e) => Ok(Poll::Pending(e.to_string())),
                }
            })
            .await
    }

    /// RegisterImage from a snapshot set; returns the image id once it is
    /// available.
    async fn register_image(
        &mut self,
        region: &str,
        name: &str,
        root: &str,
        mapped: &[Mapped],
        architecture: &str,
        image_tags: &[(String, String)],
    ) -> Result<String, RestoreError> {
        self.cx.call(format!(
            "RegisterImage Name={name} RootDeviceName={root} Architecture={architecture} VirtualizationType=hvm EnaSupport=true BlockDeviceMappings=[{}] Tags[image]={}",
            mapped
                .iter()
                .map(|m| format!("{}={}", m.device, m.snapshot))
                .collect::<Vec<_>>()
                .join(","),
            tag_list(image_tags)
        ));
        if self.cx.dry_run {
            return Ok("<registered image>".into());
        }
        let bdms = image_mappings(mapped, root);
        let image = self
            .send_register_image(region, name, root, bdms, architecture, image_tags)
            .await?;
        self.cleanup.made("image", &image, region);
        self.cx
            .log(&format!("Registered image [{image}] in [{region}]"));
        self.wait_image(region, &image).await?;
        Ok(image)
    }

    /// The RegisterImage call, retried; found by its name after an ambiguous failure.
    async fn send_register_image(
        &self,
        region: &str,
        name: &str,
        root: &str,
        bdms: Vec<BlockDeviceMapping>,
        architecture: &str,
        image_tags: &[(String, String)],
    ) -> Result<String, AwsError> {
        let me: &Self = self;
        let site = me.cx.site(region);
        let ec2 = me.cx.session.ec2(region);
        let itags = tag_spec(ResourceType::Image, image_tags);
        me.cx
            .create(
                || {
                    let (ec2, itags, bdms) = (&ec2, itags.clone(), bdms.clone());
                    async move {
                        me.cx.take(region, Bucket::Mutate).await;
                        let out = ec2
                            .register_image()
                            .name(name)
                            .description(format!(
                                "rolesnap restore job {}: temporary image of a snapshot set",
                                me.cx.job
                            ))
                            .root_device_name(root)
                            .architecture(ArchitectureValues::from(architecture))
                            .virtualization_type("hvm")
                            .ena_support(true)
                            .set_block_device_mappings(Some(bdms))
                            .tag_specifications(itags)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("RegisterImage", Some(name), e.into_service_error())
                            })?;
                        Ok(out.image_id().unwrap_or_default().to_string())
                    }
                },
                || async {
                    // Image names are unique per account and region.
                    let found = me
                        .cx
                        .ec2(region)
                        .images(vec![filter("name", &[name])])
                        .await?;
                    Ok(found.first().and_then(|i| i.image_id()).map(str::to_string))
                },
            )
            .await
    }

    async fn wait_image(&self, region: &str, image: &str) -> Result<(), RestoreError> {
        let cx = &self.cx;
        let ec2 = &cx.ec2(region);
        let ids = [image.to_string()];
        cx.wait_for(&format!("image {image} to be available"), || async {
            let found = ec2.images_by_id(&ids).await?;
            Ok(
                match found.first().and_then(|i| i.state()).map(|s| s.as_str()) {
                    Some("available") => Poll::Done(()),
                    Some("pending") | None => Poll::Pending("pending".into()),
                    Some(other) => Poll::Failed(format!("image state {other}")),
                },
            )
        })
        .await
    }

    // ------------------------------------------------------------ instance

    async fn source_instance_tags(
        &mut self,
        region: &str,
        id: &str,
        keep_all: bool,
    ) -> (Option<String>, Vec<(String, String)>) {
        match describe_instance(&self.cx, region, id).await {
            Ok(Some(d)) if d.state != "terminated" => {
                let name = d.tags.get(tags::NAME).cloned();
                // The tags the plan selects on are left off unless
                // --keep-all-tags: the next backup would take the restored
                // instance for production.
                let selection: Vec<crate::config::TagRule> = self
                    .cx
                    .plan
                    .groups
                    .iter()
                    .flat_map(|g| g.include_tags.iter().cloned())
                    .collect();
                let carried = carried_tags(&d.tags, if keep_all { &[] } else { &selection });
                let selected: Vec<String> = carried_tags(&d.tags, &[])
                    .into_iter()
                    .filter(|(k, _)| selected_on(k, &selection))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let note = match (keep_all, selected.is_empty()) {
                    (_, true) => format!(
                        "tags: the source instance's own tags are copied ({} tag(s)); none is one the plan selects on",
                        carried.len()
                    ),
                    (true, false) => format!(
                        "tags: --keep-all-tags: all of the source instance's own tags are copied, with the plan's selection tags ({}): the next backup of the plan selects the restored instance",
                        selected.join(", ")
                    ),
                    (false, false) => format!(
                        "tags: the source instance's own tags are copied except the plan's selection tags ({}), so the next backup does not select the restored instance (--keep-all-tags copies them too)",
                        selected.join(", ")
                    ),
                };
                self.cx.note(note);
                (name, carried)
            }
            Ok(_) => {
                self.cx.note(format!(
                    "source instance {id} no longer exists; its own tags are not part of the recovery point, so only the provenance tags are set"
                ));
                (None, vec![])
            }
            Err(e) => {
                self.cx.note(format!(
                    "cannot read the tags of source instance {id} ({e}); only the provenance tags are set"
                ));
                (None, vec![])
            }
        }
    }

    pub(super) async fn restore_instance(
        &mut self,
        s: &InstanceSpec,
    ) -> Result<Value, RestoreError> {
        let id = s.instance_id.clone();
        let p = self
            .find_point(
                &format!("instance {id}"),
                &|p: &RecoveryPoint| {
                    matches!(p.kind, PointKind::SnapshotSet | PointKind::Ami) && p.source == id
                },
                Kinds {
                    ec2: true,
                    rds: false,
                    all_tags: true,
                },
            )
            .await?;
        let region = p.region.clone();
        let launch = self.launch_config(&p, s, &region).await?;
        let (src_name, carried) = if s.no_tags {
            self.cx
                .note("--no-tags: the source instance's own tags are not copied".into());
            (None, vec![])
        } else {
            self.source_instance_tags(&recorded_region(&p), &id, s.keep_all_tags)
                .await
        };
        let name = format!(
            "{}-restored-{}",
            src_name.as_deref().unwrap_or(&id),
            self.cx.job_label()
        );
        let prov = self.prov(&id, &p.id(), &name);
        let mut instance_tags = carried;
        instance_tags.extend(prov.iter().cloned());
        instance_tags.extend(self.drill_owner());
        let (image, bdms, mapped) = match p.kind {
            PointKind::Ami => (p.id(), vec![], vec![]),
            _ => self.image_of_set(&p, s, &launch, &prov).await?,
        };
        let instance = self
            .run_instance(&region, &image, &launch, &bdms, &instance_tags, &prov)
            .await?;
        let mut result = json!({
            "instance_id": instance,
            "region": region,
            "image_id": image,
            "instance_type": launch.instance_type,
            "subnet_id": launch.subnet,
            "availability_zone": launch.az,
            "security_group_ids": launch.security_groups,
            "key_name": launch.key_name,
            "iam_instance_profile": launch.iam_profile,
            "tags": instance_tags.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        if self.cx.dry_run {
            if p.kind == PointKind::SnapshotSet {
                self.cx.call(format!(
                    "DeregisterImage {image} (after the instance is running)"
                ));
            }
            return Ok(result);
        }
        self.instance_running(&region, &instance, &launch, &mapped, &mut result)
            .await?;
        if p.kind == PointKind::SnapshotSet {
            self.deregister_temporary(&region, &image).await;
        }
        Ok(result)
    }

    /// A snapshot set becomes a temporary image (RegisterImage from its root
    /// snapshot, every snapshot at its recorded device). Returns the image,
    /// the mappings RunInstances repeats, and the snapshots by device.
    async fn image_of_set(
        &mut self,
        p: &RecoveryPoint,
        s: &InstanceSpec,
        launch: &Launch,
        prov: &[(String, String)],
    ) -> Result<(String, Vec<BlockDeviceMapping>, Vec<Mapped>), RestoreError> {
        let mapped = self.device_mapping(p).await?;
        let root = p.tags.get(tags::ROOT_DEVICE).cloned().ok_or_else(|| {
            RestoreError::Point(format!(
                "recovery point {} records no root device ({})",
                p.id(),
                tags::ROOT_DEVICE
            ))
        })?;
        if !mapped.iter().any(|m| same_device(&m.device, &root)) {
            return Err(RestoreError::Point(format!(
                "snapshot set {} has no snapshot of the root device {root}; restore its volumes with `restore volume`",
                p.id()
            )));
        }
        let arch = s
            .architecture
            .clone()
            .unwrap_or_else(|| architecture_for(&launch.instance_type).to_string());
        let mut image_name = format!(
            "rolesnap-restore-{}-{}-{}",
            self.cx.job_label(),
            s.instance_id,
            Utc::now().timestamp()
        );
        truncate(&mut image_name, 128);
        let image = self
            .register_image(&p.region, &image_name, &root, &mapped, &arch, prov)
            .await?;
        let bdms = launch_mappings(&mapped, &root);
        Ok((image, bdms, mapped))
    }

    /// Waits for the new instance to run; records its volumes in the result,
    /// the cleanup and the summary.
    async fn instance_running(
        &mut self,
        region: &str,
        instance: &str,
        launch: &Launch,
        mapped: &[Mapped],
        result: &mut Value,
    ) -> Result<(), RestoreError> {
        let d = self.wait_running(region, instance).await?;
        result["state"] = json!(d.state);
        result["availability_zone"] = json!(d.az);
        result["subnet_id"] = json!(d.subnet);
        result["volumes"] = json!(d
            .devices
            .iter()
            .map(|(dev, vol)| {
                let from = mapped
                    .iter()
                    .find(|m| same_device(&m.device, dev))
                    .map(|m| m.snapshot.clone());
                json!({"device": dev, "volume_id": vol, "from_snapshot": from})
            })
            .collect::<Vec<_>>());
        for (_, vol) in &d.devices {
            if !vol.is_empty() {
                self.cleanup.made("volume", vol, region);
            }
        }
        self.summary.push(format!(
            "new instance {instance} {} {} in {} {}",
            d.state,
            d.instance_type.as_deref().unwrap_or(&launch.instance_type),
            d.subnet.as_deref().unwrap_or("-"),
            d.az
        ));
        for (dev, vol) in &d.devices {
            self.summary.push(format!("  volume {vol} at {dev}"));
        }
        Ok(())
    }

    /// After a successful launch: the registered image would keep the
    /// backup's snapshots from ever being pruned (`InvalidSnapshot.InUse`).
    async fn deregister_temporary(&mut self, region: &str, image: &str) {
        self.cx.call(format!("DeregisterImage {image}"));
        let r = self
            .cx
            .ec2(region)
            .deregister_image(image, self.cx.deadline)
            .await;
        match r {
            Ok(()) => {
                self.cleanup.removed_by_job(image);
                self.cx.note(format!(
                    "the temporary image {image} was deregistered once the instance was running (it would keep the backup's snapshots from being pruned)"
                ));
            }
            Err(e) => {
                self.warnings.push(format!(
                    "the instance is running, but the temporary image {image} could not be deregistered ({e}); it keeps the backup's snapshots from being pruned until it is"
                ));
            }
        }
    }
}

/// RegisterImage's mappings: every snapshot at its device, gp3, the root
/// deleted with the instance.
fn image_mappings(mapped: &[Mapped], root: &str) -> Vec<BlockDeviceMapping> {
    mapped
        .iter()
        .map(|m| {
            BlockDeviceMapping::builder()
                .device_name(&m.device)
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(&m.snapshot)
                        .delete_on_termination(same_device(&m.device, root))
                        .volume_type(VolumeType::Gp3)
                        .build(),
                )
                .build()
        })
        .collect()
}

/// The image's own mappings, repeated for RunInstances: the root keeps the
/// image's snapshot (only its size and type are given), each data device its
/// snapshot. AWS would make the same volumes from the image alone; endpoints
/// that ignore RegisterImage's mappings need them.
fn launch_mappings(mapped: &[Mapped], root: &str) -> Vec<BlockDeviceMapping> {
    mapped
        .iter()
        .map(|m| {
            let root_dev = same_device(&m.device, root);
            let mut ebs = EbsBlockDevice::builder()
                .volume_type(VolumeType::Gp3)
                .delete_on_termination(root_dev);
            if m.size_gib > 0 {
                ebs = ebs.volume_size(m.size_gib as i32);
            }
            if !root_dev {
                ebs = ebs.snapshot_id(&m.snapshot);
            }
            BlockDeviceMapping::builder()
                .device_name(&m.device)
                .ebs(ebs.build())
                .build()
        })
        .collect()
}
