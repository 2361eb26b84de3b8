#!/bin/sh
# Entry point of the example `asterisk` service of docker-compose.yml (andrius/asterisk image).
# At every start it installs the tts-queue snippets (deploy/asterisk, mounted read-only at
# /opt/tts-queue/asterisk) into /etc/asterisk, the same way `ttsqueue asterisk-setup` does on
# a host, then hands over to the image's own entrypoint (which adapts the asterisk user to
# PUID/PGID). Idempotent.
set -eu

SRC=${TTSQ_ASTERISK_SNIPPETS:-/opt/tts-queue/asterisk}
ETC=${ASTERISK_ETC_DIR:-/etc/asterisk}

say() { echo "asterisk-init: $*" >&2; }

include_once() { # conf-file snippet
    touch "$ETC/$1"
    grep -qx "#include $2" "$ETC/$1" || printf '\n#include %s\n' "$2" >>"$ETC/$1"
}

# Files written here belong to whoever owns /etc/asterisk (the asterisk user), not root.
give_to_asterisk() {
    chown "$(stat -c %u:%g "$ETC")" "$@" 2>/dev/null || true
}

# @AMI_USER@ / @AMI_SECRET@ replaced literally (no sed: a secret may hold any character).
render_manager() {
    awk 'function swap(s, k, v,   i, out) {
             out = ""
             while ((i = index(s, k)) > 0) { out = out substr(s, 1, i - 1) v; s = substr(s, i + length(k)) }
             return out s
         }
         { print swap(swap($0, "@AMI_USER@", ENVIRON["ASTERISK_AMI_USER"]), "@AMI_SECRET@", ENVIRON["ASTERISK_AMI_SECRET"]) }' \
        "$SRC/manager_tts.conf"
}

# The workers connect from other containers: allow this container's /16 (the compose network)
# unless AMI_PERMIT says otherwise (e.g. 172.30.0.0/255.255.0.0).
default_permit() {
    hostname -i | awk '{ split($1, ip, "."); print ip[1] "." ip[2] ".0.0/255.255.0.0" }'
}

cp "$SRC/extensions_tts.conf" "$ETC/extensions_tts.conf"
include_once extensions.conf extensions_tts.conf
give_to_asterisk "$ETC/extensions_tts.conf" "$ETC/extensions.conf"
say "dialplan context tts-playback installed"

if [ -n "${ASTERISK_AMI_USER:-}" ] && [ -n "${ASTERISK_AMI_SECRET:-}" ]; then
    case "$ASTERISK_AMI_USER" in
    *[!A-Za-z0-9_.-]*)
        say "ASTERISK_AMI_USER must be letters, digits, '.', '_' or '-'"
        exit 64
        ;;
    esac
    case "$ASTERISK_AMI_SECRET" in
    *[\;\[\]]*)
        say "ASTERISK_AMI_SECRET must not contain ';', '[' or ']'"
        exit 64
        ;;
    esac
    umask 027
    {
        render_manager
        echo "permit = ${AMI_PERMIT:-$(default_permit)}"
    } >"$ETC/manager_tts.conf"
    # This example owns manager.conf: AMI on, reachable from the compose network.
    printf '[general]\nenabled = yes\nport = 5038\nbindaddr = 0.0.0.0\n\n#include manager_tts.conf\n' \
        >"$ETC/manager.conf"
    give_to_asterisk "$ETC/manager_tts.conf" "$ETC/manager.conf"
    say "AMI user $ASTERISK_AMI_USER installed"
else
    say "AMI not configured (set ASTERISK_AMI_USER and ASTERISK_AMI_SECRET); call files only"
fi

if [ -x /usr/local/bin/entrypoint.sh ]; then
    exec /usr/local/bin/entrypoint.sh "$@"
fi
exec "$@"
