#!/usr/bin/env bash
# A single-host Son of Grid Engine 8.1.9 (Debian packages) for the tests and CI, as root, no systemd.
#
#   bash tests/cluster/start_sge.sh        # last line of output: the settings.sh line to source
#
# Idempotent: installs the packages if missing, starts sge_qmaster and sge_execd if they are not
# running, (re)applies the configuration below, waits until the queue takes jobs, and prints
# ". /var/lib/gridengine/default/common/settings.sh" (source it for qsub, qstat, ...) on stdout.
# Everything else goes to stderr. Exits non-zero with a message when it cannot.
#
# Configuration: global min_uid/min_gid 0 (SGE refuses root's jobs otherwise), a scheduler that
# dispatches within a second, a parallel environment "mpi" ($fill_up, control_slaves TRUE for
# hydra's `qrsh -inherit`), and the queue all.q on this host with SGE_SLOTS slots (default 8: more
# than the CPUs, so that a test can ask for 4 slots on a 2-CPU machine), no load thresholds
# (the load of a busy CI machine would otherwise close the queue), shell /bin/bash.
set -euo pipefail

SLOTS=${SGE_SLOTS:-8}
SETTINGS=/var/lib/gridengine/default/common/settings.sh
SPOOL=/var/spool/gridengine
APT_LOCK_WAIT=600   # seconds to wait for another apt-get/dpkg (SLURM's set-up may install at the same time)
APT_LOG=${TMPDIR:-/tmp}/start_sge.apt.log

die() { echo "start_sge.sh: error: $*" >&2; exit 1; }
say() { echo "start_sge.sh: $*" >&2; }
# Run a qconf-like command quietly; on failure show its output and stop.
quiet() { local out; out=$("$@" 2>&1) || die "'$*' failed: $out"; }

[ "$(uname -s)" = Linux ] || die "needs Linux"
[ "$(id -u)" = 0 ] || die "must run as root (installs packages, starts daemons)"
H=$(hostname)
[ -n "$H" ] || die "hostname is empty"

# ---------------------------------------------------------------- packages
if ! [ -x /usr/sbin/sge_qmaster ] || ! [ -x /usr/sbin/sge_execd ] || ! command -v qsub >/dev/null 2>&1 \
        || ! [ -f "$SETTINGS" ]; then
    command -v apt-get >/dev/null 2>&1 || die "Grid Engine is not installed and there is no apt-get to install it"
    say "installing gridengine-master gridengine-exec gridengine-client (log: $APT_LOG)"
    # Answers for the packages' questions; debconf's database is locked while another apt runs.
    for try in $(seq 60); do
        debconf-set-selections <<EOF >>"$APT_LOG" 2>&1 && break
gridengine-common shared/gridenginemaster string $H
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridengineconfig boolean true
gridengine-client shared/gridenginemaster string $H
gridengine-client shared/gridenginecell string default
gridengine-client shared/gridengineconfig boolean true
postfix postfix/main_mailer_type select No configuration
EOF
        [ "$try" -lt 60 ] || die "debconf-set-selections failed (log: $APT_LOG)"
        sleep 5
    done
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=$APT_LOCK_WAIT install -y -q \
            --no-install-recommends gridengine-master gridengine-exec gridengine-client
    }
    if ! apt_install >>"$APT_LOG" 2>&1; then
        # A fresh machine may have no package lists yet.
        apt-get -o DPkg::Lock::Timeout=$APT_LOCK_WAIT update -q >>"$APT_LOG" 2>&1 || true
        apt_install >>"$APT_LOG" 2>&1 || { tail -20 "$APT_LOG" >&2; die "apt-get install failed (log: $APT_LOG)"; }
    fi
    [ -f "$SETTINGS" ] || die "packages installed but $SETTINGS is missing (debconf did not configure the cell)"
fi

set +u   # settings.sh is not written for `set -u`
# shellcheck disable=SC1090
. "$SETTINGS"
set -u
ARCH=$("$SGE_ROOT/util/arch")
UTIL="$SGE_ROOT/utilbin/$ARCH"

# ---------------------------------------------------------------- host names
# SGE insists that this host's name and the reverse lookup of its address agree. Where the address
# maps back to another name (here hostname "vm", 127.0.0.1 -> "localhost"), sge_qmaster rejects
# every client ("local host name error ... doesn't match client host name") unless host_aliases
# says that the two are one host. EXEC is the name SGE then uses for this host (all.q@EXEC).
ADDR=$(getent ahostsv4 "$H" | awk '{print $1; exit}')
[ -n "$ADDR" ] || die "cannot resolve this host's name '$H' (add it to /etc/hosts)"
EXEC=$("$UTIL/gethostbyaddr" -name "$ADDR" 2>/dev/null || true)
[ -n "$EXEC" ] || EXEC=$H
ALIASES="$SGE_ROOT/$SGE_CELL/common/host_aliases"
ALIASES_CHANGED=0
if [ "$EXEC" != "$H" ] && ! grep -qx "$EXEC $H" "$ALIASES" 2>/dev/null; then
    echo "$EXEC $H" >> "$ALIASES"
    ALIASES_CHANGED=1
fi

