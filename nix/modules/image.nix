# Guest contract, boot disk: the image is assembled from the system's store paths WITHOUT
# activating the system at build time, the way nixpkgs' own appliance images are built
# (nixos/modules/image/repart.nix, tested by nixos/tests/appliance-repart-image.nix).
# systemd-repart writes a GPT disk holding
# - an EFI system partition (label fleet.filesystem.espLabel): systemd-boot at the firmware's
#   removable-media path EFI/BOOT/BOOT{X64,AA64}.EFI (no NVRAM entry needed), loader.conf and
#   one Type #1 loader entry with the kernel and initrd copied next to it and
#   `init=<toplevel>/init` plus boot.kernelParams on its command line;
# - the root filesystem (ext4, label fleet.filesystem.rootLabel: repart gives the filesystem
#   the partition's label) holding the closure of the system, the mount points the read-only
#   root needs and /bin/sh, /usr/bin/env;
# and the result is converted to qcow2 ($out/nixos.qcow2, config.system.build.fleetImage).
# Nothing of the system runs while the image is built: no switch-to-configuration, no bootctl,
# no activation script, so no machine-id or host key can end up in the image.
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:

let
  cfg = config.fleet.image;
  fs = config.fleet.filesystem;
  toplevel = config.system.build.toplevel;
  hostPlatform = pkgs.stdenv.hostPlatform;
  efiArch = hostPlatform.efiArch;

  kernel = "${config.boot.kernelPackages.kernel}/${config.system.boot.loader.kernelFile}";
  initrd = "${config.system.build.initialRamdisk}/${config.system.boot.loader.initrdFile}";

  # What systemd-boot's NixOS installer (systemd-boot-builder.py) would write, for the one
  # generation an image has.
  loaderConf = pkgs.writeText "loader.conf" ''
    ${lib.optionalString (config.boot.loader.timeout != null) "timeout ${toString config.boot.loader.timeout}"}
    default nixos.conf
    editor no
    console-mode keep
  '';
  loaderEntry = pkgs.writeText "nixos.conf" ''
    title NixOS (fleet ${cfg.name})
    version ${config.system.nixos.label}
    linux /EFI/nixos/kernel.efi
    initrd /EFI/nixos/initrd.efi
    options init=${toplevel}/init ${toString config.boot.kernelParams}
  '';

  # /bin/sh and /usr/bin/env: NixOS's activation writes them at boot, which the read-only root
  # cannot take (filesystem.nix turns those snippets off), so the image carries them.
  rootSkeleton = pkgs.runCommand "fleet-root-skeleton" { } (
    ''
      mkdir -p $out/bin $out/usr/bin
      ln -s ${config.environment.binsh} $out/bin/sh
    ''
    + lib.optionalString (config.environment.usrbinenv != null) ''
      ln -s ${config.environment.usrbinenv} $out/usr/bin/env
    ''
  );

  # Mount points of the read-only root: nothing can create them at boot. /etc is where the
  # initrd mounts the immutable etc overlay; /root is root's (unused) home.
  mountPoints = [
    "/boot"
    "/dev"
    "/etc"
    "/home"
    "/proc"
    "/root"
    "/run"
    "/sys"
    "/tmp"
    "/var"
  ];
in
{
  imports = [ (modulesPath + "/image/repart.nix") ];

  options.fleet.image = {
    name = lib.mkOption {
      type = lib.types.strMatching "[a-z0-9][a-z0-9._-]{0,63}";
      default = "base";
      description = "Name of the image, the channel it is built for (`fleet build --channel NAME`); lib.mkFleetOutputs sets it.";
    };

    espSize = lib.mkOption {
      type = lib.types.str;
      default = "256M";
      description = "Size of the EFI system partition (it holds the kernel and the initrd; qcow2 stores only what is written).";
    };
  };

  config = {
    # The disk is assembled, never installed into: no boot loader installer runs, and the
    # system cannot switch to another configuration (a new image replaces it).
    boot.loader.grub.enable = false;
    system.switch.enable = false;

    image.repart = {
      name = "fleet-${cfg.name}";
      # OVMF does not boot the default sector size of other tools (4096); 512 is what
      # nixpkgs' appliance test uses.
      sectorSize = 512;
      partitions = {
        "10-esp" = {
          contents = {
            "/EFI/BOOT/BOOT${lib.toUpper efiArch}.EFI".source =
              "${config.systemd.package}/lib/systemd/boot/efi/systemd-boot${efiArch}.efi";
            "/EFI/nixos/kernel.efi".source = kernel;
            "/EFI/nixos/initrd.efi".source = initrd;
            "/loader/loader.conf".source = loaderConf;
            "/loader/entries/nixos.conf".source = loaderEntry;
          };
          repartConfig = {
            Type = "esp";
            Format = "vfat";
            Label = fs.espLabel;
            SizeMinBytes = cfg.espSize;
            SizeMaxBytes = cfg.espSize;
          };
        };
        "20-root" = {
          # The skeleton's own store path keeps what its links point to in the closure.
          storePaths = [
            toplevel
            rootSkeleton
          ];
          contents = {
            "/bin".source = "${rootSkeleton}/bin";
            "/usr".source = "${rootSkeleton}/usr";
          };
          repartConfig = {
            Type = "root";
            Format = "ext4";
            Label = fs.rootLabel;
            # Read-only: no free space is ever needed, so the filesystem is as small as its content.
            Minimize = "guess";
            MakeDirectories = toString mountPoints;
          };
        };
      };
    };

    # The qcow2 fleet stores. The raw file's name differs between nixpkgs releases
    # (image.repart.imageFile, later image.fileName), so it is found by its extension.
    system.build.fleetImage =
      pkgs.runCommand "fleet-${cfg.name}-image-${hostPlatform.system}"
        {
          nativeBuildInputs = [ pkgs.buildPackages.qemu-utils ];
          passthru = { inherit toplevel; };
        }
        ''
          shopt -s nullglob
          raw=(${config.system.build.image}/*.raw)
          if [ ''${#raw[@]} -ne 1 ]; then
            echo "expected one .raw file in ${config.system.build.image}, found ''${#raw[@]}" >&2
            exit 1
          fi
          mkdir -p $out
          qemu-img convert -f raw -O qcow2 "''${raw[0]}" $out/nixos.qcow2
        '';
  };
}
