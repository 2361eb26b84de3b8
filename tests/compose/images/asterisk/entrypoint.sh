#!/bin/sh
# As the andrius/asterisk image does: the asterisk user takes the PUID/PGID it is given (so it
# shares the spool and sounds volumes with the workers), then the command runs.
set -eu
PUID=${PUID:-1000}
PGID=${PGID:-1000}
[ "$(id -g asterisk)" = "$PGID" ] || groupmod -o -g "$PGID" asterisk
[ "$(id -u asterisk)" = "$PUID" ] || usermod -o -u "$PUID" asterisk
chown -R asterisk:asterisk /etc/asterisk /var/run/asterisk /var/log/asterisk
# The shared volumes: their directories only, never the files the workers wrote.
chown asterisk:asterisk /var/lib/asterisk /var/lib/asterisk/sounds /var/spool/asterisk \
    /var/spool/asterisk/outgoing /var/spool/asterisk/outgoing_done /var/spool/asterisk/tmp
exec "$@"
