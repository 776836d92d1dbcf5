#!/bin/sh
#  entrypoint.sh — start Redis for Greenline: the ACL file rendered from the environment into a
#  private tmpfs (never into the data volume), AOF on, the data in /data (a named volume).
set -eu
umask 077
acl=/run/greenline/users.acl
sh /usr/local/etc/greenline/acl.sh > "$acl.tmp"
mv "$acl.tmp" "$acl"
exec redis-server \
    --port 6379 \
    --protected-mode no \
    --aclfile "$acl" \
    --dir /data \
    --appendonly yes \
    --appendfsync "${GL_REDIS_APPENDFSYNC:-always}" \
    --aof-use-rdb-preamble yes \
    --save "3600 1 300 100 60 10000" \
    --maxmemory-policy noeviction \
    "$@"
