#!/bin/sh
# The official rabbitmq image's start-up, reduced to what this project relies on: the node is
# rabbit@<hostname>, its data in /var/lib/rabbitmq, its log on stdout, and the default user
# from RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST.
set -eu
if [ "${1:-}" != rabbitmq-server ]; then exec "$@"; fi
defaults=/etc/rabbitmq/conf.d/20-default-user.conf
: > "$defaults"
if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
    printf 'default_user = %s\n' "$RABBITMQ_DEFAULT_USER" >> "$defaults"
fi
if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then
    printf 'default_pass = %s\n' "$RABBITMQ_DEFAULT_PASS" >> "$defaults"
fi
if [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ]; then
    printf 'default_vhost = %s\n' "$RABBITMQ_DEFAULT_VHOST" >> "$defaults"
fi
chmod 0640 "$defaults"
chown root:rabbitmq "$defaults"
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
# Debian's /usr/sbin/rabbitmq-server writes its output to a file: call the server itself.
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
