#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for tests: munge + slurmctld + slurmd from Debian's
# slurm-wlm, run as root without systemd. Installs the packages if missing.
#   tools/slurm-local.sh start    install if needed, configure, start, wait until the node is idle
#   tools/slurm-local.sh stop     stop the daemons (by their pid files), leave the packages
#   tools/slurm-local.sh status
#   tools/slurm-local.sh uninstall  stop, then remove the packages install() added
# Every wait is bounded: a daemon that does not come up fails the start instead of hanging.
set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/lib/topoamorph-slurm}
CONF_DIR=/etc/slurm
PARTITION=${SLURM_LOCAL_PARTITION:-debug}

log() { echo "slurm-local: $*" >&2; }

install() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v srun >/dev/null; then
    return
  fi
  log "installing slurm-wlm and munge (apt)"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq || true
  timeout 900 apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
  mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --keyfile /etc/munge/munge.key --force >/dev/null
    else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; fi
  fi
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    pkill -x munged 2>/dev/null || true
    runuser -u munge -- /usr/sbin/munged --force
  fi
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.2; done
  log "munge did not come up"; return 1
}

write_conf() {
  mkdir -p "$CONF_DIR" "$STATE"/{ctld,d} /var/log/slurm
  local cpus mem
  cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -1)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  mem=$(( mem * 9 / 10 ))
  cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=topoamorph-local
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=600
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.txt
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
}

running() { [ -f "/run/$1.pid" ] && kill -0 "$(cat "/run/$1.pid")" 2>/dev/null; }

start() {
  install
  start_munge
  write_conf
  running slurmctld || /usr/sbin/slurmctld -i
  running slurmd || /usr/sbin/slurmd -N localhost
  for _ in $(seq 60); do
    state=$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null | head -1 || true)
    case "$state" in
      idle*|mixed*|allocated*) break ;;
      down*|drain*) timeout 5 scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  case "${state:-}" in idle*|mixed*|allocated*) ;; *) log "node not up (state: ${state:-none})"; exit 1 ;; esac
  timeout 60 srun -n1 -t 1 true || { log "smoke test 'srun -n1 true' failed"; exit 1; }
  log "up: partition $PARTITION, $(sinfo -h -o '%c CPUs, %m MB')"
}

stop() {
  for d in slurmd slurmctld; do
    if [ -f "/run/$d.pid" ]; then kill "$(cat "/run/$d.pid")" 2>/dev/null || true; fi
  done
  for _ in $(seq 20); do running slurmd || running slurmctld || break; sleep 0.25; done
  for d in slurmd slurmctld; do
    if running "$d"; then kill -9 "$(cat "/run/$d.pid")" 2>/dev/null || true; fi
    rm -f "/run/$d.pid"
  done
  log "stopped"
}

# Remove what install() added (the daemons stopped first). With the SLURM client installed but no controller,
# every Snakemake start waits ~10 s in the slurm executor plugin's `scontrol show config`: the test suite
# uninstalls a cluster it installed itself, so that no later test or command pays that.
uninstall() {
  stop
  pkill -x munged 2>/dev/null || true
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get remove --autoremove -y -qq slurm-wlm munge >/dev/null
  log "uninstalled slurm-wlm and munge"
}

status() {
  for d in munged slurmctld slurmd; do
    if pgrep -x "$d" >/dev/null; then echo "$d: running"; else echo "$d: stopped"; fi
  done
  timeout 5 sinfo 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  uninstall) uninstall ;;
  *) echo "usage: $0 start|stop|status|uninstall" >&2; exit 2 ;;
esac
