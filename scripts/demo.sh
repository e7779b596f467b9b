#!/usr/bin/env bash
# Set everything up and run the demo: a local cloud of namespaces upgraded under load, fip-swap next to
# failover, measured with real packets. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-dataplane.sh  # also installs the lab extra (matplotlib) for the timeline PNG
exec .venv/bin/lbswap demo "$@"
