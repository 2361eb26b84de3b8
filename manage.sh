#!/usr/bin/env bash
# tts-queue operator entry point, without Docker. Thin on purpose: it makes sure the Python
# environment and the local RabbitMQ/Redis exist, then hands over to the `ttsqueue` CLI
# (src/ttsqueue/cli.py), which does the real work.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

# --- Docker mode: TTSQ_MODE=docker maps every command onto Docker Compose --------------------
if [[ "${TTSQ_MODE:-}" == docker ]]; then
    exec "$ROOT/deploy/docker/manage-docker.sh" "$@"
fi
# --- end of Docker mode ----------------------------------------------------------------------

VENV="$ROOT/.venv"
TTSQ="$VENV/bin/ttsqueue"
PYTHON="${PYTHON:-python3}"
STAMP="$ROOT/var/.venv-installed"
SERVICES_DIR="${TTSQ_VAR_DIR:-$ROOT/var}/services"
BASE_PACKAGES=(espeak-ng sox libsndfile1)

paint() { # color text (colors only on a terminal)
    if [[ -t 2 ]]; then printf '\033[1;%sm%s\033[0m' "$1" "$2"; else printf '%s' "$2"; fi
}
say() { printf '%s %s\n' "$(paint 34 '==>')" "$*" >&2; }
warn() { printf '%s %s\n' "$(paint 33 '!!')" "$*" >&2; }
die() {
    printf '%s %s\n' "$(paint 31 'xx')" "$*" >&2
    exit 1
}

