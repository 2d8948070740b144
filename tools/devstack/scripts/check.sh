#!/usr/bin/env bash
# `make test`: every quality gate in order, stopping at the first that fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"

stage() { printf '\n==> %s\n' "$*"; }

stage "ruff check"
uv run --frozen ruff check .

stage "ruff format --check"
uv run --frozen ruff format --check .

stage "mypy"
# Every src directory is a package base, so modules get their import names
# (auth.app, not services.auth.src.auth.app).
mapfile -t src_dirs < <(ls -d libs/billing_kit/src services/*/src tools/*/src 2>/dev/null)
MYPYPATH=$(IFS=:; echo "${src_dirs[*]}") uv run --frozen mypy "${src_dirs[@]}"

stage "generated protos are up to date"
bash tools/devstack/scripts/proto_check.sh

stage "pytest (unit, integration, e2e)"
set +e
uv run --frozen pytest -q "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
  echo "pytest collected no tests: failing, a test run that runs nothing proves nothing." >&2
  exit 1
fi
exit $code
