//! The restore's decisions, as pure functions: which recovery point, which
//! device, which snapshot goes back to which device, which architecture, and
//! the tags a restored resource carries. Tested here, without AWS.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::RecoveryPoint;
use crate::config::az_region;
use crate::tags;

use super::{RestoreError, Which, RESTORED_FROM};

/// AWS allows 50 tags per resource.
pub(super) const MAX_TAGS: usize = 50;
/// Devices offered for an attached volume when none is given (AWS's advice for EBS).
const DATA_DEVICES: &str = "fghijklmnop";

/// Picks the recovery point to restore. Without `which.region` only points in
/// their source region count (not copies); with it, only points in that region.
/// Points made by a restore (`_GX_RESTORED_FROM_`) are never candidates.
pub fn choose_point<'p>(
    points: &'p [RecoveryPoint],
    matches: &dyn Fn(&RecoveryPoint) -> bool,
    which: &Which,
    what: &str,
) -> Result<&'p RecoveryPoint, RestoreError> {
    let mine: Vec<&RecoveryPoint> = points
        .iter()
        .filter(|p| matches(p) && !p.tags.contains_key(RESTORED_FROM))
        .collect();
    let here: Vec<&RecoveryPoint> = mine
        .iter()
        .copied()
        .filter(|p| match &which.region {
            Some(r) => &p.region == r,
            None => p.copy_of().is_none(),
        })
        .collect();
    if here.is_empty() {
        let copies: BTreeSet<&str> = mine
            .iter()
            .filter(|p| p.copy_of().is_some())
            .map(|p| p.region.as_str())
            .collect();
        return Err(RestoreError::Point(match (&which.region, copies.is_empty()) {
            (None, false) => format!(
                "no recovery point of {what} in its source region; cross-region copies exist in {}: pass --region",
                copies.into_iter().collect::<Vec<_>>().join(", ")
            ),
            (Some(r), _) => format!("no recovery point of {what} in {r}"),
            (None, true) => format!("no recovery point of {what}"),
        }));
    }
    let eligible: Vec<&RecoveryPoint> = here
        .iter()
        .copied()
        .filter(|p| {
            p.completed()
                && which.job.is_none_or(|j| p.job == Some(j))
                && which
                    .agent
                    .as_deref()
                    .is_none_or(|a| p.agent.starts_with(a))
                && which.at.is_none_or(|t| p.created <= t)
        })
        .collect();
    if let Some(j) = which.job {
        let agents: BTreeSet<&str> = eligible.iter().map(|p| p.agent.as_str()).collect();
        if agents.len() > 1 {
            return Err(RestoreError::BadRequest(format!(
                "job {j} is ambiguous: more than one agent ran a job {j} that made a point of {what}; name one with --job {j}@AGENT: {}",
                eligible
                    .iter()
                    .map(|p| format!(
                        "{} ({} {})",
                        p.job_label(),
                        p.id(),
                        p.created.format("%Y-%m-%dT%H:%M:%SZ")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    eligible
        .into_iter()
        .max_by(|a, b| (a.created, a.id()).cmp(&(b.created, b.id())))
        .ok_or_else(|| {
            let mut why = format!("no completed recovery point of {what}");
            if let Some(j) = which.job {
                why.push_str(&format!(" from job {j}"));
            }
            if let Some(t) = which.at {
                why.push_str(&format!(" at or before {}", t.to_rfc3339()));
            }
            let list: Vec<String> = here
                .iter()
                .map(|p| {
                    format!(
                        "job {} {} {:?} in {}",
                        p.job_label(),
                        p.created.format("%Y-%m-%dT%H:%M:%SZ"),
                        p.state,
                        p.region
                    )
                })
                .collect();
            RestoreError::Point(format!("{why}; found: {}", list.join(", ")))
        })
}

/// `/dev/sdf`, `sdf`, `/dev/xvdf` name the same device to the guest.
pub fn same_device(a: &str, b: &str) -> bool {
    fn norm(d: &str) -> String {
        let d = d.strip_prefix("/dev/").unwrap_or(d);
        let d = d.strip_prefix("xvd").map_or_else(
            || d.strip_prefix("sd").map(|s| s.to_string()),
            |s| Some(s.to_string()),
        );
        d.unwrap_or_default()
    }
    let (x, y) = (norm(a), norm(b));
    if x.is_empty() || y.is_empty() {
        return a == b;
    }
    // `/dev/sda1` and `/dev/xvda` are both the root disk.
    x.trim_end_matches(|c: char| c.is_ascii_digit())
        == y.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// The device to attach at: the one asked for (refused when in use), else the
/// recorded one when free, else the first free `/dev/sd[f-p]`.
pub fn choose_device(
    asked: Option<&str>,
    recorded: Option<&str>,
    in_use: &[(String, String)],
    target: &str,
) -> Result<String, RestoreError> {
    let used_by = |d: &str| {
        in_use
            .iter()
            .find(|(dev, _)| same_device(dev, d))
            .map(|(dev, who)| format!("{dev} ({who})"))
    };
    if let Some(d) = asked {
        if !d.starts_with("/dev/") {
            return Err(RestoreError::BadRequest(format!(
                "device {d} is not a device name like /dev/sdf"
            )));
        }
        return match used_by(d) {
            Some(u) => Err(RestoreError::Refused(format!(
                "refused: device {d} is in use on {target} by {u}; nothing was created (pick a free device with --device)"
            ))),
            None => Ok(d.to_string()),
        };
    }
    if let Some(d) = recorded {
        // Never the root slot, even if free on the target.
        if used_by(d).is_none() && !same_device(d, "/dev/sda") {
            return Ok(d.to_string());
        }
    }
    DATA_DEVICES
        .chars()
        .map(|c| format!("/dev/sd{c}"))
        .find(|d| used_by(d).is_none())
        .ok_or_else(|| {
            RestoreError::Refused(format!("no free device among /dev/sd[f-p] on {target}"))
        })
}

/// Maps each snapshot of a set to its recorded device: `devices` from
/// `_GX_DEVICES_` (volume, device), `snaps` (snapshot, volume it was taken of).
pub fn map_devices(
    devices: &[(String, String)],
    snaps: &[(String, String)],
) -> Result<Vec<(String, String, String)>, RestoreError> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for (snap, vol) in snaps {
        let Some((_, dev)) = devices.iter().find(|(v, _)| v == vol) else {
            return Err(RestoreError::Point(format!(
                "snapshot {snap} is of volume {vol}, which the recovery point's _GX_DEVICES_ does not list"
            )));
        };
        if let Some((other, _, _)) = out.iter().find(|(_, _, d)| d == dev) {
            return Err(RestoreError::Point(format!(
                "snapshots {other} and {snap} both map to device {dev}"
            )));
        }
        out.push((snap.clone(), vol.clone(), dev.clone()));
    }
    Ok(out)
}

/// Graviton families (`t4g`, `m7g`, `c6gn`, `r8gd`, …) are arm64; the rest x86_64.
pub fn architecture_for(instance_type: &str) -> &'static str {
    let family = instance_type.split('.').next().unwrap_or_default();
    let gen_and_suffix = family.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let suffix = gen_and_suffix.trim_start_matches(|c: char| c.is_ascii_digit());
    if suffix.starts_with('g') && gen_and_suffix.len() > suffix.len() {
        "arm64"
    } else {
        "x86_64"
    }
}

/// The provenance tags every restored resource carries.
pub fn provenance(
    job: &str,
    agent: &str,
    source: &str,
    point: &str,
    name: &str,
) -> Vec<(String, String)> {
    let mut point = point.to_string();
    truncate(&mut point, 256);
    let mut name = name.to_string();
    truncate(&mut name, 256);
    let mut t = vec![(tags::BACKUP.into(), job.into())];
    if !agent.is_empty() {
        t.push((tags::AGENT.into(), agent.into()));
    }
    t.extend([
        (tags::SOURCE.into(), source.into()),
        (RESTORED_FROM.into(), point),
        (tags::NAME.into(), name),
    ]);
    t
}

/// A source's own tags that a restored copy carries: not `aws:`, not rolesnap's
/// (`_GX_*`, `CV_*`), not `Name` (the restore names its resources), none whose
/// key matches a key of `selection` (the plan's `include-tags`: the restored
/// copy must not be taken for production by the next backup), at most what
/// fits beside the provenance tags.
pub fn carried_tags(
    src: &BTreeMap<String, String>,
    selection: &[crate::config::TagRule],
) -> Vec<(String, String)> {
    src.iter()
        .filter(|(k, _)| {
            !k.starts_with("aws:")
                && !k.starts_with("_GX_")
                && k.as_str() != tags::RETAIN
                && k.as_str() != tags::INTEGRITY
                && k.as_str() != tags::NAME
                && !selected_on(k, selection)
        })
        .take(MAX_TAGS - 4)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether a tag key is one a selection rule matches on (its key glob).
pub fn selected_on(key: &str, selection: &[crate::config::TagRule]) -> bool {
    selection
        .iter()
        .any(|r| crate::config::glob_match(&r.key, key))
}

/// The region whose configuration a point records (from `_GX_AZ_`, else the
/// copy's origin, else its own).
pub fn recorded_region(p: &RecoveryPoint) -> String {
    if let Some(r) = p.tags.get(tags::AZ).and_then(|az| az_region(az)) {
        return r.to_string();
    }
    if let Some((r, _)) = p.copy_of().and_then(|c| c.split_once('/')) {
        return r.to_string();
    }
    p.region.clone()
}

pub(super) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{PointKind, PointState, Snap};
    use chrono::DateTime;

    fn point(kind: PointKind, region: &str, job: u64, secs: i64, source: &str) -> RecoveryPoint {
        RecoveryPoint {
            kind,
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: region.into(),
            job: Some(job),
            agent: String::new(),
            plan: Some("p".into()),
            source: source.into(),
            created: DateTime::from_timestamp(secs, 0).unwrap(),
            state: PointState::Completed,
            resource_id: (kind != PointKind::SnapshotSet).then(|| format!("r-{job}")),
            arn: None,
            snapshots: if kind == PointKind::SnapshotSet {
                vec![Snap {
                    id: format!("snap-{job}"),
                    volume_id: "vol-1".into(),
                    size_gib: 8,
                    state: "completed".into(),
                    encrypted: false,
                    kms_key_id: None,
                    tags: BTreeMap::new(),
                }]
            } else {
                vec![]
            },
            size_gib: 8,
            encrypted: false,
            kms_key_id: None,
            tags: BTreeMap::new(),
        }
    }

    fn src(id: &'static str) -> impl Fn(&RecoveryPoint) -> bool {
        move |p: &RecoveryPoint| p.source == id
    }

    #[test]
    fn the_newest_completed_point_of_the_source_region_wins_by_default() {
        let mut copy = point(PointKind::SnapshotSet, "us-west-2", 9, 500, "i-1");
        copy.tags
            .insert(tags::COPY_OF.into(), "us-east-1/snap-3".into());
        let mut pending = point(PointKind::SnapshotSet, "us-east-1", 8, 400, "i-1");
        pending.state = PointState::Pending;
        let mut restored = point(PointKind::Ami, "us-east-1", 7, 450, "i-1");
        restored.tags.insert(RESTORED_FROM.into(), "snap-3".into());
        let points = vec![
            point(PointKind::SnapshotSet, "us-east-1", 1, 100, "i-1"),
            point(PointKind::SnapshotSet, "us-east-1", 3, 300, "i-1"),
            point(PointKind::SnapshotSet, "us-east-1", 4, 350, "i-2"),
            copy,
            pending,
            restored,
        ];
        let w = Which::default();
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(3)
        );
        // A job, or a time.
        let w = Which {
            agent: None,
            job: Some(1),
            ..Default::default()
        };
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(1)
        );
        let w = Which {
            at: Some(DateTime::from_timestamp(299, 0).unwrap()),
            ..Default::default()
        };
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(1)
        );
        // The copy region: only its copies.
        let w = Which {
            region: Some("us-west-2".into()),
            ..Default::default()
        };
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(9)
        );
        // A pending point is not restorable; the error lists what exists.
        let w = Which {
            agent: None,
            job: Some(8),
            ..Default::default()
        };
        let e = choose_point(&points, &src("i-1"), &w, "instance i-1").unwrap_err();
        assert!(matches!(e, RestoreError::Point(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("from job 8") && e.contains("Pending"), "{e}");
        assert!(choose_point(&points, &src("i-9"), &Which::default(), "x").is_err());
    }

    #[test]
    fn only_copies_point_at_their_region() {
        let mut copy = point(PointKind::SnapshotSet, "us-west-2", 9, 500, "i-1");
        copy.tags
            .insert(tags::COPY_OF.into(), "us-east-1/snap-3".into());
        let e = choose_point(&[copy], &src("i-1"), &Which::default(), "instance i-1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("us-west-2") && e.contains("--region"), "{e}");
    }

    #[test]
    fn devices_in_use_are_refused_and_free_ones_chosen() {
        let in_use = vec![
            ("/dev/xvda".to_string(), "vol-root".to_string()),
            ("/dev/sdf".to_string(), "vol-data".to_string()),
        ];
        let e = choose_device(Some("/dev/sdf"), None, &in_use, "i-1").unwrap_err();
        assert!(e.refused(), "{e:?}");
        let e = e.to_string();
        assert!(e.starts_with("refused") && e.contains("vol-data"), "{e}");
        // xvdf is the same device as sdf to the guest.
        assert!(choose_device(Some("/dev/xvdf"), None, &in_use, "i-1").is_err());
        assert_eq!(
            choose_device(Some("/dev/sdg"), None, &in_use, "i-1").unwrap(),
            "/dev/sdg"
        );
        // Default: the recorded device when free, else the first free one.
        assert_eq!(
            choose_device(None, Some("/dev/sdh"), &in_use, "i-1").unwrap(),
            "/dev/sdh"
        );
        assert_eq!(
            choose_device(None, Some("/dev/sdf"), &in_use, "i-1").unwrap(),
            "/dev/sdg"
        );
        // Never the root slot.
        assert_eq!(
            choose_device(None, Some("/dev/xvda"), &[], "i-1").unwrap(),
            "/dev/sdf"
        );
        assert!(matches!(
            choose_device(Some("sdf"), None, &[], "i-1"),
            Err(RestoreError::BadRequest(_))
        ));
        assert!(same_device("/dev/sda1", "/dev/xvda"));
        assert!(!same_device("/dev/sdf", "/dev/sdg"));
    }

    #[test]
    fn each_snapshot_goes_back_to_its_device() {
        let devices = tags::parse_devices("vol-1=/dev/xvda vol-2=/dev/sdf");
        let m = map_devices(
            &devices,
            &[
                ("snap-b".into(), "vol-2".into()),
                ("snap-a".into(), "vol-1".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                ("snap-b".into(), "vol-2".into(), "/dev/sdf".into()),
                ("snap-a".into(), "vol-1".into(), "/dev/xvda".into())
            ]
        );
        let e = map_devices(&devices, &[("snap-c".into(), "vol-ffffffff".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("vol-ffffffff"), "{e}");
        assert!(map_devices(
            &devices,
            &[("s1".into(), "vol-1".into()), ("s2".into(), "vol-1".into())]
        )
        .is_err());
    }

    #[test]
    fn tags_of_restored_resources() {
        let p = provenance("1005", "", "i-1", "snap-a+snap-b", "web-restored-1005");
        assert_eq!(p[0], (tags::BACKUP.to_string(), "1005".to_string()));
        assert!(p.contains(&(RESTORED_FROM.to_string(), "snap-a+snap-b".to_string())));
        let long = provenance("1", "", "i", &"s".repeat(400), "n");
        assert_eq!(long[2].1.len(), 256);
        let src: BTreeMap<String, String> = [
            ("Name", "web"),
            ("Backup", "nightly"),
            ("aws:cloudformation:stack-name", "x"),
            ("_GX_BACKUP_", "1"),
            ("CV_Retain_Snap", "y"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            carried_tags(&src, &[]),
            vec![("Backup".to_string(), "nightly".to_string())]
        );
        // The plan selects on Backup (and on any key Env*): not carried.
        let rule = |k: &str| crate::config::TagRule {
            key: k.into(),
            value: "*".into(),
        };
        assert_eq!(carried_tags(&src, &[rule("Backup")]), vec![]);
        let mut src2 = src.clone();
        src2.insert("Environment".into(), "prod".into());
        src2.insert("Team".into(), "a".into());
        assert_eq!(
            carried_tags(&src2, &[rule("Backup"), rule("Env*")]),
            vec![("Team".to_string(), "a".to_string())]
        );
        let many: BTreeMap<String, String> =
            (0..80).map(|i| (format!("k{i:02}"), "v".into())).collect();
        assert_eq!(carried_tags(&many, &[]).len(), MAX_TAGS - 4);
    }

    #[test]
    fn architecture_follows_the_instance_family() {
        assert_eq!(architecture_for("t3.micro"), "x86_64");
        assert_eq!(architecture_for("t4g.small"), "arm64");
        assert_eq!(architecture_for("c6gn.large"), "arm64");
        assert_eq!(architecture_for("m7gd.xlarge"), "arm64");
        assert_eq!(architecture_for("g5.xlarge"), "x86_64");
        assert_eq!(architecture_for("m5a.large"), "x86_64");
    }

    #[test]
    fn the_recorded_region_comes_from_the_az_or_the_copy() {
        let mut p = point(PointKind::SnapshotSet, "us-west-2", 1, 1, "i-1");
        assert_eq!(recorded_region(&p), "us-west-2");
        p.tags
            .insert(tags::COPY_OF.into(), "us-east-1/snap-1".into());
        assert_eq!(recorded_region(&p), "us-east-1");
        p.tags.insert(tags::AZ.into(), "eu-west-1b".into());
        assert_eq!(recorded_region(&p), "eu-west-1");
    }
}
