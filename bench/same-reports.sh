#!/usr/bin/env bash
# same-reports.sh: prove a refactoring changed no behaviour. Builds drwatchd at two revisions,
# runs `drwatchd simulate` on every scenario in scenarios/ (drwatchd in the default and rough
# worlds, with and without probes, and the seed's rule), and diffs the JSON reports with
# wall_seconds (the only real-time figure) removed.
#
#   bench/same-reports.sh BASE_REV [NEW_REV]    (NEW_REV defaults to the working tree)
#
# Exit status: 0 every report byte-identical, 1 some differ (the diff is printed), 2 usage/build.
set -euo pipefail

base=${1:?usage: bench/same-reports.sh BASE_REV [NEW_REV]}
new=${2:-}
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
# KEEP=1 keeps the builds and reports (the directory is printed) to look at a difference.
if [ -n "${KEEP:-}" ]; then echo "same-reports: working in $tmp" >&2; else trap 'rm -rf "$tmp"' EXIT; fi

# build REV DIR: build cmd/drwatchd at REV ("" = working tree) into DIR/drwatchd.
build() {
  local rev=$1 dir=$2
  mkdir -p "$dir/src"
  if [ -z "$rev" ]; then
    (cd "$root" && go build -o "$dir/drwatchd" ./cmd/drwatchd)
  else
    git -C "$root" archive "$rev" | tar -x -C "$dir/src"
    (cd "$dir/src" && go build -o "$dir/drwatchd" ./cmd/drwatchd)
  fi
}

# The runs of each scenario: drwatchd in both world profiles, with its probes and on metrics
# alone (--no-probes: every verdict from the Monitoring poller), and the seed's rule ("naive").
variants=("drwatchd" "drwatchd --profile rough" "drwatchd --no-probes" "drwatchd --profile rough --no-probes" "naive")

# reports DIR: run every scenario in every variant with DIR's binary into DIR/out.
reports() {
  local dir=$1 f name v tag
  mkdir -p "$dir/out"
  for f in "$root"/scenarios/*.yaml; do
    name=$(basename "$f" .yaml)
    for v in "${variants[@]}"; do
      tag=${v// --/.}; tag=${tag// /-}
      # Exit status 1 (an expectation failed) is a result like any other: it is compared too.
      # shellcheck disable=SC2086 # $v holds the policy and its flags
      "$dir/drwatchd" simulate --scenario "$f" --policy $v --out "$dir/out/$name.$tag.json" \
        2>"$dir/out/$name.$tag.summary" || [ $? -eq 1 ]
      sed -i '/"wall_seconds":/d' "$dir/out/$name.$tag.json"
      # The summary's first line carries the wall time ("... simulated in 0.9s)"): drop it.
      sed -i '1s/ in [0-9.]*s)$/)/' "$dir/out/$name.$tag.summary"
    done
  done
}

build "$base" "$tmp/base" || exit 2
build "$new" "$tmp/new" || exit 2
reports "$tmp/base"
reports "$tmp/new"
n=$(ls "$tmp/base/out"/*.json | wc -l)
if diff -r "$tmp/base/out" "$tmp/new/out"; then
  echo "same-reports: $n reports identical (base $base, new ${new:-working tree})"
else
  echo "same-reports: reports differ (base $base, new ${new:-working tree})" >&2
  exit 1
fi
