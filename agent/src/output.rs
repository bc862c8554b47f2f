//! What every plan command does first (load, open logs, admin session), and
//! small printing helpers.

use comfy_table::{presets::UTF8_BORDERS_ONLY, ContentArrangement, Table};
use rolesnap_core::{
    admin_session, load_plan, AdminSession, ConfigError, Endpoint, Loaded, LogFile, Logs, Tenant,
};

use crate::cli::{Global, PlanArgs};

pub struct Setup {
    pub loaded: Loaded,
    pub logs: Logs,
    pub admin: AdminSession,
    /// The plan's tenants, narrowed by `--tenant`.
    pub tenants: Vec<Tenant>,
}

/// Loads the plan and its accounts (a [`ConfigError`] exits 2 before any AWS
/// call), opens the logs and prepares the admin session.
pub async fn setup(global: &Global, args: &PlanArgs, command: &str) -> anyhow::Result<Setup> {
    let loaded = load_plan(&args.plan, args.accounts.as_deref())?;
    let mut tenants: Vec<Tenant> = loaded
        .plan
        .tenant_names()
        .iter()
        .filter_map(|n| loaded.accounts.tenant(n).cloned())
        .collect();
    if let Some(only) = &args.tenant {
        if !tenants.iter().any(|t| &t.name == only) {
            return Err(ConfigError {
                file: args.plan.clone(),
                line: 0,
                key: "--tenant".into(),
                message: format!(
                    "plan `{}` does not protect tenant `{only}` (it names: {})",
                    loaded.plan.name,
                    tenants
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            .into());
        }
        tenants.retain(|t| &t.name == only);
    }
    let logs = open_logs(global)?;
    logs.try_write(
        LogFile::Cvd,
        None,
        "CvdMain::Start",
        &format!(
            "rolesnap {} {command} plan [{}] from [{}], accounts [{}], {} tenant(s)",
            env!("CARGO_PKG_VERSION"),
            loaded.plan.name,
            loaded.plan.source.display(),
            loaded.accounts_path.display(),
            tenants.len()
        ),
    )
    .map_err(|e| LogDirError(format!("cannot write the log: {e}")))?;
    let endpoint = Endpoint(global.endpoint_url.clone());
    let admin = admin_session(&loaded.accounts, &endpoint, &logs).await;
    if let Err(e) = admin.check().await {
        logs.write(LogFile::Cvd, None, "CAmazonInfo::Connect", &e);
        anyhow::bail!("{e}");
    }
    Ok(Setup {
        loaded,
        logs,
        admin,
        tenants,
    })
}

/// The log directory cannot be used: exit 2 before anything is sent to AWS.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogDirError(pub String);

/// Opens the log directory (created 0700, or 0750 with `--group-access`) and
/// its files; a directory or file that cannot be written is a [`LogDirError`].
pub fn open_logs(global: &Global) -> Result<Logs, LogDirError> {
    Logs::open_with(
        &global.log_dir,
        global.log_max_bytes,
        global.verbose,
        global.group_access,
    )
    .map_err(|e| {
        LogDirError(format!(
            "cannot use log directory {}: {e}",
            global.log_dir.display()
        ))
    })
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

/// Prints `value` as pretty JSON on stdout, streamed (not built as one string
/// first). A closed pipe (`rolesnap … | head`) ends the output quietly.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let r = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
