#!/bin/sh
# mkseeds.sh - writes the seed inputs of the logpipe harness
# (tests/fuzz/corpus/logpipe/), which are binary programs for the little
# interpreter in fuzz_logpipe.c:
#
#   count(1) { len(1) secret }...   up to 4 secrets
#   which(1)                        bit0 text sink, bit1 JSON sink,
#                                   bits2-3 failing flushes, bit4 refusing sink
#   op(1) ...                       low 3 bits: 0-3 bytes (len(1), +len_hi(1)
#                                   if bit3), 4 run (byte, base: low nibble
#                                   0 1 MiB, 1 2 MiB (once), else 4 KiB if
#                                   odd, 300 B if even; delta int8, split),
#                                   5 flush, 6 secrets (index,
#                                   reps, sep, cut), 7 empty read;
#                                   high nibble: clock += 37 ms each
#
# The other harnesses' seeds are plain files.  Run from anywhere:
#   sh tests/fuzz/mkseeds.sh
set -eu
out="$(dirname "$0")/corpus/logpipe"
mkdir -p "$out"

# Plain lines, the last one without its newline.
printf '\000\003\000\014hello\nworld\n\020\005tail!' >"$out/plain"

# Two secrets (one multi-line), split across reads, and a secret-dense op.
printf '\002\010hunter22\022multi\nline-secret\n\003' >"$out/secrets"
printf '\000\007pw=hunt\000\012er22 ok\nli\000\013ne-secret!\n\006\000\005\101\003' >>"$out/secrets"
printf '\006\001\004\000\007\365' >>"$out/secrets"

# A secret straddling the 1 MiB cut: 1 MiB - 3 x's, then the secret.
printf '\001\010abcdefgh\001\004x\000\375\000\000\011abcdefgh\n' >"$out/cut-secret"

# A line of exactly 1 MiB, fed in 64 KiB chunks, then its newline.
printf '\000\001\004y\000\000\020\000\001\n' >"$out/exact-line"

# Two over-long lines' worth of z's in odd chunks, a secret at each cut.
printf '\001\006zzzzzz\003\004z\001\005\003\006\000\010\000\007\000\001\n' >"$out/two-cuts"

# Bytes a JSON writer must escape or replace.
printf '\000\002\000\025\377\376\303\050\342\202\n\000\001\037"\\\r\n\360\237\230\200\355\240\200' \
	>"$out/utf8"

# A sink whose flushes fail from the second on, with the clock running.
printf '\001\005s3cr3\013\000\004one\n\365\000\004two\n\365\000\006s3cr3\n\367' >"$out/flush-fails"

# A second sink that refuses to attach.
printf '\000\020\000\003abc' >"$out/refused"
