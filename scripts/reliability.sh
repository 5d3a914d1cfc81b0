#!/usr/bin/env bash
# The whole reliability suite, then its table (scenario, runs, jobs, lost, duplicates, 5xx,
# max memory): every fault scenario repeated LIPDUB_FAULT_RUNS times (default 20; the
# ordinary test command runs 2), schemathesis with LIPDUB_FUZZ_EXAMPLES examples per
# operation and mode (default 200, new examples each run; the test command replays the same
# 25), and the isolation, SSRF, race and hostile-request tests. Set-up as scripts/test.sh;
# safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LIPDUB_FAULT_RUNS=${LIPDUB_FAULT_RUNS:-20}
export LIPDUB_FUZZ_EXAMPLES=${LIPDUB_FUZZ_EXAMPLES:-200} LIPDUB_FUZZ_RANDOM=1
exec .venv/bin/python -m pytest -q tests/faults tests/test_isolation.py \
    tests/test_netguard.py tests/test_races.py tests/test_hostile_requests.py \
    tests/test_api_fuzz.py "$@"
