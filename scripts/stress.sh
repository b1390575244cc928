#!/usr/bin/env bash
# stress.sh runs the test suite again and again on a busy machine, to find
# tests that fail only sometimes (flakes). While it runs, BURNERS processes
# spin on the CPU, as other jobs do on a shared CI machine.
#
#   scripts/stress.sh                      # 10 runs of go test -race -count=1 ./..., 1 burner
#   RUNS=30 BURNERS=2 scripts/stress.sh    # more runs, more load
#   KEEP_GOING=1 scripts/stress.sh ./durable/...  # do not stop at the first failure; these packages only
#   TESTFLAGS="-race -count=5 -run TestReplay" scripts/stress.sh ./durable
#
# Each run's output is kept in $OUT (default: a new temp directory). At the
# end it prints how many runs passed, how long they took, and every test
# that failed, with the run it failed in. The exit status is 1 if any run
# failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=${RUNS:-10}
burners=${BURNERS:-1}
keep_going=${KEEP_GOING:-0}
read -r -a testflags <<<"${TESTFLAGS:--race -count=1}"
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)
out=${OUT:-$(mktemp -d -t cairn-stress.XXXXXX)}
mkdir -p "$out"

pids=()
stop_burners() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap stop_burners EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$burners"); do
	# A busy loop in a subshell: one core's worth of load each.
	(while :; do :; done) &
	pids+=($!)
done

echo "stress: $runs runs of go test ${testflags[*]} ${pkgs[*]}, $burners CPU burner(s), $(nproc) cores; logs in $out"
go test -count=1 -run XXX "${pkgs[@]}" >/dev/null || { echo "stress: the tests do not build" >&2; exit 2; }

passed=0
failed=0
start=$SECONDS
for i in $(seq "$runs"); do
	t0=$SECONDS
	log="$out/run-$i.log"
	if go test "${testflags[@]}" "${pkgs[@]}" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "run $i: ok ($((SECONDS - t0)) s)"
	else
		failed=$((failed + 1))
		echo "run $i: FAIL ($((SECONDS - t0)) s), $log:"
		grep -E -- '^\s*--- FAIL|^FAIL|panic:|DATA RACE|timed out' "$log" | sed 's/^/    /' | head -20
		[ "$keep_going" = 1 ] || break
	fi
done
echo "stress: $passed passed, $failed failed, in $((SECONDS - start)) s"
if [ "$failed" -gt 0 ]; then
	echo "failed tests:"
	grep -h -E -- '^\s*--- FAIL' "$out"/run-*.log | sed -E 's/ \([0-9.]+s\)//; s/^\s*//' | sort | uniq -c | sort -rn
	exit 1
fi
