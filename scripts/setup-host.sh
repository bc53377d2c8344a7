#!/usr/bin/env bash
# Sets up a fresh Debian 12 host for fleet: host packages, libvirtd + virtlogd running,
# npm dependencies (the libvirt binding builds from source) and the compiled CLI.
# Safe to run again. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host.sh installs Debian packages and starts libvirtd: run it as root (sudo $0)" >&2
  exit 2
fi

PACKAGES=(
  qemu-system-x86 qemu-utils ovmf                      # the hypervisor, qemu-img, UEFI firmware
  libvirt-daemon-system libvirt-clients libvirt-dev    # libvirtd, virsh, virt-xml-validate, headers for the binding
  libguestfs-tools linux-image-amd64                   # guestfish and the kernel its appliance (and the test image) boots
  e2fsprogs openssh-client                             # mkfs.ext4 -d for /var disks; ssh-keygen, ssh (fleet ssh)
  age                                                  # machine secrets (host keys) encrypted in git to the admins' keys
  qemu-system-common fuse3                             # qemu-storage-daemon's FUSE export: identity sync without the appliance
  mmdebstrap                                           # fleet build --builder debian (also needs mtools dosfstools fdisk)
  systemd-boot-efi busybox-static mtools dosfstools fdisk cpio   # the tiny test base image (test/image)
  dropbear-bin                                         # tests: the test image's SSH server (test/image --ssh)
  nix-bin xz-utils                                     # nix 2.8: parse and evaluate the flake (test/nix) against the nixpkgs-24.05.tar.xz tree
  tmux                                                 # drives the create-vm prompts through a real terminal in tests
  strace                                               # tests: kills debugfs at a chosen block write (a crash mid-write)
  skopeo umoci genisoimage                             # tests: check fleet export kubevirt's OCI archives; a KubeVirt-like Secret ISO
  openssh-server                                       # tests: a second libvirt daemon reached over qemu+ssh:// on loopback (test/helpers/remote-host.ts)
  python3 make g++                                     # node-gyp for the libvirt binding
)

export DEBIAN_FRONTEND=noninteractive
echo "==> apt-get install (${#PACKAGES[@]} packages)"
apt-get update -qq
apt-get install -y -qq "${PACKAGES[@]}" >/dev/null

echo "==> libvirtd and virtlogd"
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    systemctl start virtlogd libvirtd
  else
    # No init system here (containers, CI): start the daemons ourselves.
    pgrep -x virtlogd >/dev/null || virtlogd -d
    pgrep -x libvirtd >/dev/null || libvirtd -d
  fi
  for _ in $(seq 1 50); do
    virsh -c qemu:///system version >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
virsh -c qemu:///system version >/dev/null || { echo "libvirtd did not come up" >&2; exit 1; }

echo "==> npm ci"
npm ci --no-audit --no-fund
npm run build
echo "==> ready: ./bin/fleet doctor"

if [ "${1:-}" = "--demo" ]; then
  exec scripts/demo.sh
fi
