#!/bin/sh
#  acl.sh — print Redis's ACL file for Greenline from the passwords in the environment. Only
#  SHA-256 digests of the passwords are written. Used by entrypoint.sh at every start (so a
#  changed password in .env takes effect at the next restart) and by tests/integration/
#  test_compose.c, which checks the rules against a real redis-server.
#
#  Users:
#    default    off
#    admin      everything (operators: backups, BGREWRITEAOF, ACL, replication)
#    <service>  one per service: its own keys "<service>:*" and its part of the bus, read access
#               to every event log; no dangerous or administrative command (FLUSHALL, KEYS,
#               CONFIG, SHUTDOWN, DEBUG, MONITOR, ACL, ...), no pub/sub channels.
#  Bus keys (libshared/include/gl/gl_buslog.h, gl_wq.c):
#    gl:log:{<service>-N}, gl:src:{<service>-N}   its sources' logs and lease hashes (write)
#    gl:cur:{<group>}, gl:lease:{<group>}         its consumer groups, named <service>... (write)
#    gl:wq:{<queue>}...                           its work queues, named <service>... (write)
#    gl:sources, gl:consumers                     the registries every process adds itself to
#    gl:log:*, gl:src:*, gl:cur:*                 read: subscribers read every source's log and
#                                                 head, log.range serves them, trimming reads
#                                                 every group's cursor
set -eu

digest () {
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

password () {
    eval "value=\${$1:-}"
    if [ -z "$value" ]; then
        echo "acl.sh: $1 is not set" >&2
        exit 1
    fi
    printf '%s' "$value"
}

#  Commands: reading and writing data, transactions, Lua (EVALSHA, SCRIPT LOAD), and the
#  connection's own commands; INFO (gl_pub asks INFO replication) and WAIT; nothing dangerous.
commands='-@all +@read +@write +@keyspace +@transaction +@connection +@scripting -@dangerous -@admin -script|flush -script|kill -function|flush -function|delete -function|load -function|restore -select -move -swapdb +info'

echo "user default off resetkeys resetchannels -@all"
echo "user admin on #$(digest "$(password GL_REDIS_ADMIN_PASSWORD)") ~* &* +@all"
for service in ${GL_REDIS_SERVICES:-intake scheduler referral reporting notifier}; do
    upper=$(printf '%s' "$service" | tr 'a-z' 'A-Z')
    pw=$(password "GL_REDIS_PASSWORD_$upper")
    echo "user $service on #$(digest "$pw") resetkeys resetchannels $commands" \
         "~$service:*" \
         "~gl:log:{$service-*}" "~gl:src:{$service-*}" \
         "~gl:cur:{$service*" "~gl:lease:{$service*" "~gl:wq:{$service*" \
         "~gl:sources" "~gl:consumers" \
         "%R~gl:log:*" "%R~gl:src:*" "%R~gl:cur:*"
done
