# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rolesnap_global_optspecs
    string join \n log-dir= log-max-bytes= state-dir= group-access endpoint-url= o/output= v/verbose q/quiet h/help V/version
end

function __fish_rolesnap_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rolesnap_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rolesnap_using_subcommand
    set -l cmd (__fish_rolesnap_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rolesnap -n "__fish_rolesnap_needs_command" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_needs_command" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_needs_command" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_needs_command" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_needs_command" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_needs_command" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -s V -l version -d 'Print version'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "discover" -d 'Show what a plan would protect, by tenant, region and availability zone'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "validate" -d 'Check a plan: parse it, assume every tenant role and probe the permissions the agent needs'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "backup" -d 'Back up now: snapshot every resource the plan selects (a Snap Backup job)'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "copy" -d 'Copy the plan\'s recovery points to its copy regions (a Snap Copy job)'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "vault-copy" -d 'Copy the plan\'s recovery points into its vault accounts (a Vault Copy job): share each point with the vault, copy it there with the vault\'s KMS key, stop the share'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "prune" -d 'Delete recovery points whose retention has run out (a Data Aging job)'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "list" -d 'List recovery points found live in AWS by their tags, across tenants and regions'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "restore" -d 'Restore an instance, a volume or an RDS/Aurora database from a recovery point (a Restore job)'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "drill" -d 'Prove a recovery point restores: restore it into a throw-away target, wait until it is healthy, record the RTO, and remove everything it made (a Drill job)'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "report" -d 'RPO report: per resource, the newest recovery point in its source region, copy regions and vaults, its age against the plan\'s RPO; and what no plan protects'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "agent" -d 'Run the scheduler: every plan\'s backup, copy and prune at its scheduled times'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "schedule" -d 'Show each plan\'s next run times'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "jobs" -d 'List jobs, or show one job\'s summary'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "policy" -d 'Print the IAM documents (trust and permission policies) for the admin or a tenant account'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "onboard" -d 'Print a CloudFormation template that creates the tenant role with the documents `rolesnap policy tenant` prints (for a stack, or a StackSet across an organization)'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "accounts" -d 'Write accounts-file entries for the member accounts of an AWS Organization'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "man" -d 'Print the man page (roff) on stdout, or write one page per command into --out DIR'
complete -c rolesnap -n "__fish_rolesnap_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -s r -l region -d 'Only this region' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -l all -d 'Also list resources the plan does not select, with the reason'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand discover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -s r -l region -d 'Only this region' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l instance -d 'Only these instances (repeatable); they must be selected by the plan' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l db -d 'Only these RDS instances or Aurora clusters (repeatable)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l wait-timeout -d 'Seconds to wait for snapshots to complete (default: the plan\'s wait-timeout-minutes)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l poll-interval -d 'Seconds before the first completion poll; doubles up to 60 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l dry-run -d 'Print what would be created and create nothing (no job is recorded)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l no-copy -d 'Do not run the plan\'s cross-region copies after the backup'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l prune -d 'Also run the plan\'s prune (Data Aging job) at the same time, as the scheduled nightly run does. It deletes only points whose retention has run out, never the ones this backup makes, and keeps the newest point of every live source. It deletes what it can at once, the points this backup supersedes as soon as the backup ends, and originals still being copied once the copy job ends: the outcome of a prune run afterwards, sooner, since deletes use their own throttling bucket'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l wait -d 'When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -s r -l region -d 'Only points whose source region is this one' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l wait-timeout -d 'Seconds to wait for copies to complete (default: the plan\'s wait-timeout-minutes)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l poll-interval -d 'Seconds before the first completion poll; doubles up to 60 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l wait -d 'When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand copy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -s r -l region -d 'Only points whose source region is this one' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l wait-timeout -d 'Seconds to wait for copies to complete (default: the plan\'s wait-timeout-minutes)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l poll-interval -d 'Seconds before the first completion poll; doubles up to 60 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l wait -d 'When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand vault-copy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -s r -l region -d 'Only this source region (and the plan\'s copy regions)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l as-of -d 'Decide as if it were this time (RFC 3339, e.g. 2026-12-31T00:00:00Z, or a date)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l dry-run -d 'List what would be kept and deleted, with the rule that decided; delete nothing. (A prune itself reports each point it deletes and counts, per tenant and region, the points it keeps.)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l wait -d 'When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -s r -l region -d 'Only this region' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l instance -d 'Only recovery points of this instance' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l volume -d 'Only recovery points holding a snapshot of this volume' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l db -d 'Only recovery points of this RDS instance or Aurora cluster' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l wide -d 'Every column, IDs and rules in full, however wide the terminal (the table otherwise fits `COLUMNS` or the terminal\'s width)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -f -a "instance" -d 'Launch a new instance from a recovery point of an instance (the original is never touched)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -f -a "volume" -d 'Create a volume from a recovery point and attach it to an instance (existing or new)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -f -a "rds" -d 'Restore an RDS instance (--db) or an Aurora cluster (--cluster) under a new identifier'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and not __fish_seen_subcommand_from instance volume rds help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s j -l job -d 'Restore the recovery point made by this job (default: the newest completed one). Job numbers are unique per agent: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id `list` shows, or its first digits)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l at -d 'Restore the newest recovery point made at or before this time (RFC 3339, or a date)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s r -l region -l from-copy -d 'Restore in this region: the source\'s region (default) or a copy region, from the cross-region copy there' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l from-vault -d 'Restore from this vault\'s copy (a [[vault]] of the accounts file): the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l kms-key-id -d 'With --from-vault: the tenant\'s KMS key for its copy of the vault copy (default: the account\'s EBS default key; RDS needs one)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l wait-timeout -d 'Seconds the restore may wait for what it makes to be running/available; then it fails and removes it' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l poll-interval -d 'Seconds before the first poll; doubles up to 30 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l instance -d 'The source instance (of the recovery point)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l instance-type -d 'Instance type (default: the recorded one)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l subnet -d 'Subnet (default: the recorded one; in a copy region the default VPC\'s subnet)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l security-groups -d 'Security group ids, comma-separated (default: the recorded ones, if they fit the subnet)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l key-name -d 'Key pair (default: the recorded one, if it exists in the region)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l architecture -d 'Architecture of the image registered from a snapshot set (default: from the instance type)' -r -f -a "x86_64\t''
arm64\t''"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l dry-run -d 'Print the calls the restore would make; create nothing, record no job'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l no-tags -d 'Do not copy the source instance\'s own tags to the new instance'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l keep-all-tags -d 'Copy all of the source instance\'s own tags, also those the plan selects on (its groups\' include-tags keys, e.g. Backup=nightly), which are left off by default so that the next backup does not select the restored instance'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from instance" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s j -l job -d 'Restore the recovery point made by this job (default: the newest completed one). Job numbers are unique per agent: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id `list` shows, or its first digits)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l at -d 'Restore the newest recovery point made at or before this time (RFC 3339, or a date)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s r -l region -l from-copy -d 'Restore in this region: the source\'s region (default) or a copy region, from the cross-region copy there' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l from-vault -d 'Restore from this vault\'s copy (a [[vault]] of the accounts file): the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l kms-key-id -d 'With --from-vault: the tenant\'s KMS key for its copy of the vault copy (default: the account\'s EBS default key; RDS needs one)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l wait-timeout -d 'Seconds the restore may wait for what it makes to be running/available; then it fails and removes it' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l poll-interval -d 'Seconds before the first poll; doubles up to 30 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l volume -d 'The source volume (a member of a snapshot set)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l attach-to -d 'Attach the new volume to this instance (created in its availability zone)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l device -d 'Device name (default: the recorded one if free, else the first free /dev/sd[f-p]); refused if in use' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l volume-type -d 'Volume type of the new volume' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l image-id -d '--new-instance: the image to launch (default: the source instance\'s image, while it exists)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l instance-type -d '--new-instance: its instance type' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l subnet -d '--new-instance: its subnet (default: the recorded subnet, else the AZ\'s default subnet)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l dry-run -d 'Print the calls the restore would make; create nothing, record no job'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l new-instance -d 'Launch a small instance in the volume\'s recorded availability zone and attach it there'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from volume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s j -l job -d 'Restore the recovery point made by this job (default: the newest completed one). Job numbers are unique per agent: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id `list` shows, or its first digits)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l at -d 'Restore the newest recovery point made at or before this time (RFC 3339, or a date)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s r -l region -l from-copy -d 'Restore in this region: the source\'s region (default) or a copy region, from the cross-region copy there' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l from-vault -d 'Restore from this vault\'s copy (a [[vault]] of the accounts file): the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l kms-key-id -d 'With --from-vault: the tenant\'s KMS key for its copy of the vault copy (default: the account\'s EBS default key; RDS needs one)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l wait-timeout -d 'Seconds the restore may wait for what it makes to be running/available; then it fails and removes it' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l poll-interval -d 'Seconds before the first poll; doubles up to 30 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l db -d 'The source RDS DB instance: RestoreDBInstanceFromDBSnapshot' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l cluster -d 'The source Aurora cluster: RestoreDBClusterFromSnapshot, then CreateDBInstance as the writer' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l target-id -d 'The new identifier; refused if it exists (a restore never overwrites)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l instance-class -d 'DB instance class (default: the recorded one; Aurora: the source writer\'s class)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l subnet-group -d 'DB subnet group (default: the recorded one; in a copy region the default group)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l writer-id -d 'Aurora: the new writer\'s identifier (default: <NEW_ID>-1)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l dry-run -d 'Print the calls the restore would make; create nothing, record no job'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from rds" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from help" -f -a "instance" -d 'Launch a new instance from a recovery point of an instance (the original is never touched)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from help" -f -a "volume" -d 'Create a volume from a recovery point and attach it to an instance (existing or new)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from help" -f -a "rds" -d 'Restore an RDS instance (--db) or an Aurora cluster (--cluster) under a new identifier'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand restore; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s p -l plan -d 'The plan file (TOML)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l accounts -d 'The accounts file; default: the plan\'s `accounts` key, else accounts.toml beside the plan' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s j -l job -d 'Restore the recovery point made by this job (default: the newest completed one). Job numbers are unique per agent: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id `list` shows, or its first digits)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l at -d 'Restore the newest recovery point made at or before this time (RFC 3339, or a date)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s r -l region -l from-copy -d 'Restore in this region: the source\'s region (default) or a copy region, from the cross-region copy there' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l from-vault -d 'Restore from this vault\'s copy (a [[vault]] of the accounts file): the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l kms-key-id -d 'With --from-vault: the tenant\'s KMS key for its copy of the vault copy (default: the account\'s EBS default key; RDS needs one)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l wait-timeout -d 'Seconds the restore may wait for what it makes to be running/available; then it fails and removes it' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l poll-interval -d 'Seconds before the first poll; doubles up to 30 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l instance -d 'The source instance whose recovery point to drill' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l db -d 'The source RDS DB instance whose recovery point to drill' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l cluster -d 'The source Aurora cluster whose recovery point to drill' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l subnet -d 'Instance drills: the throw-away subnet to launch in (required for --instance)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l security-groups -d 'Instance drills: security group ids, comma-separated (a group without ingress)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l db-subnet-group -d 'Database drills: the DB subnet group (default: the recorded one)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l check -d 'Instance drills: a shell command run in the restored instance through SSM Run Command (AWS-RunShellScript) once its status checks pass, e.g. "systemctl is-system-running"; healthy only if it exits 0 within --wait-timeout. Needs the SSM agent and an instance profile that lets it reach SSM' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l dry-run -d 'Print the calls the restore would make; create nothing, record no job'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l connect -d 'Database drills: healthy only once a TCP connect from this node to the restored endpoint (address:port) succeeds within 10 s; refused or timed out = failed'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand drill" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -s p -l plan -d 'The plan files (TOML); repeatable. A resource counts as unprotected only when none of them selects it' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l accounts -d 'The accounts file for every plan; default: each plan\'s `accounts` key, else accounts.toml beside it' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -s t -l tenant -d 'Only this tenant (by name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -s r -l region -d 'Only this source region' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l as-of -d 'Compute ages and compliance as of this time (RFC 3339, e.g. 2026-12-31T00:00:00Z, or a date): to preview, or test. Points made after it are ignored' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l format -d 'Output format (default: from -o, a table)' -r -f -a "table\t'Tables for people (the default, or -o human)'
json\t'One JSON document (the same as -o json)'
csv\t'Comma-separated values, one line per resource'
html\t'One self-contained HTML file with inline SVG timelines'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l out -d 'Write the report to this file instead of stdout (replaced whole, never half-written)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l from -d 'Also read the job ledgers of these state directories (other agents\'), read-only, for each plan\'s last backup and last failed job' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -s p -l plans -d 'Plan files, or directories whose *.toml plan files are all loaded' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l accounts -d 'The accounts file for every plan (default: each plan\'s own)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l shard -d 'This agent\'s share of the tenants: K/N (0-based K) by a stable hash of the tenant name' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l catch-up -d 'Run a slot missed by at most this many minutes (the agent was down or busy)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l grace -d 'Seconds in-flight jobs get to finish after SIGTERM/SIGINT before they are recorded Killed' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l metrics -d 'Serve Prometheus metrics (GET /metrics) and a health check (GET /healthz) on this address (e.g. 127.0.0.1:9187); loopback only, unless --metrics-allow-remote' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l poll-interval -d 'Seconds before the first completion poll of a job; doubles up to 60 s' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l rpo-check-interval -d 'Every this many seconds (0: never), check each scheduled plan\'s resources against their RPO (as `rolesnap report` does) and send one rpo-breach alert per breached resource and breach episode to the plan\'s [notify]; the counts go to --metrics. The first check is one interval after the start; not with --once' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l once -d 'Run every plan that is due now (within --catch-up), then exit (for systemd timers / cron)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l metrics-allow-remote -d 'Allow --metrics on a non-loopback address, e.g. the pod IP (or 0.0.0.0) for in-cluster Prometheus scraping and kubelet probes. The endpoint has no authentication: expose it only to a trusted network'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l json-events -d 'Also write structured JSON events on stdout'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l strict -d 'Refuse to start (exit 2, nothing run) when any plan file is broken. Without it the valid plans run and each broken one is logged in cvd.log and counted in the rolesnap_plan_config_errors metric'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand agent" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -s p -l plans -d 'Plan files, or directories whose *.toml plan files are all loaded' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -l accounts -d 'The accounts file for every plan (default: each plan\'s own)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -s n -l count -d 'How many run times to show per plan' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand schedule" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -s p -l plan -d 'Only jobs of this plan (by plan name)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -s n -l limit -d 'How many jobs to list, newest first' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -s j -l job -d 'Show this job\'s summary: resources, what was created, events. Job numbers are unique per agent (ledger): with --from, a number that several agents used is refused with the candidates; name one as NUMBER@AGENT (the agent id, or its first digits)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -l from -d 'Also read the ledgers of these state directories (other shards\' agents), read-only: nothing in them is changed' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand jobs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l admin-account -d 'The 12-digit admin account id the tenant role trusts' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l external-id -d 'ExternalId the tenant trust policy requires. Printing `tenant-trust` without one is refused (exit 2) unless --no-external-id is given' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l document -d 'Print only this document (e.g. tenant-trust, vault-trust, permissions), ready for `aws iam ... file://`' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l accounts -d 'The accounts file. `tenant`: its [[vault]] account ids are the only accounts the tenant role may share its snapshots with (without it, or without a [[vault]], the policy grants no sharing). `vault` (required): the vault\'s KMS keys, its ExternalId (unless --external-id) and the tenant accounts it may share copies back with' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l vault -d '`vault`: which [[vault]] of the accounts file (needed when it declares several)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l no-external-id -d 'Print the tenant trust policy without an sts:ExternalId condition (not recommended: any principal of the admin account could then assume the role without knowing the ExternalId). Prints a warning on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l trust-ec2-service -d 'Also trust the ec2.amazonaws.com service principal in the tenant trust policy (the guide does; rolesnap never needs it, it assumes the role from the admin account)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand policy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l admin-account -d 'The 12-digit admin account id the tenant role trusts (the AdminAccountId default)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l external-id -d 'The ExternalId parameter\'s default. Without it the parameter has no default and each stack (or stack instance) must be given one' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l accounts -d 'The accounts file: its [[vault]] accounts are the share targets the permissions allow' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l role-name -d 'The RoleName parameter\'s default (the role name in the accounts file\'s role-arn)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand onboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l role-name -d 'The tenant role\'s name in every member account' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l regions -d 'The regions of every new tenant (default: none written, the accounts file\'s default)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l exclude -d 'Leave this account out (e.g. the admin account, a vault account). Repeatable' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l merge -d 'Add the new entries to this accounts file instead of printing them' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l from-organization -d 'Read the member accounts from AWS Organizations (the only source so far)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand accounts" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -l out -d 'Write rolesnap.1 and one page per command (rolesnap-COMMAND.1) into this directory (created if missing) instead of printing rolesnap.1 on stdout' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -l log-dir -d 'Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -l log-max-bytes -d 'Size in bytes at which a log file rotates' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -l state-dir -d 'Directory of the job ledger (ledger.db) and job locks' -r -F
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -l endpoint-url -d 'Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)' -r
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -s o -l output -d 'Output format' -r -f -a "human\t'Tables and sentences for people'
json\t'One JSON document on stdout, for scripts'"
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -l group-access -d 'Create the state and log directories 0750 and the log files 0640 (readable by the directory\'s group, e.g. for a log shipper) instead of 0700 and 0600'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -s v -l verbose -d 'Also print log lines on stderr'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -s q -l quiet -d 'Print only errors (human output)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "discover" -d 'Show what a plan would protect, by tenant, region and availability zone'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "validate" -d 'Check a plan: parse it, assume every tenant role and probe the permissions the agent needs'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "backup" -d 'Back up now: snapshot every resource the plan selects (a Snap Backup job)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "copy" -d 'Copy the plan\'s recovery points to its copy regions (a Snap Copy job)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "vault-copy" -d 'Copy the plan\'s recovery points into its vault accounts (a Vault Copy job): share each point with the vault, copy it there with the vault\'s KMS key, stop the share'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "prune" -d 'Delete recovery points whose retention has run out (a Data Aging job)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "list" -d 'List recovery points found live in AWS by their tags, across tenants and regions'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "restore" -d 'Restore an instance, a volume or an RDS/Aurora database from a recovery point (a Restore job)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "drill" -d 'Prove a recovery point restores: restore it into a throw-away target, wait until it is healthy, record the RTO, and remove everything it made (a Drill job)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "report" -d 'RPO report: per resource, the newest recovery point in its source region, copy regions and vaults, its age against the plan\'s RPO; and what no plan protects'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "agent" -d 'Run the scheduler: every plan\'s backup, copy and prune at its scheduled times'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "schedule" -d 'Show each plan\'s next run times'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "jobs" -d 'List jobs, or show one job\'s summary'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "policy" -d 'Print the IAM documents (trust and permission policies) for the admin or a tenant account'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "onboard" -d 'Print a CloudFormation template that creates the tenant role with the documents `rolesnap policy tenant` prints (for a stack, or a StackSet across an organization)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "accounts" -d 'Write accounts-file entries for the member accounts of an AWS Organization'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "man" -d 'Print the man page (roff) on stdout, or write one page per command into --out DIR'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and not __fish_seen_subcommand_from discover validate backup copy vault-copy prune list restore drill report agent schedule jobs policy onboard accounts completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and __fish_seen_subcommand_from restore" -f -a "instance" -d 'Launch a new instance from a recovery point of an instance (the original is never touched)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and __fish_seen_subcommand_from restore" -f -a "volume" -d 'Create a volume from a recovery point and attach it to an instance (existing or new)'
complete -c rolesnap -n "__fish_rolesnap_using_subcommand help; and __fish_seen_subcommand_from restore" -f -a "rds" -d 'Restore an RDS instance (--db) or an Aurora cluster (--cluster) under a new identifier'
