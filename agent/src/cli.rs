//! Arguments of every command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rolesnap",
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("ROLESNAP_COMMIT"), ")"),
    about = "Snapshot backup for EC2 and RDS across many AWS accounts, through STS AssumeRole",
    long_about = "rolesnap runs on an access node in a central admin account. For every tenant \
account of a plan it assumes an IAM role there (STS AssumeRole with ExternalId), finds the \
instances, EBS volumes, RDS instances and Aurora clusters the plan selects, and snapshots them. \
Everything it creates is tagged _GX_BACKUP_ so that the least-privilege policy printed by \
`rolesnap policy` lets it delete only what it made.\n\n\
Admin credentials come from the default AWS chain (environment, profile, instance profile). \
The standard AWS_ENDPOINT_URL (or --endpoint-url) points every call at another endpoint, such as \
a local emulator.\n\n\
RUST_LOG shows tracing events on stderr, e.g. RUST_LOG=aws_smithy_runtime=debug for the AWS \
SDK's own (requests, retries, credentials), rolesnap=info for the log file lines \
(targets rolesnap::cvd, rolesnap::vsbkp, ...); unset, nothing more is printed.\n\n\
Exit codes: 0 done; 1 done with errors; 2 usage or configuration error (nothing sent to AWS); \
3 failed; 4 busy: another run of the plan holds it on this state directory (nothing done); \
5 refused: a restore or drill refused before anything was made."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Tables and sentences for people.
    #[default]
    Human,
    /// One JSON document on stdout, for scripts.
    Json,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log).
    #[arg(long, global = true, env = "ROLESNAP_LOG_DIR", default_value = "logs")]
    pub log_dir: PathBuf,

    /// Size in bytes at which a log file rotates.
    #[arg(long, global = true, default_value_t = rolesnap_core::store::logs::DEFAULT_MAX_BYTES)]
    pub log_max_bytes: u64,

    /// Directory of the job ledger (ledger.db) and job locks.
    #[arg(
        long,
        global = true,
        env = "ROLESNAP_STATE_DIR",
        default_value = "state"
    )]
    pub state_dir: PathBuf,

    /// Create the state and log directories 0750 and the log files 0640 (readable by
    /// the directory's group, e.g. for a log shipper) instead of 0700 and 0600.
    #[arg(long, global = true)]
    pub group_access: bool,

    /// Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,

    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    /// Also print log lines on stderr.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    /// Print only errors (human output).
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

// Parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a plan would protect, by tenant, region and availability zone.
    Discover(DiscoverArgs),
    /// Check a plan: parse it, assume every tenant role and probe the permissions the agent needs.
    Validate(ValidateArgs),
    /// Back up now: snapshot every resource the plan selects (a Snap Backup job).
    Backup(BackupArgs),
    /// Copy the plan's recovery points to its copy regions (a Snap Copy job).
    Copy(CopyArgs),
    /// Copy the plan's recovery points into its vault accounts (a Vault Copy job):
    /// share each point with the vault, copy it there with the vault's KMS key, stop the share.
    #[command(name = "vault-copy")]
    VaultCopy(CopyArgs),
    /// Delete recovery points whose retention has run out (a Data Aging job).
    Prune(PruneArgs),
    /// List recovery points found live in AWS by their tags, across tenants and regions.
    List(ListArgs),
    /// Restore an instance, a volume or an RDS/Aurora database from a recovery point (a Restore job).
    Restore(RestoreArgs),
    /// Prove a recovery point restores: restore it into a throw-away target, wait until it is
    /// healthy, record the RTO, and remove everything it made (a Drill job).
    #[command(
        long_about = "Prove a recovery point restores (a Drill job). The newest completed point of \
the instance (--instance) or database (--db / --cluster) is restored into a throw-away target: an \
instance into --subnet with --security-groups (give a subnet and a security group without ingress), \
without the source's own tags; a database under a new identifier (rolesnap-drill-<time>) in \
--db-subnet-group (default: the recorded one). Healthy means: an instance running with both EC2 \
status checks ok (DescribeInstanceStatus); a database available (with --connect: and its endpoint \
accepting a TCP connection from this node). Everything the drill makes is \
tagged CV_Integrity_Snap and _GX_BACKUP_ (the drill job) and is removed at the end, whether the \
drill passed or not; instances an earlier, killed drill left (older than --wait-timeout) are \
terminated first. The source is never touched. Exit 0 healthy and removed, 3 failed."
    )]
    Drill(DrillArgs),
    /// RPO report: per resource, the newest recovery point in its source region, copy regions
    /// and vaults, its age against the plan's RPO; and what no plan protects.
    #[command(long_about = REPORT_ABOUT)]
    Report(ReportArgs),
    /// Run the scheduler: every plan's backup, copy and prune at its scheduled times.
    Agent(AgentArgs),
    /// Show each plan's next run times.
    Schedule(ScheduleArgs),
    /// List jobs, or show one job's summary.
    Jobs(JobsArgs),
    /// Print the IAM documents (trust and permission policies) for the admin or a tenant account.
    Policy(PolicyArgs),
    /// Print a CloudFormation template that creates the tenant role with the documents
    /// `rolesnap policy tenant` prints (for a stack, or a StackSet across an organization).
    #[command(long_about = ONBOARD_ABOUT)]
    Onboard(OnboardArgs),
    /// Write accounts-file entries for the member accounts of an AWS Organization.
    #[command(long_about = ACCOUNTS_ABOUT)]
    Accounts(AccountsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(
        long_about = "Print a shell completion script on stdout, generated from the command-line \
definition. For example: `rolesnap completions bash > /usr/share/bash-completion/completions/rolesnap`, \
`rolesnap completions zsh > /usr/share/zsh/site-functions/_rolesnap`, \
`rolesnap completions fish > /usr/share/fish/vendor_completions.d/rolesnap.fish`. No AWS call."
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command into --out DIR.
    #[command(
        long_about = "Print the rolesnap(1) man page (roff, generated from the command-line \
definition) on stdout, or with --out DIR write rolesnap.1 and one page per command \
(rolesnap-backup.1, rolesnap-restore-instance.1, ...) into DIR, e.g. /usr/local/share/man/man1. \
No AWS call."
    )]
    Man(ManArgs),
}

const ONBOARD_ABOUT: &str = "Print a CloudFormation template (JSON, which CloudFormation also \
reads as YAML) that creates the tenant role in a tenant account: its trust policy and its inline \
permissions policy are exactly the tenant-trust and permissions documents `rolesnap policy tenant` \
prints, with the admin account and the ExternalId as the template's parameters AdminAccountId and \
ExternalId (their defaults: --admin-account and --external-id). Deploy it with `aws cloudformation \
deploy` in one account, or as a StackSet to every account of an organization, with a per-account \
ExternalId (README, Onboarding tenants). With --accounts, the permissions allow sharing with the \
file's [[vault]] accounts, as `policy tenant --accounts` does. No AWS call.";

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// The 12-digit admin account id the tenant role trusts (the AdminAccountId default).
    #[arg(long)]
    pub admin_account: String,
    /// The ExternalId parameter's default. Without it the parameter has no default and
    /// each stack (or stack instance) must be given one.
    #[arg(long)]
    pub external_id: Option<String>,
    /// The accounts file: its [[vault]] accounts are the share targets the permissions allow.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// The RoleName parameter's default (the role name in the accounts file's role-arn).
    #[arg(long, default_value = "vsa-role")]
    pub role_name: String,
}

