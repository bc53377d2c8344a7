# Guest contract, disks:
# - boot disk (vda): GPT + EFI system partition + a root filesystem mounted READ-ONLY
#   (the domain attaches it with <readonly/>, so the kernel could not write it anyway);
# - /var disk (vdb): ext4 labelled `var`, read-write, holding identity/, home/ and log/journal/;
# - /home is a bind mount of /var/home, the journal is persistent under /var/log/journal;
# - nothing tries to write the read-only root: /etc is an immutable overlay, users live in
#   /var/lib/nixos, /tmp is a tmpfs, there is no nix daemon and no garbage collection.
{ config, lib, ... }:

let
  cfg = config.fleet.filesystem;

  # Rewrites an activation snippet so it only runs where / is writable: while
  # make-disk-image installs the image (it creates /bin/sh and /usr/bin/env there once),
  # but not at boot, where the same links are already on the read-only root.
  onWritableRoot = text: ''
    if [ -w / ]; then
      ${text}
    fi
  '';
in
{
  options.fleet.filesystem = {
    rootLabel = lib.mkOption {
      type = lib.types.str;
      default = "nixos";
      description = "Filesystem label of the read-only root (make-disk-image formats it with this label).";
    };

    espLabel = lib.mkOption {
      type = lib.types.str;
      default = "ESP";
      readOnly = true;
      description = "Label make-disk-image gives the EFI system partition (fixed there, so read-only here).";
    };

    varLabel = lib.mkOption {
      type = lib.types.str;
      default = "var";
      description = "Filesystem label of the per-VM /var disk (`fleet create-vm` formats it with this label).";
    };

    tmpSize = lib.mkOption {
      type = lib.types.str;
      default = "25%";
      example = "512M";
      description = "Size limit of the /tmp tmpfs (a percentage of RAM or a size).";
    };
  };

  config = {
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
      ];
      # Mounted by the initrd (as /sysroot/var) so identity is in place before the real
      # root's systemd starts: see identity.nix, which binds /var/identity/machine-id there.
      neededForBoot = true;
    };

    fileSystems."/home" = {
      device = "/var/home";
      fsType = "none";
      options = [ "bind" ];
      depends = [ "/var" ];
    };

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
    # An immutable /etc needs users created outside it: userborn keeps passwd/group/shadow
    # in /var/lib/nixos (on the /var disk) and /etc only holds symlinks to them.
    services.userborn.enable = true;

    # The store is part of the read-only image: no daemon, no channels, nothing collected.
    # Plain (not mkDefault) so an admin's `nix.enable = true` fails loudly instead of
    # producing an image whose nix cannot work.
    nix.enable = false;
    nix.channel.enable = false;
    nix.gc.automatic = false;

    # mkForce: these replace nixpkgs' own snippets of the same name (they write /bin and
    # /usr/bin, which fails on the read-only root at every boot); the links they make are
    # created once, when make-disk-image installs the image onto a writable root.
    system.activationScripts.binsh = lib.mkForce (onWritableRoot ''
      mkdir -p /bin
      chmod 0755 /bin
      ln -sfn "${config.environment.binsh}" /bin/.sh.tmp
      mv /bin/.sh.tmp /bin/sh
    '');
    system.activationScripts.usrbinenv = lib.mkForce (
      if config.environment.usrbinenv != null then
        onWritableRoot ''
          mkdir -p /usr/bin
          chmod 0755 /usr/bin
          ln -sfn "${config.environment.usrbinenv}" /usr/bin/.env.tmp
          mv /usr/bin/.env.tmp /usr/bin/env
        ''
      else
        ""
    );
  };
}
