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
# It also writes the seeds of the docker harness (corpus/docker/: scripted
# engine sessions whose answers hold binary log frames, see fuzz_docker.c)
# and of the ctl harness (corpus/ctl/: a limit byte, then request lines).
# The workflow and conf seeds are plain files.  Run from anywhere:
#   sh tests/fuzz/mkseeds.sh
set -eu
top="$(dirname "$0")"
out="$top/corpus/logpipe"
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

# ---- docker -----------------------------------------------------------------------
out="$top/corpus/docker"
mkdir -p "$out"
T=01HTASK0000000000000000000
A=01HSTEPA000000000000000000
B=01HSTEPB000000000000000000
CID=e90e34656806a3b0a6ab4f1a2e9c0ff24f1e1b7fe1df33e0c5ad0a6e12e0b3a1
CID2=4b1c0a8e7d2f90e1c5a3b7d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f901a2b
labels() { # step-uuid step-name [prelude]
	printf '{"io.perch.host-id":"fuzz-host","io.perch.task-uuid":"%s","io.perch.step-uuid":"%s","io.perch.step-name":"%s","io.perch.step-type":"commands","wp_uuid":"%s","wp_step":"%s"%s}' \
		"$T" "$1" "$2" "$1" "$2" "${3:+,\"io.perch.prelude\":\"$3\"}"
}
frame() { # stream text: one frame of the multiplexed log stream
	n=$(printf '%s' "$2" | wc -c)
	printf "\\$(printf %03o "$1")\\000\\000\\000\\$(printf %03o $((n >> 24 & 255)))\\$(printf %03o $((n >> 16 & 255)))\\$(printf %03o $((n >> 8 & 255)))\\$(printf %03o $((n & 255)))"
	printf '%s' "$2"
}
version='{"Platform":{"Name":"Docker Engine - Community"},"Components":[{"Name":"Engine","Version":"24.0.7","Details":{"ApiVersion":"1.43","Arch":"amd64","MinAPIVersion":"1.12","Os":"linux"}}],"Version":"24.0.7","ApiVersion":"1.43","MinAPIVersion":"1.12","GitCommit":"311b9ff","GoVersion":"go1.20.10","Os":"linux","Arch":"amd64","KernelVersion":"6.1.0-13-amd64","BuildTime":"2023-10-26T09:08:02.000000000+00:00"}'
info='{"ID":"7TRN:IPZB:QYBB:VPBQ:UWCV:B3WV:6PJ7:L6XW:4G6S:3Q3Q:RJVD:SZTT","Containers":2,"ContainersRunning":1,"Images":14,"Driver":"overlay2","OSType":"linux","OperatingSystem":"Debian GNU/Linux 12 (bookworm)","Architecture":"x86_64","NCPU":8,"MemTotal":16624467968,"Name":"ci-runner-1","ServerVersion":"24.0.7"}'
inspect() { # step-uuid step-name status running exit oom tty [prelude]
	printf '{"Id":"%s","Created":"2024-01-05T10:00:00.123456789Z","Path":"/bin/sh","Args":["-c","echo $CI_SCRIPT | base64 -d | /bin/sh -e"],"State":{"Status":"%s","Running":%s,"Paused":false,"Restarting":false,"OOMKilled":%s,"Dead":false,"Pid":0,"ExitCode":%s,"Error":"","StartedAt":"2024-01-05T10:00:01Z","FinishedAt":"2024-01-05T10:00:09Z"},"Image":"sha256:05455a08881e","Name":"/wp_%s","RestartCount":0,"Config":{"Hostname":"e90e34656806","Tty":%s,"Env":["CI=woodpecker"],"Image":"alpine:3.19","WorkingDir":"/woodpecker/src","Labels":%s}}' \
		"$CID" "$3" "$4" "$6" "$5" "$1" "$7" "$(labels "$1" "$2" "${8:-}")"
}
list() { # state...: one container of step A per state
	sep='['
	for st in "$@"; do
		printf '%s{"Id":"%s","Names":["/wp_%s"],"Image":"alpine:3.19","ImageID":"sha256:05455a08881e","Command":"/bin/sh -c","Created":1704448800,"State":"%s","Status":"Exited (0) 3 seconds ago","Labels":%s}' \
			"$sep" "$CID" "$A" "$st" "$(labels "$A" build)"
		sep=','
	done
	[ "$sep" = '[' ] && printf '['
	printf ']'
}
pullstream() {
	printf '{"status":"Pulling from library/alpine","id":"3.19"}\r\n'
	printf '{"status":"Pulling fs layer","progressDetail":{},"id":"c926b61bad3b"}\r\n'
	printf '{"status":"Downloading","progressDetail":{"current":32768,"total":3401613},"progress":"[\\u003e                                                  ]  32.77kB/3.402MB","id":"c926b61bad3b"}\r\n'
	printf '{"status":"Downloading","progressDetail":{"current":3401613,"total":3401613},"progress":"[==================================================\\u003e]  3.402MB/3.402MB","id":"c926b61bad3b"}\r\n'
	printf '{"status":"Verifying Checksum","progressDetail":{},"id":"c926b61bad3b"}\r\n'
	printf '{"status":"Download complete","progressDetail":{},"id":"c926b61bad3b"}\r\n'
	printf '{"status":"Extracting","progressDetail":{"current":65536,"total":3401613},"progress":"[\\u003e   ]  65.54kB/3.402MB","id":"c926b61bad3b"}\r\n'
	printf '{"status":"Pull complete","progressDetail":{},"id":"c926b61bad3b"}\r\n'
	printf '{"status":"Digest: sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b"}\r\n'
	printf '{"status":"Status: Downloaded newer image for alpine:3.19"}\r\n'
}

