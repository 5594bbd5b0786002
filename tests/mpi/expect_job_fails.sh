#!/bin/sh
# Runs an MPI job that must FAIL promptly: passes when the job exits non-zero
# within LIMIT_S seconds (timeout(1) guards against a hang) and its output
# contains PATTERN (empty: any output).
# usage: expect_job_fails.sh LIMIT_S PATTERN COMMAND...
limit=$1; pattern=$2; shift 2
start=$(date +%s)
out=$(timeout -k 5 "$limit" "$@" 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
printf '%s\n' "$out"
echo "exit code $rc after ${elapsed}s"
# 124: timeout stopped it; 137 after the limit: timeout had to KILL it (137
# before the limit is mpirun reporting a rank killed by SIGKILL).
if [ "$rc" -eq 124 ] || [ "$elapsed" -ge "$limit" ]; then
  echo "FAIL: the job hung (stopped by timeout after ${limit}s)"; exit 1
fi
if [ "$rc" -eq 0 ]; then
  echo "FAIL: the job exited 0 although a rank failed"; exit 1
fi
if [ -n "$pattern" ] && ! printf '%s\n' "$out" | grep -q -- "$pattern"; then
  echo "FAIL: output lacks '$pattern'"; exit 1
fi
echo "PASS"
