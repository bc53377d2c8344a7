#!/usr/bin/env bash
# build-test-image.sh — build a tiny bootable UEFI test base image for fleet's tests.
#
# Usage: build-test-image.sh OUT.qcow2 [--version STR] [--var-label LABEL] [--stay-up] [--ssh] [--break-contract identity]
#
#   --version STR      version string printed in the marker line (default: v1)
#   --var-label LABEL  filesystem label the guest looks for as its /var disk
#                      (default: var; pass e.g. "nosuch" to build an image that
#                      never finds its /var disk and prints FLEET-FATAL)
#   --stay-up          after the marker keep running: answer the QEMU guest agent's
#                      guest-sync/guest-ping and power off on the ACPI power button
#                      (a guest a health check can watch; see README.md)
#   --ssh              implies --stay-up; also brings up the virtio NIC by DHCP and
#                      runs dropbear on port 22 with the VM's identity host key
#                      (/var/identity/ssh_host_ed25519_key) for the accounts admin
#                      and user (their *_authorized_keys): a guest `fleet ssh` can
#                      log in to, host key verified (needs dropbear-bin)
#   --break-contract identity
#                      TEST ONLY: build an image that breaks the guest contract on
#                      purpose: it skips its identity step and reports a machine-id
#                      baked into the image, so `fleet build`/`image import --verify`
#                      must refuse to promote it
#
# Environment overrides: FLEET_TEST_KERNEL (a vmlinuz; default: newest
# /boot/vmlinuz-*), FLEET_TEST_BUSYBOX (a static busybox; default /bin/busybox),
# FLEET_TEST_SDBOOT (systemd-boot EFI binary), QEMU_IMG (default qemu-img).
#
# The image obeys the boot side of fleet's guest contract (docs/guest-contract.md): a GPT disk
# with one EFI system partition holding systemd-boot, the host kernel and a
# busybox initramfs. The initramfs mounts the ext4 filesystem labelled LABEL at
# /var, reads /var/identity/, keeps a boot counter and a write-once data file in
# /var/fleet-test/, prints one FLEET-TEST-MARKER line on ttyS0 and powers off.
# See test/image/README.md for the marker format.
#
# Userspace tools only: no loop devices, no mounts, no root (only read access to
# the kernel in /boot and its modules in /lib/modules). Debian packages needed:
# systemd-boot-efi busybox-static mtools dosfstools fdisk qemu-utils cpio
# linux-image-amd64 (plus xz-utils/zstd only if the kernel compresses modules).
set -euo pipefail

die() { echo "build-test-image: $*" >&2; exit 1; }

# ---------------------------------------------------------------- arguments
OUT="" VERSION="v1" VAR_LABEL="var" STAY_UP=0 SSH=0 BREAK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version)   [ $# -ge 2 ] || die "--version needs a value"; VERSION="$2"; shift 2 ;;
    --var-label) [ $# -ge 2 ] || die "--var-label needs a value"; VAR_LABEL="$2"; shift 2 ;;
    --stay-up)   STAY_UP=1; shift ;;
    --ssh)       SSH=1 STAY_UP=1; shift ;;
    --break-contract) [ "${2:-}" = identity ] || die "--break-contract takes: identity"; BREAK="$2"; shift 2 ;;
    -h|--help)   sed -n '2,23p' "$0"; exit 0 ;;
    -*)          die "unknown option: $1" ;;
    *)           [ -z "$OUT" ] || die "only one output file allowed"; OUT="$1"; shift ;;
  esac
done
[ -n "$OUT" ] || die "usage: $0 OUT.qcow2 [--version STR] [--var-label LABEL] [--stay-up]"
# Both values end up in a shell file inside the guest and in a one-line marker:
# keep them to a safe character set. ext4 labels are at most 16 bytes.
[[ "$VERSION" =~ ^[A-Za-z0-9._+-]+$ ]] || die "bad --version '$VERSION' (allowed: A-Z a-z 0-9 . _ + -)"
[[ "$VAR_LABEL" =~ ^[A-Za-z0-9._-]{1,16}$ ]] || die "bad --var-label '$VAR_LABEL'"

