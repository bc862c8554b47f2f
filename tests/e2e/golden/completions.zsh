#compdef rolesnap

autoload -U is-at-least

_rolesnap() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rolesnap_commands" \
"*::: :->rolesnap" \
&& ret=0
    case $state in
    (rolesnap)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rolesnap-command-$line[1]:"
        case $line[1] in
            (discover)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'-r+[Only this region]:REGION:_default' \
'--region=[Only this region]:REGION:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--all[Also list resources the plan does not select, with the reason]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(validate)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(backup)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'-r+[Only this region]:REGION:_default' \
'--region=[Only this region]:REGION:_default' \
'*--instance=[Only these instances (repeatable); they must be selected by the plan]:INSTANCE_ID:_default' \
'*--db=[Only these RDS instances or Aurora clusters (repeatable)]:DB_ID:_default' \
'--wait-timeout=[Seconds to wait for snapshots to complete (default\: the plan'\''s wait-timeout-minutes)]:SECONDS:_default' \
'--poll-interval=[Seconds before the first completion poll; doubles up to 60 s]:SECONDS:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--dry-run[Print what would be created and create nothing (no job is recorded)]' \
'--no-copy[Do not run the plan'\''s cross-region copies after the backup]' \
'(--dry-run)--prune[Also run the plan'\''s prune (Data Aging job) at the same time, as the scheduled nightly run does. It deletes only points whose retention has run out, never the ones this backup makes, and keeps the newest point of every live source. It deletes what it can at once, the points this backup supersedes as soon as the backup ends, and originals still being copied once the copy job ends\: the outcome of a prune run afterwards, sooner, since deletes use their own throttling bucket]' \
'--wait[When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(copy)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'-r+[Only points whose source region is this one]:REGION:_default' \
'--region=[Only points whose source region is this one]:REGION:_default' \
'--wait-timeout=[Seconds to wait for copies to complete (default\: the plan'\''s wait-timeout-minutes)]:SECONDS:_default' \
'--poll-interval=[Seconds before the first completion poll; doubles up to 60 s]:SECONDS:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--wait[When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(vault-copy)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'-r+[Only points whose source region is this one]:REGION:_default' \
'--region=[Only points whose source region is this one]:REGION:_default' \
'--wait-timeout=[Seconds to wait for copies to complete (default\: the plan'\''s wait-timeout-minutes)]:SECONDS:_default' \
'--poll-interval=[Seconds before the first completion poll; doubles up to 60 s]:SECONDS:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--wait[When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(prune)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'-r+[Only this source region (and the plan'\''s copy regions)]:REGION:_default' \
'--region=[Only this source region (and the plan'\''s copy regions)]:REGION:_default' \
'--as-of=[Decide as if it were this time (RFC 3339, e.g. 2026-12-31T00\:00\:00Z, or a date)]:TIME:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--dry-run[List what would be kept and deleted, with the rule that decided; delete nothing. (A prune itself reports each point it deletes and counts, per tenant and region, the points it keeps.)]' \
'--wait[When another run of this plan is in progress on this state directory (the agent, another command), wait for it to end instead of refusing with exit code 4]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'-r+[Only this region]:REGION:_default' \
'--region=[Only this region]:REGION:_default' \
'(--volume --db)--instance=[Only recovery points of this instance]:INSTANCE:_default' \
'(--db)--volume=[Only recovery points holding a snapshot of this volume]:VOLUME:_default' \
'--db=[Only recovery points of this RDS instance or Aurora cluster]:DB:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--wide[Every column, IDs and rules in full, however wide the terminal (the table otherwise fits \`COLUMNS\` or the terminal'\''s width)]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(restore)
_arguments "${_arguments_options[@]}" : \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
":: :_rolesnap__subcmd__restore_commands" \
"*::: :->restore" \
&& ret=0

    case $state in
    (restore)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rolesnap-restore-command-$line[1]:"
        case $line[1] in
            (instance)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'(--at)-j+[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'(--at)--job=[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'--at=[Restore the newest recovery point made at or before this time (RFC 3339, or a date)]:TIME:_default' \
'-r+[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--region=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-copy=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-vault=[Restore from this vault'\''s copy (a \[\[vault\]\] of the accounts file)\: the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from]:VAULT:_default' \
'--kms-key-id=[With --from-vault\: the tenant'\''s KMS key for its copy of the vault copy (default\: the account'\''s EBS default key; RDS needs one)]:KEY:_default' \
'--wait-timeout=[Seconds the restore may wait for what it makes to be running/available; then it fails and removes it]:SECONDS:_default' \
'--poll-interval=[Seconds before the first poll; doubles up to 30 s]:SECONDS:_default' \
'--instance=[The source instance (of the recovery point)]:INSTANCE_ID:_default' \
'--instance-type=[Instance type (default\: the recorded one)]:INSTANCE_TYPE:_default' \
'--subnet=[Subnet (default\: the recorded one; in a copy region the default VPC'\''s subnet)]:SUBNET:_default' \
'*--security-groups=[Security group ids, comma-separated (default\: the recorded ones, if they fit the subnet)]:SECURITY_GROUPS:_default' \
'--key-name=[Key pair (default\: the recorded one, if it exists in the region)]:KEY_NAME:_default' \
'--architecture=[Architecture of the image registered from a snapshot set (default\: from the instance type)]:ARCHITECTURE:(x86_64 arm64)' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--dry-run[Print the calls the restore would make; create nothing, record no job]' \
'--no-tags[Do not copy the source instance'\''s own tags to the new instance]' \
'(--no-tags)--keep-all-tags[Copy all of the source instance'\''s own tags, also those the plan selects on (its groups'\'' include-tags keys, e.g. Backup=nightly), which are left off by default so that the next backup does not select the restored instance]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(volume)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'(--at)-j+[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'(--at)--job=[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'--at=[Restore the newest recovery point made at or before this time (RFC 3339, or a date)]:TIME:_default' \
'-r+[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--region=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-copy=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-vault=[Restore from this vault'\''s copy (a \[\[vault\]\] of the accounts file)\: the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from]:VAULT:_default' \
'--kms-key-id=[With --from-vault\: the tenant'\''s KMS key for its copy of the vault copy (default\: the account'\''s EBS default key; RDS needs one)]:KEY:_default' \
'--wait-timeout=[Seconds the restore may wait for what it makes to be running/available; then it fails and removes it]:SECONDS:_default' \
'--poll-interval=[Seconds before the first poll; doubles up to 30 s]:SECONDS:_default' \
'--volume=[The source volume (a member of a snapshot set)]:VOLUME_ID:_default' \
'--attach-to=[Attach the new volume to this instance (created in its availability zone)]:INSTANCE_ID:_default' \
'--device=[Device name (default\: the recorded one if free, else the first free /dev/sd\[f-p\]); refused if in use]:DEVICE:_default' \
'--volume-type=[Volume type of the new volume]:VOLUME_TYPE:_default' \
'--image-id=[--new-instance\: the image to launch (default\: the source instance'\''s image, while it exists)]:IMAGE_ID:_default' \
'--instance-type=[--new-instance\: its instance type]:INSTANCE_TYPE:_default' \
'--subnet=[--new-instance\: its subnet (default\: the recorded subnet, else the AZ'\''s default subnet)]:SUBNET:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--dry-run[Print the calls the restore would make; create nothing, record no job]' \
'--new-instance[Launch a small instance in the volume'\''s recorded availability zone and attach it there]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(rds)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'(--at)-j+[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'(--at)--job=[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'--at=[Restore the newest recovery point made at or before this time (RFC 3339, or a date)]:TIME:_default' \
'-r+[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--region=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-copy=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-vault=[Restore from this vault'\''s copy (a \[\[vault\]\] of the accounts file)\: the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from]:VAULT:_default' \
'--kms-key-id=[With --from-vault\: the tenant'\''s KMS key for its copy of the vault copy (default\: the account'\''s EBS default key; RDS needs one)]:KEY:_default' \
'--wait-timeout=[Seconds the restore may wait for what it makes to be running/available; then it fails and removes it]:SECONDS:_default' \
'--poll-interval=[Seconds before the first poll; doubles up to 30 s]:SECONDS:_default' \
'--db=[The source RDS DB instance\: RestoreDBInstanceFromDBSnapshot]:DB_ID:_default' \
'--cluster=[The source Aurora cluster\: RestoreDBClusterFromSnapshot, then CreateDBInstance as the writer]:CLUSTER_ID:_default' \
'--target-id=[The new identifier; refused if it exists (a restore never overwrites)]:NEW_ID:_default' \
'--instance-class=[DB instance class (default\: the recorded one; Aurora\: the source writer'\''s class)]:INSTANCE_CLASS:_default' \
'--subnet-group=[DB subnet group (default\: the recorded one; in a copy region the default group)]:SUBNET_GROUP:_default' \
'--writer-id=[Aurora\: the new writer'\''s identifier (default\: <NEW_ID>-1)]:WRITER_ID:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--dry-run[Print the calls the restore would make; create nothing, record no job]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rolesnap__subcmd__restore__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rolesnap-restore-help-command-$line[1]:"
        case $line[1] in
            (instance)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(volume)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(rds)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(drill)