# A whole workflow: setup, both steps, logs, waits, destroy, discovery.
{
	printf 'Esabtuwxdef D\n'
	printf '@@ version 200\n%s\n' "$version"
	printf '@@ info 200\n%s\n' "$info"
	printf '@@ volume-create 201\n{"CreatedAt":"2024-01-05T10:00:00Z","Driver":"local","Labels":{"io.perch.host-id":"fuzz-host","io.perch.task-uuid":"%s"},"Mountpoint":"/var/lib/docker/volumes/wp_%s_default/_data","Name":"wp_%s_default","Options":null,"Scope":"local"}\n' "$T" "$T" "$T"
	printf '@@ network-create 201\n{"Id":"7d86d31b1478e7cca9ebed7e73aa0fdeec46c5ca29497431d3007d2d9e15ed99","Warning":""}\n'
	printf '@@ pull 200 chunk=97\n'
	pullstream
	printf '@@ create 201\n{"Id":"%s","Warnings":[]}\n' "$CID"
	printf '@@ create 201\n{"Id":"%s","Warnings":["Your kernel does not support swap limit capabilities."]}\n' "$CID2"
	printf '@@ connect 200\n\n'
	printf '@@ start 204\n\n'
	printf '@@ logs 200 chunk=5\n'
	frame 1 "+ echo hello
"
	frame 1 "hello
"
	frame 2 "+ ls -la
"
	frame 1 "total 0
drwxr-xr-x    1 root     root            40 Jan  5 10:00 .
"
	printf '\n@@ wait 200\n{"Error":null,"StatusCode":0}\n'
	printf '@@ inspect 200\n'
	inspect "$A" build exited false 0 false false
	printf '\n@@ stop 304\n\n'
	printf '@@ delete 204\n\n'
	printf '@@ list 200\n'
	list exited
	printf '\n@@ volumes 200\n{"Volumes":[{"CreatedAt":"2024-01-05T10:00:00Z","Driver":"local","Labels":{"io.perch.host-id":"fuzz-host","io.perch.task-uuid":"%s"},"Mountpoint":"/var/lib/docker/volumes/x/_data","Name":"wp_%s_default","Options":null,"Scope":"local"}],"Warnings":null}\n' "$T" "$T"
	printf '@@ networks 200\n[{"Name":"wp_%s_default","Id":"7d86d31b1478","Created":"2024-01-05T10:00:00Z","Scope":"local","Driver":"bridge","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]},"Internal":false,"Attachable":false,"Containers":{},"Options":{},"Labels":{"io.perch.host-id":"fuzz-host","io.perch.task-uuid":"%s"}}]\n' "$T" "$T"
	printf '@@ volume-delete 204\n\n'
	printf '@@ network-delete 204\n'
} >"$out/session-full"

# A pull that fails inside its 200 stream, then one refused outright.
{
	printf 'Eaa\n'
	printf '@@ pull 200\n'
	printf '{"status":"Pulling from library/alpine","id":"3.19"}\r\n'
	printf '{"errorDetail":{"message":"Get \\"https://registry-1.docker.io/v2/\\": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host"},"error":"Get \\"https://registry-1.docker.io/v2/\\": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host"}\r\n'
	printf '@@ pull 401\n{"message":"Head \\"https://registry.example:5000/v2/library/alpine/manifests/3.19\\": unauthorized: incorrect username or password"}\n'
} >"$out/session-pull-errors"

