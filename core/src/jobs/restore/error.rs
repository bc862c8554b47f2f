//! [`RestoreError`]: why a restore job failed. Its `Display` is the text the
//! job logs, records in the ledger and puts in `Report.error`, so each
//! variant prints exactly what the restore has always said.

use crate::aws::credentials::AssumeRoleFailure;
use crate::aws::error::AwsError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RestoreError {
    /// Refused before anything was made: what the request names conflicts
    /// with what exists (the device is in use, the target DB exists, the
    /// instance to attach to is not running or stopped, no device is free).
    #[error("{0}")]
    Refused(String),
    /// Refused before anything was made: the request cannot be carried out
    /// as given, and says which option to pass (`--instance-type`,
    /// `--subnet`, `--image-id`, a device name, an ambiguous `--job`, …).
    #[error("{0}")]
    BadRequest(String),
    /// No usable recovery point: none matches, or the one found does not
    /// record what the restore needs (its devices, root device, engine, …).
    #[error("{0}")]
    Point(String),
    /// The tenant's role cannot be assumed.
    #[error(transparent)]
    Session(#[from] AssumeRoleFailure),
    /// An AWS call failed. (Boxed: an `AwsError` is large, and most
    /// restore errors are not one.)
    #[error(transparent)]
    Aws(Box<AwsError>),
    /// An AWS call failed, said with what the restore wanted from it.
    #[error("{context}: {source}")]
    AwsFor {
        context: String,
        #[source]
        source: Box<AwsError>,
    },
    /// Waiting for something the restore made took longer than the wait timeout.
    #[error("{what}: still {last} after the {timeout_secs} s wait timeout")]
    TimedOut {
        what: String,
        last: String,
        timeout_secs: u64,
    },
    /// Something the restore made (or works on) went to a state it cannot
    /// come back from: an instance terminated, an image failed, …
    #[error("{what}: {why}")]
    Failed { what: String, why: String },
    /// A conflict found after the job had already made something (a device
    /// in use on the instance it launched): not a refusal, since what was
    /// made must be removed.
    #[error("{0}")]
    Conflict(String),
}

impl From<AwsError> for RestoreError {
    fn from(e: AwsError) -> RestoreError {
        RestoreError::Aws(Box::new(e))
    }
}

impl RestoreError {
    /// Whether the restore was refused before anything was made (the request
    /// conflicts with what exists, or cannot be carried out as given).
    pub fn refused(&self) -> bool {
        matches!(self, RestoreError::Refused(_) | RestoreError::BadRequest(_))
    }

    /// The same error, found after the job made something: a refusal becomes
    /// a [`RestoreError::Conflict`] with the same text.
    pub(super) fn after_making(self) -> RestoreError {
        match self {
            RestoreError::Refused(m) | RestoreError::BadRequest(m) => RestoreError::Conflict(m),
            e => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_what_the_restore_always_said() {
        let e = RestoreError::TimedOut {
            what: "instance i-1 to be running".into(),
            last: "pending".into(),
            timeout_secs: 60,
        };
        assert_eq!(
            e.to_string(),
            "instance i-1 to be running: still pending after the 60 s wait timeout"
        );
        assert!(!e.refused());
        let e = RestoreError::Failed {
            what: "instance i-1 to be running".into(),
            why: "instance is terminated: boom".into(),
        };
        assert_eq!(
            e.to_string(),
            "instance i-1 to be running: instance is terminated: boom"
        );
        let aws = AwsError {
            tenant: "alpha".into(),
            region: "us-east-1".into(),
            action: "DescribeSnapshots".into(),
            resource: Some("snap-1".into()),
            code: "AccessDenied".into(),
            message: "no".into(),
        };
        let e = RestoreError::AwsFor {
            context: "cannot tell which volume copy of us-east-1/snap-1 belongs to".into(),
            source: Box::new(aws.clone()),
        };
        assert_eq!(
            e.to_string(),
            format!("cannot tell which volume copy of us-east-1/snap-1 belongs to: {aws}")
        );
        assert_eq!(RestoreError::from(aws.clone()).to_string(), aws.to_string());
        let r = RestoreError::Refused("refused: x".into());
        assert!(r.refused());
        let c = r.after_making();
        assert!(!c.refused());
        assert_eq!(c.to_string(), "refused: x");
    }
}
