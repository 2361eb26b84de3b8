#!/usr/bin/env bash
# The Docker Compose stack run for real, as an operator runs it: docker-compose.yml and the
# Dockerfile of this checkout, `docker-compose up`, calls placed through the API and played by
# a real Asterisk to a fake phone, workers scaled, /health, /metrics and the dashboard read,
# then `docker-compose down -v` whatever happened.
#
#   scripts/compose-ci.sh                       # runs when a Docker engine answers, else skips
#   TTSQ_REQUIRE_COMPOSE=1 scripts/compose-ci.sh  # CI: installs and starts what is missing,
#                                               # and a skip becomes a failure
#
# No image registry is needed. Only the sources of the images differ from what users pull
# (docs/deployment.md, "How CI runs the stack"): every image the compose file and the
# Dockerfile name is built here under that very name, from Debian packages on a Debian
# bookworm base made with debootstrap, and labelled org.tts-queue.stand-in. A tag that exists
# without that label (a real image pulled by someone) is never overwritten.
#
# Settings: ASTERISK_SRC (default ../shared/asterisk/src/asterisk-22.10.1.tar.gz),
# TTSQ_DEBIAN_MIRROR (default: the host's Debian mirror), TTSQ_KEEP_DOCKERD=1 (leave a
# dockerd this script started running), TTSQ_DOCKER_CLIENT / TTSQ_DOCKERD (default
# /usr/bin/docker, /usr/sbin/dockerd). Images are kept as a cache (tags printed at the end).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The packaged Docker tools (docker.io), never another, unrelated `docker` that may come first
# on PATH (e.g. in /usr/local/bin): docker-compose itself runs `docker` from PATH to build.
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"
DOCKER=${TTSQ_DOCKER_CLIENT:-/usr/bin/docker}
DOCKERD=${TTSQ_DOCKERD:-/usr/sbin/dockerd}
COMPOSE_BIN=/usr/bin/docker-compose
PACKAGES=(docker.io docker-compose debootstrap)
STANDINS="$ROOT/tests/compose/images"
PROBE="$ROOT/tests/compose/probe.py"
LABEL=org.tts-queue.stand-in
BASE_RECIPE=2
SUITE=bookworm
REQUIRED=${TTSQ_REQUIRE_COMPOSE:-0}
ASTERISK_SRC=${ASTERISK_SRC:-$ROOT/../shared/asterisk/src/asterisk-22.10.1.tar.gz}

say() { printf '==> compose: %s\n' "$*" >&2; }
die() {
    printf 'xx compose: %s\n' "$*" >&2
    exit 1
}
# Not able to run here: a plain message, or a failure when CI requires the step.
skip() {
    [[ "$REQUIRED" == 1 ]] && die "$* (TTSQ_REQUIRE_COMPOSE=1: the step must run)"
    say "skipped: $*"
    exit 0
}

docker() { "$DOCKER" "$@"; }

# --- what the step needs -----------------------------------------------------------------
missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || printf '%s\n' "$pkg"
    done
}

ensure_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]})) || return 0
    if [[ "$REQUIRED" != 1 ]]; then
        skip "not installed: ${missing[*]} (TTSQ_REQUIRE_COMPOSE=1 installs them)"
    fi
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        skip "not installed: ${missing[*]}, and not root"
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- the Docker engine -------------------------------------------------------------------
STARTED_DOCKERD=""
WORK=""

engine_answers() { timeout 20 "$DOCKER" info >/dev/null 2>&1; }

ensure_engine() {
    engine_answers && return 0
    [[ "$REQUIRED" == 1 ]] || skip "no Docker engine answers (TTSQ_REQUIRE_COMPOSE=1 starts one)"
    [[ $EUID -eq 0 && -x "$DOCKERD" ]] || skip "no Docker engine answers and $DOCKERD cannot be started"
    say "starting $DOCKERD in the background (log: $WORK/dockerd.log)"
    setsid "$DOCKERD" >"$WORK/dockerd.log" 2>&1 </dev/null &
    STARTED_DOCKERD=$!
    local deadline=$((SECONDS + 90))
    until engine_answers; do
        if ! kill -0 "$STARTED_DOCKERD" 2>/dev/null; then
            tail -20 "$WORK/dockerd.log" >&2
            STARTED_DOCKERD=""
            die "dockerd exited"
        fi
        ((SECONDS < deadline)) || die "dockerd did not answer within 90 s"
        sleep 1
    done
}

