#!/bin/sh
# The plugin template, as a plugin author uses it: copied out of the tree,
# built with its own Makefile against the staged SDK through pkg-config
# alone, found by the staged perch through PERCH_PLUGIN_PATH, checked with
# the staged perch-conformance, and used to run a workflow.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/conformance/lib.sh"

command -v make >/dev/null 2>&1 || fail "make is required"
command -v pkg-config >/dev/null 2>&1 || fail "pkg-config is required"
: "${PERCH_TEST_PKGCONFIGDIR:?}" "${PERCH_TEST_DESTDIR:?}" "${CC:?}"

cp -R "$abs_top_srcdir/examples/plugin-template" "$T/template"
chmod -R u+w "$T/template"
rm -f "$T/template/template.so"
# PKG_CONFIG_LIBDIR: only the staged perch.pc, never a system-wide one;
# the sysroot makes its -I point inside the staging tree.
export PKG_CONFIG_PATH="$PERCH_TEST_PKGCONFIGDIR"
export PKG_CONFIG_LIBDIR="$PERCH_TEST_PKGCONFIGDIR"
export PKG_CONFIG_SYSROOT_DIR="$PERCH_TEST_DESTDIR"
export CC
set +e
make -C "$T/template" >"$T/build.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 0 ] || { cat "$T/build.log"; fail "the template does not build against the staged SDK"; }
[ -f "$T/template/template.so" ] || fail "make built no template.so"
expect_grep "-I$PERCH_TEST_DESTDIR" "$T/build.log" "the compile command (headers from the staged SDK)"

# perch finds it and can load it.
set +e
PERCH_PLUGIN_PATH="$T/template" "$PERCH" backends --json >"$T/backends.json" 2>"$T/err"
rc=$?
set -e
expect_rc 0 "perch backends"
jq_check "any(.[]; .name == \"template\" and .available and .loaded and .abi == \"1.0\" and .path == \"$T/template/template.so\" and (.platform | startswith(\"linux/\")) and (.flags | map(.name) | index(\"backend-template-shell\")) != null)" "$T/backends.json"

# Its own make check: the staged perch-conformance.
set +e
make -C "$T/template" check PERCH_CONFORMANCE="$CONFORMANCE" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_all_pass 2
expect_line "SKIP missing-image: the template ignores images"

# And it runs a workflow.
export PERCH_PLUGIN_PATH="$T/template"
run_perch "$T/out" "$T/err" run --backend template "$abs_top_srcdir/examples/hello.json"
expect_rc 0 "perch run --backend template"
expect_grep "[hello:L0:" "$T/out"
expect_grep "hello from perch on" "$T/out"

# make install puts it under DESTDIR.
make -C "$T/template" install DESTDIR="$T/dest" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "make install"; }
found=$(find "$T/dest" -name template.so | head -n 1)
[ -n "$found" ] || fail "make install DESTDIR=... installed no template.so"
