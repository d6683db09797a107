#!/usr/bin/env bash
# Quick start, command 2: the whole test suite (also what .ci/run runs).
# Extra arguments go to pytest, e.g. ./scripts/test.sh -m "not e2e" -x
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_uv.sh
source scripts/_uv.sh
exec uv run --locked --all-groups pytest "$@"
