#!/usr/bin/env bash
# Sets up the libvirt provider on a Debian 12 machine, as root; safe to run again:
#   - Debian packages: libvirt's daemon, QEMU (x86), qemu-img, Vagrant's libvirt plugin,
#     dnsmasq (the VMs' DHCP), debootstrap and e2fsprogs (to build labgen's box);
#   - running virtlogd and libvirtd: systemd's units where systemd runs, else started here
#     by hand (their logs: /var/log/libvirt/{virtlogd,libvirtd}.log);
#   - libvirt's `default` storage pool (/var/lib/libvirt/images), where the VMs' disks go.
# Then `labgen box build --provider libvirt` builds the box (once) and
# `labgen up LAB --provider libvirt` brings a VM up.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-libvirt.sh: run it as root (it installs Debian packages and starts libvirtd)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86 \
        qemu-utils dnsmasq-base debootstrap e2fsprogs; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup-libvirt: installing ${need[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}"
fi

answers() { virsh -c qemu:///system uri >/dev/null 2>&1; }

if ! answers; then
    if [ -d /run/systemd/system ]; then
        systemctl start virtlogd.socket libvirtd.socket libvirtd.service
    else
        mkdir -p /var/log/libvirt /run/libvirt
        # A daemon that is not running may have left its pid file behind.
        for daemon in virtlogd libvirtd; do
            pidfile="/run/$daemon.pid"
            if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
                rm -f "$pidfile"
            fi
        done
        if [ ! -f /run/virtlogd.pid ]; then
            echo "setup-libvirt: starting virtlogd (log: /var/log/libvirt/virtlogd.log)"
            setsid virtlogd --daemon --pid-file /run/virtlogd.pid \
                >>/var/log/libvirt/virtlogd.log 2>&1 </dev/null
        fi
        if [ ! -f /run/libvirtd.pid ]; then
            echo "setup-libvirt: starting libvirtd (log: /var/log/libvirt/libvirtd.log)"
            setsid libvirtd --daemon --pid-file /run/libvirtd.pid \
                >>/var/log/libvirt/libvirtd.log 2>&1 </dev/null
        fi
    fi
    for _ in $(seq 30); do
        answers && break
        sleep 1
    done
    if ! answers; then
        echo "setup-libvirt: libvirtd does not answer; see /var/log/libvirt/libvirtd.log" >&2
        exit 1
    fi
fi
echo "setup-libvirt: libvirtd answers (virtlogd pid $(cat /run/virtlogd.pid 2>/dev/null || echo '?')," \
     "libvirtd pid $(cat /run/libvirtd.pid 2>/dev/null || echo '?'))"

if ! virsh -q -c qemu:///system pool-info default >/dev/null 2>&1; then
    echo "setup-libvirt: defining libvirt's default storage pool (/var/lib/libvirt/images)"
    virsh -q -c qemu:///system pool-define-as default dir --target /var/lib/libvirt/images
    virsh -q -c qemu:///system pool-build default >/dev/null 2>&1 || :
    virsh -q -c qemu:///system pool-autostart default
fi
pool_state=$(virsh -c qemu:///system pool-info default | sed -n 's/^State: *//p')
if [ "$pool_state" != running ]; then
    virsh -q -c qemu:///system pool-start default
fi

plugins=$(VAGRANT_CHECKPOINT_DISABLE=1 vagrant plugin list 2>/dev/null || :)
if [[ "$plugins" != *vagrant-libvirt* ]]; then
    echo "setup-libvirt: Vagrant does not list the vagrant-libvirt plugin;" \
         "reinstall the vagrant-libvirt package" >&2
    exit 1
fi

if [ -e /dev/kvm ]; then
    # What Debian's udev rules do; without udev /dev/kvm stays root-only, libvirt then
    # finds KVM "gone" for its QEMU user at every call and re-probes QEMU (2-4 s a call,
    # minutes per `vagrant up`).
    if [ "$(stat -c %G /dev/kvm)" != kvm ]; then
        echo "setup-libvirt: giving /dev/kvm to group kvm, mode 0660 (as udev does on Debian)"
        chgrp kvm /dev/kvm
        chmod 0660 /dev/kvm
    fi
    echo "setup-libvirt: /dev/kvm exists; labgen's box build tests whether KVM runs its kernel"
else
    echo "setup-libvirt: no /dev/kvm: VMs run under software emulation (slower)"
fi
echo "setup-libvirt: done; next: labgen box build --provider libvirt"
