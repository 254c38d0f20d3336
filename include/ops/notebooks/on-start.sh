#!/usr/bin/env bash
# SageMaker notebook instance lifecycle configuration, OnStart: report Jupyter activity to S3 for the
# notebook_autostop DAG.
#
#   on-start.sh [install]   what SageMaker runs at every start (as root): copies this script to
#                           $INSTALL_DIR/notebook-heartbeat and writes $CRON_DIR/notebook-heartbeat, a cron
#                           entry that runs "notebook-heartbeat heartbeat" every $HEARTBEAT_INTERVAL_MINUTES.
#   on-start.sh heartbeat   asks the local Jupyter server's /api/sessions and /api/terminals for their last
#                           activity and writes s3://$HEARTBEAT_BUCKET/$HEARTBEAT_PREFIX/<instance>/heartbeat.json.
#
# The heartbeat (schema_version 1; times are UTC, ISO 8601 with a Z):
#   {"schema_version": 1, "instance": "<name>", "checked_at": "<when this ran>",
#    "last_activity": "<latest kernel or terminal activity; checked_at while a kernel is busy; null if none>",
#    "kernels": <n>, "busy_kernels": <n>, "terminals": <n>}
#
# SageMaker runs this before Jupyter starts and fails the instance's start if it fails or runs over five
# minutes, so the install step only writes two files and never waits on the network. When Jupyter does not
# answer, the heartbeat keeps the previous object rather than reporting an idle instance that may not be idle.
#
# Needs: bash, curl, python3 (to read Jupyter's JSON) and the AWS CLI with the instance's execution role
# allowed s3:PutObject on the heartbeat prefix. Tests override the paths and URLs below through the environment.
set -euo pipefail

# -- settings: include/ops/notebooks/lifecycle.py renders the defaults of these three lines --------------------
HEARTBEAT_BUCKET="${HEARTBEAT_BUCKET:-}"
HEARTBEAT_PREFIX="${HEARTBEAT_PREFIX:-notebooks/heartbeats}"
HEARTBEAT_INTERVAL_MINUTES="${HEARTBEAT_INTERVAL_MINUTES:-5}"
# -- end of settings ------------------------------------------------------------------------------------------

# SageMaker's Jupyter serves HTTPS on 8443 with a self-signed certificate, hence curl -k below.
JUPYTER_URL="${JUPYTER_URL:-https://localhost:8443}"
RESOURCE_METADATA="${RESOURCE_METADATA:-/opt/ml/metadata/resource-metadata.json}"
INSTALL_DIR="${INSTALL_DIR:-/usr/local/bin}"
CRON_DIR="${CRON_DIR:-/etc/cron.d}"
HEARTBEAT_LOG="${HEARTBEAT_LOG:-/var/log/notebook-heartbeat.log}"
PYTHON="${PYTHON:-python3}"

