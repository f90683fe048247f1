#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (munged, slurmctld, slurmd) from a generated
# slurm.conf, for the study's Slurm test. Idempotent: a cluster already answering is left running.
# Usage: .ci/slurm-up.sh [STATE_DIR]   (default /tmp/robustsim-slurm); prints `export SLURM_CONF=...`.
# Needs root (slurmd runs jobs as their submitter) and Debian's slurm-wlm + munge.
set -euo pipefail
STATE="${1:-/tmp/robustsim-slurm}"
mkdir -p "$STATE"/ctld "$STATE"/d "$STATE"/log
CONF="$STATE/slurm.conf"
export SLURM_CONF="$CONF"
HOST="$(hostname -s)"

for b in munged slurmctld slurmd sbatch; do
  command -v "$b" >/dev/null 2>&1 || { echo "slurm-up: $b not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done

if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
if ! munge -n >/dev/null 2>&1; then
  if id munge >/dev/null 2>&1; then
    su -s /bin/sh munge -c 'munged' || munged --force
  else
    munged --force
  fi
  for _ in $(seq 1 20); do munge -n >/dev/null 2>&1 && break; sleep 0.5; done
fi
munge -n >/dev/null 2>&1 || { echo "slurm-up: munged did not start" >&2; exit 1; }

CPUS="$(nproc)"
MEM_MB="$(awk '/MemTotal/ {print int($2/1024*0.9)}' /proc/meminfo)"
cat > "$CONF" <<CONF
ClusterName=robustsim
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

if ! scontrol ping 2>/dev/null | grep -q UP; then
  slurmctld -f "$CONF"
fi
if ! pgrep -f "slurmd -f $CONF" >/dev/null 2>&1; then
  slurmd -f "$CONF"
fi
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
    echo "export SLURM_CONF=$CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm-up: the node did not come up; sinfo says: $(sinfo -h 2>&1 | head -3)" >&2
tail -5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 2>/dev/null || true
exit 1
