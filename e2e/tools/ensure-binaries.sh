#!/usr/bin/env bash
# Makes the real servers the platform runs available, each from the first place that has it:
#   1. $KDC_BIN_DIR/<binary>          (operator-provided)
#   2. the cache $KDC_CACHE_DIR/<tool>-<version>/<binary> (default ~/.cache/kdc-platform)
#   3. a build from the Go module proxy through the wrapper module in e2e/tools/<tool>/
# Fails first if a required host tool (openssl, bwrap, nsenter, setpriv) is missing.
# Prints one line per binary, "<binary>=<absolute path>", on stdout; progress goes to stderr.
# Usage: ensure-binaries.sh [tool ...]   (default: every tool the platform and tests need; bench-only
# tools such as kms-load are built only when named)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KDC_CACHE_DIR:-$HOME/.cache/kdc-platform}

# tool | version | binaries (name=go package, space separated) | extra ldflags
manifest() {
  cat <<'EOF'
etcd|v3.6.16|etcd=go.etcd.io/etcd/server/v3 etcdctl=go.etcd.io/etcd/etcdctl/v3 etcdutl=go.etcd.io/etcd/etcdutl/v3|
kubernetes|v1.36.3|kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kubectl=k8s.io/kubernetes/cmd/kubectl|-X k8s.io/component-base/version.gitVersion=v1.36.3 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean
vault|v1.21.0|vault=github.com/hashicorp/vault|
minio|v0.0.0-20260212201848-7aac2a2c5b7c|minio=github.com/minio/minio|-X github.com/minio/minio/cmd.Version=2026-02-12T20:18:48Z -X github.com/minio/minio/cmd.ReleaseTag=DEVELOPMENT.2026-02-12T20-18-48Z -X github.com/minio/minio/cmd.CommitID=7aac2a2c5b7c -X github.com/minio/minio/cmd.ShortCommitID=7aac2a2c5b7c
helm|v4.3.1|helm=helm.sh/helm/v4/cmd/helm|-X helm.sh/helm/v4/internal/version.version=v4.3.1
kms-load|v1|kms-load=kdc.local/tools/kms-load|
vault-kubernetes-kms|c3bc385fd531|vault-kubernetes-kms=github.com/FalcoSuessgott/vault-kubernetes-kms|
registry|v0.22.1|registry=github.com/google/go-containerregistry/cmd/registry|
EOF
}

# Load generators and anchors for `npm run bench:*`: never part of the default set, so tests never
# wait for them.
bench_only=" kms-load vault-kubernetes-kms "

# Anchors: public third-party code our benchmarks measure against (../shared/anchors, see its
# README), never shipped and never copied into this repository. Each is built from a throw-away
# copy of its folder, so the shared folder is never written to; its dependencies come from the Go
# module proxy like every other tool's.
anchors=${KDC_ANCHORS_DIR:-$(cd "$here/../../.." && pwd)/shared/anchors}
# The folder a tool is built in: the wrapper module in e2e/tools/<tool>/ or an anchor's folder.
source_dir() {
  case $1 in
    vault-kubernetes-kms) echo "$anchors/$1" ;;
    *) echo "$here/$1" ;;
  esac
}

log() { printf '[ensure-binaries] %s\n' "$*" >&2; }

# Host tools the platform needs besides the binaries below: openssl (PKI) and, for the local
# Kamaji runner's pods, bwrap, nsenter and setpriv. A missing one fails here, loudly, never a skip.
# The image build (packages/images, `npm run images`, e2e/tests/images.test.ts): buildah, skopeo
# and umoci, and binutils (readelf, strip) and dpkg-deb for the base image's parts.
host_tools="openssl:openssl bwrap:bubblewrap nsenter:util-linux setpriv:util-linux buildah:buildah skopeo:skopeo umoci:umoci readelf:binutils strip:binutils dpkg-deb:dpkg"
missing_tools=()
for entry in $host_tools; do
  command -v "${entry%%:*}" >/dev/null || missing_tools+=("${entry%%:*} (apt package ${entry#*:})")