# ---------------------------------------------------------------- inputs
KERNEL="${FLEET_TEST_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}"
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || die "no readable kernel in /boot (apt-get install linux-image-amd64)"
KVER="${KERNEL##*/vmlinuz-}"
MODDIR="/lib/modules/$KVER"
[ -r "$MODDIR/modules.dep" ] || die "$MODDIR/modules.dep missing (run depmod $KVER)"
BUSYBOX="${FLEET_TEST_BUSYBOX:-/bin/busybox}"
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing (apt-get install busybox-static)"
# A dynamically linked busybox would fail in the initramfs with a bare "not found".
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is dynamically linked; install busybox-static"; fi
SDBOOT="${FLEET_TEST_SDBOOT:-/usr/lib/systemd/boot/efi/systemd-bootx64.efi}"
[ -r "$SDBOOT" ] || die "$SDBOOT missing (apt-get install systemd-boot-efi)"
QEMU_IMG="${QEMU_IMG:-qemu-img}"
PATH="$PATH:/usr/sbin:/sbin"   # mkfs.vfat and sfdisk live in sbin on Debian
for t in sfdisk mkfs.vfat mmd mcopy cpio gzip dd "$QEMU_IMG"; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fleet-test-image.XXXXXX")"
trap 'rm -rf "$WORK" "$OUT.tmp.$$"' EXIT

# ---------------------------------------------------------------- kernel modules
# Modules the guest needs, beyond what the Debian kernel has built in:
# virtio PCI transport + block driver for vda/vdb, and ext4 for /var.
# crc32c_generic is only a *soft* dependency of ext4/jbd2 (crypto-crc32c, needed
# for metadata_csum, the mkfs.ext4 default) so modules.dep does not list it.
# We take the generic implementation: crc32c-intel needs SSE4.2, which TCG's
# default CPU model lacks.
# isofs: the identity disk (KubeVirt's Secret volume, an ISO9660 image; docs/guest-contract.md).
WANTED=(virtio_pci virtio_blk crc32c_generic ext4 isofs)
# --stay-up also needs the power button (button + evdev) and virtio-serial for the agent.
[ "$STAY_UP" = 0 ] || WANTED+=(button evdev virtio_console)
# --ssh: the virtio NIC (its failover helpers come in as dependencies).
[ "$SSH" = 0 ] || WANTED+=(virtio_net af_packet)
declare -A DEPS=() SEEN=()
ORDER=()
# modules.dep: "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko ..."
# (the right side is the full transitive closure, dependencies of deps included).
while IFS= read -r line; do
  mod="${line%%:*}"; mod="${mod##*/}"; mod="${mod%%.ko*}"
  DEPS["${mod//-/_}"]="${line%%:*}|${line#*:}"
done < "$MODDIR/modules.dep"

add_module() {  # depth-first: dependencies first, so ORDER is a valid insmod order
  local name="${1//-/_}" entry path dep
  [ -z "${SEEN[$name]:-}" ] || return 0
  SEEN[$name]=1
  entry="${DEPS[$name]:-}"
  if [ -z "$entry" ]; then
    # Built into the kernel (e.g. virtio on some distributions): nothing to load.
    grep -Eq "/${name//_/[-_]}\.ko$" "$MODDIR/modules.builtin" 2>/dev/null && return 0
    die "kernel module $name not found in $MODDIR"
  fi
  path="${entry%%|*}"
  for dep in ${entry#*|}; do
    dep="${dep##*/}"; add_module "${dep%%.ko*}"
  done
  ORDER+=("$name:$path")
}
for m in "${WANTED[@]}"; do add_module "$m"; done

# ---------------------------------------------------------------- initramfs tree
ROOT="$WORK/initramfs"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,var,etc,lib/modules}
install -m 0755 "$BUSYBOX" "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"          # the applet links are made at boot (--install -s)