# The image is missing at create: pull, create again.
{
	printf 'Ebtu\n'
	printf '@@ create 404\n{"message":"No such image: registry.example:5000/team/tool@sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b"}\n'
	printf '@@ create 201\n{"Id":"%s","Warnings":[]}\n' "$CID2"
	printf '@@ pull 200 chunk=1\n'
	pullstream
	printf '@@ logs 200 chunk=1\n'
	frame 1 "tool ready
"
	frame 2 "warning: no config
"
} >"$out/session-image-missing"

# The container name is held by a never-started container of this step.
{
	printf 'Ea\n'
	printf '@@ create 409\n{"message":"Conflict. The container name \\"/wp_%s\\" is already in use by container \\"%s\\". You have to remove (or rename) that container to be able to reuse that name."}\n' "$A" "$CID"
	printf '@@ create 201\n{"Id":"%s","Warnings":[]}\n' "$CID2"
	printf '@@ inspect 200\n'
	inspect "$A" build created false 0 false false
	printf '\n@@ delete 204\n\n'
} >"$out/session-name-conflict"

# Someone else removes the container already (WP#4784).
{
	printf 'EawdD\n'
	printf '@@ delete 409\n{"message":"removal of container %s is already in progress"}\n' "$CID"
} >"$out/session-delete-in-progress"

# A step killed for memory; a wait whose connection breaks; a cancel.
{
	printf 'Eawxw\n'
	printf '@@ wait 200\n{"Error":{"Message":"container %s: driver failed programming external connectivity"},"StatusCode":137}\n' "$CID"
	printf '@@ wait 200\n{"Error":null,"StatusCode":137}\n'
	printf '@@ wait 0 curl=56 errno=104\n\n'
	printf '@@ inspect 200\n'
	inspect "$A" build exited false 137 true false
	printf '\n@@ inspect 200\n'
	inspect "$A" build exited false 4294967295 false false
} >"$out/session-wait"
{
	printf 'EaC w\n'
	printf '@@ wait 200 cancel\n'
} >"$out/session-cancelled"

# The engine out of reach, too old, too new, behind a proxy, Podman.
printf 'Es\n@@ version 0 curl=7 errno=111\n' >"$out/session-engine-down"
printf 'Es\n@@ version 0 curl=7 errno=13\n' >"$out/session-socket-denied"
printf 'Es\n@@ version 200\n{"Version":"19.03.15","ApiVersion":"1.40","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}\n@@ version 200\n{"Version":"18.09.1","ApiVersion":"1.39","MinAPIVersion":"1.12"}\n' >"$out/session-api-old"
printf 'Es\n@@ version 200\n{"Version":"99.0.0","ApiVersion":"1.52","MinAPIVersion":"1.48","Os":"linux","Arch":"arm64"}\n' >"$out/session-api-min"
printf 'EVNsa\n@@ version 200\n{"Version":"24.0.7","ApiVersion":"v1.43","MinAPIVersion":"1.12"}\n@@ info 200\n{"OSType":"linux","Architecture":"aarch64"}\n' >"$out/session-forced-api"
printf 'Esp\n@@ version 502\n<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n' >"$out/session-proxy"
printf 'Esaw\n@@ version 200\n{"Platform":{"Name":"linux/amd64/debian-12"},"Components":[{"Name":"Podman Engine","Version":"4.3.1","Details":{"APIVersion":"4.3.1","Arch":"amd64","MinAPIVersion":"4.0.0","Os":"linux"}}],"Version":"4.3.1","ApiVersion":"1.41","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64","KernelVersion":"6.1.0-13-amd64"}\n@@ info 200\n{"ID":"podman","OSType":"linux","Architecture":"amd64","ServerVersion":"4.3.1"}\n@@ wait 200\n{"StatusCode":0}\n' >"$out/session-podman"
printf 'Es\n@@ info 500\n{"message":"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"}\n' >"$out/session-info-fails"

# Setup refused: no address pool left; a name taken by someone else.
printf 'Es\n@@ network-create 400\n{"message":"could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"}\n' >"$out/session-address-pool"
printf 'Es\n@@ volume-create 409\n{"message":"volume name wp_%s_default already in use"}\n' "$T" >"$out/session-volume-taken"

