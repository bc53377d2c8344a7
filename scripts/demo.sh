#!/usr/bin/env bash
# The main job end to end on this host: a new fleet repository, a base image in the store,
# two VMs created and booted from it, each showing its own identity on its serial console.
# The base image is the tiny test image of test/image (the NixOS image needs Nix: `fleet build`).
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET="$PWD/bin/fleet"
WORK=${FLEET_DEMO_DIR:-/tmp/fleet-demo}
export FLEET_STATE_DIR="$WORK/state" FLEET_ON_REBOOT=destroy
rm -rf "$WORK" && mkdir -p "$WORK" && chmod 755 "$WORK"

step() { printf '\n==> %s\n' "$*" >&2; }
step "fleet init $WORK/repo"
"$FLEET" init "$WORK/repo"
cd "$WORK/repo"
step "build the test base image and import it as channel 'base'"
"$OLDPWD/test/image/build-test-image.sh" "$WORK/base.qcow2" --version demo-v1
"$FLEET" image import "$WORK/base.qcow2" --name base
"$FLEET" doctor || true
for vm in demo-web1 demo-web2; do
  "$FLEET" destroy-vm "$vm" --delete-data --yes >/dev/null 2>&1 || true
  step "fleet create-vm $vm --start"
  "$FLEET" create-vm "$vm" --memory 512M --vcpus 1 --var-size 256M --network none --yes --start
done
step "waiting for both guests to report (TCG: about 10-30 s)"
for vm in demo-web1 demo-web2; do
  for _ in $(seq 1 240); do
    grep -q FLEET-TEST-MARKER "$FLEET_STATE_DIR/vms/$vm/console.log" 2>/dev/null && break
    sleep 0.5
  done
  echo "$vm machines/$vm/machine-id: $(cat "machines/$vm/machine-id")"
  "$FLEET" console "$vm" --log | tr -d '\r' | grep -E 'FLEET-TEST-(MARKER|ERROR)' || { echo "$vm did not report; console tail:"; "$FLEET" console "$vm" --log --tail 30; exit 1; }
done
step "fleet list"
"$FLEET" list
echo
echo "Done. Clean up with: cd $WORK/repo && FLEET_STATE_DIR=$FLEET_STATE_DIR $FLEET destroy-vm demo-web1 --delete-data --yes (and demo-web2)"
