#!/usr/bin/env bash
# The main job end to end on this host, with the defaults: a new fleet repository, the Debian
# base image built (its bootstrap is cached in /var/tmp/fleet-cache, so a second run takes
# seconds), a VM created and booted from it on user networking, and its identity shown over
# `fleet ssh` with the host key verified from the first connection. Needs root.
# (The Debian builder is used explicitly: the NixOS flake needs a Nix that can fetch nixpkgs.)
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET="$PWD/bin/fleet"
WORK=${FLEET_DEMO_DIR:-/tmp/fleet-demo}
VM=demo-web1
export FLEET_STATE_DIR="$WORK/state" FLEET_CACHE_DIR=${FLEET_CACHE_DIR:-/var/tmp/fleet-cache}

step() { printf '\n==> %s\n' "$*" >&2; }

# A previous run's VM: remove it with fleet itself before wiping the folder.
if [ -d "$WORK/repo/machines/$VM" ]; then
  (cd "$WORK/repo" && "$FLEET" destroy-vm "$VM" --delete-data --yes >/dev/null 2>&1) || true
fi
rm -rf "$WORK" && mkdir -p "$WORK" && chmod 755 "$WORK"

step "fleet init $WORK/repo"
"$FLEET" init "$WORK/repo"
cd "$WORK/repo"

KEY="$WORK/admin_ed25519"
ssh-keygen -q -t ed25519 -N '' -C "fleet-demo" -f "$KEY"

step "fleet build --builder debian (Debian 12 + the guest contract; first run bootstraps from deb.debian.org)"
"$FLEET" build --builder debian --compress

step "fleet create-vm $VM --network user --start"
"$FLEET" create-vm "$VM" --memory 1G --vcpus 1 --var-size 1G --network user --admin-key "$KEY.pub" --yes --start

step "fleet ssh $VM (waits for the boot; under TCG about 30-60 s)"
"$FLEET" ssh "$VM" -i "$KEY" --wait 600 -- \
  'echo "machine-id  $(cat /etc/machine-id)"; echo "hostname    $(hostname)"; echo "root        $(findmnt -no OPTIONS /)"; echo "journal     $(ls /var/log/journal)"'
echo "machines/$VM/machine-id: $(cat "machines/$VM/machine-id")"

step "fleet list"
"$FLEET" list
echo
echo "Log in yourself: cd $WORK/repo && FLEET_STATE_DIR=$FLEET_STATE_DIR $FLEET ssh $VM -i $KEY"
echo "Clean up:        cd $WORK/repo && FLEET_STATE_DIR=$FLEET_STATE_DIR $FLEET destroy-vm $VM --delete-data --yes"
