#!/bin/sh
# Measures gossip convergence, failure detection and bandwidth for the
# cluster sizes given (default 3 10 50 100), all nodes in one process on
# 127.0.1.x with memberlist's LAN defaults. Prints a markdown table.
# Takes about 5 minutes on 2 cores; run it on an otherwise idle machine.
set -eu
cd "$(dirname "$0")/.."
sizes=$(echo "${*:-3 10 50 100}" | tr ' ' ',')
exec go test ./internal/cluster -run '^TestConvergence$' -convergence "$sizes" \
	-count=1 -timeout 15m -v | grep '^|'
