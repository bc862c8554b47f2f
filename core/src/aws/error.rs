//! The error every AWS call in the engine turns into: which tenant, which
//! region, which action on which resource, and the AWS error code.

use std::fmt;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AwsError {
    pub tenant: String,
    pub region: String,
    /// The API action, e.g. `CreateSnapshots`.
    pub action: String,
    /// The resource the call was about, when there is one.
    pub resource: Option<String>,
    /// AWS error code (`UnauthorizedOperation`, `RequestLimitExceeded`, …), or a
    /// local classification (`NetworkError`, `Timeout`).
    pub code: String,
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tenant {} region {}: {}",
            self.tenant, self.region, self.action
        )?;
        if let Some(r) = &self.resource {
            write!(f, " {r}")?;
        }
        write!(f, " failed: {}", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// "the role can no longer be assumed: AccessDenied: …" when `e` failed for
/// want of credentials.
fn credentials_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            let (code, message) = crate::aws::credentials::error_code(err);
            return Some(format!(
                "the tenant role can no longer be assumed: {code}: {message}"
            ));
        }
        cur = err.source();
    }
    None
}

/// Where a call was made; turns SDK errors into [`AwsError`]s.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    pub tenant: &'a str,
    pub region: &'a str,
}

impl Site<'_> {
    pub fn err<E>(&self, action: &str, resource: Option<&str>, e: E) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (code, message) = match e.code() {
            Some(c) => (c.to_string(), e.message().unwrap_or_default().to_string()),
            None => match credentials_failure(&e) {
                // The tenant's session could not be renewed: the call was
                // never sent. Fatal, not "ambiguous" like a lost connection.
                Some(m) => ("AssumeRoleFailed".to_string(), m),
                None => (
                    "NetworkError".to_string(),
                    crate::aws::credentials::chain(&e),
                ),
            },
        };
        AwsError {
            tenant: self.tenant.to_string(),
            region: self.region.to_string(),
            action: action.to_string(),
            resource: resource.map(str::to_string),
            code,
            message,
        }
    }
}
