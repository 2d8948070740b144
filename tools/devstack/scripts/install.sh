#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a fresh Debian machine with
# Python 3.11: uv, the workspace (with SecantusDB and Playwright from the dev
# dependencies), Debian's Chromium and a RabbitMQ broker. Safe to run again:
# every step checks first.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"

say() { printf 'install: %s\n' "$*" >&2; }
broker_port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null
}

# --- uv ----------------------------------------------------------------------
# pip --user puts uv in ~/.local/bin; root's sbin holds rabbitmq-server/rabbitmqctl.
export PATH="$HOME/.local/bin:$PATH:/usr/sbin:/sbin"
if ! command -v uv >/dev/null 2>&1; then
  say "uv not found; installing it with pip"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip || true
  fi
  # Debian marks its Python as externally managed; uv is a standalone tool, so
  # installing it beside the system packages is safe.
  python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages uv
  hash -r
fi

# --- Python workspace (services, kit, devstack, SecantusDB, test tools) ------
uv sync --frozen --quiet

# --- Chromium (the e2e browser tests drive Debian's build through Playwright) --
# `playwright install` downloads its own browser builds, which this network
# does not allow; the tests launch /usr/bin/chromium (or $CHROMIUM_PATH).
if [[ -z "${CHROMIUM_PATH:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
  say "Chromium not found; installing Debian's chromium"
  if ! apt_install chromium; then
    echo "Chromium could not be installed: install it (apt-get install chromium) or set CHROMIUM_PATH, then rerun." >&2
    exit 1
  fi
fi

# --- RabbitMQ ----------------------------------------------------------------

if [[ -n "${AMQP_URL:-}" ]]; then
  say "using the broker at AMQP_URL"
elif broker_port_open; then
  : # a broker already listens on 127.0.0.1:5672 (CI, or started earlier)
else
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    say "RabbitMQ not found; installing rabbitmq-server"
    # Without systemd the package's post-install start may fail; what matters
    # is whether the server is there to start ourselves.
    apt_install rabbitmq-server || true
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
      echo "RabbitMQ could not be installed here: start a broker and set AMQP_URL=amqp://USER:PASSWORD@HOST:5672/ then rerun." >&2
      exit 1
    fi
  fi
  if ! broker_port_open; then
    say "starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    if ! timeout 120 rabbitmqctl await_startup >/dev/null 2>&1; then
      echo "RabbitMQ did not start: see /var/log/rabbitmq, or start a broker and set AMQP_URL=amqp://USER:PASSWORD@HOST:5672/ then rerun." >&2
      exit 1
    fi
  fi
fi
