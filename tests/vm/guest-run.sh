#!/bin/sh
# Runs the harness's command in the guest (both modes) and records its exit status in
# /berth-vm/status, which the host harness returns. The command comes from
# /berth-vm/cmd.sh, written by vm-run.sh (environment, working directory, argv).
# Output goes to the console, which QEMU writes to the run's log.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
read -r up _ </proc/uptime
echo "berth-vm: guest ready after ${up}s (mode $(cat /berth-vm/mode)); running: $(cat /berth-vm/cmd.txt)"
echo "berth-vm: cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
/bin/sh /berth-vm/cmd.sh </dev/null
rc=$?
read -r up _ </proc/uptime
echo "berth-vm: command exited with status $rc at ${up}s"
echo "$rc" >/berth-vm/status.tmp && mv /berth-vm/status.tmp /berth-vm/status
sync
exit "$rc"
