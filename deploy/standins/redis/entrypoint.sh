#!/bin/sh
# The official redis image's start-up: flags or a .conf alone are redis-server's arguments.
set -eu
case "${1:-}" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
    shift
    conf=""
    case "${1:-}" in *.conf) conf=$1; shift ;; esac
    # protected mode off, as the official build's default: the container is reached from its
    # network; a config file or a later flag may still turn it on.
    set -- redis-server $conf --protected-mode no --dir /data "$@"
    if [ "$(id -u)" = 0 ]; then
        chown -R redis:redis /data
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
