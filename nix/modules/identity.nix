# Guest contract, identity: every VM's identity lives in /var/identity/ on its own /var disk.
# /etc is read-only, so the image carries placeholder files there and the initrd bind-mounts
# the identity files over them before the real root's systemd starts:
#   machine-id  -> /etc/machine-id   (read by systemd PID 1 and journald at their very start)
#   hostname    -> /etc/hostname     (the static hostname; DHCP cannot override it)
#   resolv.conf -> /etc/resolv.conf
#   hosts       -> /etc/hosts        (the image's default lines followed by the VM's extra lines)
# The image itself carries no identity: an empty machine-id, no hostname, no host keys.
# A /var disk without a usable identity is fatal (docs/guest-contract.md, "Failure rules"):
# the guest prints one FLEET-FATAL line on the serial console and powers off.
#
# Why the initrd and not systemd credentials: `systemd.machine_id=` would have to be on the
# kernel command line, which lives in the shared, read-only ESP; and SMBIOS/fw_cfg credentials
# would move identity out of /var/identity into the domain XML. A systemd stage-1 service
# that binds the files after /sysroot/var is mounted is in place before PID 1 of the real root
# reads /etc/machine-id, so journald writes to /var/log/journal/<the VM's machine-id> from
# the first message on.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.fleet.identity;
  dir = cfg.directory;
  initrdSystemd = config.boot.initrd.systemd.package;
  mount = "${initrdSystemd.util-linux}/bin/mount";
  umount = "${initrdSystemd.util-linux}/bin/umount";
  # The image's own /etc/hosts (localhost lines and networking.hosts), from the store.
  defaultHosts = config.environment.etc.hosts.source;
  # How long the initrd waits for the /var disk (filesystem.nix) before the boot is fatal.
  varTimeout = config.fleet.filesystem.varTimeout;
