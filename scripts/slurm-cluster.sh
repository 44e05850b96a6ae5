#!/usr/bin/env bash
# A throwaway one-node SLURM cluster (munged + slurmctld + slurmd) on this machine, for
# `snakemake --profile profiles/slurm` and tests/test_slurm.py. Needs no systemd.
#
#   scripts/slurm-cluster.sh start  [STATE_DIR]   # prints `export SLURM_CONF=...` on stdout
#   scripts/slurm-cluster.sh stop   [STATE_DIR]
#   scripts/slurm-cluster.sh status [STATE_DIR]
#
# Usage from a shell: eval "$(scripts/slurm-cluster.sh start)"
# STATE_DIR defaults to $DFL_SLURM_STATE_DIR or /tmp/dfl-slurm. Everything the cluster writes
# (key, sockets, pid files, logs, spool) stays there, except the /etc/slurm/slurm.conf link.
# Ports can be moved with DFL_SLURM_CTLD_PORT / DFL_SLURM_D_PORT if 6817/6818 are taken.
set -euo pipefail

PROG=slurm-cluster.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { echo "$PROG: $*" >&2; }

CMD=${1:-}
STATE_DIR=$(realpath -m "${2:-${DFL_SLURM_STATE_DIR:-/tmp/dfl-slurm}}")
CONF=$STATE_DIR/slurm.conf
MUNGE_DIR=$STATE_DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MUNGE_PID=$MUNGE_DIR/munged.pid
CTLD_PID=$STATE_DIR/run/slurmctld.pid
SLURMD_PID=$STATE_DIR/run/slurmd.pid
# Trap 1: the slurm-jobstep plugin strips SLURM_CONF before its inner `srun`, so srun inside a
# job only finds the config at the compiled-in default path.
ETC_CONF=/etc/slurm/slurm.conf

require_root() {
    [[ $EUID -eq 0 ]] || die "must run as root (it starts munged/slurmctld/slurmd and may apt-get install slurm-wlm munge)"
}

