#!/bin/sh
# Boot of a namespace amphora (run by the compute driver inside the server's network namespace and a fresh,
# private mount namespace): give the amphora agent the OS it expects, then become the agent.
# $1: the server's directory (drive/ holds the config drive's files, usr-local-bin/ the stand-ins).
set -eu
SERVER=$1
echo "lbswap-localcloud: booting $(basename "$SERVER") at $(date -u +%T.%N)"
# its own /run: /run/netns/amphora-haproxy, pid files and sockets must not collide between amphorae
mount -t tmpfs -o mode=0755 lc-run /run
mkdir -p /run/netns /run/lock
# its own /etc and /var, copied on write from the host's
for dir in etc var; do
  mkdir -p "$SERVER/upper/$dir" "$SERVER/work/$dir"
  mount -t overlay lc-$dir -o "lowerdir=/$dir,upperdir=$SERVER/upper/$dir,workdir=$SERVER/work/$dir" "/$dir"
done
# the image's tools (systemctl and lvs-masquerade.sh stand-ins) and an empty systemd unit directory
mount --bind "$SERVER/usr-local-bin" /usr/local/bin
mount --bind "$SERVER/systemd-units" /usr/lib/systemd/system
# the config drive, as cloud-init would copy it
cp -R "$SERVER/drive/." /
mkdir -p /var/lib/octavia/certs /etc/octavia/interfaces /var/log
# What the image's build writes: haproxy's group; no strict-limits because the fd hard limit of this host is
# below what haproxy derives from maxconn and it cannot raise it (no CAP_SYS_RESOURCE).
printf 'global\n    group nogroup\n    no strict-limits\n' >/var/lib/octavia/haproxy-default-user-group.conf
# the image's rsyslog, reduced to a file: the agent's gunicorn and haproxy log to this socket
mkdir -p /run/rsyslog/octavia /var/log/octavia
socat -u UNIX-RECV:/run/rsyslog/octavia/log,mode=0666 OPEN:/var/log/octavia/syslog.log,creat,append </dev/null &
export HOME=/var/lib/octavia
export PATH="/usr/local/bin:$AGENT_BIN:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
exec "$AGENT_BIN/amphora-agent" --config-file /etc/octavia/amphora-agent.conf
