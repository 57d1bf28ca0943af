#!/usr/bin/env bash
# Restore planning time over 30 days of history (360 snapshots, compacted segments):
# reading the timeline and snapshot records of a repository on disk, then planning.
# Target: at most 100 ms. Prints the median and the worst of 20 random targets.
set -euo pipefail
cd "$(dirname "$0")/.."
ANCRE_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter PlanningBenchmarkTests 2>&1 | grep "BENCH plan"
