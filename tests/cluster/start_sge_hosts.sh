#!/usr/bin/env bash
# Two more Grid Engine exec hosts on this machine, for the tests of jobs that span hosts, as root.
#
#   bash tests/cluster/start_sge_hosts.sh         # last line of output: the settings.sh line to source
#   bash tests/cluster/start_sge_hosts.sh stop    # stop their execds, remove namespaces and bridge
#
# Runs tests/cluster/start_sge.sh first (the qmaster and the single-host queue all.q), then makes
# the hosts sgenode1 (10.231.0.11) and sgenode2 (10.231.0.12): each a network namespace with its
# own host name (a UTS namespace), an sge_execd, and a veth link to the bridge mbsge0
# (10.231.0.1) in this machine's namespace, where the qmaster listens. The hosts share this
# machine's files and processes' view, as cluster nodes share a file system. The queue hosts.q
# has 2 slots on each, with the parallel environment "mpi" ($fill_up), so a job of
# `-q hosts.q -pe mpi 4` gets 2 slots on each host, and MPICH's hydra starts the ranks of the
# second host with `qrsh -inherit`, through SGE. The namespaces have no route but the bridge:
# their MPI traffic stays on 10.231.0.0/24.
#
# /etc/hosts gets the two names (the qmaster resolves them); each namespace's hosts file
# (/etc/netns/<namespace>/hosts, which `ip netns exec` puts in place of /etc/hosts) maps the
# qmaster's name, as the file act_qmaster spells it (here "localhost"), to 10.231.0.1.
# Idempotent. Exits non-zero with a message when it cannot.
set -euo pipefail   # so `cmd | grep` below reads all of cmd's output: grep -q would end cmd by SIGPIPE

HERE=$(cd "$(dirname "$0")" && pwd)
SETTINGS=/var/lib/gridengine/default/common/settings.sh
BRIDGE=mbsge0
NET=10.231.0
HOSTS=(sgenode1 sgenode2)   # host N has the address $NET.1N, the namespace mpibohb-sgenodeN
SLOTS_PER_HOST=2

die() { echo "start_sge_hosts.sh: error: $*" >&2; exit 1; }
say() { echo "start_sge_hosts.sh: $*" >&2; }
quiet() { local out; out=$("$@" 2>&1) || die "'$*' failed: $out"; }
namespace() { echo "mpibohb-$1"; }
address() { echo "$NET.1${1#sgenode}"; }
execd_pids() { ip netns pids "$(namespace "$1")" 2>/dev/null | while read -r pid; do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sge_execd ] && echo "$pid"; done; true; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, daemons)"
command -v ip >/dev/null 2>&1 || die "needs the ip command (iproute2)"

if [ "${1:-}" = stop ]; then
    for host in "${HOSTS[@]}"; do
        pids=$(execd_pids "$host")
        if [ -n "$pids" ]; then kill $pids 2>/dev/null || true; fi
        for _ in $(seq 50); do [ -z "$(execd_pids "$host")" ] && break; sleep 0.2; done
        ip netns pids "$(namespace "$host")" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$(namespace "$host")" 2>/dev/null || true
        ip link del "mbsge${host#sgenode}" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    say "stopped"
    exit 0
fi

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# ---------------------------------------------------------------- names the qmaster resolves
# A qmaster that resolved a name before /etc/hosts had it keeps the failure: restart it then.
HOSTS_CHANGED=0
for host in "${HOSTS[@]}"; do
    line="$(address "$host") $host"
    naming=$(grep -E "[[:space:]]$host([[:space:]]|\$)" /etc/hosts || true)
    if [ "$naming" != "$line" ]; then   # missing, or other lines name the host: only ours stays
        kept=$(grep -Ev "[[:space:]]$host([[:space:]]|\$)" /etc/hosts || true)
        printf '%s\n%s\n' "$kept" "$line" > "$W/hosts"
        cat "$W/hosts" > /etc/hosts   # in place: /etc/hosts may be a mount point
        HOSTS_CHANGED=1
    fi
done
if [ "$HOSTS_CHANGED" = 1 ] && [ -f /var/spool/gridengine/qmaster/qmaster.pid ] && pgrep -x sge_qmaster >/dev/null; then
    say "restarting sge_qmaster to read the new lines of /etc/hosts"
    kill "$(cat /var/spool/gridengine/qmaster/qmaster.pid)" 2>/dev/null || true
    for _ in $(seq 100); do pgrep -x sge_qmaster >/dev/null || break; sleep 0.2; done
