#!/bin/sh
# Integration test of the perch command line around plugins: `perch
# backends` (text and --json), `perch --help`, and the start-up errors a
# user meets first (unknown option, broken config file, bad value in the
# environment).  Runs the real binary against the plugins the build made
# (plugins/*/.libs/*.so) plus fixture plugins, copied to a private folder
# that PERCH_PLUGIN_PATH puts first.  (Copies of the shipped plugins shadow
# the installed ones, which perch then lists as refused: that is expected.)
set -eu

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

: "${abs_top_builddir:?abs_top_builddir is not set: run this through make check}"
: "${abs_top_srcdir:?abs_top_srcdir is not set: run this through make check}"

# The staged install when the test environment provides it (tests/local.mk),
# else the binary in the build tree.
perch=${PERCH:-$abs_top_builddir/host/perch}
jsonflat=$abs_top_builddir/tests/integration/jsonflat
fixtures=$abs_top_builddir/tests/fixtures/plugins/.libs
[ -x "$perch" ] || fail "$perch is missing: build it first"
[ -x "$jsonflat" ] || fail "$jsonflat is missing: build it with make check"
[ -f "$fixtures/good.so" ] || fail "$fixtures/good.so is missing: build it with make check"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/perch-backends.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

plugdir=$tmp/plugins
mkdir "$plugdir"

# Whatever shipped plugins the build produced, under their own names.
shipped=
for so in "$abs_top_builddir"/plugins/*/.libs/*.so; do
	[ -f "$so" ] || continue
	cp "$so" "$plugdir/"
	shipped="$shipped ${so##*/}"
done
# One good fixture and a few broken ones.
for name in good wrong_major no_wait undef_sym plain; do
	cp "$fixtures/$name.so" "$plugdir/"
done
printf 'a text file whose name ends in .so, which is no shared object at all\n' \
	>"$plugdir/x.so"

# A clean environment: only this folder, no config, no stray settings.
unset PERCH_CONFIG PERCH_BACKEND WOODPECKER_BACKEND PERCH_LOG_LEVEL \
	PERCH_GOOD_AVAILABLE PERCH_GOOD_COUNT FIXTURE_GOOD_COUNT || :
PERCH_PLUGIN_PATH=$plugdir
export PERCH_PLUGIN_PATH

# run NAME ARGS...: runs perch with stdout/stderr in $tmp/NAME.out/.err and
# its exit status in $rc.
run() {
	name=$1
	shift
	rc=0
	"$perch" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
}

# run_env NAME VAR=VALUE ARGS...: run, with one more environment variable.
run_env() {
	name=$1
	assign=$2
	shift 2
	rc=0
	env "$assign" "$perch" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
}

# has FILE TEXT: FILE has a line that is exactly TEXT.
has() {
	grep -qxF -- "$2" "$1" || {
		printf -- '--- %s:\n' "$1" >&2
		cat "$1" >&2
		fail "no line \"$2\" in $1"
	}
}

# has_prefix FILE PREFIX: FILE has a line that starts with PREFIX.
has_prefix() {
	awk -v p="$2" 'index($0, p) == 1 { found = 1 } END { exit !found }' "$1" || {
		printf -- '--- %s:\n' "$1" >&2
		cat "$1" >&2
		fail "no line starting \"$2\" in $1"
	}
}

expect_rc() {
	[ "$rc" -eq "$1" ] || {
		printf -- '--- stdout:\n' >&2
		cat "$tmp/$name.out" >&2
		printf -- '--- stderr:\n' >&2
		cat "$tmp/$name.err" >&2
		fail "perch $name: exit $rc, want $1"
	}
}

