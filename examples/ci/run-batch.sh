#!/usr/bin/env bash
# Run `stage5 batch` the way a CI job does, in plain shell: install stage5 into a virtualenv,
# build one locked project per script, write report.json and junit.xml, and exit with batch's
# own exit code (0 all ok or up to date, 1 a script failed, 2 bad usage, 130 interrupted).
#
#   examples/ci/run-batch.sh                       # the example scripts and style
#   examples/ci/run-batch.sh --model openai/gpt-4o-mini --jobs 4   # extra flags go to batch
#
# Settings (environment variables):
#   STAGE5_INPUT   scripts: a file, folder or glob   (default: examples/scripts)
#   STAGE5_STYLE   a style id or capsule YAML file   (default: examples/styles/harbour-ink.yaml)
#   STAGE5_OUT     the projects folder               (default: out)
#   STAGE5_REPORT  the JSON report                   (default: report.json)
#   STAGE5_JUNIT   the JUnit XML                     (default: junit.xml)
#   STAGE5_BIN     an installed stage5 executable to use instead of making a virtualenv
#   STAGE5_PYTHON  ... or a Python that already has stage5 installed (runs python -m stage5cli)
#   STAGE5_VENV    where to make the virtualenv      (default: .stage5-venv)
# A re-run skips the scripts that already finished with the same inputs: keep OUT between
# runs (a CI cache) to make re-runs cheap.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

input="${STAGE5_INPUT:-$repo/examples/scripts}"
style="${STAGE5_STYLE:-$repo/examples/styles/harbour-ink.yaml}"
out="${STAGE5_OUT:-out}"
report="${STAGE5_REPORT:-report.json}"
junit="${STAGE5_JUNIT:-junit.xml}"

if [ -n "${STAGE5_BIN:-}" ]; then
    stage5=("$STAGE5_BIN")
elif [ -n "${STAGE5_PYTHON:-}" ]; then
    stage5=("$STAGE5_PYTHON" -m stage5cli)
else
    venv="${STAGE5_VENV:-.stage5-venv}"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$repo"
    stage5=("$venv/bin/stage5")
fi

export CI="${CI:-true}"  # plain progress lines instead of the live table

# The images come from the offline placeholder renderer (index cards): lock-all refuses those
# unless told, so this example passes --allow-placeholder and says so. With a real backend
# (extra arguments such as --backend diffusers --image-model DIR) drop it from the call below.
echo "stage5: placeholder images (offline); locking with --allow-placeholder" >&2

set +e
"${stage5[@]}" batch "$input" \
    --style "$style" \
    --out "$out" \
    --generate --lock --allow-placeholder \
    --export json --export html \
    --report "$report" \
    --junit "$junit" \
    "$@"
code=$?
set -e

if [ -f "$report" ]; then
    echo "report: $report  junit: $junit  projects: $out/"
fi
exit "$code"
