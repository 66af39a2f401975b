#!/bin/sh
# Bad input at the command line, in the workflow and in the config file: one
# clear line on stderr, exit 2, nothing run.
. "${abs_top_srcdir}/tests/integration/lib.sh"

good='{"pipeline":[{"steps":[{"name":"a","uuid":"1","environment":{},"on_success":true}]}],"network":"","volume":"","secrets":null}'
printf '%s\n' "$good" >"$T/good.json"

# bad_run WHAT EXPECTED-TEXT perch-args...: exit 2 and one line containing the text.
bad_run() {
	what=$1 text=$2
	shift 2
	run_perch "$T/out" "$T/err" "$@"
	expect_rc 2 "$what"
	expect_grep "$text" "$T/err" "$what"
	head -n 1 "$T/err" | grep -qF -- "$text" || fail "$what: the reason is not on the first line"
}

: >"$T/empty.json"
bad_run "an empty file" "empty.json: empty document" --backend dummy run "$T/empty.json"
printf '{"pipeline": [' >"$T/trunc.json"
bad_run "truncated JSON" "trunc.json: line 1" --backend dummy run "$T/trunc.json"
printf '{"pipeline":[{"steps":[{"name":"a","uuid":"1","environment":"x"}]}]}' >"$T/type.json"
bad_run "a wrong type" 'type.json: pipeline[0].steps[0].environment: expected an object, got a string' --backend dummy run "$T/type.json"
printf '{"pipeline":[{"steps":[{"name":"a","environment":{}}]}]}' >"$T/nouuid.json"
bad_run "a step without uuid" 'nouuid.json: pipeline[0].steps[0]: step has no uuid' --backend dummy run "$T/nouuid.json"
printf '\377\376garbage' >"$T/binary.json"
bad_run "binary garbage" "binary.json" --backend dummy run "$T/binary.json"
bad_run "a missing file" "nonexistent.json: No such file or directory" --backend dummy run "$T/nonexistent.json"
bad_run "a directory" "Is a directory" --backend dummy run "$T"
bad_run "no workflow argument" "run takes one workflow file" --backend dummy run
bad_run "two workflow arguments" "run takes one workflow file" --backend dummy run "$T/good.json" "$T/good.json"
bad_run "an unknown option" "unknown option --frobnicate" run --frobnicate "$T/good.json"
bad_run "an option without value" "option --timeout needs a value" run "$T/good.json" --timeout
bad_run "a bad duration" 'invalid value "10" for --timeout (from --timeout): not a duration' run --timeout 10 "$T/good.json"
bad_run "a bad log format" 'invalid value "xml" for --log-format' run --log-format xml "$T/good.json"
bad_run "an unknown command" 'unknown command "frobnicate"' frobnicate
bad_run "an option of another command" "option --json belongs to 'perch backends'" run --json "$T/good.json"
bad_run "an unknown backend" 'backend "nosuch" not found' --backend nosuch run "$T/good.json"
PERCH_BACKEND=nosuch bad_run "an unknown backend from the environment" 'backend "nosuch" not found' run "$T/good.json"
bad_run "a bad log level" 'invalid value "loud" for --log-level' --log-level loud backends

# stdin works ("-"), and a bad document on stdin is named <stdin>
run_perch "$T/out" "$T/err" --backend dummy run - <"$T/good.json" || true
expect_rc 0 "a workflow on stdin"
printf 'nope' | { run_perch "$T/out" "$T/err" --backend dummy run -; expect_rc 2 "garbage on stdin"; }
expect_grep "<stdin>" "$T/err"

# config files: syntax error, unknown key, wrong type, unknown backend key, missing file
printf 'backend = "dummy"\nplugin_path = [ "/x" \n' >"$T/syntax.conf"
bad_run "a config syntax error" "syntax.conf:3:" --config "$T/syntax.conf" backends
printf 'backend = "dummy";\nfrobnicate = 1;\n' >"$T/unknown.conf"
bad_run "an unknown config key" "unknown.conf:2: unknown key \"frobnicate\"" --config "$T/unknown.conf" backends
printf 'backend = 3;\n' >"$T/type.conf"
bad_run "a wrongly typed config key" "type.conf:1: backend: expected a string, got an integer" --config "$T/type.conf" backends
printf 'backends: { dummy: { state_dri = "/tmp"; }; };\n' >"$T/typo.conf"
bad_run "a typo in a backend key" 'typo.conf:1: unknown key "backends.dummy.state_dri": backend dummy has no flag --backend-dummy-state-dri' --config "$T/typo.conf" backends
printf 'backends: { nosuch: { x = 1; }; };\n' >"$T/nosuch.conf"
bad_run "settings for an unknown backend" 'no installed backend "nosuch"' --config "$T/nosuch.conf" backends
bad_run "a missing config file" "missing.conf: cannot read config file" --config "$T/missing.conf" backends
PERCH_CONFIG="$T/missing.conf" bad_run "a missing PERCH_CONFIG file" "missing.conf: cannot read config file" backends

# the config file's backend and settings are used; the command line wins
printf 'backend = "nosuch";\n' >"$T/backend.conf"
bad_run "the config file's backend" 'backend "nosuch" not found' --config "$T/backend.conf" run "$T/good.json"
run_perch "$T/out" "$T/err" --config "$T/backend.conf" --backend dummy run "$T/good.json"
expect_rc 0 "--backend overrides the config file"
echo "bad_input: all passed"
