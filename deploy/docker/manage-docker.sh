#!/usr/bin/env bash
# `TTSQ_MODE=docker ./manage.sh <command>`: the operator commands mapped onto Docker Compose
# (docker-compose.yml at the root of the checkout). manage.sh hands every command over here.
# Uses `docker compose` when the plugin answers, else `docker-compose`; TTSQ_COMPOSE overrides.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

API_SERVICE=tts-api
WORKER_SERVICE=tts-worker

paint() { # color text (colors only on a terminal)
    if [[ -t 2 ]]; then printf '\033[1;%sm%s\033[0m' "$1" "$2"; else printf '%s' "$2"; fi
}
say() { printf '%s %s\n' "$(paint 34 '==>')" "$*" >&2; }
die() {
    printf '%s %s\n' "$(paint 31 'xx')" "$*" >&2
    exit "${2:-1}"
}

usage() {
    cat <<'EOF'
Usage: TTSQ_MODE=docker ./manage.sh <command> [args]     (Docker Compose: docker-compose.yml)

  setup                       build the image (docker compose build)
  start [-w N]                build if needed, start rabbitmq, redis, asterisk, api, dashboard
                              and WORKERS (default 3) workers; prints the URLs
  stop                        stop every container gracefully (workers finish in-flight calls)
  status [JOB_ID]             containers and their health; or one job's status
  scale N                     bring the number of worker containers to N
  test                        submit a test call from the api container and follow it
  logs [api|dashboard|worker|rabbitmq|redis|asterisk]
                              follow the logs
  clean [-y]                  remove the containers and their volumes (queues, Redis, audio)
  check                       lint, type-check and the test suite, natively (as without Docker)
  dashboard                   start only the dashboard (and what it needs)

Any other command runs in the api container: ./manage.sh config | call | stats | jobs ...
EOF
}

COMPOSE=()
find_compose() {
    if [[ -n "${TTSQ_COMPOSE:-}" ]]; then
        read -ra COMPOSE <<<"$TTSQ_COMPOSE"
    elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        COMPOSE=(docker-compose)
    else
        die "Docker Compose not found: install Docker with its compose plugin, or docker-compose"
    fi
}

compose() { "${COMPOSE[@]}" "$@"; }

# NAME from the environment, else from .env (last assignment), as the Python side reads it.
env_value() {
    if [[ -n "${!1:-}" ]]; then
        printf '%s' "${!1}"
    elif [[ -f .env ]]; then
        sed -n "s/^[[:space:]]*\(export[[:space:]]\+\)\?$1=//p" .env | tail -n 1 | tr -d "\"'"
    fi
}

service_of() {
    case "$1" in
    api) echo "$API_SERVICE" ;;
    dashboard) echo tts-dashboard ;;
    worker | workers) echo "$WORKER_SERVICE" ;;
    *) echo "$1" ;;
    esac
}

count_or_die() { # value what
    [[ "$1" =~ ^[0-9]+$ ]] || die "$2 must be a whole number, got '$1'" 2
}

# `exec` needs -T when there is no terminal (scripts, CI).
exec_in_api() {
    local tty=()
    [[ -t 0 && -t 1 ]] || tty=(-T)
    compose exec "${tty[@]}" "$API_SERVICE" ttsqueue "$@"
}

cmd_start() {
    local workers
    workers=$(env_value WORKERS)
    workers=${workers:-3}
    while (($#)); do
        case "$1" in
        -w | --workers)
            (($# > 1)) || die "$1 needs a number" 2
            workers=$2
            shift 2
            ;;
        --workers=*)
            workers=${1#--workers=}
            shift
            ;;
        *) die "start: unknown option '$1'" 2 ;;
        esac
    done
    count_or_die "$workers" "the worker count"
    say "starting the stack with $workers worker(s)"
    compose up -d --build --scale "$WORKER_SERVICE=$workers"
    local api dashboard management
    api=$(env_value API_PUBLISH_PORT)
    dashboard=$(env_value DASHBOARD_PUBLISH_PORT)
    management=$(env_value RABBITMQ_MANAGEMENT_PORT)
    say "API        http://localhost:${api:-5000}  (docs: /docs, health: /health)"
    say "dashboard  http://localhost:${dashboard:-8080}"
    say "RabbitMQ   http://127.0.0.1:${management:-15672}  (management UI)"
}

cmd_clean() {
    local yes=0 arg
    for arg in "$@"; do
        case "$arg" in
        -y | --yes) yes=1 ;;
        --queues) ;; # the volumes go, queues included
        *) die "clean: unknown option '$arg'" 2 ;;
        esac
    done
    if ((!yes)); then
        [[ -t 0 ]] || die "clean deletes the queues, job records and audio: run it with -y" 2
        local answer
        read -r -p "Remove the containers and every volume (queues, jobs, audio)? [y/N] " answer
        [[ "$answer" =~ ^[yY] ]] || die "nothing removed"
    fi
    compose down --volumes --remove-orphans
}

main() {
    local cmd=${1:-help}
    (($#)) && shift
    case "$cmd" in
    help | -h | --help)
        usage
        return
        ;;
    check) TTSQ_MODE=native exec "$ROOT/manage.sh" check "$@" ;;
    esac
    find_compose
    case "$cmd" in
    setup) compose build "$@" ;;
    start) cmd_start "$@" ;;
    stop) compose stop "$@" ;;
    status)
        if (($#)); then exec_in_api status "$@"; else compose ps; fi
        ;;
    scale)
        (($# == 1)) || die "usage: scale N" 2
        count_or_die "$1" "the worker count"
        compose up -d --no-recreate --scale "$WORKER_SERVICE=$1" "$WORKER_SERVICE"
        ;;
    logs)
        local services=() name
        for name in "$@"; do services+=("$(service_of "$name")"); done
        compose logs -f --tail=200 "${services[@]}"
        ;;
    clean) cmd_clean "$@" ;;
    dashboard) compose up -d tts-dashboard ;;
    test) exec_in_api test "$@" ;;
    *) exec_in_api "$cmd" "$@" ;;
    esac
}

main "$@"
