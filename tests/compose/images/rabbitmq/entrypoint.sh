#!/bin/sh
# The default user from the environment, as the official image takes it, then the server as
# the rabbitmq user and as PID 1, so that `docker stop` (SIGTERM) stops it cleanly (Debian's
# /usr/sbin wrapper would put `su` in between, which does not pass the signal on).
set -eu
conf=/etc/rabbitmq/conf.d/10-stand-in.conf
mkdir -p /etc/rabbitmq/conf.d
{
    echo "loopback_users = none"
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
    [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
} >"$conf"
chown root:rabbitmq "$conf"
chmod 0640 "$conf"
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
if [ "${1:-}" = rabbitmq-server ]; then
    shift
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
        env HOME=/var/lib/rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