const ACCOUNTS_ABOUT: &str = "Write an accounts-file [[tenant]] entry for every ACTIVE member \
account of the AWS Organization the admin credentials belong to (organizations:ListAccounts and \
DescribeOrganization; run it where those are allowed, e.g. with the management account's or a \
delegated administrator's credentials): a name from the account name, the role ARN \
(arn:aws:iam::ACCOUNT:role/--role-name) and a newly generated ExternalId per tenant. The \
management account is left out (service-managed StackSets do not deploy to it), and so is every \
--exclude account. Without --merge the entries are printed on stdout (TOML; with -o json a JSON \
document). With --merge FILE they are appended to FILE: an account FILE already names (as a \
tenant or a vault) is left exactly as written, every other line of FILE is kept, the result must \
parse before FILE is replaced, and FILE's [admin] table gives the credentials. Create the roles \
with `rolesnap onboard` (README, Onboarding tenants) using each tenant's ExternalId.";

#[derive(Debug, Args)]
pub struct AccountsArgs {
    /// Read the member accounts from AWS Organizations (the only source so far).
    #[arg(long, required = true)]
    pub from_organization: bool,
    /// The tenant role's name in every member account.
    #[arg(long, default_value = "vsa-role")]
    pub role_name: String,
    /// The regions of every new tenant (default: none written, the accounts file's default).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Vec<String>,
    /// Leave this account out (e.g. the admin account, a vault account). Repeatable.
    #[arg(long, value_name = "ACCOUNT")]
    pub exclude: Vec<String>,
    /// Add the new entries to this accounts file instead of printing them.
    #[arg(long, value_name = "FILE")]
    pub merge: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write rolesnap.1 and one page per command (rolesnap-COMMAND.1) into this directory
    /// (created if missing) instead of printing rolesnap.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file (TOML).
    #[arg(long, short = 'p')]
    pub plan: PathBuf,
    /// The accounts file; default: the plan's `accounts` key, else accounts.toml beside the plan.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Only this tenant (by name).
    #[arg(long, short = 't')]
    pub tenant: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only this region.
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// Also list resources the plan does not select, with the reason.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicySide {
    /// The admin account: sts-only policy, admin role trust, permissions.
    Admin,
    /// A tenant account: sts-only policy, tenant role trust (with ExternalId), permissions.
    /// With --accounts, the permissions let the role share its own snapshots with the
    /// accounts file's [[vault]] accounts (and no other); without, no sharing at all.
    Tenant,
    /// A [[vault]] backup account (needs --accounts): vault role trust (the admin account,
    /// with the vault's ExternalId) and permissions: copy in what tenants share, with the
    /// vault's KMS keys; tags only at creation; delete and share back only its own copies.
    Vault,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Which account's documents to print.
    #[arg(value_enum)]
    pub side: PolicySide,
    /// The 12-digit admin account id the tenant role trusts.
    #[arg(long)]
    pub admin_account: String,
    /// ExternalId the tenant trust policy requires. Printing `tenant-trust`
    /// without one is refused (exit 2) unless --no-external-id is given.
    #[arg(long, conflicts_with = "no_external_id")]
    pub external_id: Option<String>,
    /// Print the tenant trust policy without an sts:ExternalId condition (not
    /// recommended: any principal of the admin account could then assume the
    /// role without knowing the ExternalId). Prints a warning on stderr.
    #[arg(long)]
    pub no_external_id: bool,
    /// Also trust the ec2.amazonaws.com service principal in the tenant trust
    /// policy (the guide does; rolesnap never needs it, it assumes the role
    /// from the admin account).
    #[arg(long)]
    pub trust_ec2_service: bool,
    /// Print only this document (e.g. tenant-trust, vault-trust, permissions), ready for
    /// `aws iam ... file://`.
    #[arg(long)]
    pub document: Option<String>,
    /// The accounts file. `tenant`: its [[vault]] account ids are the only accounts the
    /// tenant role may share its snapshots with (without it, or without a [[vault]], the
    /// policy grants no sharing). `vault` (required): the vault's KMS keys, its ExternalId
    /// (unless --external-id) and the tenant accounts it may share copies back with.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// `vault`: which [[vault]] of the accounts file (needed when it declares several).
    #[arg(long)]
    pub vault: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only this region.
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// Only these instances (repeatable); they must be selected by the plan.
    #[arg(long = "instance", value_name = "INSTANCE_ID")]
    pub instances: Vec<String>,
    /// Only these RDS instances or Aurora clusters (repeatable).
    #[arg(long = "db", value_name = "DB_ID")]
    pub dbs: Vec<String>,
    /// Print what would be created and create nothing (no job is recorded).
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for snapshots to complete (default: the plan's wait-timeout-minutes).
    #[arg(long, value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
    /// Seconds before the first completion poll; doubles up to 60 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
    /// Do not run the plan's cross-region copies after the backup.
    #[arg(long)]
    pub no_copy: bool,
    /// Also run the plan's prune (Data Aging job) at the same time, as the
    /// scheduled nightly run does. It deletes only points whose retention has
    /// run out, never the ones this backup makes, and keeps the newest point of
    /// every live source. It deletes what it can at once, the points this backup
    /// supersedes as soon as the backup ends, and originals still being copied
    /// once the copy job ends: the outcome of a prune run afterwards, sooner,
    /// since deletes use their own throttling bucket.
    #[arg(long, conflicts_with = "dry_run")]
    pub prune: bool,
    /// When another run of this plan is in progress on this state directory
    /// (the agent, another command), wait for it to end instead of refusing
    /// with exit code 4.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only points whose source region is this one.
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// Seconds to wait for copies to complete (default: the plan's wait-timeout-minutes).
    #[arg(long, value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
    /// Seconds before the first completion poll; doubles up to 60 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
    /// When another run of this plan is in progress on this state directory
    /// (the agent, another command), wait for it to end instead of refusing
    /// with exit code 4.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only this source region (and the plan's copy regions).
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// List what would be kept and deleted, with the rule that decided; delete nothing.
    /// (A prune itself reports each point it deletes and counts, per tenant and region,
    /// the points it keeps.)
    #[arg(long)]
    pub dry_run: bool,
    /// Decide as if it were this time (RFC 3339, e.g. 2026-12-31T00:00:00Z, or a date).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// When another run of this plan is in progress on this state directory
    /// (the agent, another command), wait for it to end instead of refusing
    /// with exit code 4.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs of this plan (by plan name).
    #[arg(long, short = 'p')]
    pub plan: Option<String>,
    /// How many jobs to list, newest first.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    /// Show this job's summary: resources, what was created, events. Job
    /// numbers are unique per agent (ledger): with --from, a number that
    /// several agents used is refused with the candidates; name one as
    /// NUMBER@AGENT (the agent id, or its first digits).
    #[arg(long, short = 'j', value_name = "JOB[@AGENT]")]
    pub job: Option<String>,
    /// Also read the ledgers of these state directories (other shards'
    /// agents), read-only: nothing in them is changed.
    #[arg(long = "from", value_name = "STATE_DIR")]
    pub from: Vec<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only this region.
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// Only recovery points of this instance.
    #[arg(long, conflicts_with_all = ["volume", "db"])]
    pub instance: Option<String>,
    /// Only recovery points holding a snapshot of this volume.
    #[arg(long, conflicts_with = "db")]
    pub volume: Option<String>,
    /// Only recovery points of this RDS instance or Aurora cluster.
    #[arg(long)]
    pub db: Option<String>,
    /// Every column, IDs and rules in full, however wide the terminal (the
    /// table otherwise fits `COLUMNS` or the terminal's width).
    #[arg(long)]
    pub wide: bool,
}

const REPORT_ABOUT: &str = "RPO report, from AWS state (discovery and the recovery points found \
by tag) plus the job ledgers; it changes nothing and works on any access node.\n\n\
For every resource the plans select (tenant, region, kind, id): the newest completed recovery \
point in its source region, in each [[copy]] region and in each [[vault]] region (the vault \
account's copies), and its age. The plan's RPO is the longest gap between two runs of its \
[schedule] cron line over the next 14 days, plus [schedule] rpo-grace-minutes (default 60). \
A resource is compliant when the newest completed point of every one of those places is \
within the RPO; breached when one is older, or a copy region or vault has none; never \
protected when the source region has no completed point; no-rpo when the plan has no \
schedule. The last restore drill of each resource (passed or failed) and its RTO come from the ledgers' \
Drill jobs (`rolesnap drill`, or a plan's [drill] run by the agent); null when it was never drilled.\n\n\
Also lists, per tenant and region, the resources discovery sees that no plan of the report \
selects (unprotected), with each plan's reason. Discovery only looks where a plan's groups \
look: a plan without rds/aurora does not list databases.\n\n\
Formats: a table (default), JSON (-o json or --format json), CSV (one line per resource, \
then the unprotected ones) and HTML: one self-contained file (no external asset, no URL; a \
few lines of inline script sort the tables) with a summary, a sortable table and one inline \
SVG timeline per resource of its recovery points over the plan's retention window.\n\n\
Exit codes: 0 the report is complete (whatever it says: breaches do not change the code); \
1 a tenant, region, vault or ledger could not be read (the report says which); 2 usage or \
configuration error.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Tables for people (the default, or -o human).
    Table,
    /// One JSON document (the same as -o json).
    Json,
    /// Comma-separated values, one line per resource.
    Csv,
    /// One self-contained HTML file with inline SVG timelines.
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The plan files (TOML); repeatable. A resource counts as unprotected only when none of
    /// them selects it.
    #[arg(long = "plan", short = 'p', required = true, value_name = "PLAN")]
    pub plans: Vec<PathBuf>,
    /// The accounts file for every plan; default: each plan's `accounts` key, else
    /// accounts.toml beside it.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Only this tenant (by name).
    #[arg(long, short = 't')]
    pub tenant: Option<String>,
    /// Only this source region.
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// Compute ages and compliance as of this time (RFC 3339, e.g. 2026-12-31T00:00:00Z, or a
    /// date): to preview, or test. Points made after it are ignored.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// Output format (default: from -o, a table).
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Write the report to this file instead of stdout (replaced whole, never half-written).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also read the job ledgers of these state directories (other agents'), read-only, for
    /// each plan's last backup and last failed job.
    #[arg(long = "from", value_name = "STATE_DIR")]
    pub from: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlansArgs {
    /// Plan files, or directories whose *.toml plan files are all loaded.
    #[arg(long = "plans", short = 'p', required = true, num_args = 1..)]
    pub plans: Vec<std::path::PathBuf>,
    /// The accounts file for every plan (default: each plan's own).
    #[arg(long)]
    pub accounts: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub plans: PlansArgs,
    /// Run every plan that is due now (within --catch-up), then exit (for systemd timers / cron).
    #[arg(long)]
    pub once: bool,
    /// This agent's share of the tenants: K/N (0-based K) by a stable hash of the tenant name.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Run a slot missed by at most this many minutes (the agent was down or busy).
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    pub catch_up: u64,
    /// Seconds in-flight jobs get to finish after SIGTERM/SIGINT before they are recorded Killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub grace: u64,
    /// Serve Prometheus metrics (GET /metrics) and a health check (GET /healthz) on this
    /// address (e.g. 127.0.0.1:9187); loopback only, unless --metrics-allow-remote.
    #[arg(long, value_name = "ADDR", env = "ROLESNAP_METRICS")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Allow --metrics on a non-loopback address, e.g. the pod IP (or 0.0.0.0) for
    /// in-cluster Prometheus scraping and kubelet probes. The endpoint has no
    /// authentication: expose it only to a trusted network.
    #[arg(long, env = "ROLESNAP_METRICS_ALLOW_REMOTE")]
    pub metrics_allow_remote: bool,
    /// Also write structured JSON events on stdout.
    #[arg(long)]
    pub json_events: bool,
    /// Seconds before the first completion poll of a job; doubles up to 60 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
    /// Every this many seconds (0: never), check each scheduled plan's resources against
    /// their RPO (as `rolesnap report` does) and send one rpo-breach alert per breached
    /// resource and breach episode to the plan's [notify]; the counts go to --metrics.
    /// The first check is one interval after the start; not with --once.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub rpo_check_interval: u64,
    /// Refuse to start (exit 2, nothing run) when any plan file is broken. Without it
    /// the valid plans run and each broken one is logged in cvd.log and counted in the
    /// rolesnap_plan_config_errors metric.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub plans: PlansArgs,
    /// How many run times to show per plan.
    #[arg(long, short = 'n', default_value_t = 5)]
    pub count: usize,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(subcommand)]
    pub what: RestoreWhat,
}

#[derive(Debug, Subcommand)]
pub enum RestoreWhat {
    /// Launch a new instance from a recovery point of an instance (the original is never touched).
    #[command(
        long_about = "Launch a new instance from a recovery point of an instance. From an AMI point: \
RunInstances from the AMI. From a snapshot set: RegisterImage from the snapshots, each mapped back to \
its recorded device, RunInstances from it, then DeregisterImage once the instance runs. The recorded \
instance type, subnet, security groups, key pair and instance profile are the defaults. The new \
instance and its volumes are tagged _GX_BACKUP_ (the restore job), _GX_SOURCE_, _GX_RESTORED_FROM_ \
and Name. The original instance is never touched. On failure everything the job made is removed."
    )]
    Instance(RestoreInstanceArgs),
    /// Create a volume from a recovery point and attach it to an instance (existing or new).
    Volume(RestoreVolumeArgs),
    /// Restore an RDS instance (--db) or an Aurora cluster (--cluster) under a new identifier.
    Rds(RestoreRdsArgs),
}

