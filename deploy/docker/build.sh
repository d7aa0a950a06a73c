#!/usr/bin/env bash
# `make image`: build the Warroom image (IMAGE, default warroom:latest) from the Dockerfile.
#
# The base is BASE_IMAGE when set. Otherwise python:3.11-slim-bookworm, when it is present or
# can be pulled; when it cannot (no registry reachable), an image made from Debian packages,
# warroom-base:bookworm, built once by deploy/docker/debian-base.sh and reused.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE="${IMAGE:-warroom:latest}"
DEFAULT_BASE="python:3.11-slim-bookworm"
DEBIAN_BASE="warroom-base:bookworm"

if ! docker info >/dev/null 2>&1; then
  echo "image: no Docker daemon answers (docker info failed); start one, or set DOCKER_HOST" >&2
  exit 1
fi

base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  if docker image inspect "$DEFAULT_BASE" >/dev/null 2>&1 || docker pull -q "$DEFAULT_BASE"; then
    base="$DEFAULT_BASE"
  else
    echo "image: cannot pull $DEFAULT_BASE; using $DEBIAN_BASE, made from Debian packages"
    if ! docker image inspect "$DEBIAN_BASE" >/dev/null 2>&1; then
      deploy/docker/debian-base.sh "$DEBIAN_BASE"
    fi
    base="$DEBIAN_BASE"
  fi
fi

version="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
# Certificate authorities this host trusts beyond Debian's (e.g. a TLS-inspecting proxy in
# front of PyPI), for pip in the build stage only: EXTRA_CA_FILES, default the host's local ones.
extra_ca=""
for file in ${EXTRA_CA_FILES:-/usr/local/share/ca-certificates/*.crt}; do
  if [ -f "$file" ]; then extra_ca+="$(cat "$file")"$'\n'; fi
done
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
echo "image: building $IMAGE (warroom $version) on $base"
docker build \
  --build-arg "BASE_IMAGE=$base" \
  --build-arg "VERSION=$version" \
  --build-arg "EXTRA_CA_CERTS=$extra_ca" \
  ${PIP_INDEX_URL:+--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL"} \
  --build-arg "REVISION=$revision" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --tag "$IMAGE" .
echo "image: built $IMAGE"