: > "$ROOT/lib/modules/load-order"
for item in "${ORDER[@]}"; do
  name="${item%%:*}" src="$MODDIR/${item#*:}" dst="$ROOT/lib/modules/${item%%:*}.ko"
  case "$src" in                      # busybox insmod wants a plain ELF .ko
    *.ko)     cp "$src" "$dst" ;;
    *.ko.xz)  xz -dc "$src" > "$dst" ;;
    *.ko.zst) zstd -qdc "$src" > "$dst" ;;
    *.ko.gz)  gzip -dc "$src" > "$dst" ;;
    *)        die "unsupported module file $src" ;;
  esac
  echo "$name" >> "$ROOT/lib/modules/load-order"
done

# Build-time settings, sourced by /init (values were validated above).
printf 'VERSION=%s\nVAR_LABEL=%s\nSTAY_UP=%s\nSSH=%s\nBREAK=%s\n' "$VERSION" "$VAR_LABEL" "$STAY_UP" "$SSH" "$BREAK" > "$ROOT/etc/fleet-test.conf"

# --ssh: dropbear and dropbearconvert with the shared libraries they load (same paths as here),
# the accounts, and udhcpc's hook that configures the address it was given.
if [ "$SSH" = 1 ]; then
  for t in dropbear dropbearconvert; do
    bin="$(PATH="$PATH:/usr/sbin:/usr/lib/dropbear" command -v "$t")" || die "--ssh needs $t (apt-get install dropbear-bin)"
    install -D -m 0755 "$bin" "$ROOT/usr/sbin/$t"
    for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
      [ -e "$ROOT$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$ROOT$lib"
    done
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'admin:x:1000:1000:admin:/home/admin:/bin/sh' 'user:x:1001:1001:user:/home/user:/bin/sh' > "$ROOT/etc/passwd"
  printf '%s\n' 'root:x:0:' 'admin:x:1000:' 'user:x:1001:' > "$ROOT/etc/group"
  printf '%s\n' '/bin/sh' > "$ROOT/etc/shells"
  mkdir -p "$ROOT/usr/share/udhcpc"
  cat > "$ROOT/usr/share/udhcpc/default.script" <<'DHCP'
#!/bin/sh
case "$1" in
  deconfig) ifconfig "$interface" 0.0.0.0 up ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    for r in $router; do route add default gw "$r" dev "$interface"; break; done ;;
esac
DHCP
  chmod 0755 "$ROOT/usr/share/udhcpc/default.script"
fi

# The guest contract's identity steps, shared with the NixOS and Debian images.
mkdir -p "$ROOT/lib/fleet"
cp "$(dirname "$(readlink -f "$0")")/../../nix/modules/identity-disk.sh" "$ROOT/lib/fleet/identity-disk.sh"

# /init: the whole "operating system". Quoted heredoc: nothing expands here.
cat > "$ROOT/init" <<'INIT'
#!/bin/sh
# fleet test image init (busybox sh). Follows the /var side of the guest contract.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel could not give us stdio:
# reopen it now that devtmpfs exists, or every line below is lost.
exec </dev/console >/dev/console 2>&1
. /etc/fleet-test.conf

finish() { sync; umount /var 2>/dev/null || mount -o remount,ro /var 2>/dev/null; sync; poweroff -f; }
# The contract's failure rule: one FLEET-FATAL line on the console, then power off.
fatal() { echo "FLEET-FATAL $*"; finish; }
sha() { if [ -f "$1" ]; then sha256sum "$1" | cut -d' ' -f1; else echo none; fi; }
# First line of a file without whitespace (values go into a space-separated line).
val() { if [ -f "$1" ]; then head -n 1 "$1" | tr -d ' \t\r\n'; else echo none; fi; }

