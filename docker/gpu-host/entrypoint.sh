#!/bin/sh
# Start sshd with a persistent host key; publish "<hostname> <key>" to the shared known_hosts
# that the worker reads (the compose network is the trust boundary of this demo; production
# known_hosts files are provisioned by the operator, never learnt).
set -eu
KEY=/etc/ssh/host-keys/ssh_host_ed25519_key
[ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N "" -f "$KEY"
while [ ! -f /ssh/client_ed25519.pub ]; do sleep 0.5; done
NAME="$(hostname)"
LINE="$NAME $(cut -d' ' -f1,2 "$KEY.pub")"
touch /ssh/known_hosts
grep -v "^$NAME " /ssh/known_hosts > /ssh/known_hosts.$$ || true
echo "$LINE" >> /ssh/known_hosts.$$
mv /ssh/known_hosts.$$ /ssh/known_hosts
exec /usr/sbin/sshd -D -e