# Discovery: two tasks, a never-started container, volumes and networks
# alone, another host's leftovers; then a resume and its tails.
{
	printf 'EfFrtRtqu\n'
	printf '@@ list 200\n['
	printf '{"Id":"%s","Names":["/wp_%s"],"State":"running","Status":"Up 2 minutes","Labels":%s},' "$CID" "$A" "$(labels "$A" build)"
	printf '{"Id":"%s","Names":["/wp_prepared"],"State":"created","Status":"Created","Labels":%s},' "$CID2" "$(labels "$B" "svc db")"
	printf '{"Id":"0123456789ab","Names":["/wp_other"],"State":"exited","Labels":{"io.perch.host-id":"fuzz-host","io.perch.task-uuid":"01HOTHERTASK00000000000000","io.perch.step-uuid":"01HOTHERSTEP00000000000000"}},'
	printf '{"Id":"ba9876543210","Names":["/unrelated"],"State":"running","Labels":{}}]\n'
	printf '@@ volumes 200\n{"Volumes":[{"Name":"wp_lonely","Driver":"local","Labels":{"io.perch.host-id":"fuzz-host","io.perch.task-uuid":"01HLONELY00000000000000000"}}],"Warnings":[]}\n'
	printf '@@ networks 200\n[]\n'
	printf '@@ inspect 200\n'
	inspect "$A" build running true 0 false false 'Pulling alpine:3.19\\n3.19: Pulling from library/alpine\\n'
	printf '\n@@ inspect 200\n'
	inspect "$B" "svc db" running true 0 false true
	printf '\n@@ logs 200 chunk=4\n'
	frame 1 "line one
line two
"
	frame 2 "line three
"
	frame 1 "partial"
	printf '\n@@ logs 200\nraw tty output\r\nno frames here\r\n'
} >"$out/session-discover-resume"

# Destroy when things are still in use, stop that fails, kill that finds
# nothing.
{
	printf 'EsaeD\n'
	printf '@@ list 200\n'
	list running exited created
	printf '\n@@ stop 500\n{"message":"cannot stop container: %s: tried to kill container, but did not receive an exit event"}\n' "$CID"
	printf '@@ kill 404\n{"message":"No such container: %s"}\n' "$CID"
	printf '@@ volume-delete 409\n{"message":"remove wp_%s_default: volume is in use - [%s]"}\n' "$T" "$CID"
	printf '@@ network-delete 403\n{"message":"error while removing network: network wp_%s_default id 7d86d31b1478 has active endpoints"}\n' "$T"
} >"$out/session-destroy-in-use"

# A log stream with a frame header that is not one, in small pieces.
{
	printf 'Eat\n'
	printf '@@ logs 200 chunk=3\n'
	frame 1 "good
"
	printf '{"message":"not a frame"}'
} >"$out/session-bad-frame"
printf 'Eat\n@@ logs 404\n{"message":"No such container: %s"}\n' "$CID" >"$out/session-logs-404"

