#!/bin/sh
# vm-run.sh: runs one command as root inside a throwaway pure-cgroup-v2 QEMU VM.
#
#   tests/vm/vm-run.sh [options] [--] COMMAND [ARG...]
#
# The guest shares the host's root read-only over 9p under a tmpfs overlay, so host
# binaries (the build tree, runc, crun, busybox) run unchanged and nothing the guest
# writes reaches the host, except through the run directory (9p, writable, /berth-vm
# in the guest), which carries the command in and its exit status out. The guest has
# no network (-nic none) and a small sparse virtio disk (/dev/vda) for io.max tests.
#
# Options:
#   --build DIR     build tree holding the cache (default $BERTH_BUILD_DIR or <src>/build)
#   --mode MODE     plain (default): a shell script is PID 1, cgroup2 mounted with
#                   every controller enabled; systemd: systemd 252 is PID 1 (host's
#                   enabled units masked), the command runs as berth-vm.service
#   --timeout SECS  hard limit for the whole VM run (default 600); QEMU is then
#                   killed by its PID and the harness exits 124
#   --name NAME     names the run directory and log (default "run")
#   --env VAR=VAL   sets VAR in the command's environment (repeatable)
#   --append ARGS   extra kernel command line arguments (e.g. loglevel=7)
#   --quiet         do not copy the guest console to stdout (it is always logged)
#   --prepare       only prepare the kernel and initramfs, boot nothing
#
# Files, all under <build>/vm/: kernel/ (the unpacked linux-image .deb), vmlinux and
# initramfs.cpio (made only when missing or older than the scripts that make them),
# runs/NAME/ (the run directory) and logs/NAME.log (the guest console).
#
# Exit status: the command's exit status in the guest; 124 on timeout; 125 when the
# guest gave no status (boot failure, crash: see the log); 77 when this machine cannot
# run the VM at all (no qemu-system-x86_64, kernel package not downloadable), which
# CTest reports as a skip.
#
# The kernel is Debian's generic linux-image (dependency of linux-image-amd64),
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` into the build tree;
# it is never installed on the host. QEMU boots the ELF vmlinux extracted from the
# xz-compressed vmlinuz directly (PVH entry), which skips the decompressor.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${BERTH_BUILD_DIR:-$src/build}
mode=plain
timeout=600
name=run
quiet=0
prepare_only=0
envs=""
extra_append=""

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
    exit 2
}
die() { echo "vm-run: $*" >&2; exit 1; }
unavailable() { echo "vm-run: SKIP: $*" >&2; exit 77; }
# Single-quotes $1 for sh.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --env) envs="$envs export $(quote "${2%%=*}")=$(quote "${2#*=}");"; shift 2 ;;
        --append) extra_append=$2; shift 2 ;;
        --quiet) quiet=1; shift ;;
        --prepare) prepare_only=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
case "$mode" in plain|systemd) ;; *) die "--mode must be plain or systemd, not \"$mode\"" ;; esac
case "$name" in *[!A-Za-z0-9._-]*|"") die "--name may hold only letters, digits and . _ -" ;; esac
[ $# -gt 0 ] || [ "$prepare_only" = 1 ] || die "no command given (see --help)"
[ "$(id -u)" = 0 ] || die "must run as root (QEMU's 9p export of / must read every file)"

command -v qemu-system-x86_64 >/dev/null 2>&1 \
    || unavailable "qemu-system-x86_64 not found; install qemu-system-x86 (packaging/install-deps.sh)"

mkdir -p "$build/vm"
cache=$(cd "$build/vm" && pwd)

# ---------------------------------------------------------------------------------
# Kernel and initramfs, cached in $cache. One preparer at a time (flock).
modules_wanted="netfs fscache 9pnet 9p virtio_ring virtio 9pnet_virtio
  virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk overlay"

prepare_kernel() {
    [ -s "$cache/vmlinux" ] && [ -d "$cache/kernel/lib/modules" ] && return 0
    echo "vm-run: preparing the guest kernel in $cache/kernel"
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$pkg" ] || unavailable "apt-cache knows no linux-image-amd64 dependency (run apt-get update)"
    rm -rf "$cache/kernel" "$cache/kernel-dl"
    mkdir -p "$cache/kernel-dl"
    (cd "$cache/kernel-dl" && apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed') \
        || true
    deb=$(ls "$cache"/kernel-dl/*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || unavailable "apt-get download $pkg failed"
    dpkg-deb -x "$deb" "$cache/kernel.tmp" || die "dpkg-deb -x $deb failed"
    ver=$(ls "$cache/kernel.tmp/lib/modules")
    # modules.dep for modprobe in the guest; -b keeps depmod inside the unpacked tree.
    depmod -b "$cache/kernel.tmp" "$ver" || die "depmod for $ver failed"
    mv "$cache/kernel.tmp" "$cache/kernel"
    rm -rf "$cache/kernel-dl"

    vmlinuz=$(ls "$cache"/kernel/boot/vmlinuz-*)
    # The bzImage's payload is an xz stream: find its magic (FD 37 7A 58 5A 00).
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1)
    [ -n "$off" ] || die "no xz stream in $vmlinuz"
    tail -c "+$((off + 1))" "$vmlinuz" | xz -dc --single-stream >"$cache/vmlinux.tmp" 2>/dev/null \
        || [ -s "$cache/vmlinux.tmp" ] || die "cannot decompress $vmlinuz"
    [ "$(head -c 4 "$cache/vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] \
        || die "the payload of $vmlinuz is not an ELF vmlinux"
    mv "$cache/vmlinux.tmp" "$cache/vmlinux"
}

prepare_initramfs() {
    out=$cache/initramfs.cpio
    if [ -s "$out" ] && [ ! "$here/initramfs-init.sh" -nt "$out" ] && [ ! "$0" -nt "$out" ]; then
        return 0
    fi
    echo "vm-run: building $out"
    [ -x /bin/busybox ] || unavailable "/bin/busybox missing; install busybox-static"
    ver=$(ls "$cache/kernel/lib/modules")
    dep=$cache/kernel/lib/modules/$ver/modules.dep
    dir=$cache/initramfs.d
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$dir/lib/modules" "$dir/dev" "$dir/proc" "$dir/sys"
    cp /bin/busybox "$dir/bin/busybox"
    cp "$here/initramfs-init.sh" "$dir/init"
    chmod 0755 "$dir/init"
    : >"$dir/modules.order"
    for m in $modules_wanted; do
        rel=$(grep -E "/$m\.ko:" "$dep" | cut -d: -f1)
        [ -n "$rel" ] || die "module $m is not in $dep"
        cp "$cache/kernel/lib/modules/$ver/$rel" "$dir/lib/modules/$m.ko"
        echo "$m" >>"$dir/modules.order"
    done
    (cd "$dir" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc >"$out.tmp" 2>/dev/null) \
        || die "cpio of $dir failed"
    mv "$out.tmp" "$out"
    rm -rf "$dir"
}

exec 9>"$cache/.prepare.lock"
flock 9
prepare_kernel
prepare_initramfs
flock -u 9
[ "$prepare_only" = 1 ] && { echo "vm-run: kernel and initramfs ready in $cache"; exit 0; }

# ---------------------------------------------------------------------------------
# The run directory: command, helper scripts, disk image; receives the status.
run=$cache/runs/$name
log=$cache/logs/$name.log
rm -rf "$run"
mkdir -p "$run" "$cache/logs"
exec 8>"$cache/runs/.$name.lock"
flock -n 8 || die "another run named $name is in progress (use --name)"
cp "$here/guest-init.sh" "$here/guest-run.sh" "$here/berth-vm.service" "$here/berth-vm.target" "$run/"
echo "$mode" >"$run/mode"
{
    echo "export HOME=/root LANG=C.UTF-8 BERTH_VM=1 BERTH_VM_MODE=$mode;$envs"
    if [ -d "$PWD" ]; then echo "cd $(quote "$PWD") 2>/dev/null || cd /"; fi
    printf 'exec'
    for a in "$@"; do printf ' %s' "$(quote "$a")"; done
    echo
} >"$run/cmd.sh"
echo "$*" >"$run/cmd.txt"
truncate -s 64M "$run/disk.img"

ver=$(ls "$cache/kernel/lib/modules")
append="console=ttyS0 panic=-1 loglevel=4 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
append="$append berth.mode=$mode berth.modules=$cache/kernel/lib/modules"
[ -n "$extra_append" ] && append="$append $extra_append"
if [ "$mode" = systemd ]; then
    append="$append systemd.unit=berth-vm.target systemd.show_status=error"
fi

echo "vm-run: booting ($mode, timeout ${timeout}s); console log: $log"
# The log exists before tail follows it (QEMU's redirection happens in the background
# job, which may run after tail starts).
: >"$log"
start=$(date +%s)
qemu_pid=
cleanup() {
    if [ -s "$run/qemu.pid" ]; then kill -KILL "$(cat "$run/qemu.pid")" 2>/dev/null || true; fi
}
trap 'cleanup; exit 130' INT TERM HUP
# timeout(1) signals QEMU by its PID after $timeout s, and SIGKILLs it 5 s later.
timeout -k 5 "$timeout" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m 2G -nographic -no-reboot -nic none \
    -pidfile "$run/qemu.pid" \
    -kernel "$cache/vmlinux" -initrd "$cache/initramfs.cpio" -append "$append" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$run,mount_tag=berthout,security_model=none,multidevs=remap" \
    -drive "file=$run/disk.img,format=raw,if=virtio,cache=unsafe" \
    </dev/null >"$log" 2>&1 &
qemu_pid=$!
tail_pid=
if [ "$quiet" = 0 ]; then
    tail -n +1 -f --pid="$qemu_pid" "$log" &
    tail_pid=$!
fi
set +e
wait "$qemu_pid"
qrc=$?
set -e
if [ -n "$tail_pid" ]; then wait "$tail_pid" 2>/dev/null || true; fi
trap - INT TERM HUP
elapsed=$(($(date +%s) - start))

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "vm-run: TIMEOUT: the VM ran longer than ${timeout}s and was killed; see $log" >&2
    exit 124
fi
if [ ! -s "$run/status" ]; then
    echo "vm-run: the guest reported no exit status (QEMU exit $qrc after ${elapsed}s); see $log" >&2
    exit 125
fi
rc=$(cat "$run/status")
echo "vm-run: guest command exited with status $rc; VM run took ${elapsed}s"
exit "$rc"
