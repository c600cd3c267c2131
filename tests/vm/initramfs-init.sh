#!/bin/busybox sh
# /init of the VM harness's initramfs (built by tests/vm/vm-run.sh; runs under the
# static busybox, the only program in the initramfs).
#
# 1. loads the modules listed in /modules.order (9p over virtio, virtio-pci,
#    virtio-blk, overlay: all modules in Debian's generic kernel);
# 2. mounts the host's root (9p tag "hostroot", read-only) as the lower layer of an
#    overlay whose upper layer is a tmpfs, so the guest can write anywhere and nothing
#    reaches the host;
# 3. mounts the run directory (9p tag "berthout", writable) at /berth-vm: it holds the
#    command to run and receives its exit status;
# 4. bind-mounts the unpacked kernel's lib/modules (berth.modules= on the kernel
#    command line) over /lib/modules so that modprobe works in the guest;
# 5. switch_root: berth.mode=plain runs /berth-vm/guest-init.sh as PID 1;
#    berth.mode=systemd masks the host's enabled units, installs berth-vm.service and
#    berth-vm.target from the run directory and starts systemd (the kernel command line names systemd.unit=berth-vm.target).
# Any failure prints "berth-vm: initramfs: ..." and powers off; the host harness then
# reports that the guest gave no exit status.
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

fail() {
    echo "berth-vm: initramfs: $*"
    poweroff -f
    sleep 5
    exit 1
}

for m in $(cat /modules.order); do
    insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
done

mode=plain
modules=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        berth.mode=*) mode=${arg#berth.mode=} ;;
        berth.modules=*) modules=${arg#berth.modules=} ;;
    esac
done

mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower \
    || fail "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 upper /rw || fail "cannot mount the overlay's tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "cannot mount the overlay root"
mkdir -p /newroot/berth-vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 berthout /newroot/berth-vm \
    || fail "cannot mount the run directory (9p tag berthout)"
if [ -n "$modules" ] && [ -d "/newroot$modules" ]; then
    mkdir -p /newroot/lib/modules
    mount -o bind "/newroot$modules" /newroot/lib/modules || fail "cannot bind $modules"
fi

for fs in proc sys dev; do
    mkdir -p "/newroot/$fs"
    mount --move "/$fs" "/newroot/$fs" || fail "cannot move /$fs"
done

case "$mode" in
    plain)
        exec switch_root /newroot /bin/sh /berth-vm/guest-init.sh
        ;;
    systemd)
        etc=/newroot/etc/systemd/system
        mkdir -p "$etc"
        # Host units someone enabled (timers, getty, databases, timesyncd…) and the
        # ones that make no sense in a throwaway VM are masked in the overlay only.
        for link in "$etc"/*.wants/* "$etc"/*.requires/*; do
            [ -e "$link" ] || [ -L "$link" ] || continue
            ln -sf /dev/null "$etc/${link##*/}"
        done
        for unit in getty@.service serial-getty@.service console-getty.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
            systemd-udevd-control.socket systemd-udevd-kernel.socket \
            systemd-timesyncd.service systemd-networkd.service systemd-resolved.service \
            systemd-firstboot.service systemd-pstore.service systemd-binfmt.service \
            systemd-random-seed.service systemd-update-utmp.service \
            systemd-journal-flush.service e2scrub_reap.service remote-fs.target \
            tmp.mount \
            apt-daily.timer apt-daily-upgrade.timer; do
            ln -sf /dev/null "$etc/$unit"
        done
        : >/newroot/etc/fstab
        # systemd-tmpfiles would empty /tmp at boot ("D /tmp"), hiding a checkout or
        # build tree under the host's /tmp (CI clones): keep /tmp as it is.
        mkdir -p /newroot/etc/tmpfiles.d
        echo 'd /tmp 1777 root root -' >/newroot/etc/tmpfiles.d/tmp.conf
        # A host that is itself a container image carries /.dockerenv, which makes
        # systemd believe it runs in a container and ignore the kernel command line.
        rm -f /newroot/.dockerenv /newroot/run/.containerenv
        cp /newroot/berth-vm/berth-vm.service /newroot/berth-vm/berth-vm.target "$etc/" \
            || fail "cannot install berth-vm units"
        exec switch_root /newroot /lib/systemd/systemd --unit=berth-vm.target
        ;;
    *)
        fail "unknown berth.mode=$mode"
        ;;
esac
