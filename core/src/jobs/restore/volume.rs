//! Restoring a volume: CreateVolume from its snapshot in the target
//! instance's AZ, then AttachVolume at a device that is free on the target
//! (checked before anything is created), or on a small new instance.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ResourceType, VolumeType};
use serde_json::{json, Value};

use crate::aws::error::Site;
use crate::aws::pace::Bucket;
use crate::aws::{no_sdk_retries_ec2, tag_filter};
use crate::catalog::{Kinds, PointKind, RecoveryPoint};
use crate::tags;

use super::context::Poll;
use super::instance::Launch;
use super::lookup::{default_subnet, describe_instance, subnet_az, tag_list};
use super::{
    choose_device, recorded_region, same_device, AttachTo, RestoreError, Restorer, VolumeSpec,
    RESTORED_FROM,
};
use crate::aws::ec2::tag_spec;

/// Where the restored volume goes: the instance, its AZ, the device, and
/// whether the job launched the instance.
struct Placement {
    instance: String,
    az: String,
    device: String,
    new_instance: bool,
}

/// What a volume restore takes from its recovery point.
struct FromPoint {
    region: String,
    /// The region whose configuration the point records.
    recorded: String,
    snapshot: String,
    /// The device the volume had on its instance.
    recorded_device: Option<String>,
    /// The instance the point was taken of.
    source_instance: String,
    tags: BTreeMap<String, String>,
}