log() {
    printf '%s notebook-heartbeat: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

check_settings() {
    [[ -n "$HEARTBEAT_BUCKET" ]] || die "HEARTBEAT_BUCKET is empty: render this script with lifecycle.py"
    [[ "$HEARTBEAT_INTERVAL_MINUTES" =~ ^[1-9][0-9]?$ && "$HEARTBEAT_INTERVAL_MINUTES" -le 59 ]] ||
        die "HEARTBEAT_INTERVAL_MINUTES must be 1..59, not '$HEARTBEAT_INTERVAL_MINUTES'"
}

# One field of the instance's resource metadata (ResourceName, ResourceArn).
metadata() {
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$RESOURCE_METADATA" "$1"
}

install_cron() {
    check_settings
    local script target cron_file
    script="$(readlink -f "${BASH_SOURCE[0]}")"
    target="$INSTALL_DIR/notebook-heartbeat"
    cron_file="$CRON_DIR/notebook-heartbeat"
    mkdir -p "$INSTALL_DIR" "$CRON_DIR"
    if [[ "$script" != "$(readlink -f "$target" 2>/dev/null || true)" ]]; then
        install -m 0755 "$script" "$target"
    fi
    # cron's PATH is minimal; the one SageMaker gives this script finds the AWS CLI and python3. The settings
    # are pinned in the entry so that an environment override (tests) reaches the heartbeat too.
    {
        echo "# Written by the notebook_autostop lifecycle configuration at every start; edits are lost."
        echo "SHELL=/bin/bash"
        echo "PATH=$PATH"
        echo "HEARTBEAT_BUCKET=$HEARTBEAT_BUCKET"
        echo "HEARTBEAT_PREFIX=$HEARTBEAT_PREFIX"
        echo "JUPYTER_URL=$JUPYTER_URL"
        echo "RESOURCE_METADATA=$RESOURCE_METADATA"
        echo "*/$HEARTBEAT_INTERVAL_MINUTES * * * * root $target heartbeat >>$HEARTBEAT_LOG 2>&1"
    } >"$cron_file.tmp"
    chmod 0644 "$cron_file.tmp"
    mv -f "$cron_file.tmp" "$cron_file"
    log "installed $target and $cron_file (every $HEARTBEAT_INTERVAL_MINUTES min to s3://$HEARTBEAT_BUCKET/$HEARTBEAT_PREFIX/)"
}

# The heartbeat JSON from Jupyter's sessions and terminals documents (files), on stdout.
summarize() {
    "$PYTHON" - "$@" <<'PY'
import json
import re
import sys
from datetime import datetime, timezone

name, sessions_path, terminals_path = sys.argv[1:4]


def parse(stamp):
    # Jupyter writes e.g. 2024-05-01T12:00:00.123456Z; keep to what every python3's fromisoformat reads.
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$", stamp or "")
    if not match:
        return None
    zone = match.group(2) or "Z"
    return datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone)).astimezone(timezone.utc)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


with open(sessions_path) as handle:
    sessions = json.load(handle)
with open(terminals_path) as handle:
    terminals = json.load(handle)
now = datetime.now(timezone.utc)
kernels = [session.get("kernel") or {} for session in sessions]
busy = sum(1 for kernel in kernels if kernel.get("execution_state") == "busy")
stamps = [parse(item.get("last_activity")) for item in kernels + terminals]
latest = max((stamp for stamp in stamps if stamp), default=None)
print(
    json.dumps(
        {
            "schema_version": 1,
            "instance": name,
            "checked_at": iso(now),
            # A kernel computing right now is activity even if it has not sent a message for a while.
            "last_activity": iso(now if busy else latest),
            "kernels": len(kernels),
            "busy_kernels": busy,
            "terminals": len(terminals),
        },
        sort_keys=True,
    )
)
PY
}

# Runs in a subshell so that its EXIT trap removes the scratch directory without touching the caller's traps.
heartbeat() (
    check_settings
    local name region workdir key
    name="$(metadata ResourceName)"
    # cron has no AWS region; the instance's ARN carries it.
    region="$(metadata ResourceArn | cut -d: -f4)"
    export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$region}"
    workdir="$(mktemp -d)"
    trap 'rm -rf "$workdir"' EXIT
    for api in sessions terminals; do
        if ! curl --silent --show-error --fail --insecure --max-time 10 \
            "$JUPYTER_URL/api/$api" -o "$workdir/$api.json"; then
            log "Jupyter at $JUPYTER_URL did not answer /api/$api; the previous heartbeat stays"
            exit 1
        fi
    done
    summarize "$name" "$workdir/sessions.json" "$workdir/terminals.json" >"$workdir/heartbeat.json"
    key="${HEARTBEAT_PREFIX%/}/$name/heartbeat.json"
    aws s3 cp "$workdir/heartbeat.json" "s3://$HEARTBEAT_BUCKET/$key" \
        --content-type application/json --only-show-errors
    log "wrote s3://$HEARTBEAT_BUCKET/$key: $(cat "$workdir/heartbeat.json")"
)

main() {
    case "${1:-install}" in
    install) install_cron ;;
    heartbeat) heartbeat ;;
    *) die "usage: $0 [install|heartbeat]" ;;
    esac
}

# Sourcing defines the functions only (tests call them one by one); running it does the work.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
