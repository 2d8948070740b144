#!/usr/bin/env bash
# Generates the billing-protos package from proto/ into $1 (default: the committed package).
# `make proto` writes it; `make proto-check` generates into a temp dir and diffs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/libs/billing_protos/src}
cd "$root"
mapfile -t files < <(find proto -name '*.proto' | sort)
rm -rf "$out/billing"
mkdir -p "$out"
uv run --frozen python -m grpc_tools.protoc -Iproto \
  --python_out="$out" --mypy_out="$out" \
  --grpc_python_out="$out" --mypy_grpc_out="$out" \
  "${files[@]}"
# Every directory is a regular package so mypy and the build backend see it.
find "$out/billing" -type d -exec sh -c 'touch "$1/__init__.py"' _ {} \;
touch "$out/billing/py.typed"
echo "generated ${#files[@]} proto files into $out/billing" >&2
