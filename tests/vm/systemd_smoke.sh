#!/bin/sh
# Smoke test of the VM harness's systemd mode (run by vm-run.sh --mode systemd, CTest
# vm.systemd_smoke): systemd is PID 1 on a pure cgroup v2 host, D-Bus answers, and
# transient scopes get the limits asked for (what berth's systemd cgroup driver will
# rely on). Prints one line per check; exits non-zero on the first failure.
set -u
fail() { echo "systemd_smoke: FAIL: $*"; exit 1; }
ok() { echo "systemd_smoke: ok: $*"; }

[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd"
ok "PID 1 is systemd"
grep -q '^0::/system.slice/berth-vm.service$' /proc/self/cgroup \
    || fail "not in berth-vm.service's cgroup: $(cat /proc/self/cgroup)"
ok "running in $(cut -d: -f3 /proc/self/cgroup) (cgroup v2 only)"
for c in cpu memory pids io cpuset; do
    grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || fail "controller $c missing"
done
ok "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

version=$(busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
    org.freedesktop.systemd1.Manager Version) || fail "busctl get-property Version failed"
ok "D-Bus: systemd Manager Version $version"

limits=$(systemd-run --quiet --scope -p MemoryMax=32M -p TasksMax=10 -p CPUWeight=50 \
    sh -c 'd=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); echo $(cat $d/memory.max $d/pids.max $d/cpu.weight)') \
    || fail "systemd-run --scope failed"
[ "$limits" = "33554432 10 50" ] || fail "scope limits are '$limits', want '33554432 10 50'"
ok "transient scope: memory.max pids.max cpu.weight = $limits"

systemd-run --quiet --scope -p MemoryMax=16M -p MemorySwapMax=0 tail /dev/zero
rc=$?
[ "$rc" = 137 ] || fail "tail /dev/zero in a 16M scope exited $rc, want 137 (SIGKILL by the OOM killer)"
ok "OOM kill inside a MemoryMax scope (exit $rc)"

# (systemd-run expands $$ itself; writing 0 to cgroup.procs moves the writer.)
systemd-run --quiet --wait -p Delegate=yes -p TasksMax=5 --unit=berth-smoke-delegate \
    sh -c 'd=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); mkdir $d/child && echo 0 >$d/child/cgroup.procs && grep -q /child /proc/self/cgroup' \
    || fail "a Delegate=yes service cannot manage its own sub-cgroups"
ok "Delegate=yes service manages its own sub-cgroup"
echo "systemd_smoke: all checks passed"
