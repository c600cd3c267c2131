#!/bin/sh
# Quick start: install dependencies, build berth, and run the main job — berthd
# serving a real pod from a real image over CRI:
#   * a node network namespace of its own (the host's network is never touched),
#   * a local registry (Debian's docker-registry) serving the fixture busybox image,
#   * berthd on a default local config (root, state and socket under one temp dir,
#     our berth-bridge CNI plugin with berth-ipam on the node's pod subnet 10.88.0.0/24,
#     which berthd writes from its pod-cidr setting),
#   * berthctl pulls the image and runs a pod with two containers: an HTTP server and
#     a client fetching from it over localhost,
#   * prints the pod IP, the client's log and an HTTP response fetched from the node,
#     then removes the pod and stops everything it started.
# Run as root on Debian bookworm.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BERTH_BUILD_DIR:-$src/build}

if [ "${1:-}" != "--in-node-netns" ]; then
    "$src/packaging/install-deps.sh"
    cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" --target berthd berth-shim berth-runtime berthctl \
        berth-bridge berth-ipam berth-fixture-registry
    # The rest runs in a new network namespace: the CNI bridge and the pod live there.
    exec unshare --net -- "$0" --in-node-netns
fi

dir=$(mktemp -d /tmp/berth-quickstart-XXXXXX)
registry_pid=""
berthd_pid=""
pod=""
ctl() { "$build/berthctl" -r "unix://$dir/berth.sock" "$@"; }
cleanup() {
    set +e
    [ -n "$pod" ] && ctl rmp "$pod" >/dev/null
    [ -n "$berthd_pid" ] && kill "$berthd_pid" && wait "$berthd_pid"
    [ -n "$registry_pid" ] && kill "$registry_pid" && wait "$registry_pid"
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

busybox ip link set lo up

# The local registry with the fixture busybox image.
"$build/berth-fixture-registry" > "$dir/registry.addr" 2> "$dir/registry.log" &
registry_pid=$!
for _ in $(seq 100); do [ -s "$dir/registry.addr" ] && break; sleep 0.1; done
registry=$(cat "$dir/registry.addr")
[ -n "$registry" ] || { cat "$dir/registry.log"; exit 1; }
image="$registry/library/busybox:1.36"

# berthd's config: the registry is plain HTTP; the pod network is berth-bridge on the
# node's pod subnet (berthd writes it to pod-cidr-file, berth-ipam reads it there).
mkdir -p "$dir/net.d" "$dir/cni-bin"
ln -s "$build/berth-bridge" "$build/berth-ipam" "$dir/cni-bin/"
cat > "$dir/registries.conf" <<EOF
[[registry]]
location = "$registry"
insecure = true
EOF
cat > "$dir/net.d/10-quickstart.conflist" <<EOF
{"cniVersion": "1.1.0", "name": "quickstart", "plugins": [
  {"type": "berth-bridge", "bridge": "berth0", "isGateway": true, "isDefaultGateway": true,
   "ipMasq": true, "hairpinMode": true, "capabilities": {"portMappings": true},
   "ipam": {"type": "berth-ipam", "dataDir": "$dir/ipam",
            "podCIDRFile": "$dir/state/pod-cidr"}}]}
EOF
cat > "$dir/config.toml" <<EOF
root = "$dir/root"
state = "$dir/state"
listen = "$dir/berth.sock"
cni-conf-dir = "$dir/net.d"
cni-bin-dir = ["$dir/cni-bin"]
pod-cidr = ["10.88.0.0/24"]
pod-cidr-file = "$dir/state/pod-cidr"
registries-conf = "$dir/registries.conf"
EOF
echo "+ berthd --config $dir/config.toml"
"$build/berthd" --config "$dir/config.toml" > "$dir/berthd.log" 2>&1 &
berthd_pid=$!
for _ in $(seq 100); do ctl version >/dev/null 2>&1 && break; sleep 0.1; done
ctl version

# The pod and its two containers, in crictl's config format.
cat > "$dir/pod.json" <<EOF
{"metadata": {"name": "quickstart", "namespace": "default", "uid": "quickstart-uid"},
 "hostname": "quickstart", "log_directory": "$dir/logs",
 "dns_config": {"servers": ["10.96.0.10"], "searches": ["default.svc.cluster.local"],
                "options": ["ndots:5"]},
 "linux": {"cgroup_parent": "/berth-quickstart"}}
EOF
cat > "$dir/server.json" <<EOF
{"metadata": {"name": "server"}, "image": {"image": "$image"}, "log_path": "server.log",
 "command": ["/bin/sh", "-c",
   "mkdir -p /tmp/www && echo hello from a berth pod > /tmp/www/index.html && exec httpd -f -v -p 8080 -h /tmp/www"]}
EOF
cat > "$dir/client.json" <<EOF
{"metadata": {"name": "client"}, "image": {"image": "$image"}, "log_path": "client.log",
 "command": ["/bin/sh", "-c",
   "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.2; done; exit 1"]}
EOF

echo "+ berthctl pull $image"
ctl pull "$image"
echo "+ berthctl runp pod.json"
pod=$(ctl runp "$dir/pod.json")
echo "$pod"
server=$(ctl create "$pod" "$dir/server.json" "$dir/pod.json")
client=$(ctl create "$pod" "$dir/client.json" "$dir/pod.json")
ctl start "$server" "$client" >/dev/null
for _ in $(seq 100); do
    ctl ps -a --id "$client" | grep -q Exited && break
    sleep 0.1
done
ctl pods
ctl ps -a
ip=$(ctl inspectp -o json "$pod" | sed -n 's/.*"ip": *"\([0-9.]*\)".*/\1/p' | head -n 1)
echo "pod IP: $ip"
echo "client log:"
ctl logs "$client"
echo "HTTP response from the node (wget http://$ip:8080/):"
busybox wget -qO- "http://$ip:8080/"
echo "+ berthctl stopp / rmp"
ctl stopp "$pod"
ctl rmp "$pod"
pod=""
rmdir /sys/fs/cgroup/unified/berth-quickstart /sys/fs/cgroup/berth-quickstart 2>/dev/null || true
echo "quickstart: done"
