#!/usr/bin/env bash
# Offline checks of terraform/ (no terraform binary or provider registry is needed):
#
#   1. syntax + canonical formatting of every .tf/.tfvars file, with HashiCorp's own HCL parser
#      and hclwrite formatter compiled to WebAssembly (npm @cdktn/hcl2json, @cdktn/hcl-tools;
#      the formatter behind `terraform fmt`); prints a diff for each file that is not canonical;
#   2. checkov on terraform/gcp, terraform/aws and terraform/azure with the custom policies in
#      terraform/policies; any failed check fails, and so does a custom policy that left a
#      resource of its type unevaluated (checkov drops a result it cannot decide);
#   3. the same on terraform/testdata/broken, which must FAIL: every custom policy and the
#      built-in checks listed below must report at least one failure there;
#   4. checkov's Dockerfile checks on the image's Dockerfile.
#
#   scripts/tf-check.sh                      all of the above
#   scripts/tf-check.sh --fix                rewrite files into canonical format, then check
#   scripts/tf-check.sh --expect-fail DIR    only step 3, on DIR
#
# Tools are installed once into ${ETL_CACHE_DIR:-$HOME/.cache/etl} (node-hcl/, checkov-venv/),
# from the npm registry and PyPI, pinned to the versions below. Needs node + npm and python3
# with venv. Exit 0 when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."

HCL_TOOLS_VERSION=0.24.0 # @cdktn/hcl-tools and @cdktn/hcl2json (hcl v2 hclwrite, WASM)
CHECKOV_VERSION=3.3.30
CLOUDS=(gcp aws azure)
BROKEN_DIR=terraform/testdata/broken
# Built-in checks that must also catch the broken configuration.
EXPECTED_BUILTIN_FAILURES=(CKV_GCP_114 CKV_GCP_29 CKV_GCP_28 CKV_GCP_78 CKV2_AWS_6 CKV_AWS_21 CKV2_AZURE_38 CKV2_AZURE_40 CKV2_AZURE_47)