ensure_packages() {
    local missing=0 tool
    for tool in sbatch slurmctld slurmd munged; do
        command -v "$tool" >/dev/null 2>&1 || missing=1
    done
    [[ $missing -eq 0 ]] && return 0
    say "installing slurm-wlm and munge with apt-get"
    # Without systemd, package postinst scripts would start a system-wide munged through
    # /etc/init.d; policy-rc.d (exit 101) stops that, so only our own daemons ever run.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    # A stale package list is the usual reason the first install fails, so update only then.
    if ! apt-get install -y -qq slurm-wlm munge >&2; then
        apt-get update -qq >&2 && apt-get install -y -qq slurm-wlm munge >&2 || rc=$?
    fi
    [[ $own_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    [[ $rc -eq 0 ]] || die "apt-get install slurm-wlm munge failed (rc=$rc)"
}

alive() {  # alive PIDFILE: the daemon that wrote PIDFILE (named like it, e.g. slurmd.pid) runs
    [[ -s $1 ]] || return 1
    local pid
    pid=$(cat "$1")
    # A pid file left from an earlier boot may name a pid now reused by something else.
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$(basename "$1" .pid)" ]]
}

all_alive() { alive "$MUNGE_PID" && alive "$CTLD_PID" && alive "$SLURMD_PID"; }

stop_daemons() {  # stop_daemons PIDFILE...: SIGTERM all at once, SIGKILL what is left after 10 s
    local pidfile pid pids=() i
    for pidfile in "$@"; do
        if alive "$pidfile"; then
            pid=$(cat "$pidfile")
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    # Each daemon takes about 2 s to exit; waiting for them together keeps stop short.
    for ((i = 0; i < 100; i++)); do
        local left=()
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && left+=("$pid")
        done
        pids=("${left[@]}")
        [[ ${#pids[@]} -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        say "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pidfile in "$@"; do rm -f "$pidfile"; done
}

node_state() {
    SLURM_CONF=$CONF timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    # slurmd refuses to register a node that claims more than it has, so take its own numbers.
    # Only CPUs (no socket/core/thread layout) so that cons_tres hands out single CPUs even on
    # hyperthreaded hosts.
    cpus=$(slurmd -C | grep -o 'CPUs=[0-9]*' | cut -d= -f2)
    mem=$(slurmd -C | grep -o 'RealMemory=[0-9]*' | cut -d= -f2)
    [[ -n $cpus && -n $mem ]] || die "could not read CPUs/RealMemory from 'slurmd -C'"
    cat >"$CONF" <<EOF
# Written by scripts/slurm-cluster.sh; regenerated on every start.
ClusterName=dfl
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${DFL_SLURM_CTLD_PORT:-6817}
SlurmdPort=${DFL_SLURM_D_PORT:-6818}
# Both daemons run as root, so the state dir needs no slurm-owned subfolders.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE_DIR/spool/ctld
SlurmdSpoolDir=$STATE_DIR/spool/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
# No cgroups in a container without systemd: track processes via /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
# Memory is consumable so mem_mb requests limit how many jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# No slurmdbd: the Snakemake profile polls with squeue. The plugin silently switches back to
# sacct (which then fails and the run never ends) when MinJobAge < 3 x the first status delay,
# so keep finished jobs visible to squeue for 5 minutes.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
# A node that was down when the cluster was last stopped comes back without manual resume.
ReturnToService=2
MailProg=/bin/true
SlurmctldDebug=info
SlurmdDebug=info
# A job asking for more CPUs than the node has would otherwise pend forever (reason
# PartitionConfig) and the workflow would hang; with these sbatch rejects it and Snakemake fails.
EnforcePartLimits=ALL
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE MaxCPUsPerNode=$cpus State=UP
EOF
}

link_etc_conf() {
    mkdir -p "$(dirname "$ETC_CONF")"
    if [[ -e $ETC_CONF && ! -L $ETC_CONF ]]; then
        die "$ETC_CONF is a real file (a site SLURM config?); not replacing it"
    fi
    if [[ -L $ETC_CONF ]]; then
        local target
        target=$(readlink -f "$ETC_CONF" || true)
        if [[ $target != "$CONF" && -e $target ]]; then
            say "warning: $ETC_CONF pointed to $target (another cluster?); relinking to $CONF"
        fi
    fi
    ln -sfn "$CONF" "$ETC_CONF"
}

unlink_etc_conf() {
    if [[ -L $ETC_CONF ]]; then
        local target
        target=$(readlink "$ETC_CONF")
        case $target in
            "$STATE_DIR"/*) rm -f "$ETC_CONF" ;;
        esac
    fi
}

start_munge() {
    alive "$MUNGE_PID" && return 0
    id munge >/dev/null 2>&1 || die "user 'munge' missing (is the munge package installed?)"
    mkdir -p "$MUNGE_DIR"
    # 0755: slurm clients of any user must reach the socket; munged rejects writable dirs.
    chown munge:munge "$MUNGE_DIR"
    chmod 0755 "$MUNGE_DIR"
    if ! runuser -u munge -- test -x "$MUNGE_DIR"; then
        die "user munge cannot enter $MUNGE_DIR; every parent of STATE_DIR must be world-searchable (pytest's tmp_path is not)"
    fi
    if [[ ! -s $MUNGE_DIR/munge.key ]]; then
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE_DIR/munge.key"
    chmod 0400 "$MUNGE_DIR/munge.key"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    runuser -u munge -- munged \
        --socket="$MUNGE_SOCKET" \
        --key-file="$MUNGE_DIR/munge.key" \
        --pid-file="$MUNGE_PID" \
        --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" ||
        die "munged failed to start; see $MUNGE_DIR/munged.log"
    local i
    for ((i = 0; i < 50; i++)); do
        if munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    die "munged does not answer on $MUNGE_SOCKET; see $MUNGE_DIR/munged.log"
}

slurmd_registered_since() {  # slurmd_registered_since EPOCH: the node's slurmd checked in after EPOCH
    local started
    started=$(SLURM_CONF=$CONF timeout 10 scontrol show node -o 2>/dev/null |
        grep -o 'SlurmdStartTime=[^ ]*' | head -n1 | cut -d= -f2)
    [[ -n $started && $started != None ]] || return 1
    [[ $(date -d "$started" +%s 2>/dev/null || echo 0) -ge $1 ]]
}

wait_node_idle() {  # wait_node_idle EPOCH
    # slurmctld restores the node as idle from its saved state before the new slurmd has
    # registered, so also wait for the registration of the slurmd we just started.
    local i state=""
    for ((i = 0; i < 120; i++)); do
        state=$(node_state)
        case $state in
            idle | mixed | allocated) slurmd_registered_since "$1" && return 0 ;;
        esac
        sleep 0.5
    done
    die "node did not become idle within 60 s (last state: '${state:-no answer}'); see $STATE_DIR/log/"
}

cmd_start() {
    require_root
    if all_alive && [[ -n $(node_state) ]]; then
        say "already running (state dir $STATE_DIR)"
        link_etc_conf
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    ensure_packages
    # A half-running cluster (e.g. slurmd died) is restarted from scratch rather than patched.
    if alive "$MUNGE_PID" || alive "$CTLD_PID" || alive "$SLURMD_PID"; then
        say "partially running; restarting"
        cmd_stop
    fi
    mkdir -p "$STATE_DIR"/{spool/ctld,spool/d,log,run}
    start_munge
    write_conf
    link_etc_conf
    # -i: state files from an earlier run of this state dir may not match the new conf.
    SLURM_CONF=$CONF slurmctld -i -f "$CONF" || die "slurmctld failed; see $STATE_DIR/log/slurmctld.log"
    local launched
    launched=$(date +%s)
    SLURM_CONF=$CONF slurmd -f "$CONF" || die "slurmd failed; see $STATE_DIR/log/slurmd.log"
    wait_node_idle "$launched"
    say "up: $(SLURM_CONF=$CONF sinfo -h -N -o '%N %P %T cpus=%c mem=%m')"
    echo "export SLURM_CONF=$CONF"
}

cmd_stop() {
    if alive "$CTLD_PID"; then
        # slurmstepd outlives slurmd, so cancel jobs while the cluster can still kill them.
        local ids i
        ids=$(SLURM_CONF=$CONF timeout 10 squeue -h -o %i 2>/dev/null || true)
        if [[ -n $ids ]]; then
            say "cancelling jobs: $(echo $ids)"
            # shellcheck disable=SC2086
            SLURM_CONF=$CONF scancel $ids 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z $(SLURM_CONF=$CONF timeout 10 squeue -h -t R,CG,PD -o %i 2>/dev/null || true) ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_daemons "$SLURMD_PID" "$CTLD_PID" "$MUNGE_PID"
    unlink_etc_conf
    say "stopped (state dir $STATE_DIR kept)"
}

cmd_status() {
    local rc=0 name file
    for name in munged slurmctld slurmd; do
        case $name in
            munged) file=$MUNGE_PID ;;
            slurmctld) file=$CTLD_PID ;;
            slurmd) file=$SLURMD_PID ;;
        esac
        if alive "$file"; then
            echo "$name: running (pid $(cat "$file"))"
        else
            echo "$name: not running"
            rc=1
        fi
    done
    if alive "$CTLD_PID"; then
        SLURM_CONF=$CONF timeout 10 sinfo -N -o '%N %P %T cpus=%c mem=%m' || rc=1
    fi
    return $rc
}

case $CMD in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