# ---- perch backends ----------------------------------------------------
run backends backends
expect_rc 0
out=$tmp/backends.out
has "$out" "good 1.2.3 (ABI 1.0)"
has "$out" "  path:         $plugdir/good.so"
has "$out" "  available:    yes"
has "$out" "  platform:     fixture/none"
has "$out" "  capabilities: perch.workflow-discoverer/1, perch.workflow-resumer/1"
has "$out" "  flags:"
has_prefix "$out" "    --backend-good-count (int, default 1)"
has "$out" "refused $plugdir/wrong_major.so: built for perch ABI 2.3; this perch speaks ABI 1"
has "$out" "refused $plugdir/no_wait.so: required call wait_step is missing"
has "$out" "refused $plugdir/undef_sym.so: cannot load: $plugdir/undef_sym.so: undefined symbol: perch_fixture_missing_fn"
has "$out" "refused $plugdir/plain.so: not a perch plugin: no perch_backend_v1 symbol"
has "$out" "refused $plugdir/x.so: cannot load: $plugdir/x.so: invalid ELF header"
has_prefix "$out" "searched: $plugdir:"
# Every shipped plugin the build made is listed or refused, never ignored.
for so in $shipped; do
	grep -qF "$plugdir/$so" "$out" || fail "perch backends does not mention $plugdir/$so"
done

# ---- perch backends --json ---------------------------------------------
run json backends --json
expect_rc 0
"$jsonflat" <"$tmp/json.out" >"$tmp/json.flat" ||
	fail "perch backends --json printed invalid JSON (see $tmp/json.out)"
flat=$tmp/json.flat
# The array index of the entry whose path is $plugdir/$1.
index_of() {
	sed -n "s|^\\(\\[[0-9]*\\]\\)\\.path=\"$plugdir/$1\"\$|\\1|p" "$flat"
}
g=$(index_of good.so)
[ -n "$g" ] || fail "no entry for good.so in perch backends --json"
has "$flat" "$g.name=\"good\""
has "$flat" "$g.version=\"1.2.3\""
has "$flat" "$g.abi=\"1.0\""
has "$flat" "$g.available=true"
has "$flat" "$g.loaded=true"
has "$flat" "$g.platform=\"fixture/none\""
has "$flat" "$g.capabilities[0]=\"perch.workflow-discoverer/1\""
has "$flat" "$g.capabilities[1]=\"perch.workflow-resumer/1\""
has "$flat" "$g.flags[0].name=\"backend-good-available\""
has "$flat" "$g.flags[1].name=\"backend-good-count\""
has "$flat" "$g.flags[1].kind=\"int\""
has "$flat" "$g.flags[1].env[0]=\"PERCH_GOOD_COUNT\""
has "$flat" "$g.flags[1].config=\"backends.good.count\""
has "$flat" "$g.flags[1].default=\"1\""
has "$flat" "$g.error=null"
w=$(index_of wrong_major.so)
[ -n "$w" ] || fail "no entry for wrong_major.so in perch backends --json"
has "$flat" "$w.name=null"
has "$flat" "$w.available=false"
has "$flat" "$w.capabilities=[]"
has "$flat" "$w.flags=[]"
has "$flat" "$w.error=\"built for perch ABI 2.3; this perch speaks ABI 1\""
u=$(index_of undef_sym.so)
[ -n "$u" ] || fail "no entry for undef_sym.so in perch backends --json"
has "$flat" "$u.error=\"cannot load: $plugdir/undef_sym.so: undefined symbol: perch_fixture_missing_fn\""
for so in $shipped; do
	i=$(index_of "$so")
	[ -n "$i" ] || fail "no entry for $so in perch backends --json"
	has_prefix "$flat" "$i.name="
	has_prefix "$flat" "$i.available="
	has_prefix "$flat" "$i.error="
done

# ---- perch --help ------------------------------------------------------
run help --help
expect_rc 0
has_prefix "$tmp/help.out" "Usage: perch "
has_prefix "$tmp/help.out" "Backend good ($plugdir/good.so 1.2.3)"
# The good plugin's flags are listed under its heading, and nothing but
# its own flags is listed there.
awk -v head="Backend good (" '
	index($0, head) == 1 { inside = 1; next }
	/^Backend / { inside = 0 }
	inside && /^  --/ {
		n++
		if (index($0, "  --backend-good-") != 1) bad = bad " " $1
	}
	END {
		if (n != 3) { print "want 3 flags under Backend good, got " n; exit 1 }
		if (bad != "") { print "foreign flags under Backend good:" bad; exit 1 }
	}' "$tmp/help.out" >"$tmp/help.check" ||
	fail "perch --help: $(cat "$tmp/help.check")"
has_prefix "$tmp/help.out" "  --backend-good-count N"
has_prefix "$tmp/help.out" "  --backend-good-available "