stop_engine() {
    [[ -n "$STARTED_DOCKERD" && "${TTSQ_KEEP_DOCKERD:-0}" != 1 ]] || return 0
    say "stopping the dockerd this step started"
    kill -TERM "$STARTED_DOCKERD" 2>/dev/null || return 0
    local deadline=$((SECONDS + 40))
    while kill -0 "$STARTED_DOCKERD" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    kill -KILL "$STARTED_DOCKERD" 2>/dev/null || true
}

# --- images ------------------------------------------------------------------------------
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# A tag we may (re)build: absent, or one of our stand-ins.
ours_or_absent() {
    image_exists "$1" || return 0
    [[ -n "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1")" ]]
}

debian_mirror() {
    if [[ -n "${TTSQ_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "$TTSQ_DEBIAN_MIRROR"
        return
    fi
    local found
    found=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ { uri = $2 } /^Suites:/ && uri ~ /\/debian\/?$/ { print uri; exit }')
    if [[ -z "$found" && -f /etc/apt/sources.list ]]; then
        found=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list)
    fi
    printf '%s\n' "${found:-http://deb.debian.org/debian}"
}

# The host's Debian sources and apt settings (proxies, snapshot validity) and its extra CA
# certificates: what the containers need to reach the same package mirrors as the host.
host_files() {
    local file
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources \
        /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
        [[ -f "$file" ]] && printf '%s\n' "$file"
    done
    find /usr/local/share/ca-certificates -name '*.crt' -type f 2>/dev/null | sort
}

base_tag() {
    local digest
    digest=$( {
        printf '%s\n' "$BASE_RECIPE" "$SUITE" "$(debian_mirror)"
        host_files | while read -r file; do
            printf '%s\n' "$file"
            cat "$file"
        done
    } | sha256sum | cut -c1-12)
    printf 'tts-queue-ci/debian:%s-%s\n' "$SUITE" "$digest"
}

# A minimal Debian rootfs made with debootstrap and imported: no registry involved.
build_base() {
    local tag=$1 rootfs="$WORK/rootfs" mirror file
    mirror=$(debian_mirror)
    say "building $tag with debootstrap from $mirror"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2 && die "debootstrap failed"; }
    # The host's Debian sources replace the ones debootstrap wrote (not both: apt warns).
    rm -f "$rootfs/etc/apt/sources.list"
    while read -r file; do
        mkdir -p "$rootfs$(dirname "$file")"
        cp "$file" "$rootfs$file"
    done < <(host_files)
    [[ -n "$(ls "$rootfs/etc/apt/sources.list.d/" 2>/dev/null)" || -f "$rootfs/etc/apt/sources.list" ]] ||
        printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$rootfs/etc/apt/sources.list"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -c --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* . |
        docker import --change "LABEL $LABEL=base" --change 'CMD ["bash"]' - "$tag" >/dev/null
    remove_tree "$rootfs"
}

# debootstrap mounts /proc and /sys inside the tree while it works: if it was interrupted,
# unmount them first, and never let rm cross into another filesystem.
remove_tree() { # dir
    local mount
    if [[ -d "$1" ]]; then
        findmnt -rn -o TARGET | { grep -F "$1/" || true; } | sort -r | while read -r mount; do
            umount -l "$mount" 2>/dev/null || true
        done
    fi
    rm -rf --one-file-system "$1"
}

# docker build of a stand-in, under a name the compose file or the Dockerfile uses.
build_standin() { # tag name context [build-arg...]
    local tag=$1 name=$2 context=$3
    shift 3
    ours_or_absent "$tag" || skip "$tag exists and is not a tts-queue stand-in: not overwriting it"
    local args=() arg
    for arg in "$@"; do args+=(--build-arg "$arg"); done
    local at=$SECONDS
    # (explicit returns: callers run this in the background or after `||`, where set -e is off)
    DOCKER_BUILDKIT=1 docker build -q --label "$LABEL=$name" \
        --build-arg "BASE=$BASE" "${args[@]}" -t "$tag" "$context" >/dev/null ||
        { say "image $tag did not build" && return 1; }
    say "image $tag (stand-in: tests/compose/images/$name): $((SECONDS - at)) s"
}

# Shared libraries of an install tree -> the Debian packages that ship them on this host.
runtime_packages() { # dir
    find "$1" -type f \( -name '*.so*' -o -perm -u+x \) -print0 |
        xargs -0 ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
        while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true; done |
        cut -d: -f1 | sort -u | tr '\n' ' '
}

build_asterisk() { # tag
    local tag=$1 prefix context="$WORK/asterisk-context"
    prefix=$(ASTERISK_SRC="$ASTERISK_SRC" "$ROOT/scripts/build-asterisk.sh") || return 1
    rm -rf "$context"
    cp -a "$STANDINS/asterisk" "$context" || return 1
    # The build was configured for this prefix (its RUNPATH too): the image keeps the path.
    cp -a "$prefix" "$context/prefix" || return 1
    build_standin "$tag" asterisk "$context" "ASTERISK_PREFIX=$prefix" \
        "RUNTIME_PACKAGES=$(runtime_packages "$prefix")" || return 1
    rm -rf "$context"
}

# --- the stack ---------------------------------------------------------------------------
PROJECT="ttsqci$$"
ENV_FILE=""
compose() {
    "$COMPOSE_BIN" -p "$PROJECT" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" \
        --env-file "$ENV_FILE" "$@"
}

# The image a service runs, as Compose resolves the file with this run's settings.
image_of() { # service
    compose config | "$PYTHON" -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["services"][sys.argv[1]]["image"])' "$1"
}