# The demultiplexer alone: frames in odd pieces, TTY, a refusing reader.
{ printf 'D\012\000'; frame 1 "out
"; frame 2 "err
"; frame 0 ""; frame 1 "tail"; } >"$out/demux-frames"
{ printf 'D\001\000plain tty bytes\r\n\001\002'; } >"$out/demux-tty"
{ printf 'D\044\001'; frame 1 "0123456789abcdefghij"; frame 2 "more"; } >"$out/demux-refuse"
{ printf 'D\000\000'; frame 1 "ok
"; printf '\003\000\000\000\000\000\000\001x'; } >"$out/demux-bad-stream"

# Error bodies and transport failures alone.
printf 'M\001\221\000{"message":"No such container: wp_01HSTEPA"}' >"$out/message-404"
printf 'M\001\231\000{"message":"Conflict. The container name \\"/wp_x\\" is already in use"}' >"$out/message-409"
printf 'M\001\364\000{"message":"failed to create task for container: OCI runtime create failed: runc create failed: unable to start container process: exec: \\"bash\\": executable file not found in $PATH: unknown"}' >"$out/message-500-exec"
printf 'M\001\366\000<html><body><h1>502 Bad Gateway</h1></body></html>\r\n' >"$out/message-502-html"
printf 'M\000\000\002\007' >"$out/message-connect-refused"
printf 'M\000\000\006\007' >"$out/message-eacces"
printf 'M\000\310\002\070{"status":"half a reply' >"$out/message-broken"
printf 'M\000\000\001' >"$out/message-cancelled"

# Big streams from small inputs (x=N): a pull that outgrows the prelude,
# a long log; 70 layers (more than pull.c tracks); a start that finds its
# container running already; an engine on Windows; a 503.
printf 'Eatwz\n@@ pull 200 chunk=4096 x=3000\n{"status":"Extracting","progressDetail":{"current":1},"id":"c926b61bad3b"}\r\n{"status":"Waiting","id":"c926b61bad3b"}\r\n@@ start 304\n\n@@ logs 200 chunk=65536 x=20000\n' >"$out/session-big-streams"
frame 1 "a line of a busy log
" >>"$out/session-big-streams"
{
	printf 'Ea\n@@ pull 200\n'
	i=0
	while [ $i -lt 70 ]; do
		printf '{"status":"Pulling fs layer","progressDetail":{},"id":"layer%02d"}\r\n' $i
		i=$((i + 1))
	done
	printf '{"status":"Pull complete","progressDetail":{},"id":"layer69"}\r\n'
} >"$out/session-many-layers"
printf 'Es\n@@ info 200\n{"OSType":"windows","Architecture":"x86_64","ServerVersion":"24.0.7"}\n' >"$out/session-windows"
printf 'M\001\367\000{"message":"Service Unavailable"}' >"$out/message-503"

# ---- ctl ----------------------------------------------------------------------------
# Byte 0: \200 the daemon's limit, else (byte & 0x7f) * 4 bytes.
out="$top/corpus/ctl"
mkdir -p "$out"
printf '\200{"cmd":"submit","workflow":"{\\"stages\\":[{\\"steps\\":[{\\"name\\":\\"build\\",\\"uuid\\":\\"01HSTEP\\",\\"image\\":\\"sh\\",\\"commands\\":[\\"echo hi\\"]}]}]}","source":"ci.json","backend":"local","timeout_ms":600000,"follow":true}\n' >"$out/submit"
printf '\200{"cmd":"submit","workflow":"{}","source":"<stdin>"}\n' >"$out/submit-plain"
printf '\200{"cmd":"ps"}\n' >"$out/ps"
printf '\200{"cmd":"status"}\r\n' >"$out/status-crlf"
printf '\200{"cmd":"reload"}\n{"cmd":"ping"}\n' >"$out/two-lines"
printf '\200{"cmd":"logs","id":"01HQZX3V","follow":true}\n' >"$out/logs"
printf '\200{"cmd":"wait","id":"01HQZX3V8K2M4N6P8R0T2V4X6Z"}\n' >"$out/wait"
printf '\200{"cmd":"cancel","id":"01HQ"}\n' >"$out/cancel"
printf '\200this is not json\n' >"$out/not-json"
printf '\200[1,2,3]\n' >"$out/array"
printf '\200{"cmd":"frobnicate"}\n' >"$out/unknown"
printf '\200{"cmd":"ps"} garbage\n' >"$out/trailing"
printf '\200{"nocmd":1}\n' >"$out/no-cmd"
printf '\200{"cmd":"ps"' >"$out/cut-short"
printf '\200{"cmd":"ps",\n' >"$out/incomplete"
printf '\200{"cmd":"submit"}\n' >"$out/submit-no-workflow"
printf '\200{"cmd":"wait"}\n' >"$out/wait-no-id"
printf '\200{"cmd":"logs","id":7}\n' >"$out/id-not-string"
printf '\200{"cmd":"submit","workflow":"x","timeout_ms":"soon","follow":"yes"}\n' >"$out/submit-odd-types"
printf '\200{"cmd":"\\u00e9\\n\\u0000x"}\n' >"$out/unknown-escapes"
printf '\200{"cmd":"\377\376"}\n' >"$out/unknown-bad-utf8"
printf '\200\n\n' >"$out/empty-lines"
printf '\010{"cmd":"ps"}\n{"cmd":"submit","workflow":"{\\"stages\\":[]}"}\n' >"$out/small-limit"
printf '\003{"cmd":"ping"}\n' >"$out/tiny-limit"

# Through a socket in small pieces (bit 6 of byte 0; limit (byte & 0x3f) * 4).
printf '\177{"cmd":"submit","workflow":"{\\"stages\\":[{\\"steps\\":[]}]}","follow":true}\n{"cmd":"logs","id":"01HQ"}\r\n{"cmd":"ps"' >"$out/dribble"
printf '\102{"cmd":"status"}\n{"cmd":"cancel","id":"this id is longer than the limit of eight bytes"}\n' >"$out/dribble-small-limit"