usage() {
    cat <<'EOF'
Usage: ./manage.sh <command> [args]

  setup                       install what is missing (Debian packages as root, Python env)
  start                       start RabbitMQ/Redis if local and stopped, then api, dashboard
                              and WORKERS (default 3) workers in the background; prints the URLs
  stop                        stop every process gracefully (forgets the recorded configuration)
  restart                     stop, then start with the current environment and .env
  status                      processes, health, queue depths, workers
  scale N                     bring the number of workers to N (with the configuration
                              recorded at start, whatever this shell's environment)
  test                        submit a test call and follow it to its outcome
  logs [api|dashboard|worker] follow the logs
  clean [-y] [--queues]       stop, purge queues (--queues: delete them), Redis keys, audio, logs
  check                       install what the tests need (as root), lint, type-check, run
                              the whole test suite, then the Compose stack for real when a
                              Docker engine answers (CI runs this); the real-Asterisk tests
                              need ASTERISK_SRC=<asterisk-X.tar.gz> (built once, then cached)
                              or ASTERISK_BIN=<asterisk binary>, else they are skipped
  dashboard                   run only the dashboard

Any other command goes to the Python CLI: ./manage.sh config | call | stats | jobs | ...
EOF
}

as_root() { [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; }

# Debian packages: `dpkg -s` keeps this fast when everything is present.
install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if ! as_root; then
        warn "missing system packages: ${missing[*]} (as root: apt-get install ${missing[*]})"
        return 0
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What the running system needs (start, setup and every other command): the package and its
# runtime dependencies; `check` adds the test and lint tools (extra "dev"). Piper stays an
# opt-in extra (docs/piper.md). One stamp per set, renewed when pyproject.toml changes.
ensure_venv() { # [pip requirement] [stamp suffix]
    local requirement=${1:-.} stamp="$STAMP${2:-}"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PYTHON" -c 'import ensurepip' 2>/dev/null || install_packages python3-venv
        say "creating the Python environment in .venv"
        "$PYTHON" -m venv "$VENV" || die "could not create .venv with $PYTHON (needs Python >= 3.11)"
    fi
    if [[ ! -x "$TTSQ" || ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
        say "installing $requirement and its dependencies into .venv"
        "$VENV/bin/python" -m pip install -q -e "$requirement" || die "pip install failed"
        mkdir -p "$(dirname "$stamp")"
        touch "$stamp"
    fi
    compile_bytecode
}

# The package is installed editable (its code runs from src/), and pip compiles none of an
# editable package. Where PYTHONDONTWRITEBYTECODE is set, every process would compile all of
# src/ttsqueue again at start: about a quarter of a worker's start-up. compileall rewrites only
# what changed since its last run, so this costs a tenth of a second when nothing did.
compile_bytecode() {
    "$VENV/bin/python" -m compileall -q src/ttsqueue >/dev/null ||
        warn "could not byte-compile src/ttsqueue; processes will compile it as they start"
}

is_local() { [[ "$1" =~ ^(localhost|127\.[0-9.]+|::1|0\.0\.0\.0)$ ]]; }
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

wait_port() { # host port seconds
    local tries=$(($3 * 4))
    while ((tries-- > 0)); do
        port_open "$1" "$2" && return 0
        sleep 0.25
    done
    return 1
}

# "<service> <host> <port>" lines for RabbitMQ and Redis, from the effective settings
# (environment and .env, validated: a configuration error stops here with its message).
ENDPOINTS=""
load_endpoints() { ENDPOINTS=$("$TTSQ" endpoints) || exit 2; }

start_redis() { # host port
    port_open "$1" "$2" && return 0
    command -v redis-server >/dev/null || install_packages redis-server
    command -v redis-server >/dev/null || die "Redis is not running at $1:$2 and redis-server is not installed"
    mkdir -p "$SERVICES_DIR/redis"
    say "starting redis-server on port $2"
    redis-server --daemonize yes --port "$2" --bind 127.0.0.1 -::1 \
        --dir "$SERVICES_DIR/redis" --logfile "$SERVICES_DIR/redis/redis.log" \
        --pidfile "$SERVICES_DIR/redis/redis.pid"
    wait_port "$1" "$2" 20 || die "Redis did not start (see $SERVICES_DIR/redis/redis.log)"
}

start_rabbitmq() { # host port
    port_open "$1" "$2" && return 0
    command -v rabbitmq-server >/dev/null || install_packages rabbitmq-server
    command -v rabbitmq-server >/dev/null || die "RabbitMQ is not running at $1:$2 and rabbitmq-server is not installed"
    say "starting rabbitmq-server (this can take a few seconds)"
    rabbitmq-server -detached || die "rabbitmq-server -detached failed (run as root or as the rabbitmq user)"
    if command -v rabbitmqctl >/dev/null; then
        rabbitmqctl -q --timeout 90 await_startup >/dev/null 2>&1 || true
    fi
    wait_port "$1" "$2" 90 || die "RabbitMQ did not open port $2 (see /var/log/rabbitmq/)"
}

ensure_services() {
    local service host port
    while read -r service host port; do
        if ! is_local "$host"; then
            port_open "$host" "$port" || warn "$service at $host:$port is not answering"
            continue
        fi
        case "$service" in
        redis) start_redis "$host" "$port" ;;
        rabbitmq) start_rabbitmq "$host" "$port" ;;
        esac
    done <<<"$ENDPOINTS"
}

cmd_setup() {
    install_packages "${BASE_PACKAGES[@]}"
    ensure_venv
    load_endpoints
    # Broker and store packages only where they will run: on this machine.
    local service host port
    while read -r service host port; do
        if is_local "$host" && ! port_open "$host" "$port"; then
            install_packages "$service-server"
        fi
    done <<<"$ENDPOINTS"
    if [[ -d /etc/asterisk && -d "$ROOT/deploy/asterisk" ]]; then
        "$TTSQ" asterisk-setup || warn "Asterisk snippets: see the messages above"
    fi
}

run_step() { # label command...
    local label=$1
    shift
    say "$label"
    if "$@"; then return 0; fi
    warn "$label failed"
    return 1
}

# The dashboard reads unacked counts from the management plugin: enable it on a local node.
enable_management() {
    if ! as_root || ! command -v rabbitmq-plugins >/dev/null; then return 0; fi
    local service host port
    while read -r service host port; do
        if [[ "$service" != rabbitmq ]] || ! is_local "$host"; then continue; fi
        # (stdin closed: the tool would otherwise read the rest of the list)
        timeout 60 rabbitmq-plugins -q is_enabled rabbitmq_management </dev/null >/dev/null 2>&1 &&
            continue
        say "enabling the RabbitMQ management plugin"
        if ! timeout 120 rabbitmq-plugins -q enable rabbitmq_management </dev/null >/dev/null; then
            warn "could not enable rabbitmq_management: the dashboard will show no unacked counts"
        fi
    done <<<"$ENDPOINTS"
}

# The real-Asterisk tests (tests/asterisk) need an Asterisk binary: ASTERISK_BIN, or one
# scripts/build-asterisk.sh builds from the source tarball ASTERISK_SRC (cached after the
# first build). Without either they are skipped, and said so; TTSQ_REQUIRE_ASTERISK=1 (CI)
# makes that a failure.
ASTERISK_SKIPPED=""
prepare_asterisk() {
    local prefix src
    if [[ -n "${ASTERISK_BIN:-}" ]]; then
        say "real-Asterisk tests: against $ASTERISK_BIN"
    elif [[ -n "${ASTERISK_SRC:-}" ]]; then
        # Relative to where manage.sh was called from (it has moved to the checkout since).
        src=$(cd "$OLDPWD" && realpath -e "$ASTERISK_SRC") ||
            { warn "ASTERISK_SRC: no such file: $ASTERISK_SRC" && return 1; }
        prefix=$(ASTERISK_SRC="$src" "$ROOT/scripts/build-asterisk.sh") ||
            { warn "could not build Asterisk from $src" && return 1; }
        export ASTERISK_BIN="$prefix/sbin/asterisk"
        say "real-Asterisk tests: against $ASTERISK_BIN (built from $(basename "$src"))"
    elif [[ "${TTSQ_REQUIRE_ASTERISK:-}" == 1 ]]; then
        warn "TTSQ_REQUIRE_ASTERISK=1 but neither ASTERISK_SRC nor ASTERISK_BIN is set"
        return 1
    else
        ASTERISK_SKIPPED=1
        warn "real-Asterisk tests: SKIPPED (no ASTERISK_SRC or ASTERISK_BIN;" \
            "e.g. ASTERISK_SRC=../shared/asterisk/src/asterisk-22.10.1.tar.gz ./manage.sh check)"
    fi
}

cmd_check() {
    cmd_setup
    ensure_venv '.[dev]' -dev
    # The fault suite runs private RabbitMQ and Redis nodes from these binaries, wherever
    # the configured servers are.
    install_packages rabbitmq-server redis-server
    # The dashboard's tests drive a real headless browser.
    install_packages chromium
    # Deployment checks: compose file, shell scripts, systemd units, Prometheus rules.
    install_packages docker-compose shellcheck systemd prometheus
    [[ "${TTSQ_REQUIRE_COMPOSE:-}" != 1 ]] || install_packages docker.io debootstrap
    ensure_services
    enable_management
    local failed=0
    # A failed build fails the check; pytest must not try to build it again.
    prepare_asterisk || { failed=1 && unset ASTERISK_SRC; }
    run_step "ruff check" "$VENV/bin/ruff" check . || failed=1
    run_step "ruff format --check" "$VENV/bin/ruff" format --check . || failed=1
    run_step "mypy" "$VENV/bin/mypy" || failed=1
    run_step "mypy tests" "$VENV/bin/mypy" tests || failed=1
    # Several test processes (TTSQ_TEST_PROCESSES, default 4; 0 runs them in this one): most
    # tests wait on real servers and processes, so even 2 cores gain; a module's tests stay in
    # one process (--dist loadscope) so module-wide fixtures such as a private Asterisk start once.
    run_step "pytest" "$VENV/bin/pytest" -q -p no:cacheprovider \
        -n "${TTSQ_TEST_PROCESSES:-4}" --dist loadscope || failed=1
    # The Compose stack for real; skipped without a Docker engine unless TTSQ_REQUIRE_COMPOSE=1.
    run_step "compose stack" "$ROOT/scripts/compose-ci.sh" || failed=1
    if ((failed)); then die "check failed"; fi
    if [[ -n "$ASTERISK_SKIPPED" ]]; then
        say "all checks passed, but the real-Asterisk tests were SKIPPED (no ASTERISK_SRC/ASTERISK_BIN)"
    else
        say "all checks passed"
    fi
}

main() {
    local cmd=${1:-help}
    (($#)) && shift
    case "$cmd" in
    help | -h | --help) usage ;;
    setup) cmd_setup ;;
    check) cmd_check ;;
    start | restart)
        cmd_setup
        ensure_services
        exec "$TTSQ" "$cmd" "$@"
        ;;
    *)
        ensure_venv
        exec "$TTSQ" "$cmd" "$@"
        ;;
    esac
}

main "$@"
