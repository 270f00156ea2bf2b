#!/bin/sh
# Runs once inside a freshly bootstrapped root file system (chroot), at box build.
# Inputs: $1 = the user Vagrant logs in as. Shared by every provider's box.
set -eu
user="$1"

id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
# '*' instead of useradd's locked '!': sshd refuses key logins to locked accounts.
usermod -p '*' -aG docker "$user"
printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$user" >/etc/sudoers.d/labgen
chmod 0440 /etc/sudoers.d/labgen
install -d -m 0700 -o "$user" -g "$user" "/home/$user/.ssh"

# Host keys are made by each machine at its first boot, never shared via the image.
rm -f /etc/ssh/ssh_host_*
cat >/etc/ssh/sshd_config.d/labgen.conf <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
CONF
# Containers may lack the audit capability pam_loginuid wants; a failure there
# must not close every SSH session.
sed -i 's/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/' /etc/pam.d/sshd

cat >/etc/motd <<'MOTD'

This is a labgen lab machine. `labgen-lab list` shows the lab's steps,
`labgen-lab show STEP` explains one, `labgen-lab run STEP` runs it.

MOTD

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