fi
SOURCE=$(bash "$HERE/start_sge.sh" | tail -n 1)
set +u; . "$SETTINGS"; set -u
QMASTER=$(cat "$SGE_ROOT/$SGE_CELL/common/act_qmaster")

# ---------------------------------------------------------------- the network
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    quiet ip link add "$BRIDGE" type bridge
fi
ip addr show dev "$BRIDGE" | grep "inet $NET.1/24" >/dev/null || quiet ip addr add "$NET.1/24" dev "$BRIDGE"
quiet ip link set "$BRIDGE" up
for host in "${HOSTS[@]}"; do
    ns=$(namespace "$host") link=mbsge${host#sgenode}
    mkdir -p "/etc/netns/$ns"
    { echo "$NET.1 $QMASTER $(hostname)"; for h in "${HOSTS[@]}"; do echo "$(address "$h") $h"; done; } \
        > "/etc/netns/$ns/hosts"
    if ip netns list | grep -w "$ns" >/dev/null && ! ip -n "$ns" link show lo >/dev/null 2>&1; then
        ip netns del "$ns" 2>/dev/null || true   # listed but unusable (left from an earlier boot)
    fi
    ip netns list | grep -w "$ns" >/dev/null || quiet ip netns add "$ns"
    if ! ip -n "$ns" link show mbsge >/dev/null 2>&1; then
        ip link del "$link" 2>/dev/null || true   # left by a namespace deleted before
        quiet ip link add "$link" type veth peer name "$link-p"
        quiet ip link set "$link-p" netns "$ns"
        quiet ip -n "$ns" link set "$link-p" name mbsge
    fi
    quiet ip link set "$link" master "$BRIDGE"
    quiet ip link set "$link" up
    ip -n "$ns" addr show dev mbsge | grep "inet $(address "$host")/24" >/dev/null \
        || quiet ip -n "$ns" addr add "$(address "$host")/24" dev mbsge
    quiet ip -n "$ns" link set mbsge up
    quiet ip -n "$ns" link set lo up
done

# ---------------------------------------------------------------- the execds and the queue
for host in "${HOSTS[@]}"; do
    qconf -sh 2>/dev/null | grep -x "$host" >/dev/null || quiet qconf -ah "$host"   # may start an execd
    qconf -ss 2>/dev/null | grep -x "$host" >/dev/null || quiet qconf -as "$host"   # its jobs run qstat
    if [ -z "$(execd_pids "$host")" ]; then
        say "starting sge_execd on $host"
        ip netns exec "$(namespace "$host")" unshare --uts \
            bash -c "hostname $host && . $SETTINGS && /usr/sbin/sge_execd" >/dev/null 2>&1 \
            || die "sge_execd does not start on $host (see /var/spool/gridengine/execd/$host/messages)"
    fi
done
# Each host its own tmpdir, as each node has its own /tmp: SGE makes and removes a directory per
# job and host there ($TMPDIR), named after the job and the queue, the same on every host.
TMPDIRS=/tmp
for host in "${HOSTS[@]}"; do mkdir -p "/tmp/$host"; TMPDIRS="$TMPDIRS,[$host=/tmp/$host]"; done
qconf -sq all.q > "$W/hosts.q"
sed -i -e 's/^qname .*/qname hosts.q/' -e "s/^hostlist .*/hostlist ${HOSTS[*]}/" \
    -e "s/^slots .*/slots $SLOTS_PER_HOST/" -e "s#^tmpdir .*#tmpdir $TMPDIRS#" "$W/hosts.q"
if qconf -sq hosts.q >/dev/null 2>&1; then quiet qconf -Mq "$W/hosts.q"; else quiet qconf -Aq "$W/hosts.q"; fi

up() {   # as in start_sge.sh: a load, an architecture, no state letters
    qstat -f -q "hosts.q@$1" 2>/dev/null \
        | grep -E "^hosts\.q@$1 +[A-Z]+ +[0-9]+/[0-9]+/[0-9]+ +[0-9.]+ +lx-[a-z0-9]+ *$" >/dev/null
}
for host in "${HOSTS[@]}"; do
    qmod -c "hosts.q@$host" >/dev/null 2>&1 || true
    qmod -e "hosts.q@$host" >/dev/null 2>&1 || true
    for _ in $(seq 300); do up "$host" && break; sleep 0.2; done
    up "$host" || { qstat -f >&2 || true; die "hosts.q@$host is not up after 60 s (see /var/spool/gridengine/execd/$host/messages)"; }
done
say "Grid Engine hosts are up: queue hosts.q on ${HOSTS[*]}, $SLOTS_PER_HOST slots each"
echo "$SOURCE"
