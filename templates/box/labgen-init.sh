#!/bin/sh
# PID 1's child (under tini) in a docker-provider lab machine: make the machine
# look like a plain Docker host, then run dockerd and sshd.
# Inputs (environment, set by the Vagrantfile): LABGEN_AUTHORIZED_KEY, the
# instance's public key; LABGEN_NAMESERVERS, space-separated resolver addresses.
set -u
user=vagrant

# The machine's own host key, and only the instance's key may log in.
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
if [ -n "${LABGEN_AUTHORIZED_KEY:-}" ]; then
    printf '%s\n' "$LABGEN_AUTHORIZED_KEY" >"/home/$user/.ssh/authorized_keys"
    chown "$user:$user" "/home/$user/.ssh/authorized_keys"
    chmod 0600 "/home/$user/.ssh/authorized_keys"
fi
unset LABGEN_AUTHORIZED_KEY
mkdir -p /run/sshd

# On a user-defined network the host's Docker puts its embedded DNS into this
# machine's nat table (DOCKER_OUTPUT, DOCKER_POSTROUTING to 127.0.0.11). The
# seed's nat table has none of it: start from an empty table and the host's
# real resolvers, before the inner dockerd writes its own rules.
# Only a backend that holds rules is touched: merely listing a legacy table
# creates it, and iptables-nft then warns about it under every listing. The
# kernel says which legacy tables exist without creating any.
if grep -qx nat /proc/net/ip_tables_names 2>/dev/null; then
    iptables-legacy -t nat -F
    iptables-legacy -t nat -X
fi
if iptables-nft-save -t nat 2>/dev/null | grep -q '^-A'; then
    iptables-nft -t nat -F
    iptables-nft -t nat -X
fi
if [ -n "${LABGEN_NAMESERVERS:-}" ]; then
    for ns in $LABGEN_NAMESERVERS; do printf 'nameserver %s\n' "$ns"; done >/etc/resolv.conf
fi

# On a cgroup v2 host the inner dockerd needs a child cgroup for this process
# and the controllers enabled below it (as moby's dind script does).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p /sys/fs/cgroup/init
    xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
    sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
        >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || :
fi

# A machine that was stopped or killed and started again keeps its root file system
# but not /var/lib/docker (a tmpfs): pid files left behind would stop dockerd.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid

dockerd >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e