# A free port below the kernel's ephemeral range: one from that range could be taken by any
# outgoing connection before docker-proxy binds it.
free_port() { # tcp|udp
    python3 - "$1" <<'EOF'
import random, socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
    low = int(ports.read().split()[0])
for _ in range(500):
    port = random.randint(10000, max(10001, low - 1))
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            continue
    print(port)
    break
else:
    sys.exit("no free port")
EOF
}

secret() { head -c 18 /dev/urandom | base64 | tr '+/' 'xy'; }

# What an operator without a trunk writes into .env from .env.example: free host ports (the
# host's own services may hold the defaults) and the secrets a production start demands.
# gTTS needs Google, which CI cannot reach: espeak-ng speaks.
write_env() {
    API_PORT=$(free_port tcp)
    DASHBOARD_PORT=$(free_port tcp)
    API_KEY=$(secret)
    DASHBOARD_PASSWORD=$(secret)
    cat >"$ENV_FILE" <<EOF
TTSQ_ENV=production
API_PUBLISH_PORT=$API_PORT
DASHBOARD_PUBLISH_PORT=$DASHBOARD_PORT
RABBITMQ_MANAGEMENT_PORT=$(free_port tcp)
SIP_PUBLISH_PORT=$(free_port udp)
RABBITMQ_USER=ttsq_ci
RABBITMQ_PASSWORD=$(secret)
API_KEYS=$API_KEY
WEBHOOK_SECRET=$(secret)
DASHBOARD_USER=ops
DASHBOARD_PASSWORD=$DASHBOARD_PASSWORD
TTS_ENGINE=espeak
TTS_FALLBACK_ENGINE=
EOF
    chmod 600 "$ENV_FILE"
}

# The trunk an operator would configure, here the stand-in's fake phones.
add_trunk() {
    cat >>"$ENV_FILE" <<'EOF'
ASTERISK_CHANNEL=Local/{number}@tts-fake-phone
CALL_RING_TIMEOUT=10
EOF
}

