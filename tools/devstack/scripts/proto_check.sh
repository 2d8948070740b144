#!/usr/bin/env bash
# Fails when regenerating proto/ would change the committed billing-protos package.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./scripts/gen_protos.sh "$tmp" 2>/dev/null
if ! diff -r -q -x '__pycache__' "$tmp/billing" libs/billing_protos/src/billing; then
  echo "generated protos are stale: run 'make proto' and commit libs/billing_protos/src/billing." >&2
  exit 1
fi
echo "protos up to date"