impl Restorer<'_> {
    pub(super) async fn restore_volume(&mut self, s: &VolumeSpec) -> Result<Value, RestoreError> {
        let vol = s.volume_id.clone();
        let from = self.volume_point(&vol).await?;
        let name = format!("{vol}-restored-{}", self.cx.job_label());
        let prov = self.prov(&vol, &from.snapshot, &name);
        // The target, and the device, before anything is created.
        let at = match &s.attach {
            AttachTo::Instance(target) => self.existing_host(s, &from, target).await?,
            AttachTo::NewInstance {
                image_id,
                instance_type,
                subnet,
            } => {
                self.new_host(
                    s,
                    &from,
                    image_id.as_deref(),
                    instance_type,
                    subnet.as_deref(),
                )
                .await?
            }
        };
        let (region, snapshot) = (&from.region, &from.snapshot);
        let Placement {
            instance: target,
            az,
            device,
            new_instance,
        } = &at;
        self.cx.call(format!(
            "CreateVolume SnapshotId={snapshot} AvailabilityZone={az} VolumeType={} Tags[volume]={}",
            s.volume_type,
            tag_list(&prov)
        ));
        let mut result = json!({
            "volume_id": Value::Null,
            "region": region,
            "availability_zone": az,
            "from_snapshot": snapshot,
            "attached_to": target,
            "new_instance": new_instance,
            "device": device,
            "tags": prov.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        if self.cx.dry_run {
            self.cx.call(format!(
                "AttachVolume VolumeId=<new volume> InstanceId={target} Device={device}"
            ));
            return Ok(result);
        }
        let volume = self
            .create_volume(region, snapshot, az, &s.volume_type, &prov)
            .await?;
        result["volume_id"] = json!(volume);
        self.cx.call(format!(
            "AttachVolume VolumeId={volume} InstanceId={target} Device={device}"
        ));
        self.attach(region, &volume, target, device).await?;
        result["state"] = json!("in-use");
        self.summary.push(format!(
            "new volume {volume} from {snapshot} in {az}, attached to {target} at {device}"
        ));
        Ok(result)
    }

    /// The newest point with a snapshot of the volume, and that snapshot.
    async fn volume_point(&mut self, vol: &str) -> Result<FromPoint, RestoreError> {
        let p = self
            .find_point(
                &format!("volume {vol}"),
                &|p: &RecoveryPoint| {
                    let of_volume = p.snapshots.iter().any(|x| x.volume_id == vol);
                    match p.kind {
                        // A copy's snapshots may not name their volume: the set's devices do.
                        PointKind::SnapshotSet => {
                            of_volume
                                || tags::parse_devices(
                                    p.tags.get(tags::DEVICES).map_or("", String::as_str),
                                )
                                .iter()
                                .any(|(v, _)| v == vol)
                        }
                        PointKind::Ami => of_volume,
                        _ => false,
                    }
                },
                Kinds {
                    ec2: true,
                    rds: false,
                    all_tags: true,
                },
            )
            .await?;
        let recorded_device =
            tags::parse_devices(p.tags.get(tags::DEVICES).map_or("", String::as_str))
                .into_iter()
                .find(|(v, _)| v == vol)
                .map(|(_, d)| d);
        let snapshot = match p.kind {
            PointKind::SnapshotSet => self
                .device_mapping(&p)
                .await?
                .into_iter()
                .find(|m| m.volume == vol)
                .map(|m| m.snapshot),
            _ => p
                .snapshots
                .iter()
                .find(|x| x.volume_id == vol)
                .map(|x| x.id.clone()),
        }
        .ok_or_else(|| {
            RestoreError::Point(format!(
                "recovery point {} has no snapshot of {vol}",
                p.id()
            ))
        })?;
        Ok(FromPoint {
            recorded: recorded_region(&p),
            region: p.region.clone(),
            snapshot,
            recorded_device,
            source_instance: p.source.clone(),
            tags: p.tags.clone(),
        })
    }

    /// An existing instance: running or stopped, with the device free.
    async fn existing_host(
        &self,
        s: &VolumeSpec,
        from: &FromPoint,
        target: &str,
    ) -> Result<Placement, RestoreError> {
        let region = &from.region;
        let d = describe_instance(&self.cx, region, target)
            .await?
            .ok_or_else(|| {
                RestoreError::Refused(format!("refused: instance {target} not found in {region}"))
            })?;
        if d.state != "running" && d.state != "stopped" {
            return Err(RestoreError::Refused(format!(
                "refused: instance {target} is {}; a volume can be attached to a running or stopped instance",
                d.state
            )));
        }
        let mut in_use: Vec<(String, String)> = d
            .devices
            .iter()
            .map(|(dev, v)| (dev.clone(), v.clone()))
            .collect();
        if let Some(root) = &d.root_device {
            in_use.push((root.clone(), "the root device".into()));
        }
        let device = choose_device(
            s.device.as_deref(),
            from.recorded_device.as_deref(),
            &in_use,
            target,
        )?;
        Ok(Placement {
            instance: target.to_string(),
            az: d.az.clone(),
            device,
            new_instance: false,
        })
    }

    /// A small new instance in the volume's recorded AZ (or the default
    /// subnet), launched and running before the volume is made.
    async fn new_host(
        &mut self,
        s: &VolumeSpec,
        from: &FromPoint,
        image_id: Option<&str>,
        instance_type: &str,
        subnet: Option<&str>,
    ) -> Result<Placement, RestoreError> {
        let region = from.region.clone();
        let vol = &s.volume_id;
        let (subnet, az) = self.host_subnet(from, subnet).await?;
        let image = self.host_image(from, image_id).await?;
        let iname = format!("{vol}-restore-host-{}", self.cx.job_label());
        let iprov = self.prov(vol, &from.snapshot, &iname);
        let launch = Launch {
            instance_type: instance_type.to_string(),
            subnet: Some(subnet.clone()),
            az: Some(az.clone()),
            security_groups: vec![],
            key_name: None,
            iam_profile: None,
        };
        let device = s
            .device
            .clone()
            .or(from.recorded_device.clone())
            .filter(|d| !same_device(d, "/dev/sda"))
            .unwrap_or_else(|| "/dev/sdf".into());
        let id = self
            .run_instance(&region, &image, &launch, &[], &iprov, &iprov)
            .await?;
        if self.cx.dry_run {
            return Ok(Placement {
                instance: id,
                az,
                device,
                new_instance: true,
            });
        }
        let d = self.wait_running(&region, &id).await?;
        let mut in_use = d.devices.clone();
        if let Some(root) = &d.root_device {
            in_use.push((root.clone(), "the root device".into()));
        }
        // The instance exists now: a device in use is no longer a refusal.
        let device = choose_device(s.device.as_deref(), Some(&device), &in_use, &id)
            .map_err(RestoreError::after_making)?;
        self.summary.push(format!(
            "new instance {id} {} {instance_type} in {subnet} {}",
            d.state, d.az
        ));
        Ok(Placement {
            instance: id,
            az: d.az,
            device,
            new_instance: true,
        })
    }

    /// The new host's (subnet, AZ): the one asked for, the recorded one in the
    /// recorded region, else the default subnet.
    async fn host_subnet(
        &mut self,
        from: &FromPoint,
        subnet: Option<&str>,
    ) -> Result<(String, String), RestoreError> {
        let region = from.region.as_str();
        let same_region = from.recorded == from.region;
        let recorded_az = from.tags.get(tags::AZ).cloned();
        Ok(match subnet {
            Some(sn) => (sn.to_string(), subnet_az(&self.cx, region, sn).await?),
            None => match (same_region, from.tags.get(tags::SUBNET)) {
                (true, Some(sn)) => {
                    let az = match &recorded_az {
                        Some(a) => a.clone(),
                        None => subnet_az(&self.cx, region, sn).await?,
                    };
                    (sn.clone(), az)
                }
                _ => match default_subnet(&self.cx, region, recorded_az.as_deref()).await? {
                    Some((sn, az)) => {
                        self.cx.note(format!(
                            "the new instance goes to the default subnet {sn} ({az}) of {region} (choose with --subnet)"
                        ));
                        (sn, az)
                    }
                    None => {
                        return Err(RestoreError::BadRequest(format!(
                            "no recorded subnet usable in {region} and no default VPC there: pass --subnet"
                        )))
                    }
                },
            },
        })
    }

    /// The new host's image: the one asked for, else the source instance's.
    async fn host_image(
        &mut self,
        from: &FromPoint,
        image_id: Option<&str>,
    ) -> Result<String, RestoreError> {
        if let Some(i) = image_id {
            return Ok(i.to_string());
        }
        let same_region = from.recorded == from.region;
        let source_instance = &from.source_instance;
        match describe_instance(&self.cx, &from.recorded, source_instance).await {
            Ok(Some(d)) if d.image_id.is_some() && same_region => {
                let i = d.image_id.unwrap_or_default();
                self.cx.note(format!(
                    "the new instance is launched from {i}, the image of the source instance {source_instance} (choose with --image-id)"
                ));
                Ok(i)
            }
            _ => Err(RestoreError::BadRequest(
                "--new-instance needs --image-id (the source instance's image is not available)"
                    .into(),
            )),
        }
    }

    async fn create_volume(
        &mut self,
        region: &str,
        snapshot: &str,
        az: &str,
        volume_type: &str,
        t: &[(String, String)],
    ) -> Result<String, RestoreError> {
        let tenant = self.cx.session.tenant.name.clone();
        let site = Site {
            tenant: &tenant,
            region,
        };
        let me: &Self = self;
        let ec2 = me.cx.session.ec2(region);
        let vtags = tag_spec(ResourceType::Volume, t);
        let job = me.cx.job_tag();
        let token = format!("rolesnap-restore-{}-vol", me.cx.job);
        let volume = me
            .cx
            .create(
                || {
                    let (ec2, vtags, token) = (&ec2, vtags.clone(), token.clone());
                    async move {
                        me.cx.take(region, Bucket::CreateVolume).await;
                        let out = ec2
                            .create_volume()
                            .snapshot_id(snapshot)
                            .availability_zone(az)
                            .volume_type(VolumeType::from(volume_type))
                            .tag_specifications(vtags)
                            .client_token(token)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("CreateVolume", Some(snapshot), e.into_service_error())
                            })?;
                        Ok(out.volume_id().unwrap_or_default().to_string())
                    }
                },
                || async {
                    me.cx.take(region, Bucket::Describe).await;
                    let out = ec2
                        .describe_volumes()
                        .set_filters(Some(me.cx.job_filters(&job)))
                        .filters(tag_filter(RESTORED_FROM, snapshot))
                        .send()
                        .await
                        .map_err(|e| site.err("DescribeVolumes", None, e.into_service_error()))?;
                    Ok(out
                        .volumes()
                        .first()
                        .and_then(|v| v.volume_id())
                        .map(str::to_string))
                },
            )
            .await?;
        self.cleanup.made("volume", &volume, region);
        self.cx.log(&format!(
            "Created volume [{volume}] from [{snapshot}] in [{az}]"
        ));
        let me: &Self = self;
        let ec2 = &ec2;
        let v = volume.as_str();
        me.cx
            .wait_for(&format!("volume {volume} to be available"), || async move {
                me.cx.take(region, Bucket::Describe).await;
                let out = ec2
                    .describe_volumes()
                    .volume_ids(v)
                    .send()
                    .await
                    .map_err(|e| site.err("DescribeVolumes", Some(v), e.into_service_error()))?;
                Ok(
                    match out
                        .volumes()
                        .first()
                        .and_then(|x| x.state())
                        .map(|s| s.as_str())
                    {
                        Some("available") => Poll::Done(()),
                        Some("creating") | None => Poll::Pending("creating".into()),
                        Some(other) => Poll::Failed(format!("volume is {other}")),
                    },
                )
            })
            .await?;
        Ok(volume)
    }

    async fn attach(
        &mut self,
        region: &str,
        volume: &str,
        instance: &str,
        device: &str,
    ) -> Result<(), RestoreError> {
        let me: &Self = self;
        let ec2 = me.cx.session.ec2(region);
        let site = me.cx.site(region);
        let attached = |out: &aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput| {
            out.volumes()
                .first()
                .and_then(|v| {
                    v.attachments()
                        .iter()
                        .find(|a| a.instance_id() == Some(instance))
                })
                .and_then(|a| a.state())
                .map(|s| s.as_str().to_string())
        };
        me.cx
            .create(
                || {
                    let ec2 = &ec2;
                    async move {
                        me.cx.take(region, Bucket::Mutate).await;
                        ec2.attach_volume()
                            .volume_id(volume)
                            .instance_id(instance)
                            .device(device)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("AttachVolume", Some(volume), e.into_service_error())
                            })?;
                        Ok(())
                    }
                },
                || async {
                    me.cx.take(region, Bucket::Describe).await;
                    let out = ec2
                        .describe_volumes()
                        .volume_ids(volume)
                        .send()
                        .await
                        .map_err(|e| {
                            site.err("DescribeVolumes", Some(volume), e.into_service_error())
                        })?;
                    Ok(attached(&out).map(|_| ()))
                },
            )
            .await?;
        me.cx.log(&format!(
            "Attaching volume [{volume}] to [{instance}] at [{device}]"
        ));
        let ec2 = &ec2;
        let attached = &attached;
        me.cx
            .wait_for(
                &format!("volume {volume} to be attached to {instance}"),
                || async move {
                    me.cx.take(region, Bucket::Describe).await;
                    let out = ec2
                        .describe_volumes()
                        .volume_ids(volume)
                        .send()
                        .await
                        .map_err(|e| {
                            site.err("DescribeVolumes", Some(volume), e.into_service_error())
                        })?;
                    Ok(match attached(&out).as_deref() {
                        Some("attached") => Poll::Done(()),
                        Some("attaching") | None => Poll::Pending("attaching".into()),
                        Some(other) => Poll::Failed(format!("attachment is {other}")),
                    })
                },
            )
            .await
    }
}