in
{
  options.fleet.identity = {
    directory = lib.mkOption {
      type = lib.types.str;
      default = "/var/identity";
      description = "Where the VM's identity files are, as seen by the running guest.";
    };
  };

  config = {
    assertions = [
      {
        assertion = config.boot.initrd.systemd.enable;
        message = "fleet: identity is bound by a systemd initrd service; set boot.initrd.systemd.enable (boot.nix does).";
      }
      {
        assertion = builtins.elem config.environment.etc."machine-id".text [
          ""
          "uninitialized\n"
        ];
        message = "fleet: the base image must not carry a machine-id; it comes from ${dir}/machine-id.";
      }
      {
        assertion = config.networking.hostName == "";
        message = "fleet: leave networking.hostName empty; each VM's hostname comes from ${dir}/hostname.";
      }
    ];

    # Placeholders. Real files (any mode but "symlink"): a bind mount onto a symlink would
    # follow it into the store and cover the store file instead.
    environment.etc = {
      "machine-id" = {
        # Empty: if the bind fails, systemd boots with a transient id instead of a baked one.
        text = "";
        mode = "0444";
      };
      # mkDefault: yields to nixpkgs' own hostname file, so that an admin who sets
      # networking.hostName gets the assertion above rather than a merge conflict.
      hostname = {
        text = lib.mkDefault "";
        mode = "0444";
      };
      # The identity's public host key is bound here (sshd itself reads the private key from
      # ${dir}, see ssh.nix).
      "ssh/ssh_host_ed25519_key.pub" = {
        text = "";
        mode = "0444";
      };
      "resolv.conf" = {
        text = "# Replaced at boot by ${dir}/resolv.conf (see fleet-identity.service in the initrd).\n";
        mode = "0444";
      };
      hosts.mode = "0444";
    };

    # mkDefault: beats the option's own default ("nixos") but leaves an explicit admin value
    # visible to the assertion above. Empty means: no static name baked into the image.
    networking.hostName = lib.mkDefault "";

    boot.initrd.systemd.storePaths = [
      mount
      umount
    ];
    # The identity disk (KubeVirt's Secret volume) is ISO9660.
    boot.initrd.kernelModules = [ "isofs" ];

    boot.initrd.systemd.services.fleet-identity = {
      description = "Bind the VM identity from ${dir} over the /etc placeholders";
      # requiredBy: its failure fails initrd-fs.target, whose OnFailure= is emergency.target.
      requiredBy = [ "initrd-fs.target" ];
      before = [
        "initrd-fs.target"
        "initrd-nixos-activation.service"
        "shutdown.target"
      ];
      conflicts = [ "shutdown.target" ];
      unitConfig = {
        DefaultDependencies = false;
        # /sysroot, /sysroot/var (neededForBoot) and /sysroot/etc (the etc overlay); the binds
        # made here move with /sysroot when the initrd switches to it.
        RequiresMountsFor = [
          "/sysroot/var"
          "/sysroot/etc"
        ];
      };
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # The lines it prints show on the serial console, where `fleet console` and the tests look.
        StandardOutput = "journal+console";
        StandardError = "journal+console";
      };
      # The failure rules of docs/guest-contract.md: a missing /var/identity, machine-id,
      # hostname or host key, or a bind that fails, is fatal (the reason goes to
      # /run/fleet/fatal, the unit fails, initrd-fs.target fails, and fleet-fatal.service
      # below prints the one FLEET-FATAL line and powers off). resolv.conf and hosts are
      # optional: missing means empty.
      script = ''
        set -u
        export PATH=/bin
        id=/sysroot${dir}

        say() { echo "fleet-identity: $*"; }
        fatal() {
          mkdir -p /run/fleet
          echo "$*" > /run/fleet/fatal
          say "fatal: $*"
          exit 1
        }
        bind_ro() {
          ${mount} --bind -o ro "$1" "/sysroot$2" || fatal "could not bind $3 over $2"
          say "$2 <- $3"
        }

        # The /var disk layout the contract promises; a fresh disk may lack the folders.
        mkdir -p /sysroot/var/home /sysroot/var/log/journal

        # The identity steps every fleet image shares: fleet_check_core, fleet_finish_swap,
        # fleet_find_identity_disk and fleet_copy_identity (docs/guest-contract.md).
        ${builtins.readFile ./identity-disk.sh}

        fleet_finish_swap "$id"
        # The identity disk (docs/guest-contract.md, "Identity from a disk"): the virtio disk with
        # serial fleet-identity, an ISO9660 image of the identity files (KubeVirt's Secret volume).
        fleet_find_identity_disk
        if [ -n "$iddisk" ]; then
          src=/run/fleet/identity-disk
          mkdir -p "$src"
          ${mount} -t iso9660 -o ro "$iddisk" "$src" || fatal "cannot mount the identity disk $iddisk (serial fleet-identity)"
          fleet_copy_identity "$src" "$id"
          ${umount} "$src" || say "could not unmount the identity disk (harmless: read-only)"
          say "identity disk $iddisk copied into ${dir}"
        fi

        [ -d "$id" ] || fatal "no ${dir} on the /var disk"
        fleet_check_core "$id" "${dir}/"

        bind_ro "$id/machine-id" /etc/machine-id "${dir}/machine-id"
        bind_ro "$id/hostname" /etc/hostname "${dir}/hostname"
        bind_ro "$id/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub "${dir}/ssh_host_ed25519_key.pub"

        if [ -f "$id/resolv.conf" ]; then
          bind_ro "$id/resolv.conf" /etc/resolv.conf "${dir}/resolv.conf"
        else
          say "${dir}/resolv.conf missing: no DNS servers"
        fi

        # /run of the initrd becomes /run of the real root, so the merged file outlives the switch.
        mkdir -p /run/fleet
        {
          cat "/sysroot${defaultHosts}"
          if [ -f "$id/hosts" ]; then
            echo "# extra lines from ${dir}/hosts"
            cat "$id/hosts"
          fi
        } > /run/fleet/hosts
        chmod 0444 /run/fleet/hosts
        bind_ro /run/fleet/hosts /etc/hosts "the image's hosts + ${dir}/hosts"

        # The homes live on the /var disk (read-write, unlike the binds above).
        ${mount} --bind /sysroot/var/home /sysroot/home || fatal "could not bind /var/home on /home"
        say "/home <- /var/home"

        # Not a failure rule (sshd refuses the key, so the self-check reports hostkey=none);
        # said here because it is the likely reason.
        mode=$(stat -c %a "$id/ssh_host_ed25519_key")
        if [ "$mode" != 600 ]; then
          say "warning: ${dir}/ssh_host_ed25519_key has mode $mode, sshd ignores host keys not 0600"
        fi
        exit 0
      '';
    };

    # Fatal failures end here: the initrd's emergency.target starts when initrd-fs.target
    # (the /var mount, its fsck, fleet-identity) or initrd.target fails. Instead of an
    # emergency shell (root is locked anyway), print exactly one line and power off.
    boot.initrd.systemd.services.fleet-fatal = {
      description = "Report a fatal boot failure on the console and power off";
      wantedBy = [ "emergency.target" ];
      before = [ "emergency.service" ];
      unitConfig.DefaultDependencies = false;
      serviceConfig = {
        Type = "oneshot";
        StandardOutput = "journal+console";
        StandardError = "journal+console";
      };
      script = ''
        export PATH=/bin
        reason=$(cat /run/fleet/fatal 2>/dev/null)
        if [ -z "$reason" ]; then
          failed=$(systemctl list-units --failed --plain --no-legend | cut -d' ' -f1 | tr '\n' ' ')
          case "$failed" in
            *systemd-fsck@*var*) reason="e2fsck could not repair the filesystem labelled ${config.fleet.filesystem.varLabel}" ;;
            *sysroot-var.mount*) reason="no filesystem labelled ${config.fleet.filesystem.varLabel} could be mounted at /var within ${varTimeout}" ;;
            *) reason="boot failed in the initrd (failed units: $failed)" ;;
          esac
        fi
        echo "FLEET-FATAL $reason"
        systemctl --no-block poweroff
      '';
    };

    # /etc/hostname (bound above) already makes PID 1 set the name; this sets the kernel
    # hostname again, explicitly (what `hostname NAME` does: sethostname(2) via /proc), so the
    # name is right even if the bind was skipped, and a bad name shows up as a failed unit.
    systemd.services.fleet-hostname = {
      description = "Set the hostname from ${dir}/hostname";
      wantedBy = [ "sysinit.target" ];
      before = [
        "sysinit.target"
        "network-pre.target"
        "systemd-hostnamed.service"
        "shutdown.target"
      ];
      wants = [ "network-pre.target" ];
      conflicts = [ "shutdown.target" ];
      unitConfig = {
        DefaultDependencies = false;
        RequiresMountsFor = [ dir ];
        ConditionPathExists = "${dir}/hostname";
      };
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        read -r name < ${lib.escapeShellArg "${dir}/hostname"} || true
        if [[ ! $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$ ]]; then
          echo "fleet-hostname: '$name' in ${dir}/hostname is not a valid hostname" >&2
          exit 1
        fi
        echo -n "$name" > /proc/sys/kernel/hostname
        echo "fleet-hostname: hostname is $name"
      '';
    };
  };
}
