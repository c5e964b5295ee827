#!/usr/bin/env bash
# tests/docker/test_image.sh: builds the Dockerfile and checks the image works.
#
# Docker's engine is not needed: podman and buildah build and run the image
# offline from a local Debian base (debootstrap), tagged as the official
# debian:bookworm and debian:bookworm-slim so the Dockerfile is unchanged.
# apt-get inside the build stages uses the host's network.
#
# Checks: the image's settings (entrypoint, user, port, volume, health check,
# stop signal), no compiler in it, `strigil --version`, `strigil check` of the
# bundled protocols, a short `strigil simulate`, a *_FILE variable, and the
# daemon answering /healthz, reloading on SIGHUP and exiting 0 on SIGTERM.
#
# Prints SKIP and exits 0 only when podman cannot run on this machine at all.
# Environment: STRIGIL_IMAGE_STORAGE (podman/buildah storage driver, default
# vfs, which works everywhere), STRIGIL_IMAGE_KEEP=1 keeps the built image.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=localhost/strigil:test
BASE=docker.io/library/debian:bookworm
SLIM=docker.io/library/debian:bookworm-slim
S=(--storage-driver "${STRIGIL_IMAGE_STORAGE:-vfs}")
START=$(date +%s)
STEP_START=$START
ctr=
work=$(mktemp -d)

log() { printf 'test_image: %s\n' "$*"; }
fail() { printf 'test_image: FAIL: %s\n' "$*" >&2; exit 1; }

# Prints how long the previous step took, then names the next one.
step() {
	local now
	now=$(date +%s)
	if [ -n "${STEP_NAME:-}" ]; then
		log "done: $STEP_NAME ($((now - STEP_START))s)"
	fi
	STEP_NAME=$1
	STEP_START=$now
	log "== $1"
}

cleanup() {
	local rc=$?
	if [ -n "$ctr" ]; then
		buildah "${S[@]}" rm "$ctr" >/dev/null 2>&1 || true
	fi
	if [ "${STRIGIL_IMAGE_KEEP:-0}" != 1 ]; then
		podman "${S[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

# Runs a command inside the built image, as the image's user, with its
# environment and working folder.
in_image() {
	buildah "${S[@]}" run --isolation chroot --network host "$ctr" -- "$@"
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		return 1
	fi
}

step "tools (podman, buildah, debootstrap)"
missing=()
for tool in podman buildah debootstrap; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
	    >/dev/null || ! as_root env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends podman buildah \
	    debootstrap uidmap >/dev/null; then
		fail "could not install ${missing[*]} (apt-get as root)"
	fi
fi
# The one reason to skip: podman cannot work here at all (say, inside a
# container without the privileges to create another).
if ! podman "${S[@]}" info >"$work/podman-info" 2>&1; then
	log "SKIP: podman cannot run on this machine:"
	sed 's/^/    /' "$work/podman-info" | tail -n 5
	exit 0
fi
log "$(podman --version), $(buildah --version | cut -d' ' -f1-3)"

step "base images ($BASE, $SLIM)"
if podman "${S[@]}" image exists "$BASE"; then
	log "reusing $BASE"
else
	root="$work/rootfs"
	mkdir "$root"
	log "debootstrap --variant=minbase bookworm (log: $work/debootstrap.log)"
	if ! as_root debootstrap --variant=minbase bookworm "$root" \
	    >"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log" >&2
		fail "debootstrap failed"
	fi
	# mktemp made it 0700; a Debian image's / is 0755, or nobody but root
	# can run anything in it.
	chmod 0755 "$root"
	tar -C "$root" -c . | podman "${S[@]}" import --quiet - "$BASE" >/dev/null
	as_root rm -rf "$root"
fi
podman "${S[@]}" image exists "$SLIM" || podman "${S[@]}" tag "$BASE" "$SLIM"

step "podman build -t $IMAGE"
# A previous run's image (STRIGIL_IMAGE_KEEP=1) would be left untagged.
podman "${S[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
# --format docker keeps HEALTHCHECK and STOPSIGNAL (OCI has no field for
# the former). --layers=false commits each stage once instead of every
# instruction (each a full copy with vfs) and leaves no build-stage image
# behind. A build that hangs on the network fails instead of waiting.
build_image() {
	timeout 480 podman "${S[@]}" build --format docker --pull=never \
	    --layers=false --network host --isolation chroot -t "$IMAGE" . \
	    >"$work/build.log" 2>&1
}
# A RUN step under chroot isolation re-executes buildah from a sealed memfd
# copy of itself; sealing it now and then fails with EBUSY ("Close_Fd
# sealing memfd copy: Device or resource busy"), a race in the runtime, not
# a fault of the image. That one error gets a second try.
if ! build_image; then
	if grep -q "sealing memfd copy" "$work/build.log"; then
		log "podman build: the runtime's memfd race; building again"
		build_image || { tail -n 40 "$work/build.log" >&2;
		    fail "podman build failed (see above)"; }
	else
		tail -n 40 "$work/build.log" >&2
		fail "podman build failed (see above)"
	fi
fi
grep -E '^(STEP|COMMIT)' "$work/build.log" | sed 's/^/    /' | cut -c1-100 || true
size=$(podman "${S[@]}" image inspect --format '{{.Size}}' "$IMAGE")
base=$(podman "${S[@]}" image inspect --format '{{.Size}}' "$SLIM")
log "image size: $((size / 1000000)) MB, $(((size - base) / 1000000)) MB over $SLIM"

step "image settings"
conf() {
	podman "${S[@]}" image inspect --format "{{json $1}}" "$IMAGE"
}
expect_conf() {
	local got
	got=$(conf "$1")
	[ "$got" = "$2" ] || fail "$1 is $got, expected $2"
	log "$1 = $got"
}
expect_conf .Config.Entrypoint '["strigil"]'
expect_conf .Config.Cmd '["run"]'
expect_conf .Config.User '"strigil:strigil"'
expect_conf .Config.StopSignal '"SIGTERM"'
expect_conf .Config.WorkingDir '"/data"'
expect_conf .Config.ExposedPorts '{"8080/tcp":{}}'
expect_conf .Config.Volumes '{"/data":{}}'
expect_conf .Config.Healthcheck.Test '["CMD","strigil","health"]'
env_json=$(conf .Config.Env)
for want in STRIGIL_DATABASE=/data/strigil.db STRIGIL_CONSOLE=false \
    STRIGIL_HTTP_LISTEN=0.0.0.0 STRIGIL_CONFIG=/etc/strigil/strigil.conf.lua
do
	case $env_json in
	*"\"$want\""*) log "env $want" ;;
	*) fail "the image's environment lacks $want: $env_json" ;;
	esac
