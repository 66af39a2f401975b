#!/bin/sh
# Builds the docker backend's test image from the static busybox, with no
# registry on the internet: a root file system in a folder, `docker import`.
# Usage: tests/docker/image.sh [name]   (default perch-test/busybox:latest)
# Idempotent: an existing image of that name is kept.
set -eu
name=${1:-perch-test/busybox:latest}
if docker image inspect "$name" >/dev/null 2>&1; then
	exit 0
fi
bb=/bin/busybox
[ -x "$bb" ] || { echo "image.sh: $bb missing: apt-get install busybox-static" >&2; exit 1; }
root=$(mktemp -d "${TMPDIR:-/tmp}/perch-image.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home/tester"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
chmod 1777 "$root/tmp"
cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
tester:x:1000:1000:tester:/home/tester:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/sh
P
cat >"$root/etc/group" <<'G'
root:x:0:
tester:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$root/home/tester"
tar -C "$root" -c . | docker import \
	-c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
	-c 'CMD ["/bin/sh"]' - "$name" >/dev/null
echo "image.sh: built $name"