#[derive(Debug, Args)]
pub struct RestorePointArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Restore the recovery point made by this job (default: the newest
    /// completed one). Job numbers are unique per agent: if several agents
    /// ran a job of this number, name one as NUMBER@AGENT (the agent id
    /// `list` shows, or its first digits).
    #[arg(long, short = 'j', conflicts_with = "at", value_name = "JOB[@AGENT]")]
    pub job: Option<String>,
    /// Restore the newest recovery point made at or before this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Restore in this region: the source's region (default) or a copy region, from the cross-region copy there.
    #[arg(long, short = 'r', visible_alias = "from-copy")]
    pub region: Option<String>,
    /// Restore from this vault's copy (a [[vault]] of the accounts file): the vault shares it
    /// back, the tenant copies it into its own account (deleted when the restore ends), and the
    /// restore goes on from that copy. With --region, the vault region to restore from.
    #[arg(long, value_name = "VAULT")]
    pub from_vault: Option<String>,
    /// With --from-vault: the tenant's KMS key for its copy of the vault copy (default: the
    /// account's EBS default key; RDS needs one).
    #[arg(long, value_name = "KEY", requires = "from_vault")]
    pub kms_key_id: Option<String>,
    /// Print the calls the restore would make; create nothing, record no job.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds the restore may wait for what it makes to be running/available; then it fails and removes it.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub wait_timeout: u64,
    /// Seconds before the first poll; doubles up to 30 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["instance", "db", "cluster"])))]
pub struct DrillArgs {
    #[command(flatten)]
    pub point: RestorePointArgs,
    /// The source instance whose recovery point to drill.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: Option<String>,
    /// The source RDS DB instance whose recovery point to drill.
    #[arg(long, value_name = "DB_ID")]
    pub db: Option<String>,
    /// The source Aurora cluster whose recovery point to drill.
    #[arg(long, value_name = "CLUSTER_ID")]
    pub cluster: Option<String>,
    /// Instance drills: the throw-away subnet to launch in (required for --instance).
    #[arg(long)]
    pub subnet: Option<String>,
    /// Instance drills: security group ids, comma-separated (a group without ingress).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub security_groups: Vec<String>,
    /// Database drills: the DB subnet group (default: the recorded one).
    #[arg(long)]
    pub db_subnet_group: Option<String>,
    /// Database drills: healthy only once a TCP connect from this node to the restored
    /// endpoint (address:port) succeeds within 10 s; refused or timed out = failed.
    #[arg(long, conflicts_with = "instance")]
    pub connect: bool,
    /// Instance drills: a shell command run in the restored instance through SSM Run Command
    /// (AWS-RunShellScript) once its status checks pass, e.g. "systemctl is-system-running";
    /// healthy only if it exits 0 within --wait-timeout. Needs the SSM agent and an instance
    /// profile that lets it reach SSM.
    #[arg(long, value_name = "COMMAND", requires = "instance")]
    pub check: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreInstanceArgs {
    #[command(flatten)]
    pub point: RestorePointArgs,
    /// The source instance (of the recovery point).
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: String,
    /// Instance type (default: the recorded one).
    #[arg(long)]
    pub instance_type: Option<String>,
    /// Subnet (default: the recorded one; in a copy region the default VPC's subnet).
    #[arg(long)]
    pub subnet: Option<String>,
    /// Security group ids, comma-separated (default: the recorded ones, if they fit the subnet).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub security_groups: Vec<String>,
    /// Key pair (default: the recorded one, if it exists in the region).
    #[arg(long)]
    pub key_name: Option<String>,
    /// Architecture of the image registered from a snapshot set (default: from the instance type).
    #[arg(long, value_parser = ["x86_64", "arm64"])]
    pub architecture: Option<String>,
    /// Do not copy the source instance's own tags to the new instance.
    #[arg(long)]
    pub no_tags: bool,
    /// Copy all of the source instance's own tags, also those the plan selects
    /// on (its groups' include-tags keys, e.g. Backup=nightly), which are left
    /// off by default so that the next backup does not select the restored
    /// instance.
    #[arg(long, conflicts_with = "no_tags")]
    pub keep_all_tags: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["attach_to", "new_instance"])))]
