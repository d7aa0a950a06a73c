# Warroom's container image: `make image` builds it, `make image-test` runs it against the fake
# Slack and Postgres (docs/operations.md#docker).
#
# BASE_IMAGE is any Debian-based image with Python 3.11+ and its venv module, used by both
# stages: python:3.11-slim-bookworm by default, or an image made from Debian packages where no
# registry is reachable (deploy/docker/debian-base.sh; `make image` falls back to it).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: the wheel, installed with its dependencies into a virtual environment ----------
FROM ${BASE_IMAGE} AS build
# Where pip finds packages (a mirror, say), and the PEM text of any certificate authority that
# the way to it needs beyond the base image's (a TLS-inspecting proxy): build.sh passes the
# host's /usr/local/share/ca-certificates. Both are used in this stage only.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG EXTRA_CA_CERTS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/warroom \
 && if [ -n "$EXTRA_CA_CERTS" ]; then \
      { cat /etc/ssl/certs/ca-certificates.crt; printf '%s\n' "$EXTRA_CA_CERTS"; } > /tmp/pip-ca.pem; \
    fi
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
COPY templates ./templates
# Every dependency ships binary wheels for this platform, so no compiler is needed here either.
RUN if [ -f /tmp/pip-ca.pem ]; then export PIP_CERT=/tmp/pip-ca.pem; fi \
 && /opt/warroom/bin/pip install --upgrade pip \
 && /opt/warroom/bin/pip wheel --no-deps --wheel-dir /dist . \
 && /opt/warroom/bin/pip install --only-binary=:all: /dist/warroom-*.whl \
 && /opt/warroom/bin/python -m compileall -q /opt/warroom/lib \
 && /opt/warroom/bin/warroom --version

# --- runtime: the base image, the environment, a user ----------------------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="Warroom" \
      org.opencontainers.image.description="A Slack bot that runs incident war rooms: declare, roles, updates, escalation, review." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.documentation="docs/operations.md"

RUN groupadd --gid 10001 warroom \
 && useradd --uid 10001 --gid warroom --home-dir /var/lib/warroom --create-home \
      --shell /usr/sbin/nologin warroom
COPY --from=build /opt/warroom /opt/warroom

# SQLite (the default database) lives in the working folder: mount a volume at /var/lib/warroom,
# or set DATABASE_URL to Postgres. Nothing else is written outside /tmp.
ENV PATH=/opt/warroom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/warroom
USER 10001:10001
EXPOSE 3000

# /healthz on the default port (HTTP mode; Socket Mode serves it on the same --host/--port).
# A 503 (database or Slack token down) or no answer fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]

ENTRYPOINT ["warroom"]
CMD ["serve"]
