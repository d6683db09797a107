#!/usr/bin/env bash
# Quick start, command 1: start the bundled Acumatica sandbox, run a real
#   meltano --environment demo run tap-acumatica target-jsonl
# show what landed and where, then stop the sandbox. Options: ./scripts/demo.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_uv.sh
source scripts/_uv.sh
exec uv run --locked --all-groups python -m scripts.demo "$@"