for m in $(cat /lib/modules/load-order); do
  insmod "/lib/modules/$m.ko" || echo "FLEET-TEST-WARN insmod $m failed"
done

# Wait up to 20 s (guest uptime, not loop counts: TCG is slow) for the /var disk;
# virtio probing is asynchronous, so it may not exist yet.
deadline=$(( $(cut -d. -f1 /proc/uptime) + 20 ))
while :; do
  dev="$(findfs "LABEL=$VAR_LABEL" 2>/dev/null)" && [ -n "$dev" ] && break
  dev=""
  [ "$(cut -d. -f1 /proc/uptime)" -lt "$deadline" ] || break
  sleep 0.2
done
[ -n "$dev" ] || fatal "no filesystem labelled $VAR_LABEL after 20 s (the /var disk, vdb)"
mount -t ext4 -o rw "$dev" /var || fatal "cannot mount $dev (LABEL=$VAR_LABEL) on /var"

ID=/var/identity
# The identity steps every fleet image shares (nix/modules/identity-disk.sh, copied in at build):
# fleet_check_core, fleet_finish_swap, fleet_find_identity_disk, fleet_copy_identity.
say() { echo "FLEET-TEST-IDENTITY-SAY $*"; }
. /lib/fleet/identity-disk.sh

if [ "$BREAK" != identity ]; then
  fleet_finish_swap "$ID"
  # The identity disk (docs/guest-contract.md, "Identity from a disk").
  fleet_find_identity_disk
  if [ -n "$iddisk" ]; then
    mkdir -p /run/iddisk
    mount -t iso9660 -o ro "$iddisk" /run/iddisk || fatal "cannot mount the identity disk $iddisk (serial fleet-identity)"
    fleet_copy_identity /run/iddisk "$ID"
    umount /run/iddisk
    echo "FLEET-TEST-IDENTITY-DISK $iddisk copied into $ID"
  fi
fi

# The core identity must be there (docs/guest-contract.md, failure rules) before anything
# runs as this machine. --break-contract identity skips this step and uses a baked id.
if [ "$BREAK" = identity ]; then
  machine_id=0123456789abcdef0123456789abcdef
else
  fleet_check_core "$ID" "$ID/"
  machine_id="$mid"
fi

mkdir -p /var/fleet-test
n="$(cat /var/fleet-test/boot-count 2>/dev/null)"
case "$n" in ''|*[!0-9]*) n=0 ;; esac
n=$((n + 1))
echo "$n" > /var/fleet-test/boot-count
if [ ! -f /var/fleet-test/data ]; then   # written once, never changed afterwards
  head -c 65536 /dev/urandom > /var/fleet-test/data.tmp && mv /var/fleet-test/data.tmp /var/fleet-test/data
fi
echo "version=$VERSION boot=$n date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" > /var/fleet-test/last-boot
sync

host="$(val /var/identity/hostname)"
[ "$host" = none ] || hostname "$host"
# Port lines: blanks and comments (# to the end of the line) skipped; any other line that is not 1-65535 is
# skipped and reported (the contract's rule), the rest "opened".
ports=""
if [ -f /var/identity/tcp_ports ]; then
  while IFS= read -r raw || [ -n "$raw" ]; do
    line="$(echo "${raw%%#*}" | tr -d ' \t\r')"
    [ -n "$line" ] || continue
    pn="$(echo "$line" | sed 's/^0*//')"   # decimal: leading zeros would read as octal
    case "$line" in
      *[!0-9]*) ok=0 ;;
      *) if [ -n "$pn" ] && [ "${#pn}" -le 5 ] && [ "$pn" -le 65535 ]; then ok=1; else ok=0; fi ;;
    esac
    if [ "$ok" = 1 ]; then ports="${ports:+$ports,}$pn"
    else echo "fleet-firewall: ignoring '$raw' in /var/identity/tcp_ports (not a port 1-65535)"; fi
  done < /var/identity/tcp_ports
