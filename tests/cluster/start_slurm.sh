#!/usr/bin/env bash
# Start a two-node SLURM 22.05 (Debian 12 packages) on this one machine for tests/test_slurm.py, as
# root, without systemd: one slurmctld and two slurmd (nodes node1 and node2, both on this host, each
# with its own port, spool directory and log), so that jobs can span nodes.
#
#     eval "$(bash tests/cluster/start_slurm.sh)"     # prints: export SLURM_CONF=...
#
# Idempotent: installs slurmctld, slurmd, slurm-client and munge only if missing, writes the
# configuration, starts munged, slurmctld and the slurmds only if they are not running (restarts them
# if the configuration changed), and waits until both nodes are idle. Only the export line goes to
# stdout; progress and errors go to stderr. Exit status: 0 ready, 2 not possible on this machine
# (not root, no apt-get), 1 anything else that failed (the message says what).
#
# SLURM_DIR (default ${TMPDIR:-/tmp}/mpibohb-slurm) holds the configuration, state, spool and logs
# (logs: $SLURM_DIR/log/slurmctld.log, slurmd-node1.log and slurmd-node2.log).
#
# Each node has as many CPUs as this machine (nproc), so together they promise twice the CPUs there
# are; memory is not scheduled (CR_CPU). A job asking for more tasks than its nodes' CPUs stays
# PENDING for ever (reason Resources) unless it is submitted with --overcommit; the tests do that.
set -euo pipefail

D=${SLURM_DIR:-${TMPDIR:-/tmp}/mpibohb-slurm}
CONF=$D/slurm.conf
say() { echo "start_slurm.sh: $*" >&2; }
die() { say "ERROR: $1"; exit "${2:-1}"; }
log_tail() { for f in "$D"/log/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done; true; }
NODES="node1 node2"
alive() {   # is the daemon of pid file $1 running? (the pid's command is checked: pids get reused)
    local name; name=$(basename "$1" .pid)
    [ -s "$1" ] && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "${name%%-*}" ]
}

[ "$(uname -s)" = Linux ] || die "SLURM set-up needs Linux" 2
[ "$(id -u)" = 0 ] || die "needs root (installs Debian packages and starts daemons); run as root or skip the SLURM tests" 2

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurmctld/slurmd/munge are not installed and there is no apt-get to install them" 2
    say "installing slurmctld slurmd slurm-client munge"
    install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                    slurmctld slurmd slurm-client munge >&2; }
    install || { apt-get update -q >&2 && install; } || die "apt-get install of the SLURM packages failed"
fi

# 2. Munge (the key is made by the package's postinst; make one if it is missing).
mkdir -p "$D"/{ctld,d,log} /run/munge
chown munge:munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key >&2 || die "could not create a munge key"
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged >&2 || die "munged did not start"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged is not answering"
fi

# 3. Configuration (rewritten only when it changes, so a running SLURM is reused).
H=$(hostname -s)
NCPU=$(nproc)
getent hosts "$H" >/dev/null || die "this host's name $H does not resolve (slurmctld and srun need it): add it to /etc/hosts"
cat > "$CONF.new" <<CONF
# Written by tests/cluster/start_slurm.sh: a two-node SLURM on one machine for the tests.
ClusterName=mpibohb
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/d/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
# A requeued job may start again only after the job credential's lifetime, cred_expire (default
# 120 s, minimum 5), and is then started by the next main scheduling pass (sched_interval,
# default 60 s). Short values keep the requeue test at seconds instead of three minutes.
AuthInfo=cred_expire=5
SchedulerParameters=sched_interval=2
# KillWait: seconds from SIGTERM to SIGKILL when a job step ends (default 30); 5 keeps the test
# of a rank that dies under srun (--kill-on-bad-exit) at seconds.
KillWait=5
# Two slurmd on this host (slurmd -N): NodeHostname is where slurmctld and srun reach them.
NodeName=node1 NodeHostname=$H Port=6818 CPUs=$NCPU State=UNKNOWN
NodeName=node2 NodeHostname=$H Port=6819 CPUs=$NCPU State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
changed=0
if ! cmp -s "$CONF.new" "$CONF"; then mv "$CONF.new" "$CONF"; changed=1; else rm -f "$CONF.new"; fi
export SLURM_CONF=$CONF

# 4. Daemons.
stop() {   # stop the daemon whose pid file is $1, if it runs
    alive "$1" || return 0
    local pid; pid=$(cat "$1"); kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    die "daemon $pid ($1) did not stop"
}
# Restart daemons started before the configuration was last written (or edited by hand).
stale() { alive "$1" && { [ $changed = 1 ] || [ "$CONF" -nt "$1" ]; }; }
stop "$D/slurmd.pid"   # the one slurmd of this script's single-node days
restart=0
for pid_file in "$D/slurmctld.pid" "${D}"/slurmd-*.pid; do stale "$pid_file" && restart=1; done
if [ $restart = 1 ]; then
    say "the configuration changed: restarting slurmctld and the slurmds"
    for pid_file in "${D}"/slurmd-*.pid "$D/slurmctld.pid"; do stop "$pid_file"; done
fi
if ! alive "$D/slurmctld.pid"; then
    say "starting slurmctld (log $D/log/slurmctld.log)"
    slurmctld -f "$CONF" >&2 || { log_tail; die "slurmctld did not start"; }
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
scontrol ping 2>/dev/null | grep -q UP || { log_tail; die "slurmctld is not answering (scontrol ping)"; }
for node in $NODES; do
    if ! alive "$D/slurmd-$node.pid"; then
        say "starting slurmd for $node (log $D/log/slurmd-$node.log)"
        slurmd -f "$CONF" -N "$node" >&2 || { log_tail; die "slurmd for $node did not start"; }
    fi
done

# 5. Wait until both nodes take jobs. A node left DOWN/DRAIN by an earlier run is resumed.
for node in $NODES; do
    state=
    for _ in $(seq 300); do
        state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1)
        case $state in
            idle|mixed|allocated|completing) break ;;
            down*|drain*|fail*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.1
    done
    case $state in
        idle|mixed|allocated|completing) ;;
        *) log_tail; die "node $node is '$state', not idle, after 30 s" ;;
    esac
done
sinfo >&2
echo "export SLURM_CONF=$CONF"