wait_healthy() { # seconds
    local deadline=$((SECONDS + $1)) id state pending
    while :; do
        pending=()
        for id in $(compose ps -q); do
            state=$(docker inspect --format '{{ .Name }} {{ .State.Status }} {{ if .State.Health }}{{ .State.Health.Status }}{{ else }}none{{ end }}' "$id")
            case "$state" in
            *" running healthy" | *" running none") ;;
            *" restarting "* | *" exited "* | *" dead "*) die "a container stopped: $state" ;;
            *) pending+=("$state") ;;
            esac
        done
        ((${#pending[@]})) || return 0
        ((SECONDS < deadline)) || die "not healthy after $1 s: ${pending[*]}"
        sleep 2
    done
}

probe() {
    "$PYTHON" "$PROBE" --api "http://127.0.0.1:$API_PORT" --dashboard "http://127.0.0.1:$DASHBOARD_PORT" \
        --api-key "$API_KEY" --dashboard-auth "ops:$DASHBOARD_PASSWORD" "$@"
}

# manage.sh's Docker mode on this very project (its name, its .env).
manage_docker() {
    TTSQ_MODE=docker TTSQ_COMPOSE="$COMPOSE_BIN -p $PROJECT --project-directory $ROOT --env-file $ENV_FILE" \
        "$ROOT/manage.sh" "$@"
}

UP=0
teardown() {
    local status=$? at=$SECONDS
    if ((UP)); then
        if ((status != 0)); then
            say "failed: state and logs of the stack follow"
            compose ps >&2 || true
            compose logs --no-color --tail=60 >&2 || true
        fi
        compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || say "docker-compose down -v failed"
        say "docker-compose down -v: $((SECONDS - at)) s"
    fi
    stop_engine
    [[ -z "$WORK" ]] || remove_tree "$WORK"
    exit "$status"
}

# Every image the compose file and the Dockerfile name, built here (see the header). The
# services' stand-ins build in the background while the project's image (on the Python one)
# builds: much of it is waiting for the package mirrors.
build_images() {
    BASE=$(base_tag)
    if ! image_exists "$BASE"; then
        local at=$SECONDS
        build_base "$BASE"
        say "image $BASE: $((SECONDS - at)) s"
    fi
    local old tag
    for old in $(docker images --format '{{ .Repository }}:{{ .Tag }}' tts-queue-ci/debian); do
        [[ "$old" == "$BASE" ]] || docker rmi "$old" >/dev/null 2>&1 || true
    done
    PYTHON_IMAGE=$(awk 'toupper($1) == "FROM" { print $2; exit }' Dockerfile)
    [[ -f "$ASTERISK_SRC" ]] || skip "no Asterisk source tarball at $ASTERISK_SRC (set ASTERISK_SRC)"
    for tag in "$PYTHON_IMAGE" "$(image_of rabbitmq)" "$(image_of redis)" "$(image_of asterisk)"; do
        ours_or_absent "$tag" || skip "$tag exists and is not a tts-queue stand-in: not overwriting it"
    done
    local pids=() pid failed=0
    build_standin "$(image_of rabbitmq)" rabbitmq "$STANDINS/rabbitmq" &
    pids+=($!)
    build_standin "$(image_of redis)" redis "$STANDINS/redis" &
    pids+=($!)
    build_asterisk "$(image_of asterisk)" &
    pids+=($!)
    build_standin "$PYTHON_IMAGE" python "$STANDINS/python" || failed=1
    if ((!failed)); then
        local at=$SECONDS
        if COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 compose build tts-api >"$WORK/build.log" 2>&1; then
            say "image $(image_of tts-api) (the project's Dockerfile, by docker-compose build): $((SECONDS - at)) s"
        else
            tail -40 "$WORK/build.log" >&2
            say "the project's image did not build"
            failed=1
        fi
    fi
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    ((!failed)) || die "images not built (messages above)"
}

main() {
    ensure_packages
    PYTHON="$ROOT/.venv/bin/python"
    [[ -x "$PYTHON" ]] || skip "no .venv (run ./manage.sh check, which creates it)"
    # One run at a time on a machine: a second one would share the engine (and the image tags)
    # and the first would stop the dockerd it started under the second's containers.
    local lock_dir=${TTSQ_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tts-queue}
    mkdir -p "$lock_dir"
    exec 8>"$lock_dir/compose-ci.lock"
    flock -n 8 || { say "waiting for another run of this step to end" && flock 8; }
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ttsq-compose.XXXXXX")
    ENV_FILE="$WORK/compose.env"
    trap teardown EXIT
    trap 'exit 130' INT TERM
    local started=$SECONDS at
    ensure_engine
    write_env
    build_images
    say "images ready: $((SECONDS - started)) s"

    at=$SECONDS
    UP=1
    say "docker-compose up -d --no-build, as shipped (no trunk)"
    compose up -d --no-build >/dev/null 2>&1
    wait_healthy 240
    say "stack healthy: $((SECONDS - at)) s"
    compose exec -T asterisk /usr/sbin/asterisk -rx 'core show version' >&2
    probe no-trunk

    say "trunk configured in .env (the fake phones), docker-compose up -d --no-build again"
    add_trunk
    compose up -d --no-build >/dev/null 2>&1
    wait_healthy 240
    probe calls --workers 1
    say "TTSQ_MODE=docker ./manage.sh scale 4"
    manage_docker scale 4 >/dev/null 2>&1
    probe calls --workers 4 --count 6 --no-busy
    say "TTSQ_MODE=docker ./manage.sh scale 2"
    manage_docker scale 2 >/dev/null 2>&1
    probe calls --workers 2 --count 1 --no-busy
    say "TTSQ_MODE=docker ./manage.sh test"
    manage_docker test >&2
    probe surfaces
    say "passed: $((SECONDS - started)) s in all, the stack up for $((SECONDS - at)) s"
    say "images kept as a cache: $BASE $PYTHON_IMAGE $(image_of rabbitmq) $(image_of redis) $(image_of asterisk) $(image_of tts-api)"
}

main "$@"
