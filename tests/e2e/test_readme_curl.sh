#!/usr/bin/env bash
# The README's "Try it with curl" block and its --local example, run as a user runs them, and
# every "# →" line in them held against what the commands really print (tests/e2e/readme_curl.py
# says how a line is read). The README cannot drift from the code: change an answer's shape and
# this fails, naming the step. The block's one address (http://127.0.0.1:3000, where
# scripts/run-local.sh serves) is replaced by the test server's; nothing else is changed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

README=$SOURCE_DIR/README.md
CHECK=$SOURCE_DIR/tests/e2e/readme_curl.py
export TASKHOST_STORE="sqlite:$TMP/readme.db"

section "the curl block against --serve on an empty store"
if ! serve_start; then
  fail "server starts and answers"
  finish
fi
mkdir "$TMP/curl" "$TMP/local" "$TMP/bad"
check "the block is found and split into steps" python3 "$CHECK" script "$README" curl "$TMP/curl"
python3 "$CHECK" script "$README" curl "$TMP/curl" >"$TMP/curl.sh"
check_eq "the block sets API_URL to run-local.sh's address" 1 \
  "$(grep -c '^export API_URL=http://127.0.0.1:3000$' "$TMP/curl.sh")"
sed -i "s|^export API_URL=http://127.0.0.1:3000\$|export API_URL=$BASE_URL|" "$TMP/curl.sh"
(cd "$TMP" && bash "$TMP/curl.sh")
if python3 "$CHECK" check "$README" curl "$TMP/curl" >"$TMP/curl.report"; then pass; else
  fail "the README's curl answers have the shapes it shows"
fi
cat "$TMP/curl.report"
check_match "at least 15 of the README's lines were compared" '^(1[5-9]|[2-9][0-9]|[0-9]{3,}) checks, 0 failed$' \
  "$(tail -n 1 "$TMP/curl.report")"
serve_stop

section "the checker sees a drifted README"
# The same outputs against a README whose answers changed the way they drift: a count, a field
# the code does not send, a status line. Each must be caught.
drift() { # NAME PERL-SUBSTITUTION
  sed -n '1,$p' "$README" >"$TMP/bad/README.md"
  perl -0pi -e "$2" "$TMP/bad/README.md"
  if cmp -s "$README" "$TMP/bad/README.md"; then fail "$1: the substitution changed nothing"; return; fi
  if python3 "$CHECK" check "$TMP/bad/README.md" curl "$TMP/curl" >"$TMP/bad/report"; then
    fail "$1: not caught"
  else
    pass
  fi
}
drift "a wrong count" 's/"count":3,"next":"AjAx/"count":2,"next":"AjAx/'
drift "a field the API does not send" 's/"priority":"high","created_at"/"priority":"high","due":"…","created_at"/'
drift "a missing field" 's/"task":"Write documentation","status":"new","priority":"high",/"task":"Write documentation","status":"new",/'
drift "a wrong status line" 's/# → HTTP\/1.1 204 No Content/# → HTTP\/1.1 200 OK/'
drift "a wrong header" 's/# → Allow: GET, POST, OPTIONS\n# → \{/# → Allow: GET, POST, PUT, OPTIONS\n# → {/'
drift "a string where a number is" 's/"created_at":1796300897,"updated_at":1796300897\}\}/"created_at":"1796300897","updated_at":1796300897}}/'

section "the --local example"
export TASKHOST_STORE="sqlite:$TMP/local/taskhost.db"
ln -s "$TASKHOST_BIN" "$TMP/local/taskhost"
python3 "$CHECK" script "$README" local "$TMP/local" >"$TMP/local.sh"
(cd "$TMP/local" && bash "$TMP/local.sh")
if python3 "$CHECK" check "$README" local "$TMP/local" >"$TMP/local.report"; then pass; else
  fail "the README's --local answer has the shape it shows"
fi
cat "$TMP/local.report"
check "it wrote event.json where the user is (git ignores it)" test -s "$TMP/local/event.json"
check_jq "the event lists the (empty) store" "$(cat "$TMP/local/0.out")" \
  '.statusCode == 200 and (.body | fromjson | .count == 0)'
finish
