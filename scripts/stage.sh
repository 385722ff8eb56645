#!/usr/bin/env bash
# run_stage LOG LABEL CMD...: run CMD with all its output in LOG; show one
# line for the stage -- updated in place on a terminal with the last
# "[ i/N]" progress mmengine logged -- then "done in S s (log: LOG)".  On
# failure: the last 40 lines of LOG, its path, and CMD's exit status.
# Sourced by scripts/demo.sh and scripts/det_search_chain.sh; lines are
# tagged with $STAGE_TAG (default "demo").
run_stage() {
  local log=$1 label=$2
  shift 2
  mkdir -p "$(dirname "$log")"
  local start=$SECONDS rc=0 progress=''
  "$@" >"$log" 2>&1 &
  local pid=$!
  if [ -t 1 ]; then
    while kill -0 "$pid" 2>/dev/null; do
      progress=$(grep -oE '\[ *[0-9]+/[0-9]+\]' "$log" 2>/dev/null | tail -n 1 | tr -d ' ' || true)
      printf '\r['"${STAGE_TAG:-demo}"' %s] %s %s %ss ' "$(date +%H:%M:%S)" "$label" "$progress" "$((SECONDS - start))"
      sleep 2
    done
    printf '\r\033[K'
  fi
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '['"${STAGE_TAG:-demo}"' %s] %s FAILED (exit %s) after %ss; last lines of %s:\n' \
      "$(date +%H:%M:%S)" "$label" "$rc" "$((SECONDS - start))" "$log"
    tail -n 40 "$log" | sed 's/^/    /'
    printf '['"${STAGE_TAG:-demo}"'] full log: %s\n' "$log"
    return "$rc"
  fi
  printf '['"${STAGE_TAG:-demo}"' %s] %s done in %ss (log: %s)\n' "$(date +%H:%M:%S)" "$label" \
    "$((SECONDS - start))" "$log"
}