fi
[ -n "$ports" ] || ports=none
root=unknown
case "$(cat /sys/block/vda/ro 2>/dev/null)" in 1) root=ro ;; 0) root=rw ;; esac

for f in /var/identity/* /var/identity/.[!.]*; do
  [ -f "$f" ] || continue
  echo "FLEET-TEST-IDENTITY ${f#/var/identity/} mode=$(stat -c %a "$f") sha256=$(sha "$f")"
done
# The self-check line (docs/guest-contract.md): facts only, the host compares them.
# The label of what is mounted on /var, read from its ext4 superblock (s_volume_name at 1144).
vardev="$(awk '$2 == "/var" { print $1 }' /proc/mounts)"
label="$([ -n "$vardev" ] && dd if="$vardev" bs=1 skip=1144 count=16 2>/dev/null | tr -d '\000')"
hostkey="$(cut -d' ' -f2 /var/identity/ssh_host_ed25519_key.pub 2>/dev/null)"
echo "FLEET-SELF-CHECK machine-id=${machine_id:-none} root=$root var=${label:-none} hostkey=${hostkey:-none}"
echo "FLEET-TEST-MARKER version=$VERSION machine-id=$machine_id hostname=$host boot=$n data-sha256=$(sha /var/fleet-test/data) hosts-sha256=$(sha /var/identity/hosts) tcp_ports=$ports root=$root"
[ "$STAY_UP" = 1 ] || finish

# --stay-up: a guest that is only "up" once /var is mounted (a failed boot above powered off
# without ever starting these). The agent answers guest-sync and guest-ping over virtio-serial,
# enough for libvirt's `qemu-agent-command`; any other command gets an error.
agent() {
  port=""
  while [ -z "$port" ]; do
    for d in /sys/class/virtio-ports/*; do
      [ "$(cat "$d/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port="/dev/${d##*/}"
    done
    [ -n "$port" ] && [ -c "$port" ] || { port=""; sleep 1; }
  done
  # Kept open for good: closing it tells libvirt the agent went away. A read finds end-of-file
  # while libvirt is not connected yet (it connects when it sees the port opened).
  exec 3<>"$port"
  while :; do
    if IFS= read -r line <&3; then
      case "$line" in
        *guest-sync*) printf '{"return": %s}\n' "$(echo "$line" | sed -n 's/.*"id"[^0-9]*\([0-9]*\).*/\1/p')" >&3 ;;
        *guest-ping*) printf '{"return": {}}\n' >&3 ;;
        *) printf '{"error": {"class": "CommandNotFound", "desc": "fleet test agent"}}\n' >&3 ;;
      esac
    else
      sleep 0.2
    fi
  done
}
# The ACPI power button (what `virsh shutdown` presses): its first input event powers off
# cleanly. Listening before anything says "up", so a press after a passed health check is seen.
button=""
for d in /sys/class/input/event*; do
  case "$(cat "$d/device/name" 2>/dev/null)" in "Power Button") button="/dev/input/${d##*/}" ;; esac
done
if [ -n "$button" ]; then
  ( dd if="$button" of=/dev/null bs=64 count=1 2>/dev/null && { echo "FLEET-TEST-DOWN power button"; finish; } ) &
else
  echo "FLEET-TEST-WARN no power button; only a hard power-off stops this guest"
