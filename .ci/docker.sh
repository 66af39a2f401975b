#!/bin/sh
# The docker backend's test bed, on Debian bookworm as root (after
# apt-get update): a Docker engine, the test image built locally from the
# static busybox (nothing is pulled from the internet), and two
# docker-registry instances on loopback that hold a copy of it, one with
# htpasswd auth and one without, for the pull and auth tests.
#
#   127.0.0.1:5311  auth: user perch, password perch-test-pw
#   127.0.0.1:5312  no auth
#   127.0.0.1:5313  the engine over mutual TLS (socat in front of the
#                   socket); client certificates in
#                   /var/lib/perch-test-docker-tls/client
#   image perch-test/busybox:latest; in both registries as
#   127.0.0.1:531x/perch-test/busybox:latest
#
# Idempotent and quick when run again: installs only what is missing and
# starts only what does not answer.  The daemons run in the background
# with their output in /var/log/perch-*.log.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need=
for p in docker.io docker-registry busybox-static apache2-utils curl iptables \
	socat openssl; do
	dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

ping_docker() {
	curl -sf --max-time 3 --unix-socket /var/run/docker.sock \
		http://localhost/_ping >/dev/null 2>&1
}
if ! ping_docker; then
	setsid -f dockerd >/var/log/perch-dockerd.log 2>&1 </dev/null
	i=0
	until ping_docker; do
		i=$((i + 1))
		if [ "$i" -gt 120 ]; then
			echo "docker.sh: dockerd did not answer /_ping in 60 s" >&2
			tail -30 /var/log/perch-dockerd.log >&2 || true
			exit 1
		fi
		sleep 0.5
	done
fi

sh tests/docker/image.sh perch-test/busybox:latest

reg=/var/lib/perch-test-registry
user=perch
pass=perch-test-pw
mkdir -p "$reg/auth" "$reg/open"
[ -s "$reg/htpasswd" ] || htpasswd -Bbn "$user" "$pass" >"$reg/htpasswd"

code() { # port: the HTTP status of /v2/, or 000
	curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$1/v2/" || true
}
start_registry() { # name port auth(yes/no) expected-status
	cfg=$reg/$1.yml
	{
		echo "version: 0.1"
		echo "log: {level: error}"
		echo "storage: {filesystem: {rootdirectory: $reg/$1}, delete: {enabled: true}}"
		echo "http: {addr: 127.0.0.1:$2}"
		if [ "$3" = yes ]; then
			echo "auth: {htpasswd: {realm: perch-test, path: $reg/htpasswd}}"
		fi
	} >"$cfg"
	[ "$(code "$2")" = "$4" ] && return 0
	setsid -f docker-registry serve "$cfg" >"/var/log/perch-registry-$1.log" 2>&1 </dev/null
	i=0
	until [ "$(code "$2")" = "$4" ]; do
		i=$((i + 1))
		if [ "$i" -gt 60 ]; then
			echo "docker.sh: registry $1 did not start on 127.0.0.1:$2" >&2
			cat "/var/log/perch-registry-$1.log" >&2 || true
			exit 1
		fi
		sleep 0.5
	done
}
start_registry auth 5311 yes 401
start_registry open 5312 no 200

# The engine behind mutual TLS, for tcp:// with a cert dir.
tls=/var/lib/perch-test-docker-tls
if [ ! -s "$tls/client/key.pem" ]; then
	rm -rf "$tls" && mkdir -p "$tls/client" && (
		cd "$tls"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=perch-test-ca \
			-keyout ca-key.pem -out ca.pem 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
			-keyout server-key.pem -out server.csr 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
			-days 3650 -extfile server.ext -out server.pem 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj /CN=perch-test-client \
			-keyout client/key.pem -out client.csr 2>/dev/null
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
			-days 3650 -extfile client.ext -out client/cert.pem 2>/dev/null
		cp ca.pem client/ca.pem
	)
fi
tls_ping() {
	curl -sf --max-time 3 --cacert "$tls/ca.pem" --cert "$tls/client/cert.pem" \
		--key "$tls/client/key.pem" https://127.0.0.1:5313/_ping >/dev/null 2>&1
}
if ! tls_ping; then
	setsid -f socat "OPENSSL-LISTEN:5313,bind=127.0.0.1,reuseaddr,fork,cert=$tls/server.pem,key=$tls/server-key.pem,cafile=$tls/ca.pem,verify=1" \
		UNIX-CONNECT:/var/run/docker.sock >/var/log/perch-docker-tls.log 2>&1 </dev/null
	i=0
	until tls_ping; do
		i=$((i + 1))
		if [ "$i" -gt 40 ]; then
			echo "docker.sh: the TLS front of the engine did not start" >&2
			cat /var/log/perch-docker-tls.log >&2 || true
			exit 1
		fi
		sleep 0.25
	done
fi

# Push the test image to both (a push of layers already there is quick).
DOCKER_CONFIG=$(mktemp -d "${TMPDIR:-/tmp}/perch-docker-config.XXXXXX")
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
echo "$pass" | docker login -u "$user" --password-stdin 127.0.0.1:5311 >/dev/null 2>&1
for port in 5311 5312; do
	docker tag perch-test/busybox:latest "127.0.0.1:$port/perch-test/busybox:latest"
	docker push -q "127.0.0.1:$port/perch-test/busybox:latest" >/dev/null
	# Keep the pushed names out of the local image store: pull tests
	# must really pull.
	docker rmi "127.0.0.1:$port/perch-test/busybox:latest" >/dev/null
done
echo "docker.sh: engine, test image and registries ready"
