#!/bin/sh
# Quick start: install dependencies, build berth, and run the main job — a real
# busybox container under berth-runtime (namespaces, cgroup v2, capabilities,
# seccomp-ready, read-only root). Run as root on Debian bookworm.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BERTH_BUILD_DIR:-$src/build}

"$src/packaging/install-deps.sh"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target berth-runtime

# A bundle: busybox-static as the root filesystem, berth-runtime's default config
# with a short script instead of an interactive shell.
bundle=${BERTH_QUICKSTART_BUNDLE:-/var/lib/berth/quickstart/busybox}
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" \
         "$bundle/rootfs/dev" "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
rm -f "$bundle/rootfs/bin/busybox"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$bundle/rootfs/etc/group"
rm -f "$bundle/config.json"
"$build/berth-runtime" spec --bundle "$bundle"
script='echo hello from a berth container; echo hostname: $(hostname); echo pid: $$; id; grep -e CapEff -e NoNewPrivs /proc/self/status; cat /proc/self/cgroup; touch /x 2>/dev/null || echo the root filesystem is read-only'
sed -i -e 's/"terminal": true/"terminal": false/' \
       -e "s#^\( *\)\"sh\"\$#\1\"sh\", \"-c\", \"$script\"#" "$bundle/config.json"

id="quickstart-$$"
echo "+ berth-runtime run --bundle $bundle $id"
exec "$build/berth-runtime" run --bundle "$bundle" "$id"
