#!/usr/bin/env bash
# Writes a small single-layer OCI image into an OCI layout directory, with no network and no
# container engine, for trying the bridge where docker.io cannot be reached:
#   bash scripts/oci-image.sh DIR [TAG] [TEXT]
#   skopeo copy --dest-tls-verify=false oci:DIR:TAG docker://127.0.0.1:5000/library/busybox:TAG
# The layer holds one file, /hello.txt, with TEXT (default: "hello from harbor-swr-bridge");
# the same TEXT gives the same digests. One image per DIR: a second run replaces index.json.
set -euo pipefail
dir=${1:?usage: oci-image.sh DIR [TAG] [TEXT]}
tag=${2:-latest}
text=${3:-hello from harbor-swr-bridge}
for tool in tar gzip sha256sum stat; do
  command -v "$tool" >/dev/null || { echo "oci-image.sh needs $tool" >&2; exit 1; }
done
mkdir -p "$dir/blobs/sha256"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Adds file $1 as a blob; prints its digest (hex) and size.
blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$dir/blobs/sha256/$hex"
  echo "$hex $size"
}

printf '%s\n' "$text" > "$work/hello.txt"
tar -C "$work" --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=0644 --format=ustar -cf "$work/layer.tar" hello.txt
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -c "$work/layer.tar" > "$work/layer.tgz"
read -r layer layer_size < <(blob "$work/layer.tgz")

printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" > "$work/config.json"
read -r config config_size < <(blob "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
read -r manifest manifest_size < <(blob "$work/manifest.json")

printf '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
# One image per layout: index.json names it by TAG (what skopeo's oci:DIR:TAG looks up).
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$tag" > "$dir/index.json"
echo "sha256:$manifest"