# ---------------------------------------------------------------- daemons
here() { [ "$(readlink "/proc/$1/ns/net")" = "$(readlink /proc/self/ns/net)" ]; }   # pid in this network namespace
running() {   # a process of that name in this network namespace (start_sge_hosts.sh runs others)
    local pid
    for pid in $(pgrep -x "$1"); do here "$pid" && return 0; done
    return 1
}
stop_daemon() {   # name, pid files: a daemon started before host_aliases existed keeps failing
    local name=$1 file pid; shift
    say "restarting $name to read $ALIASES"
    for file in "$@"; do
        [ -f "$file" ] || continue
        pid=$(cat "$file")
        if here "$pid"; then kill "$pid" 2>/dev/null || true; fi
    done
    for _ in $(seq 100); do running "$name" || return 0; sleep 0.2; done
    die "$name does not stop (pid files: $*)"
}
if [ "$ALIASES_CHANGED" = 1 ]; then
    if running sge_execd; then stop_daemon sge_execd "$SPOOL"/execd/*/execd.pid; fi
    if running sge_qmaster; then stop_daemon sge_qmaster "$SPOOL/qmaster/qmaster.pid"; fi
fi
# Start qmaster unless it answers; a qmaster that is still shutting down may answer once, then
# vanish, and blocks a new one for a few seconds: so keep checking, and start it again if needed.
up_qmaster() { running sge_qmaster && qconf -sh >/dev/null 2>&1; }
for try in $(seq 60); do
    if ! running sge_qmaster; then
        say "starting sge_qmaster"
        /usr/sbin/sge_qmaster >/dev/null 2>&1 || true
    fi
    for _ in $(seq 10); do up_qmaster && break; sleep 0.2; done
    if up_qmaster; then sleep 0.5; up_qmaster && break; fi
    [ "$try" -lt 60 ] || die "sge_qmaster does not start or answer (see $SPOOL/qmaster/messages)"
done

# ---------------------------------------------------------------- configuration (re-applied every time)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
qconf -ss 2>/dev/null | grep -x "$EXEC" >/dev/null || quiet qconf -as "$EXEC"
qconf -sconf > "$W/global"
# min_uid/min_gid 0: allow root's jobs. load_report_time 10 s (default 40 s): a restarted qmaster
# shows the queue as up (with a load) sooner.
sed -i 's/^min_uid .*/min_uid 0/; s/^min_gid .*/min_gid 0/; s/^load_report_time .*/load_report_time 00:00:10/' \
    "$W/global"
(cd "$W" && quiet qconf -Mconf global)                                          # the file name must be "global"
qconf -ssconf > "$W/sched"
sed -i 's/^schedule_interval .*/schedule_interval 0:0:1/; s/^flush_submit_sec .*/flush_submit_sec 1/;
        s/^flush_finish_sec .*/flush_finish_sec 1/' "$W/sched"
quiet qconf -Msconf "$W/sched"
cat > "$W/mpi" <<EOF
pe_name            mpi
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$fill_up
control_slaves     TRUE
job_is_first_task  FALSE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
if qconf -sp mpi >/dev/null 2>&1; then quiet qconf -Mp "$W/mpi"; else quiet qconf -Ap "$W/mpi"; fi
if qconf -sq all.q >/dev/null 2>&1; then
    qconf -sq all.q > "$W/all.q"
else
    qconf -sq > "$W/all.q"   # without a name: the template
fi
sed -i -e 's/^qname .*/qname all.q/' -e "s/^hostlist .*/hostlist $EXEC/" -e "s/^slots .*/slots $SLOTS/" \
    -e 's/^pe_list .*/pe_list mpi/' -e 's/^load_thresholds .*/load_thresholds NONE/' \
    -e 's#^shell .*#shell /bin/bash#' "$W/all.q"
if qconf -sq all.q >/dev/null 2>&1; then quiet qconf -Mq "$W/all.q"; else quiet qconf -Aq "$W/all.q"; fi

for try in $(seq 30); do
    running sge_execd && break
    say "starting sge_execd"
    /usr/sbin/sge_execd >/dev/null 2>&1 || true
    sleep 1
    [ "$try" -lt 30 ] || die "sge_execd does not start (see $SPOOL/execd/$EXEC/messages)"
done

# ---------------------------------------------------------------- wait for the queue
# Up: the queue instance reports a load and an architecture, and shows no state letters
# (a: no load report yet, u: execd unknown, E: error, d: disabled, ...).
up() {
    qstat -f -q "all.q@$EXEC" 2>/dev/null \
        | grep -E "^all\.q@$EXEC +[A-Z]+ +[0-9]+/[0-9]+/[0-9]+ +[0-9.]+ +lx-[a-z0-9]+ *$" >/dev/null
}
qmod -c "all.q@$EXEC" >/dev/null 2>&1 || true   # clear an error state left by an earlier failed job
qmod -e "all.q@$EXEC" >/dev/null 2>&1 || true   # and a disabled one
for _ in $(seq 300); do up && break; sleep 0.2; done
up || { qstat -f >&2 || true; die "the queue all.q@$EXEC is not up after 60 s (see $SPOOL/execd/$EXEC/messages)"; }
say "Grid Engine is up: queue all.q@$EXEC, $SLOTS slots, parallel environment mpi"
echo ". $SETTINGS"
