#!/usr/bin/env bash
# The trust campaigns of issue 10, under the `soak` marker: the fuzz campaign (100,000
# ACI requests, 10,000 mutated files per import format), the kill campaign (30 runs per
# operation at fault checkpoints plus random moments, on SQLite and PostgreSQL) and the
# 400 MB one-token import files. Prints and keeps the figures in soak-figures.txt.
#   scripts/soak.sh                  everything (about half an hour on two busy cores)
#   scripts/soak.sh tests/trust/test_fuzz.py   one part
# HASHLENS_FUZZ_ACI, HASHLENS_FUZZ_FILES and HASHLENS_FUZZ_SEED change the campaign size.
# PYTHON names the interpreter (default: .venv/bin/python, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${SOAK_FIGURES:-soak-figures.txt}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(tests/trust/test_fuzz.py tests/trust/test_kill_campaign.py
                                      tests/trust/test_bounded_imports.py)
started=$(date -u +%FT%TZ)
QT_QPA_PLATFORM=offscreen "$PY" -m pytest -p no:cacheprovider -m soak -s -q --timeout=7200 "${targets[@]}" \
  2>&1 | tee soak-log.txt
status=${PIPESTATUS[0]}
{
  echo "Soak campaign started $started, ended $(date -u +%FT%TZ), pytest exit status $status"
  grep -E '^(FUZZ|KILLS|BIG)' soak-log.txt
  grep -E '(passed|failed)' soak-log.txt | tail -1
} > "$OUT"
cat "$OUT"
exit "$status"
