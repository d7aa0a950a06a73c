#!/usr/bin/env bash
# A Python base image made from Debian packages, for machines that cannot pull
# python:3.11-slim-bookworm from a registry: debootstrap a minimal Debian bookworm with
# python3 and python3-venv (Python 3.11) and `docker import` it.
#
#   deploy/docker/debian-base.sh [TAG]            # default tag: warroom-base:bookworm
#   make image BASE_IMAGE=warroom-base:bookworm
#
# Needs root (debootstrap), the debootstrap package, a Docker daemon and a Debian mirror
# (DEBIAN_MIRROR, default http://deb.debian.org/debian).
set -euo pipefail

TAG="${1:-warroom-base:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "debian-base: debootstrap is not installed (apt-get install debootstrap)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "debian-base: debootstrap needs root" >&2
  exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

echo "debian-base: debootstrap $SUITE from $MIRROR (a few minutes)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
  tail -n 20 "$root.log" >&2
  echo "debian-base: debootstrap failed (full log: $root.log)" >&2
  exit 1
}
rm -f "$root.log"

# What a container never needs: package lists and caches (apt-get update brings the lists
# back), documentation, manuals.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log

echo "debian-base: importing as $TAG"
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --message "Debian $SUITE minbase with python3 and python3-venv" \
  - "$TAG" >/dev/null
docker run --rm "$TAG" python3 --version
echo "debian-base: $TAG is ready"
