#!/usr/bin/env bash
# Build a minimal Asterisk (no PJSIP: callees are Local channels) from a source tarball into a
# cache outside the checkout, and print the install prefix on stdout (`<prefix>/sbin/asterisk`
# is the binary). Everything else goes to stderr.
#
#   ASTERISK_SRC=../shared/asterisk/src/asterisk-22.10.1.tar.gz scripts/build-asterisk.sh
#
# The cache entry is keyed by the tarball's sha256 and by this recipe (configure flags and the
# module list below): a second run with the same inputs prints the prefix at once; another
# tarball or recipe builds again. Concurrent runs wait for each other (flock). Build
# dependencies are installed with apt when run as root.
#
# Cache root: TTSQ_CACHE_DIR, else $XDG_CACHE_HOME/tts-queue, else ~/.cache/tts-queue.
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'xx %s\n' "$*" >&2
    exit 1
}

SRC=${ASTERISK_SRC:-${1:-}}
[[ -n "$SRC" ]] || die "set ASTERISK_SRC to an Asterisk source tarball (asterisk-<version>.tar.gz)"
[[ -f "$SRC" ]] || die "ASTERISK_SRC: no such file: $SRC"
SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")

BUILD_PACKAGES=(build-essential pkg-config libjansson-dev libxml2-dev libsqlite3-dev uuid-dev
    libedit-dev libssl-dev libncurses-dev libxslt1-dev zlib1g-dev libcurl4-openssl-dev)

CONFIGURE_FLAGS=(--without-pjproject-bundled --without-pjproject --without-libjwt-bundled
    --with-jansson-bundled=no --without-libjwt)

# What the tests, the dialplan in deploy/asterisk/ and the fake phones use. Everything else
# stays out: a smaller build, fewer modules to load at each start.
MODULES=(
    app_playback app_dial app_echo app_userevent app_verbose app_read app_senddtmf app_amd
    app_waitforsilence app_originate app_stack app_exec app_record app_mixmonitor
    app_playtones app_milliwatt app_waituntil app_while app_softhangup app_dumpchan
    app_system app_controlplayback
    pbx_config pbx_spool
    format_wav format_pcm format_sln format_gsm
    codec_ulaw codec_alaw codec_resample codec_gsm
    func_channel func_callerid func_strings func_logic func_global func_cut func_math
    func_timeout func_env func_rand func_hangupcause func_dialplan func_db func_uuid
    func_sprintf func_shell
    res_timing_timerfd res_timing_pthread bridge_simple cdr_csv
)
RECIPE_VERSION=1

recipe_digest() {
    printf '%s\n' "$RECIPE_VERSION" "${CONFIGURE_FLAGS[@]}" "${MODULES[@]}" | sha256sum | cut -c1-12
}

CACHE_ROOT=${TTSQ_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tts-queue}
TARBALL_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
KEY="${TARBALL_SHA:0:16}-$(recipe_digest)"
PREFIX="$CACHE_ROOT/asterisk/$KEY"

ready() { [[ -x "$PREFIX/sbin/asterisk" && -f "$PREFIX/.built" ]]; }

install_build_packages() {
    local missing=() pkg
    for pkg in "${BUILD_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "missing build packages: ${missing[*]} (as root: apt-get install ${missing[*]})"
    fi
    say "installing build packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# menuselect rewrites menuselect.makeopts; always pass the file, one change per call (several
# categories in one call misbehave).
select_modules() {
    local ms=menuselect/menuselect opts=menuselect.makeopts category module
    for category in $("$ms" --category-list "$opts"); do
        "$ms" --disable-category "$category" "$opts" >/dev/null
    done
    "$ms" --disable BUILD_NATIVE "$opts" >/dev/null
    # Disabling MENUSELECT_CFLAGS turns this off too; a normal build has it on.
    "$ms" --enable OPTIONAL_API "$opts" >/dev/null
    for module in "${MODULES[@]}"; do
        "$ms" --enable "$module" "$opts" >/dev/null || die "menuselect does not know $module"
    done
}

build() {
    local work stage started=$SECONDS
    work=$(mktemp -d "${TMPDIR:-/tmp}/asterisk-build.XXXXXX")
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "rm -rf '$work'" EXIT
    say "building Asterisk from $(basename "$SRC") into $PREFIX (about 1.5 min on 2 cores)"
    tar -xzf "$SRC" -C "$work" --strip-components=1
    (
        cd "$work"
        ./configure --prefix="$PREFIX" "${CONFIGURE_FLAGS[@]}" >configure.log 2>&1 ||
            { tail -40 configure.log >&2 && exit 1; }
        make menuselect.makeopts >make.log 2>&1 || { tail -40 make.log >&2 && exit 1; }
        select_modules
        make -j"$(($(nproc) + 1))" >>make.log 2>&1 || { tail -60 make.log >&2 && exit 1; }
        stage="$work/stage"
        make install DESTDIR="$stage" >>make.log 2>&1 || { tail -40 make.log >&2 && exit 1; }
        mkdir -p "$(dirname "$PREFIX")"
        rm -rf "$PREFIX"
        mv "$stage$PREFIX" "$PREFIX"
        # The sample configuration the fixtures copy from (amd.conf, cdr.conf, ...).
        cp -r configs/samples "$PREFIX/share-samples"
    ) || die "Asterisk build failed (log above)"
    printf 'tarball=%s\nsha256=%s\nrecipe=%s\nseconds=%s\n' "$(basename "$SRC")" \
        "$TARBALL_SHA" "$(recipe_digest)" "$((SECONDS - started))" >"$PREFIX/.built"
    say "built in $((SECONDS - started)) s"
}

mkdir -p "$CACHE_ROOT/asterisk"
exec 9>"$CACHE_ROOT/asterisk/.lock"
flock 9
if ready; then
    say "Asterisk from the cache: $PREFIX"
else
    install_build_packages
    build
fi
ready || die "no asterisk binary in $PREFIX after the build"
printf '%s\n' "$PREFIX"