done

step "non-root user, no compiler"
ctr=$(buildah "${S[@]}" from --pull-never "$IMAGE")
uid=$(in_image id -u) || fail "the image's user cannot run id (a base image whose / is mode 0700? podman rmi $BASE $SLIM, then rerun)"
[ "$uid" = 10001 ] || fail "runs as uid $uid, expected 10001 (strigil)"
log "runs as $(in_image id)"
for tool in cc gcc c++ g++ clang cpp make cmake ld as; do
	if in_image sh -c "command -v $tool" >/dev/null 2>&1; then
		fail "the final image has $tool"
	fi
done
if in_image sh -c 'ls /usr/include/*.h' >/dev/null 2>&1; then
	fail "the final image has C headers in /usr/include"
fi
if in_image sh -c 'ls /var/lib/apt/lists/*_Packages ||
    ls /var/cache/apt/*.bin' >/dev/null 2>&1; then
	fail "the final image keeps apt lists or caches"
fi
log "no compiler, headers, apt lists or caches"
in_image sh -c 'test -w /data && test ! -w /etc/strigil/strigil.conf.lua' ||
	fail "/data must be writable and the config read-only for strigil"

step "strigil --version"
in_image strigil --version

step "strigil check (bundled protocols)"
in_image sh -c 'strigil check /usr/share/strigil/protocols/*.lua /etc/strigil/protocols/*.lua'

step "strigil simulate (14 days)"
in_image strigil simulate /etc/strigil/protocols/iastm_home.lua --days 14 \
    --start 2026-03-02T08:00:00Z --json >"$work/sim.jsonl"
lines=$(wc -l <"$work/sim.jsonl")
grep -q '"session_reminder"' "$work/sim.jsonl" ||
	fail "simulate printed no session_reminder in $lines lines"
log "$lines events, reminders among them"

step "*_FILE variables"
in_image sh -c 'printf "Europe/Berlin\n" >/tmp/tz &&
    STRIGIL_TIMEZONE_FILE=/tmp/tz strigil check /etc/strigil/protocols/iastm_home.lua' >/dev/null ||
	fail "STRIGIL_TIMEZONE_FILE was not accepted"
if out=$(in_image sh -c 'printf "hunter2\n" >/tmp/bad &&
    STRIGIL_TIMEZONE_FILE=/tmp/bad strigil check /etc/strigil/protocols/iastm_home.lua' 2>&1); then
	fail "a bad STRIGIL_TIMEZONE_FILE was accepted"
fi
case $out in
*hunter2*) fail "an error showed the file's contents: $out" ;;
*STRIGIL_TIMEZONE_FILE*) log "refused without showing the contents: $out" ;;
*) fail "unexpected error: $out" ;;
esac

step "daemon: /healthz, SIGHUP, SIGTERM"
# A free port of the host (the container shares its network here); the
# image's listen address 0.0.0.0 is kept.
port=$((20000 + RANDOM % 20000))
# Always `strigil health`: it is what the image's HEALTHCHECK runs.
probe='strigil health'
log "probing with strigil health on port $port"
# The daemon runs in the container's shell so the test can signal it and
# read its exit status; a container runtime sends the same SIGTERM to PID 1.
in_image env STRIGIL_HTTP_PORT="$port" PROBE="$probe" bash -c '
	strigil run 2>/tmp/daemon.log & pid=$!
	ok=0
	for i in $(seq 1 100); do
		if $PROBE >/tmp/probe.out 2>&1; then ok=1; break; fi
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if [ $ok != 1 ]; then
		echo "the daemon did not answer /healthz:"; cat /tmp/probe.out
		cat /tmp/daemon.log; kill -KILL $pid 2>/dev/null; exit 1
	fi
	echo "healthy after $i probe(s)"
	kill -HUP $pid; sleep 0.5
	kill -0 $pid 2>/dev/null || { echo "SIGHUP stopped the daemon"; cat /tmp/daemon.log; exit 1; }
	grep -q "event=reloaded failed=0" /tmp/daemon.log ||
		{ echo "no clean reload after SIGHUP"; cat /tmp/daemon.log; exit 1; }
	kill -TERM $pid
	rc=0; wait $pid || rc=$?
	sed "s/^/    daemon: /" /tmp/daemon.log
	[ $rc = 0 ] || { echo "the daemon exited $rc on SIGTERM"; exit 1; }
	test -s /data/strigil.db || { echo "no database in /data"; exit 1; }
	echo "SIGTERM: exit 0; database in /data"
' || fail "the daemon in the image misbehaved (see above)"

step "end"
log "PASS in $(( $(date +%s) - START ))s"
