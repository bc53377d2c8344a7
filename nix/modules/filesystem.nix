# Guest contract, disks:
# - boot disk (vda): GPT + EFI system partition + a root filesystem mounted READ-ONLY
#   (the domain attaches it with <readonly/>, so the kernel could not write it anyway);
# - /var disk (vdb): ext4 labelled `var`, read-write, holding identity/, home/ and log/journal/;
# - /home is a bind mount of /var/home (made in the initrd, identity.nix), the journal is persistent under /var/log/journal;
# - nothing tries to write the read-only root: /etc is an immutable overlay, users live in
#   /var/lib/nixos, /tmp is a tmpfs, there is no nix daemon and no garbage collection.
{ config, lib, ... }:

let
  cfg = config.fleet.filesystem;
  # services.userborn exists from NixOS 24.11 on; the flake's pin is newer, and the tests
  # evaluate it against NixOS 24.05 as well.
  hasUserborn = lib.versionAtLeast lib.trivial.release "24.11";
in
{
  options.fleet.filesystem = {
    rootLabel = lib.mkOption {
      type = lib.types.str;
      default = "nixos";
      description = "Filesystem (and GPT partition) label of the read-only root; image.nix formats it with this label.";
    };

    espLabel = lib.mkOption {
      type = lib.types.str;
      default = "ESP";
      description = "Filesystem (and GPT partition) label of the EFI system partition; image.nix formats it with this label.";
    };

    varLabel = lib.mkOption {
      type = lib.types.str;
      default = "var";
      description = "Filesystem label of the per-VM /var disk (`fleet create-vm` formats it with this label).";
    };

    varTimeout = lib.mkOption {
      type = lib.types.str;
      default = "30s";
      description = "How long the initrd waits for the /var disk; without it the boot is fatal (docs/guest-contract.md).";
    };

    tmpSize = lib.mkOption {
      type = lib.types.str;
      default = "25%";
      example = "512M";
      description = "Size limit of the /tmp tmpfs (a percentage of RAM or a size).";
    };
  };

  config = lib.mkMerge [
    {
      fileSystems."/" = {
        device = "/dev/disk/by-label/${cfg.rootLabel}";
        fsType = "ext4";
        options = [
          "ro"
          "noatime"
        ];
        # fsck opens the device read-write; on a write-protected disk that fails and would
        # stop the boot. The image is never written after it is built, so there is nothing to check.
        noCheck = true;
      };

      # The ESP is only read at boot by the firmware; mounted read-only for `bootctl status`.
      fileSystems."/boot" = {
        device = "/dev/disk/by-label/${cfg.espLabel}";
        fsType = "vfat";
        options = [
          "ro"
          "nofail"
          "umask=0077"
        ];
        noCheck = true;
      };

      fileSystems."/var" = {
        device = "/dev/disk/by-label/${cfg.varLabel}";
        fsType = "ext4";
        options = [
          "rw"
          "noatime"
          # Missing after this long: the mount fails, and with it the boot (identity.nix,
          # fleet-fatal.service prints FLEET-FATAL and powers off).
          "x-systemd.device-timeout=${cfg.varTimeout}"
        ];
        # Mounted by the initrd (as /sysroot/var) so identity is in place before the real
        # root's systemd starts: see identity.nix, which binds /var/identity/machine-id there.
        neededForBoot = true;
      };

      # /home is /var/home, bound by fleet-identity in the initrd (identity.nix), so it is in
      # place before PID 1 starts, as the contract's boot order says.

      # The only writable scratch space on a read-only root.
      boot.tmp = {
        useTmpfs = true;
        tmpfsSize = cfg.tmpSize;
      };

      # journald keeps its files on the /var disk, so logs survive reboots and upgrades.
      services.journald.extraConfig = ''
        Storage=persistent
      '';

      # /etc is an immutable overlay (erofs + overlayfs, mounted in the initrd): NixOS does
      # not try to write it at boot, and bind mounts can land on its placeholder files.
      system.etc.overlay = {
        enable = true;
        mutable = false;
      };
      # An immutable /etc needs users created without writing /etc at boot.
      # NixOS >= 24.11: userborn (enabled at the end of this file, where 24.05 does not see it) keeps passwd/group/shadow in /var/lib/nixos (on the /var disk)
      # and /etc only holds symlinks to them.
      # NixOS 24.05 (no userborn): systemd-sysusers; with users.mutableUsers = false it writes
      # passwd/group/shadow into the store at build time and /etc (the overlay) holds them.
      systemd.sysusers.enable = !hasUserborn;

      # The store is part of the read-only image: no daemon, no channels, nothing collected.
      # Plain (not mkDefault) so an admin's `nix.enable = true` fails loudly instead of
      # producing an image whose nix cannot work.
      nix.enable = false;
      nix.channel.enable = false;
      nix.gc.automatic = false;

      # mkForce: these replace nixpkgs' own snippets of the same name, which write /bin/sh and
      # /usr/bin/env at every boot and fail on the read-only root. The image carries both links
      # (image.nix puts them on the root filesystem when it assembles the disk).
      system.activationScripts.binsh = lib.mkForce "";
      system.activationScripts.usrbinenv = lib.mkForce "";
    }
    (lib.optionalAttrs hasUserborn { services.userborn.enable = true; })
  ];
}
