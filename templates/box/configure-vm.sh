#!/bin/sh
# Runs once inside the VM box's root file system (chroot), after configure-rootfs.sh,
# at `labgen box build --provider libvirt`: what only a VM needs (fstab, DHCP on eth0,
# the first-boot unit that installs the instance's key from the kernel command line).
# Inputs: $1 = the user Vagrant logs in as.
set -eu
user="$1"

# The whole virtio disk is the root file system; the kernel boots directly.
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >/etc/fstab
# eth0 (the kernel boots with net.ifnames=0) takes its address from libvirt's DHCP,
# as soon as udev sees it (allow-hotplug: no waiting for udev to settle).
printf 'allow-hotplug eth0\niface eth0 inet dhcp\n' >/etc/network/interfaces.d/eth0
echo labgen >/etc/hostname
# Every VM makes its own machine id at its first boot.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id

# At every boot, before sshd: this machine's own host key; the only
# key that may log in, the instance's, which labgen puts on the kernel command line
# (labgen.authorized_key=BASE64; the box ships no key at all); and the hostname
# given there (systemd.hostname=, which systemd has already set) in /etc/hostname
# and /etc/hosts, so that Vagrant finds it set and skips restarting the network.
cat >/usr/local/sbin/labgen-vm-keys <<'SCRIPT'
#!/bin/sh
set -eu
user=__USER__
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
encoded=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^labgen\.authorized_key=//p' | tail -n 1)
keys="/home/$user/.ssh/authorized_keys"
if [ -n "$encoded" ]; then
    printf '%s' "$encoded" | base64 -d >"$keys.new"
    printf '\n' >>"$keys.new"
    chown "$user:$user" "$keys.new"
    chmod 0600 "$keys.new"
    mv "$keys.new" "$keys"
else
    rm -f "$keys"
    echo "labgen: no labgen.authorized_key= on the kernel command line; nobody can log in" >&2
fi
name=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^systemd\.hostname=//p' | tail -n 1)
if [ -n "$name" ]; then
    printf '%s\n' "$name" >/etc/hostname
    { grep -v '^127\.0\.1\.1[[:space:]]' /etc/hosts; printf '127.0.1.1\t%s\n' "$name"; } >/etc/hosts.new
    mv /etc/hosts.new /etc/hosts
fi
SCRIPT
sed -i "s/__USER__/$user/" /usr/local/sbin/labgen-vm-keys
chmod 0755 /usr/local/sbin/labgen-vm-keys
cat >/etc/systemd/system/labgen-vm-keys.service <<'UNIT'
[Unit]
Description=labgen: the machine's SSH host key and the instance's authorized key
Before=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/labgen-vm-keys
[Install]
WantedBy=multi-user.target ssh.service
UNIT
systemctl enable labgen-vm-keys.service ssh.service docker.service apparmor.service

# Under software emulation every second of boot counts: no waiting for
# time sync, no daily apt or man-db timers in a lab machine.
systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
    fstrim.timer >/dev/null 2>&1 || :
