# Guest contract, identity part shared by every image fleet builds or tests (docs/guest-contract.md,
# "Identity from a disk" and "Failure rules"): sourced by the NixOS initrd service (identity.nix),
# the Debian initramfs script (images/debian/…/local-bottom/fleet-identity) and the test image's
# init (test/image/build-test-image.sh). POSIX sh (dash, klibc sh, busybox sh and bash all run it).
# The caller defines `fatal MESSAGE` (print one FLEET-FATAL line and power off, or fail the unit)
# and `say MESSAGE` (a console line), and mounts the identity disk itself (mount binaries differ).
# cp, mv, rm, chmod, mkdir and sync are called by those names; a caller whose initramfs names them
# otherwise defines shell functions of these names first.

FLEET_IDENTITY_FILES="machine-id hostname ssh_host_ed25519_key ssh_host_ed25519_key.pub resolv.conf hosts tcp_ports udp_ports admin_authorized_keys user_authorized_keys"

# The core identity files of folder $1 present, the machine-id well-formed; else fatal ($2 prefixes the names).
fleet_check_core() {
  # The first line; read fails on a last line without a newline but has still set mid.
  mid=""
  read -r mid < "$1/machine-id" 2>/dev/null || true
  case "$mid" in
    *[!0-9a-f]*|'') fatal "${2}machine-id missing or not 32 lowercase hex digits" ;;
  esac
  [ "${#mid}" -eq 32 ] || fatal "${2}machine-id missing or not 32 lowercase hex digits"
  for f in hostname ssh_host_ed25519_key ssh_host_ed25519_key.pub; do
    [ -s "$1/$f" ] || fatal "${2}$f missing or empty"
  done
}

# A swap of $1 (/var/identity) cut short between its two renames left no $1 but a complete $1.old
# ($1.new, complete or not, is left for the copy below to replace): $1.old goes back, so a boot
# without the identity disk afterwards still has the last complete identity.
fleet_finish_swap() {
  if [ ! -e "$1" ] && [ -d "$1.old" ]; then
    mv "$1.old" "$1" || fatal "cannot move $1.old back to $1"
    sync
    say "identity swap cut short by a crash: the previous identity $1.old put back as $1"
  fi
}

# Sets iddisk to the virtio disk with serial fleet-identity (empty if none). Every virtio disk is
# waited for (up to 5 s), so one still probing is not taken for none.
fleet_find_identity_disk() {
  iddisk=""
  i=0
  while :; do
    pending=0
    for v in /sys/bus/virtio/devices/*; do
      [ "$(cat "$v/device" 2>/dev/null)" = 0x0002 ] || continue
      b=""
      for d in "$v"/block/*; do [ -e "$d" ] && b="${d##*/}"; done
      if [ -z "$b" ]; then pending=1; continue; fi
      # cat, not read: the serial attribute has no newline, and read would report a failure.
      [ "$(cat "/sys/block/$b/serial" 2>/dev/null)" = fleet-identity ] && iddisk="/dev/$b"
    done
    { [ "$pending" = 0 ] || [ "$i" -ge 50 ]; } && break
    i=$((i + 1))
    sleep 0.1
  done
}

# Copies the identity files of the mounted identity disk $1 into $2 (/var/identity): checked first
# (a malformed source is fatal and $2 stays as it was), written complete into $2.new and synced,
# then swapped in by renames: a crash leaves $2 or $2.old (fleet_finish_swap), never neither.
fleet_copy_identity() {
  fleet_check_core "$1" "identity disk $iddisk: "
  fleet_finish_swap "$2"
  rm -rf "$2.new"
  mkdir -m 0755 "$2.new" || fatal "cannot create $2.new"
  for f in $FLEET_IDENTITY_FILES; do
    [ -f "$1/$f" ] && [ ! -L "$1/$f" ] || continue
    cp "$1/$f" "$2.new/$f" || fatal "cannot copy $f from the identity disk"
    mode=0644
    [ "$f" != ssh_host_ed25519_key ] || mode=0600
    chmod "$mode" "$2.new/$f" || fatal "cannot chmod $2.new/$f"
  done
  sync
  rm -rf "$2.old"
  [ ! -e "$2" ] || mv "$2" "$2.old" || fatal "cannot move $2 aside"
  mv "$2.new" "$2" || fatal "cannot rename $2.new to $2"
  rm -rf "$2.old"
  sync
}
