#!/bin/sh
# Installs what perch needs to build and test on Debian bookworm (as root).
# Used by the README's quick start and by .ci/run.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential autoconf automake libtool libltdl-dev pkg-config \
	libjson-c-dev libconfig-dev libcmocka-dev libcurl4-openssl-dev \
	git jq ca-certificates clang valgrind abigail-tools libclang-rt-14-dev >/dev/null
