# syntax=docker/dockerfile:1.7
# One image per service, all from this file and uv.lock:
#   docker build --build-arg SERVICE=auth -t customer-portal/auth:0.1.0 .
# SERVICE is one of: auth subscriptions payments invoicing notifications gateway.
# `make images` (deploy/images.mk) builds all six.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder --
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Compile bytecode now: the runtime root filesystem is read-only, so Python
# could not write .pyc files there later. Copy (not hard-link) into the venv so
# it stands alone when copied into the final stage.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv

ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<service>" >&2; exit 1; }

WORKDIR /src
COPY . .

# Only the service's own dependency closure, exactly as locked, without dev
# tools; --no-editable installs the workspace packages into the venv itself,
# so the final stage needs /opt/venv and nothing from /src.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "${SERVICE}" \
 && /opt/venv/bin/python -c "import importlib, sys; importlib.import_module(sys.argv[1])" "${SERVICE}"

# ---------------------------------------------------------------- runtime --
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE
# A fixed numeric UID/GID so Kubernetes' runAsNonRoot can verify it without
# resolving names.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# Everything that might want to write (temp files, caches) goes to /tmp, which
# the chart mounts as an emptyDir; the rest of the filesystem can be read-only.
ENV PATH=/opt/venv/bin:${PATH} \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    APP_MODULE=${SERVICE}

LABEL org.opencontainers.image.title="customer-portal-${SERVICE}" \
      org.opencontainers.image.source="https://example.invalid/customer-portal"

USER 10001:10001
WORKDIR /tmp

# `exec` replaces the shell, so `python -m <service>` is PID 1 and receives
# SIGTERM directly for a graceful shutdown.
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"$APP_MODULE\" \"$@\"", "--"]