fi
agent &
# --ssh: the network by DHCP, then dropbear with the identity's host key; logins only by the keys
# of /var/identity/{admin,user}_authorized_keys (the guest contract's accounts).
if [ "$SSH" = 1 ]; then
  mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
  ifconfig lo 127.0.0.1 up
  ifconfig eth0 up
  timeout 60 udhcpc -i eth0 -s /usr/share/udhcpc/default.script -n -q -t 20 -T 1 >/dev/null 2>&1 || echo "FLEET-TEST-WARN no DHCP lease on eth0"
  for u in admin user; do
    mkdir -p "/home/$u/.ssh"
    [ ! -f "/var/identity/${u}_authorized_keys" ] || cp "/var/identity/${u}_authorized_keys" "/home/$u/.ssh/authorized_keys"
    chmod 0700 "/home/$u/.ssh"
    chown -R "$u:$u" "/home/$u"
  done
  mkdir -p /etc/dropbear
  if dropbearconvert openssh dropbear /var/identity/ssh_host_ed25519_key /etc/dropbear/host_key >/dev/null 2>&1; then
    dropbear -r /etc/dropbear/host_key -p 22 -s -E 2>/dev/null
    echo "FLEET-TEST-SSH dropbear on port 22, address $(ifconfig eth0 | sed -n 's/.*inet addr:\([0-9.]*\).*/\1/p')"
  else
    echo "FLEET-TEST-WARN cannot convert /var/identity/ssh_host_ed25519_key for dropbear"
  fi
fi
echo "FLEET-TEST-UP agent started"
while :; do sleep 3600; done
INIT
chmod 0755 "$ROOT/init"

# newc cpio, every file owned by root; no device nodes needed (devtmpfs at boot).
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) \
  | gzip -6 -n > "$WORK/initrd.img"

# ---------------------------------------------------------------- EFI system partition
DISK_MIB=64                 # whole disk
ESP_START=2048              # sectors (1 MiB alignment)
ESP_MIB=62                  # leaves room for the backup GPT in the last MiB
ESP_SECTORS=$((ESP_MIB * 2048))
ESP="$WORK/esp.img"
# -C creates the file; size in KiB. FAT32 is what the UEFI spec asks for an ESP.
mkfs.vfat -C -F 32 -n FLEETESP "$ESP" $((ESP_MIB * 1024)) >/dev/null

export MTOOLS_SKIP_CHECK=1  # mtools must not complain about the image's geometry
mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/fleet
mcopy -i "$ESP" "$SDBOOT" ::/EFI/BOOT/BOOTX64.EFI      # the removable-media fallback path OVMF boots
mcopy -i "$ESP" "$SDBOOT" ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$ESP" "$KERNEL" ::/fleet/vmlinuz
mcopy -i "$ESP" "$WORK/initrd.img" ::/fleet/initrd.img

cat > "$WORK/loader.conf" <<EOF
default fleet-test.conf
timeout 0
editor no
EOF
# panic=-1: if init ever dies the guest reboots instead of hanging forever.
cat > "$WORK/fleet-test.conf" <<EOF
title   fleet test image $VERSION
version $VERSION
linux   /fleet/vmlinuz
initrd  /fleet/initrd.img
options console=ttyS0 panic=-1 quiet
EOF
mcopy -i "$ESP" "$WORK/loader.conf" ::/loader/loader.conf
mcopy -i "$ESP" "$WORK/fleet-test.conf" ::/loader/entries/fleet-test.conf

# ---------------------------------------------------------------- GPT disk
RAW="$WORK/disk.raw"
truncate -s "${DISK_MIB}M" "$RAW"
# C12A7328-... is the EFI system partition type GUID.
sfdisk --quiet --no-reread --no-tell-kernel "$RAW" >/dev/null <<EOF
label: gpt
start=$ESP_START, size=$ESP_SECTORS, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
EOF
dd if="$ESP" of="$RAW" bs=512 seek="$ESP_START" conv=notrunc,sparse status=none

# ---------------------------------------------------------------- qcow2 output
mkdir -p "$(dirname "$OUT")"
"$QEMU_IMG" convert -f raw -O qcow2 "$RAW" "$OUT.tmp.$$"
mv -f "$OUT.tmp.$$" "$OUT"
echo "built $OUT (version=$VERSION var-label=$VAR_LABEL${BREAK:+ BROKEN CONTRACT: $BREAK} kernel=$KVER modules: $(tr '\n' ' ' < "$ROOT/lib/modules/load-order"))"