pub struct RestoreVolumeArgs {
    #[command(flatten)]
    pub point: RestorePointArgs,
    /// The source volume (a member of a snapshot set).
    #[arg(long, value_name = "VOLUME_ID")]
    pub volume: String,
    /// Attach the new volume to this instance (created in its availability zone).
    #[arg(long, value_name = "INSTANCE_ID")]
    pub attach_to: Option<String>,
    /// Launch a small instance in the volume's recorded availability zone and attach it there.
    #[arg(long)]
    pub new_instance: bool,
    /// Device name (default: the recorded one if free, else the first free /dev/sd[f-p]); refused if in use.
    #[arg(long)]
    pub device: Option<String>,
    /// Volume type of the new volume.
    #[arg(long, default_value = "gp3")]
    pub volume_type: String,
    /// --new-instance: the image to launch (default: the source instance's image, while it exists).
    #[arg(long, requires = "new_instance")]
    pub image_id: Option<String>,
    /// --new-instance: its instance type.
    #[arg(long, default_value = "t3.micro", requires = "new_instance")]
    pub instance_type: String,
    /// --new-instance: its subnet (default: the recorded subnet, else the AZ's default subnet).
    #[arg(long, requires = "new_instance")]
    pub subnet: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["db", "cluster"])))]
pub struct RestoreRdsArgs {
    #[command(flatten)]
    pub point: RestorePointArgs,
    /// The source RDS DB instance: RestoreDBInstanceFromDBSnapshot.
    #[arg(long, value_name = "DB_ID")]
    pub db: Option<String>,
    /// The source Aurora cluster: RestoreDBClusterFromSnapshot, then CreateDBInstance as the writer.
    #[arg(long, value_name = "CLUSTER_ID")]
    pub cluster: Option<String>,
    /// The new identifier; refused if it exists (a restore never overwrites).
    #[arg(long, value_name = "NEW_ID")]
    pub target_id: String,
    /// DB instance class (default: the recorded one; Aurora: the source writer's class).
    #[arg(long)]
    pub instance_class: Option<String>,
    /// DB subnet group (default: the recorded one; in a copy region the default group).
    #[arg(long)]
    pub subnet_group: Option<String>,
    /// Aurora: the new writer's identifier (default: <NEW_ID>-1).
    #[arg(long, requires = "cluster")]
    pub writer_id: Option<String>,
}