CACHE="${ETL_CACHE_DIR:-$HOME/.cache/etl}"
NODE_DIR="$CACHE/node-hcl"
VENV="$CACHE/checkov-venv"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "tf-check: ok   $*"; }
fail() { failed=$((failed + 1)); echo "tf-check: FAIL $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

install_hcl_tools() {
  local marker="$NODE_DIR/.installed-$HCL_TOOLS_VERSION"
  [ -f "$marker" ] && return 0
  command -v npm >/dev/null || { echo "tf-check: npm is needed (apt-get install nodejs npm)" >&2; return 1; }
  local t0; t0=$(now)
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  npm install --silent --no-audit --no-fund --no-save --prefix "$NODE_DIR" \
    "@cdktn/hcl-tools@$HCL_TOOLS_VERSION" "@cdktn/hcl2json@$HCL_TOOLS_VERSION" >&2
  touch "$marker"
  echo "tf-check: installed @cdktn/hcl-tools + @cdktn/hcl2json $HCL_TOOLS_VERSION in $(since "$t0")" >&2
}

install_checkov() {
  local marker="$VENV/.installed-$CHECKOV_VERSION"
  [ -f "$marker" ] && return 0
  local t0; t0=$(now)
  rm -rf "$VENV"
  # Its own venv: checkov pins a fork of python-hcl2 that shadows the real one.
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  touch "$marker"
  echo "tf-check: installed checkov $CHECKOV_VERSION in $(since "$t0")" >&2
}

# Step 1: syntax and formatting of every HCL file under terraform/.
check_format() {
  local fix="$1" files=() f
  while IFS= read -r f; do files+=("$f"); done < <(find terraform -type f \( -name '*.tf' -o -name '*.tfvars' \) | sort)
  if [ "${#files[@]}" = 0 ]; then fail "format: no .tf files under terraform/"; return; fi
  local t0; t0=$(now)
  if [ "$fix" = 1 ]; then
    NODE_PATH="$NODE_DIR/node_modules" node scripts/hcl-tools.js --write "${files[@]}" || true
  fi
  local rc=0
  NODE_PATH="$NODE_DIR/node_modules" node scripts/hcl-tools.js --out "$WORK/fmt" "${files[@]}" || rc=$?
  if [ "$rc" = 1 ]; then fail "syntax: HCL parse errors (above)"; return; fi
  if [ "$rc" != 0 ]; then fail "format: scripts/hcl-tools.js failed (exit $rc)"; return; fi
  local bad=0
  for f in "${files[@]}"; do
    if ! diff -u --label "$f" --label "$f (canonical)" "$f" "$WORK/fmt/$f"; then bad=$((bad + 1)); fi
  done
  if [ "$bad" = 0 ]; then
    pass "syntax + format: ${#files[@]} files canonical ($(since "$t0"))"
  else
    fail "format: $bad of ${#files[@]} files not canonical (diff above; scripts/tf-check.sh --fix rewrites them)"
  fi
}

# Runs checkov on $1 (JSON report in $WORK/$2.json, no output). Returns checkov's exit code.
# (The JSON report is written without --quiet: with it checkov drops the passed checks, which
# the coverage check below needs.)
run_checkov() {
  local dir="$1" name="$2" out="$WORK/checkov-$2" rc=0
  mkdir -p "$out"
  BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" -d "$dir" --framework terraform --skip-download \
    --external-checks-dir terraform/policies --compact \
    -o json --output-file-path "$out" >"$out/stdout.txt" 2>"$out/stderr.txt" || rc=$?
  if [ ! -s "$out/results_json.json" ]; then
    cat "$out/stdout.txt" "$out/stderr.txt" >&2
    echo '{}' >"$WORK/$name.json"
    return 2
  fi
  cp "$out/results_json.json" "$WORK/$name.json"
  return "$rc"
}

# Reads a checkov JSON report and the custom policies, prints a compact report (counts, every
# failure, every inline skip with its reason) and then the problems, one a line, if any:
#   mode "clean":  failed checks, parsing errors, and custom policies that left a resource of
#                  their type without a result (checkov drops a result it cannot decide);
#   mode "broken": each custom policy, and each built-in check given, that failed nowhere.
# Exit 1 when there are problems.
analyse() {
  "$VENV/bin/python" - "$@" <<'PY'
import json, sys, pathlib, yaml

mode, report, policies_dir, *builtins = sys.argv[1:]
data = json.loads(pathlib.Path(report).read_text() or "{}")
reports = [r for r in (data if isinstance(data, list) else [data]) if isinstance(r, dict)]
results = {"passed": [], "failed": [], "skipped": []}
parsing_errors = 0
for r in reports:
    for k in results:
        results[k] += r.get("results", {}).get(f"{k}_checks", [])
    parsing_errors += r.get("summary", {}).get("parsing_errors", 0)

def types_of(node):
    out = set()
    if isinstance(node, dict):
        if node.get("cond_type") not in (None, "filter"):
            rt = node.get("resource_types", [])
            out |= {rt} if isinstance(rt, str) else set(rt)
        for v in node.values():
            out |= types_of(v)
    elif isinstance(node, list):
        for v in node:
            out |= types_of(v)
    return out

policies = {}
for p in sorted(pathlib.Path(policies_dir).glob("*.yaml")):
    doc = yaml.safe_load(p.read_text())
    policies[doc["metadata"]["id"]] = types_of(doc["definition"])

def where(c):
    lines = c.get("file_line_range") or [0, 0]
    return f'{c["resource"]} ({c.get("repo_file_path") or c.get("file_path")}:{lines[0]}-{lines[1]})'

print(f'checkov: {len(results["passed"])} passed, {len(results["failed"])} failed, '
      f'{len(results["skipped"])} skipped inline, {parsing_errors} parsing errors')
if mode == "clean":
    for c in results["skipped"]:
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        print(f'  skipped {c["check_id"]} {c["resource"]}: {reason}')
for c in sorted(results["failed"], key=lambda c: (c["check_id"], c["resource"])):
    print(f'  FAILED  {c["check_id"]} {c["check_name"]}: {where(c)}')

problems = []
if parsing_errors:
    problems.append(f"{parsing_errors} file(s) checkov could not parse")
if mode == "clean":
    problems += [f'{c["check_id"]} failed for {c["resource"]}' for c in results["failed"]]
    seen = {c["resource"] for k in results for c in results[k]}
    got = {(c["check_id"], c["resource"]) for k in results for c in results[k]}
    for pid, types in policies.items():
        for res in sorted(seen):
            if res.split(".")[0] in types and (pid, res) not in got:
                problems.append(f"{pid} has no result for {res} (checkov could not decide it)")
else:
    failed = {c["check_id"] for c in results["failed"]}
    for pid in list(policies) + builtins:
        if pid not in failed:
            problems.append(f"{pid} did not fail on the broken configuration")
for p in problems:
    print(f"  problem: {p}")
sys.exit(1 if problems else 0)
PY
}

check_cloud() {
  local cloud="$1" t0 rc=0
  t0=$(now)
  echo "== checkov terraform/$cloud"
  run_checkov "terraform/$cloud" "$cloud" || rc=$?
  if analyse clean "$WORK/$cloud.json" terraform/policies && [ "$rc" = 0 ]; then
    pass "checkov terraform/$cloud ($(since "$t0"))"
  else
    fail "checkov terraform/$cloud (checkov exit $rc; problems above)"
  fi
}

check_expect_fail() {
  local dir="$1" t0 rc=0
  t0=$(now)
  echo "== checkov $dir (must fail)"
  run_checkov "$dir" broken || rc=$?
  if [ "$rc" != 1 ]; then
    analyse broken "$WORK/broken.json" terraform/policies "${EXPECTED_BUILTIN_FAILURES[@]}" || true
    fail "$dir: checkov exited $rc, not 1 (failed checks), on a configuration that must fail"
  elif analyse broken "$WORK/broken.json" terraform/policies "${EXPECTED_BUILTIN_FAILURES[@]}"; then
    pass "$dir is caught by every custom policy and the expected built-in checks ($(since "$t0"))"
  else
    fail "$dir: some checks did not catch the broken configuration"
  fi
}

check_dockerfile() {
  local t0 rc=0
  t0=$(now)
  echo "== checkov Dockerfile"
  "$VENV/bin/checkov" -f Dockerfile --framework dockerfile --skip-download --compact --quiet \
    >"$WORK/dockerfile.txt" 2>&1 || rc=$?
  grep -v '^$' "$WORK/dockerfile.txt" | grep -v 'scan results:' || true
  if [ "$rc" = 0 ]; then pass "checkov Dockerfile ($(since "$t0"))"; else fail "checkov Dockerfile (exit $rc)"; fi
}

mode=all fix=0 expect_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --fix) fix=1 ;;
    --expect-fail) mode=expect-fail; expect_dir="${2:?--expect-fail needs a directory}"; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "tf-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

install_checkov
if [ "$mode" = all ]; then
  install_hcl_tools
  check_format "$fix"
  for cloud in "${CLOUDS[@]}"; do check_cloud "$cloud"; done
  check_expect_fail "$BROKEN_DIR"
  check_dockerfile
else
  check_expect_fail "$expect_dir"
fi

echo "tf-check: $passed passed, $failed failed"
[ "$failed" = 0 ]