# ---- start-up errors ----------------------------------------------------
run unknown --no-such-option backends
expect_rc 2
[ ! -s "$tmp/unknown.out" ] || fail "perch --no-such-option wrote to stdout"
[ "$(sed -n 1p "$tmp/unknown.err")" = "perch: unknown option --no-such-option" ] ||
	fail "perch --no-such-option: stderr starts \"$(sed -n 1p "$tmp/unknown.err")\""
# One line of error; at most a hint to --help after it.
[ "$(wc -l <"$tmp/unknown.err")" -le 2 ] || fail "perch --no-such-option: more than two lines"
if [ "$(wc -l <"$tmp/unknown.err")" -eq 2 ]; then
	has_prefix "$tmp/unknown.err" "Try 'perch"
fi

broken=$abs_top_srcdir/tests/fixtures/conf/syntax.conf
run config --config "$broken" backends
expect_rc 2
[ "$(cat "$tmp/config.err")" = "perch: $broken:4: syntax error" ] ||
	fail "perch --config $broken: stderr is \"$(cat "$tmp/config.err")\""

# A config file that sets a key the backend does not have.
printf 'backends: {\n  good: {\n    colour = "blue";\n  };\n};\n' >"$tmp/typo.conf"
run typo --config "$tmp/typo.conf" backends
expect_rc 2
[ "$(cat "$tmp/typo.err")" = "perch: $tmp/typo.conf:3: unknown key \"backends.good.colour\": backend good has no flag --backend-good-colour" ] ||
	fail "typo.conf: stderr is \"$(cat "$tmp/typo.err")\""

# The same through PERCH_CONFIG.
run_env envconfig "PERCH_CONFIG=$broken" backends
expect_rc 2
has "$tmp/envconfig.err" "perch: $broken:4: syntax error"

run_env badenv PERCH_GOOD_COUNT=ten backends
expect_rc 2
[ "$(cat "$tmp/badenv.err")" = "perch: invalid value \"ten\" for --backend-good-count (from environment variable PERCH_GOOD_COUNT): not an integer" ] ||
	fail "PERCH_GOOD_COUNT=ten: stderr is \"$(cat "$tmp/badenv.err")\""

# The second variable is read when the first is unset.
run_env badenv2 FIXTURE_GOOD_COUNT=1x backends
expect_rc 2
has "$tmp/badenv2.err" "perch: invalid value \"1x\" for --backend-good-count (from environment variable FIXTURE_GOOD_COUNT): not an integer"

# A good value is accepted.
run_env goodenv PERCH_GOOD_COUNT=5 backends
expect_rc 0

# The command line wins over the environment: the bad value there is never
# read.  And a bad value on the command line names the option.
run_env cliwins PERCH_GOOD_COUNT=ten --backend-good-count=3 backends
expect_rc 0
run badcli --backend-good-count 3x backends
expect_rc 2
has "$tmp/badcli.err" "perch: invalid value \"3x\" for --backend-good-count (from --backend-good-count): not an integer"

# A correct config file with settings for the good plugin is accepted ...
run goodconf --config "$abs_top_srcdir/tests/fixtures/conf/backends.conf" backends
expect_rc 0
# ... and a value of the wrong type in it is reported with file:line.
printf 'backends: {\n  good: {\n    count = "ten";\n  };\n};\n' >"$tmp/type.conf"
run type --config "$tmp/type.conf" backends
expect_rc 2
has "$tmp/type.err" "perch: $tmp/type.conf:3: backends.good.count: expected an integer, got a string"

# ---- perch backends --json: one shape for every entry --------------------
# Every entry, listed or refused, has the same keys (null when unknown), so
# that a consumer can read any entry the same way.  (Checked last: it is
# the check most likely to change with the output format.)
n=$(sed -n 's/^\[\([0-9]*\)\]\..*/\1/p' "$flat" | sort -un | wc -l)
[ "$n" -ge 6 ] || fail "perch backends --json lists $n entries, want at least 6"
i=0
while [ "$i" -lt "$n" ]; do
	for key in name version abi path available capabilities flags error; do
		has_prefix "$flat" "[$i].$key"
	done
	i=$((i + 1))
done

exit 0