_arguments "${_arguments_options[@]}" : \
'-p+[The plan file (TOML)]:PLAN:_files' \
'--plan=[The plan file (TOML)]:PLAN:_files' \
'--accounts=[The accounts file; default\: the plan'\''s \`accounts\` key, else accounts.toml beside the plan]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'(--at)-j+[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'(--at)--job=[Restore the recovery point made by this job (default\: the newest completed one). Job numbers are unique per agent\: if several agents ran a job of this number, name one as NUMBER@AGENT (the agent id \`list\` shows, or its first digits)]:JOB[@AGENT]:_default' \
'--at=[Restore the newest recovery point made at or before this time (RFC 3339, or a date)]:TIME:_default' \
'-r+[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--region=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-copy=[Restore in this region\: the source'\''s region (default) or a copy region, from the cross-region copy there]:REGION:_default' \
'--from-vault=[Restore from this vault'\''s copy (a \[\[vault\]\] of the accounts file)\: the vault shares it back, the tenant copies it into its own account (deleted when the restore ends), and the restore goes on from that copy. With --region, the vault region to restore from]:VAULT:_default' \
'--kms-key-id=[With --from-vault\: the tenant'\''s KMS key for its copy of the vault copy (default\: the account'\''s EBS default key; RDS needs one)]:KEY:_default' \
'--wait-timeout=[Seconds the restore may wait for what it makes to be running/available; then it fails and removes it]:SECONDS:_default' \
'--poll-interval=[Seconds before the first poll; doubles up to 30 s]:SECONDS:_default' \
'--instance=[The source instance whose recovery point to drill]:INSTANCE_ID:_default' \
'--db=[The source RDS DB instance whose recovery point to drill]:DB_ID:_default' \
'--cluster=[The source Aurora cluster whose recovery point to drill]:CLUSTER_ID:_default' \
'--subnet=[Instance drills\: the throw-away subnet to launch in (required for --instance)]:SUBNET:_default' \
'*--security-groups=[Instance drills\: security group ids, comma-separated (a group without ingress)]:SECURITY_GROUPS:_default' \
'--db-subnet-group=[Database drills\: the DB subnet group (default\: the recorded one)]:DB_SUBNET_GROUP:_default' \
'--check=[Instance drills\: a shell command run in the restored instance through SSM Run Command (AWS-RunShellScript) once its status checks pass, e.g. "systemctl is-system-running"; healthy only if it exits 0 within --wait-timeout. Needs the SSM agent and an instance profile that lets it reach SSM]:COMMAND:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--dry-run[Print the calls the restore would make; create nothing, record no job]' \
'(--instance)--connect[Database drills\: healthy only once a TCP connect from this node to the restored endpoint (address\:port) succeeds within 10 s; refused or timed out = failed]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(report)
_arguments "${_arguments_options[@]}" : \
'*-p+[The plan files (TOML); repeatable. A resource counts as unprotected only when none of them selects it]:PLAN:_files' \
'*--plan=[The plan files (TOML); repeatable. A resource counts as unprotected only when none of them selects it]:PLAN:_files' \
'--accounts=[The accounts file for every plan; default\: each plan'\''s \`accounts\` key, else accounts.toml beside it]:ACCOUNTS:_files' \
'-t+[Only this tenant (by name)]:TENANT:_default' \
'--tenant=[Only this tenant (by name)]:TENANT:_default' \
'-r+[Only this source region]:REGION:_default' \
'--region=[Only this source region]:REGION:_default' \
'--as-of=[Compute ages and compliance as of this time (RFC 3339, e.g. 2026-12-31T00\:00\:00Z, or a date)\: to preview, or test. Points made after it are ignored]:TIME:_default' \
'--format=[Output format (default\: from -o, a table)]:FORMAT:((table\:"Tables for people (the default, or -o human)"
json\:"One JSON document (the same as -o json)"
csv\:"Comma-separated values, one line per resource"
html\:"One self-contained HTML file with inline SVG timelines"))' \
'--out=[Write the report to this file instead of stdout (replaced whole, never half-written)]:FILE:_files' \
'*--from=[Also read the job ledgers of these state directories (other agents'\''), read-only, for each plan'\''s last backup and last failed job]:STATE_DIR:_files' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(agent)
_arguments "${_arguments_options[@]}" : \
'*-p+[Plan files, or directories whose *.toml plan files are all loaded]:PLANS:_files' \
'*--plans=[Plan files, or directories whose *.toml plan files are all loaded]:PLANS:_files' \
'--accounts=[The accounts file for every plan (default\: each plan'\''s own)]:ACCOUNTS:_files' \
'--shard=[This agent'\''s share of the tenants\: K/N (0-based K) by a stable hash of the tenant name]:K/N:_default' \
'--catch-up=[Run a slot missed by at most this many minutes (the agent was down or busy)]:MINUTES:_default' \
'--grace=[Seconds in-flight jobs get to finish after SIGTERM/SIGINT before they are recorded Killed]:SECONDS:_default' \
'--metrics=[Serve Prometheus metrics (GET /metrics) and a health check (GET /healthz) on this address (e.g. 127.0.0.1\:9187); loopback only, unless --metrics-allow-remote]:ADDR:_default' \
'--poll-interval=[Seconds before the first completion poll of a job; doubles up to 60 s]:SECONDS:_default' \
'--rpo-check-interval=[Every this many seconds (0\: never), check each scheduled plan'\''s resources against their RPO (as \`rolesnap report\` does) and send one rpo-breach alert per breached resource and breach episode to the plan'\''s \[notify\]; the counts go to --metrics. The first check is one interval after the start; not with --once]:SECONDS:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--once[Run every plan that is due now (within --catch-up), then exit (for systemd timers / cron)]' \
'--metrics-allow-remote[Allow --metrics on a non-loopback address, e.g. the pod IP (or 0.0.0.0) for in-cluster Prometheus scraping and kubelet probes. The endpoint has no authentication\: expose it only to a trusted network]' \
'--json-events[Also write structured JSON events on stdout]' \
'--strict[Refuse to start (exit 2, nothing run) when any plan file is broken. Without it the valid plans run and each broken one is logged in cvd.log and counted in the rolesnap_plan_config_errors metric]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(schedule)
_arguments "${_arguments_options[@]}" : \
'*-p+[Plan files, or directories whose *.toml plan files are all loaded]:PLANS:_files' \
'*--plans=[Plan files, or directories whose *.toml plan files are all loaded]:PLANS:_files' \
'--accounts=[The accounts file for every plan (default\: each plan'\''s own)]:ACCOUNTS:_files' \
'-n+[How many run times to show per plan]:COUNT:_default' \
'--count=[How many run times to show per plan]:COUNT:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(jobs)
_arguments "${_arguments_options[@]}" : \
'-p+[Only jobs of this plan (by plan name)]:PLAN:_default' \
'--plan=[Only jobs of this plan (by plan name)]:PLAN:_default' \
'-n+[How many jobs to list, newest first]:LIMIT:_default' \
'--limit=[How many jobs to list, newest first]:LIMIT:_default' \
'-j+[Show this job'\''s summary\: resources, what was created, events. Job numbers are unique per agent (ledger)\: with --from, a number that several agents used is refused with the candidates; name one as NUMBER@AGENT (the agent id, or its first digits)]:JOB[@AGENT]:_default' \
'--job=[Show this job'\''s summary\: resources, what was created, events. Job numbers are unique per agent (ledger)\: with --from, a number that several agents used is refused with the candidates; name one as NUMBER@AGENT (the agent id, or its first digits)]:JOB[@AGENT]:_default' \
'*--from=[Also read the ledgers of these state directories (other shards'\'' agents), read-only\: nothing in them is changed]:STATE_DIR:_files' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(policy)
_arguments "${_arguments_options[@]}" : \
'--admin-account=[The 12-digit admin account id the tenant role trusts]:ADMIN_ACCOUNT:_default' \
'(--no-external-id)--external-id=[ExternalId the tenant trust policy requires. Printing \`tenant-trust\` without one is refused (exit 2) unless --no-external-id is given]:EXTERNAL_ID:_default' \
'--document=[Print only this document (e.g. tenant-trust, vault-trust, permissions), ready for \`aws iam ... file\://\`]:DOCUMENT:_default' \
'--accounts=[The accounts file. \`tenant\`\: its \[\[vault\]\] account ids are the only accounts the tenant role may share its snapshots with (without it, or without a \[\[vault\]\], the policy grants no sharing). \`vault\` (required)\: the vault'\''s KMS keys, its ExternalId (unless --external-id) and the tenant accounts it may share copies back with]:ACCOUNTS:_files' \
'--vault=[\`vault\`\: which \[\[vault\]\] of the accounts file (needed when it declares several)]:VAULT:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--no-external-id[Print the tenant trust policy without an sts\:ExternalId condition (not recommended\: any principal of the admin account could then assume the role without knowing the ExternalId). Prints a warning on stderr]' \
'--trust-ec2-service[Also trust the ec2.amazonaws.com service principal in the tenant trust policy (the guide does; rolesnap never needs it, it assumes the role from the admin account)]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
':side -- Which account'\''s documents to print:((admin\:"The admin account\: sts-only policy, admin role trust, permissions"
tenant\:"A tenant account\: sts-only policy, tenant role trust (with ExternalId), permissions. With --accounts, the permissions let the role share its own snapshots with the accounts file'\''s \[\[vault\]\] accounts (and no other); without, no sharing at all"
vault\:"A \[\[vault\]\] backup account (needs --accounts)\: vault role trust (the admin account, with the vault'\''s ExternalId) and permissions\: copy in what tenants share, with the vault'\''s KMS keys; tags only at creation; delete and share back only its own copies"))' \
&& ret=0
;;
(onboard)
_arguments "${_arguments_options[@]}" : \
'--admin-account=[The 12-digit admin account id the tenant role trusts (the AdminAccountId default)]:ADMIN_ACCOUNT:_default' \
'--external-id=[The ExternalId parameter'\''s default. Without it the parameter has no default and each stack (or stack instance) must be given one]:EXTERNAL_ID:_default' \
'--accounts=[The accounts file\: its \[\[vault\]\] accounts are the share targets the permissions allow]:ACCOUNTS:_files' \
'--role-name=[The RoleName parameter'\''s default (the role name in the accounts file'\''s role-arn)]:ROLE_NAME:_default' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(accounts)
_arguments "${_arguments_options[@]}" : \
'--role-name=[The tenant role'\''s name in every member account]:ROLE_NAME:_default' \
'*--regions=[The regions of every new tenant (default\: none written, the accounts file'\''s default)]:REGION,...:_default' \
'*--exclude=[Leave this account out (e.g. the admin account, a vault account). Repeatable]:ACCOUNT:_default' \
'--merge=[Add the new entries to this accounts file instead of printing them]:FILE:_files' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--from-organization[Read the member accounts from AWS Organizations (the only source so far)]' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
':shell -- The shell to complete for:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
'--out=[Write rolesnap.1 and one page per command (rolesnap-COMMAND.1) into this directory (created if missing) instead of printing rolesnap.1 on stdout]:DIR:_files' \
'--log-dir=[Directory of the GxTail log files (cvd.log, vsdiscovery.log, vsbkp.log, vsrst.log)]:LOG_DIR:_files' \
'--log-max-bytes=[Size in bytes at which a log file rotates]:LOG_MAX_BYTES:_default' \
'--state-dir=[Directory of the job ledger (ledger.db) and job locks]:STATE_DIR:_files' \
'--endpoint-url=[Send every AWS call to this endpoint (overrides AWS_ENDPOINT_URL)]:ENDPOINT_URL:_default' \
'-o+[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--output=[Output format]:OUTPUT:((human\:"Tables and sentences for people"
json\:"One JSON document on stdout, for scripts"))' \
'--group-access[Create the state and log directories 0750 and the log files 0640 (readable by the directory'\''s group, e.g. for a log shipper) instead of 0700 and 0600]' \
'-v[Also print log lines on stderr]' \
'--verbose[Also print log lines on stderr]' \
'(-v --verbose)-q[Print only errors (human output)]' \
'(-v --verbose)--quiet[Print only errors (human output)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rolesnap__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rolesnap-help-command-$line[1]:"
        case $line[1] in
            (discover)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(validate)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(backup)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(copy)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(vault-copy)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(prune)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(restore)
_arguments "${_arguments_options[@]}" : \
":: :_rolesnap__subcmd__help__subcmd__restore_commands" \
"*::: :->restore" \
&& ret=0

    case $state in
    (restore)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rolesnap-help-restore-command-$line[1]:"
        case $line[1] in
            (instance)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(volume)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(rds)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(drill)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(report)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(agent)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(schedule)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(jobs)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(policy)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(onboard)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(accounts)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_rolesnap_commands] )) ||
_rolesnap_commands() {
    local commands; commands=(
'discover:Show what a plan would protect, by tenant, region and availability zone' \
'validate:Check a plan\: parse it, assume every tenant role and probe the permissions the agent needs' \
'backup:Back up now\: snapshot every resource the plan selects (a Snap Backup job)' \
'copy:Copy the plan'\''s recovery points to its copy regions (a Snap Copy job)' \
'vault-copy:Copy the plan'\''s recovery points into its vault accounts (a Vault Copy job)\: share each point with the vault, copy it there with the vault'\''s KMS key, stop the share' \
'prune:Delete recovery points whose retention has run out (a Data Aging job)' \
'list:List recovery points found live in AWS by their tags, across tenants and regions' \
'restore:Restore an instance, a volume or an RDS/Aurora database from a recovery point (a Restore job)' \
'drill:Prove a recovery point restores\: restore it into a throw-away target, wait until it is healthy, record the RTO, and remove everything it made (a Drill job)' \
'report:RPO report\: per resource, the newest recovery point in its source region, copy regions and vaults, its age against the plan'\''s RPO; and what no plan protects' \
'agent:Run the scheduler\: every plan'\''s backup, copy and prune at its scheduled times' \
'schedule:Show each plan'\''s next run times' \
'jobs:List jobs, or show one job'\''s summary' \
'policy:Print the IAM documents (trust and permission policies) for the admin or a tenant account' \
'onboard:Print a CloudFormation template that creates the tenant role with the documents \`rolesnap policy tenant\` prints (for a stack, or a StackSet across an organization)' \
'accounts:Write accounts-file entries for the member accounts of an AWS Organization' \
'completions:Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout' \
'man:Print the man page (roff) on stdout, or write one page per command into --out DIR' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rolesnap commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__accounts_commands] )) ||
_rolesnap__subcmd__accounts_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap accounts commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__agent_commands] )) ||
_rolesnap__subcmd__agent_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap agent commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__backup_commands] )) ||
_rolesnap__subcmd__backup_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap backup commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__completions_commands] )) ||
_rolesnap__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap completions commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__copy_commands] )) ||
_rolesnap__subcmd__copy_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap copy commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__discover_commands] )) ||
_rolesnap__subcmd__discover_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap discover commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__drill_commands] )) ||
_rolesnap__subcmd__drill_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap drill commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help_commands] )) ||
_rolesnap__subcmd__help_commands() {
    local commands; commands=(
'discover:Show what a plan would protect, by tenant, region and availability zone' \
'validate:Check a plan\: parse it, assume every tenant role and probe the permissions the agent needs' \
'backup:Back up now\: snapshot every resource the plan selects (a Snap Backup job)' \
'copy:Copy the plan'\''s recovery points to its copy regions (a Snap Copy job)' \
'vault-copy:Copy the plan'\''s recovery points into its vault accounts (a Vault Copy job)\: share each point with the vault, copy it there with the vault'\''s KMS key, stop the share' \
'prune:Delete recovery points whose retention has run out (a Data Aging job)' \
'list:List recovery points found live in AWS by their tags, across tenants and regions' \
'restore:Restore an instance, a volume or an RDS/Aurora database from a recovery point (a Restore job)' \
'drill:Prove a recovery point restores\: restore it into a throw-away target, wait until it is healthy, record the RTO, and remove everything it made (a Drill job)' \
'report:RPO report\: per resource, the newest recovery point in its source region, copy regions and vaults, its age against the plan'\''s RPO; and what no plan protects' \
'agent:Run the scheduler\: every plan'\''s backup, copy and prune at its scheduled times' \
'schedule:Show each plan'\''s next run times' \
'jobs:List jobs, or show one job'\''s summary' \
'policy:Print the IAM documents (trust and permission policies) for the admin or a tenant account' \
'onboard:Print a CloudFormation template that creates the tenant role with the documents \`rolesnap policy tenant\` prints (for a stack, or a StackSet across an organization)' \
'accounts:Write accounts-file entries for the member accounts of an AWS Organization' \
'completions:Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout' \
'man:Print the man page (roff) on stdout, or write one page per command into --out DIR' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rolesnap help commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__accounts_commands] )) ||
_rolesnap__subcmd__help__subcmd__accounts_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help accounts commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__agent_commands] )) ||
_rolesnap__subcmd__help__subcmd__agent_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help agent commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__backup_commands] )) ||
_rolesnap__subcmd__help__subcmd__backup_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help backup commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__completions_commands] )) ||
_rolesnap__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help completions commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__copy_commands] )) ||
_rolesnap__subcmd__help__subcmd__copy_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help copy commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__discover_commands] )) ||
_rolesnap__subcmd__help__subcmd__discover_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help discover commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__drill_commands] )) ||
_rolesnap__subcmd__help__subcmd__drill_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help drill commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__help_commands] )) ||
_rolesnap__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help help commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__jobs_commands] )) ||
_rolesnap__subcmd__help__subcmd__jobs_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help jobs commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__list_commands] )) ||
_rolesnap__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help list commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__man_commands] )) ||
_rolesnap__subcmd__help__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help man commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__onboard_commands] )) ||
_rolesnap__subcmd__help__subcmd__onboard_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help onboard commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__policy_commands] )) ||
_rolesnap__subcmd__help__subcmd__policy_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help policy commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__prune_commands] )) ||
_rolesnap__subcmd__help__subcmd__prune_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help prune commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__report_commands] )) ||
_rolesnap__subcmd__help__subcmd__report_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help report commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__restore_commands] )) ||
_rolesnap__subcmd__help__subcmd__restore_commands() {
    local commands; commands=(
'instance:Launch a new instance from a recovery point of an instance (the original is never touched)' \
'volume:Create a volume from a recovery point and attach it to an instance (existing or new)' \
'rds:Restore an RDS instance (--db) or an Aurora cluster (--cluster) under a new identifier' \
    )
    _describe -t commands 'rolesnap help restore commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__restore__subcmd__instance_commands] )) ||
_rolesnap__subcmd__help__subcmd__restore__subcmd__instance_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help restore instance commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__restore__subcmd__rds_commands] )) ||
_rolesnap__subcmd__help__subcmd__restore__subcmd__rds_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help restore rds commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__restore__subcmd__volume_commands] )) ||
_rolesnap__subcmd__help__subcmd__restore__subcmd__volume_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help restore volume commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__schedule_commands] )) ||
_rolesnap__subcmd__help__subcmd__schedule_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help schedule commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__validate_commands] )) ||
_rolesnap__subcmd__help__subcmd__validate_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help validate commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__help__subcmd__vault-copy_commands] )) ||
_rolesnap__subcmd__help__subcmd__vault-copy_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap help vault-copy commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__jobs_commands] )) ||
_rolesnap__subcmd__jobs_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap jobs commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__list_commands] )) ||
_rolesnap__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap list commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__man_commands] )) ||
_rolesnap__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap man commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__onboard_commands] )) ||
_rolesnap__subcmd__onboard_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap onboard commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__policy_commands] )) ||
_rolesnap__subcmd__policy_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap policy commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__prune_commands] )) ||
_rolesnap__subcmd__prune_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap prune commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__report_commands] )) ||
_rolesnap__subcmd__report_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap report commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore_commands] )) ||
_rolesnap__subcmd__restore_commands() {
    local commands; commands=(
'instance:Launch a new instance from a recovery point of an instance (the original is never touched)' \
'volume:Create a volume from a recovery point and attach it to an instance (existing or new)' \
'rds:Restore an RDS instance (--db) or an Aurora cluster (--cluster) under a new identifier' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rolesnap restore commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__help_commands] )) ||
_rolesnap__subcmd__restore__subcmd__help_commands() {
    local commands; commands=(
'instance:Launch a new instance from a recovery point of an instance (the original is never touched)' \
'volume:Create a volume from a recovery point and attach it to an instance (existing or new)' \
'rds:Restore an RDS instance (--db) or an Aurora cluster (--cluster) under a new identifier' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rolesnap restore help commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__help__subcmd__help_commands] )) ||
_rolesnap__subcmd__restore__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap restore help help commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__help__subcmd__instance_commands] )) ||
_rolesnap__subcmd__restore__subcmd__help__subcmd__instance_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap restore help instance commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__help__subcmd__rds_commands] )) ||
_rolesnap__subcmd__restore__subcmd__help__subcmd__rds_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap restore help rds commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__help__subcmd__volume_commands] )) ||
_rolesnap__subcmd__restore__subcmd__help__subcmd__volume_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap restore help volume commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__instance_commands] )) ||
_rolesnap__subcmd__restore__subcmd__instance_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap restore instance commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__rds_commands] )) ||
_rolesnap__subcmd__restore__subcmd__rds_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap restore rds commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__restore__subcmd__volume_commands] )) ||
_rolesnap__subcmd__restore__subcmd__volume_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap restore volume commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__schedule_commands] )) ||
_rolesnap__subcmd__schedule_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap schedule commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__validate_commands] )) ||
_rolesnap__subcmd__validate_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap validate commands' commands "$@"
}
(( $+functions[_rolesnap__subcmd__vault-copy_commands] )) ||
_rolesnap__subcmd__vault-copy_commands() {
    local commands; commands=()
    _describe -t commands 'rolesnap vault-copy commands' commands "$@"
}

if [ "$funcstack[1]" = "_rolesnap" ]; then
    _rolesnap "$@"
else
    compdef _rolesnap rolesnap
fi
