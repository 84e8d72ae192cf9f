#!/usr/bin/env bash
# `npm run bench:copy`: installs what the copy benchmark needs (skopeo and docker-registry from
# Debian, GNU time for peak RSS, image-syncer and regsync with `go install` into
# bench/copy/out/bin), then runs bench/copy/bench.ts: generate the corpus once per scale, copy it
# with every tool into a fresh empty target, print the table and write bench/copy/RESULTS.md.
# Knobs: BENCH_SCALE (full | small), BENCH_JOBS (8), BENCH_TOOLS, BENCH_TOOL_TIMEOUT (1200 s),
# BENCH_REGISTRY (v3: distribution v3.0.0 built here with the current Go, the default; debian:
# Debian's docker-registry 2.8), BENCH_TARGET_DIR (targets' storage; default a tmpfs dir).
# image-syncer: the Go module proxy refuses its module; IMAGE_SYNCER_BIN may point at an
# image-syncer binary you already have, else it is reported as not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE=$PWD/node_modules/.bin/node
"$NODE" --version 2>/dev/null | grep -q '^v24\.' || { echo "node_modules/.bin/node is not Node 24: run npm ci" >&2; exit 1; }

missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v skopeo >/dev/null || missing+=(skopeo)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "the copy benchmark needs these Debian packages: ${missing[*]}" >&2
    exit 1
  fi
fi

BIN=$PWD/bench/copy/out/bin
mkdir -p "$BIN"
if command -v go >/dev/null; then
  if [ "${BENCH_REGISTRY:-v3}" != debian ] && [ ! -x "$BIN/registry" ]; then
    echo "go install github.com/distribution/distribution/v3/cmd/registry@v3.0.0" >&2
    GOBIN=$BIN go install github.com/distribution/distribution/v3/cmd/registry@v3.0.0
  fi
  if [ ! -x "$BIN/regsync" ]; then
    echo "go install github.com/regclient/regclient/cmd/regsync@latest" >&2
    GOBIN=$BIN go install github.com/regclient/regclient/cmd/regsync@latest || echo "regsync: go install failed; it will be reported as not run" >&2
  fi
  if [ ! -x "$BIN/image-syncer" ]; then
    echo "go install github.com/AliyunContainerService/image-syncer@latest" >&2
    if ! GOBIN=$BIN go install github.com/AliyunContainerService/image-syncer@latest; then
      if [ -n "${IMAGE_SYNCER_BIN:-}" ] && [ -x "$IMAGE_SYNCER_BIN" ]; then
        ln -sf "$IMAGE_SYNCER_BIN" "$BIN/image-syncer"
        echo "$("$IMAGE_SYNCER_BIN" --version 2>/dev/null | head -1 || echo provided) (binary given in IMAGE_SYNCER_BIN)" > "$BIN/image-syncer.source"
      else
        echo "image-syncer: the module proxy refused it and IMAGE_SYNCER_BIN is not set; it will be reported as not run" >&2
      fi
    fi
  fi
elif [ "${BENCH_REGISTRY:-v3}" != debian ]; then
  echo "go is not installed: it builds the registry (or run with BENCH_REGISTRY=debian)" >&2
  exit 1
else
  echo "go is not installed: image-syncer and regsync will be reported as not run" >&2
fi

exec "$NODE" --no-warnings bench/copy/bench.ts "$@"
