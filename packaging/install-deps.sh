#!/bin/sh
# Installs every Debian bookworm package that berth's build, tests and benchmarks
# need. Run as root on Debian bookworm (a debootstrap minbase is enough).
# Idempotent: packages already present are left alone.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root (apt-get install); try: sudo $0" >&2
    exit 1
fi

PACKAGES="
  ca-certificates git pkg-config
  g++ cmake ninja-build
  libabsl-dev
  libseccomp-dev libcap-dev
  libnl-3-dev libnl-route-3-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libsdbus-c++-dev libsystemd-dev
  googletest libgtest-dev libgmock-dev
  nlohmann-json3-dev
  libarchive-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
  libnftables-dev libnetfilter-conntrack-dev
  libsqlite3-dev
  libspdlog-dev libfmt-dev
  libcli11-dev libyaml-cpp-dev libtomlplusplus-dev libboost-dev
  libmicrohttpd-dev prometheus-cpp-dev
  libbenchmark-dev
  busybox-static runc crun
  iproute2 iptables util-linux procps kmod e2fsprogs
  qemu-system-x86 xz-utils
  docker-registry apache2-utils containerd containernetworking-plugins
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
else
    echo "install-deps: all packages present"
fi