done
if [ ${#missing_tools[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # A fresh Debian machine: install them from its package mirror (root, no prompt).
  packages=$(printf '%s\n' "${missing_tools[@]}" | sed -n 's/.*(apt package \(.*\))/\1/p' | sort -u | tr '\n' ' ')
  log "installing host tools: $packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages >&2 || true
  missing_tools=()
  for entry in $host_tools; do
    command -v "${entry%%:*}" >/dev/null || missing_tools+=("${entry%%:*} (apt package ${entry#*:})")
  done
fi
if [ ${#missing_tools[@]} -gt 0 ]; then
  log "missing host tools: ${missing_tools[*]}; install them, e.g. apt-get install -y --no-install-recommends bubblewrap util-linux openssl buildah skopeo umoci binutils"
  exit 1
fi

build_tool() {
  local tool=$1 version=$2 bins=$3 ldflags=$4 dir=$5 build_id=$6
  command -v go >/dev/null || { log "go is not installed: cannot build $tool"; return 1; }
  local tmp="$dir.tmp.$$" start=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building $tool $version from the Go module proxy (first build on this machine; later runs use $dir)"
  local pair name pkg src
  src=$(source_dir "$tool")
  [ -f "$src/go.mod" ] || { log "no Go module for $tool in $src"; return 1; }
  if [ "$src" != "$here/$tool" ]; then
    # An anchor: build from a copy (the original stays untouched; go may write go.sum).
    cp -r "$src" "$tmp/src"
    src="$tmp/src"
  fi
  for pair in $bins; do
    name=${pair%%=*} pkg=${pair#*=}
    log "  go build $pkg -> $name"
    (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -v -trimpath \
        -ldflags "-s -w $ldflags" -o "$tmp/$name" "$pkg" 2>&1) |
      awk -v t="$name" '
        /^go: downloading/ { next }
        /^#|\.go:[0-9]+|^go: / { print > "/dev/stderr"; next }   # compiler and module errors
        { n++; if (n % 100 == 0) printf("[ensure-binaries]   %s: %d packages compiled\n", t, n) > "/dev/stderr" }'
    [ -x "$tmp/$name" ] || { log "build of $name failed"; rm -rf "$tmp"; return 1; }
  done
  rm -rf "$tmp/src"
  echo "$version" > "$tmp/VERSION"
  echo "$build_id" > "$tmp/BUILD_ID"
  rm -rf "$dir" && mv "$tmp" "$dir"
  log "built $tool in $((SECONDS - start))s"
}

wanted=("$@")
while IFS='|' read -r tool version bins ldflags; do
  [ -n "$tool" ] || continue
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $tool " ]]; then continue; fi
  if [ ${#wanted[@]} -eq 0 ] && [[ $bench_only =~ " $tool " ]]; then continue; fi
  dir="$cache/$tool-$version"
  # A cached build is reused only if it came from this exact manifest line and wrapper module.
  src=$(source_dir "$tool")
  build_id=$({ printf '%s|%s|%s\n' "$version" "$bins" "$ldflags"; cat "$src/go.mod" "$src/go.sum"; if [ "$src" = "$here/$tool" ]; then cat "$src/"*.go 2>/dev/null || true; else (cd "$src" && find . -name '*.go' -type f | LC_ALL=C sort | xargs cat); fi; } | sha256sum | cut -c1-16)
  cached() {
    [ "$(cat "$dir/BUILD_ID" 2>/dev/null)" = "$build_id" ] || return 1
    local pair; for pair in $bins; do [ -x "$dir/${pair%%=*}" ] || return 1; done
  }
  missing=0
  for pair in $bins; do
    name=${pair%%=*}
    if [ -n "${KDC_BIN_DIR:-}" ] && [ -x "$KDC_BIN_DIR/$name" ]; then continue; fi
    cached || missing=1
  done
  if [ $missing = 1 ]; then
    mkdir -p "$cache"
    # One builder at a time per tool, even when several test processes start together.
    exec 9>"$cache/$tool.lock"
    flock 9
    cached || build_tool "$tool" "$version" "$bins" "$ldflags" "$dir" "$build_id"
    flock -u 9
  fi
  for pair in $bins; do
    name=${pair%%=*}
    if [ -n "${KDC_BIN_DIR:-}" ] && [ -x "$KDC_BIN_DIR/$name" ]; then
      echo "$name=$KDC_BIN_DIR/$name"
    else
      echo "$name=$dir/$name"
    fi
  done
done < <(manifest)
