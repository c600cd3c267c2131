#!/bin/sh
# PID 1 of the VM harness's plain-init mode (copied into the run directory, which the
# guest sees at /berth-vm). The initramfs has already mounted the overlay root and
# moved /proc, /sys and /dev into it. This script mounts what a root test expects
# (cgroup2 with every controller enabled for children, devpts, /dev/shm, /run),
# runs /berth-vm/guest-run.sh (which records the command's exit status) and powers
# the VM off. If anything here dies, PID 1 exits, the kernel panics (panic=-1) and
# QEMU (-no-reboot) exits: the harness then reports a missing exit status.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bb=/bin/busybox

mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -t tmpfs -o mode=0755 run /run
# /tmp stays the overlay's: writes land in the guest's tmpfs upper layer, and a
# checkout or build tree under the host's /tmp (CI clones) stays visible.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/self/fd/0 /dev/stdin 2>/dev/null
ln -sf /proc/self/fd/1 /dev/stdout 2>/dev/null
ln -sf /proc/self/fd/2 /dev/stderr 2>/dev/null
hostname berth-vm
ip link set lo up 2>/dev/null

# Every controller the kernel offers is made available to the first level, as systemd
# does on a pure cgroup v2 host.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control \
        || echo "berth-vm: cannot enable cgroup controller $c"
done

/bin/sh /berth-vm/guest-run.sh
sync
$bb poweroff -f
