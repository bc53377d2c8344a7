# Functions for building fleet base images; the flake exports them as `lib`, so an admin's
# flake (made by `fleet init`, with this folder as its `fleet` input) adds its own modules:
#
#   outputs = { fleet, ... }: fleet.lib.mkFleetOutputs { modules = [ ./site.nix ]; };
{ nixpkgs, fleetModule }:

let
  inherit (nixpkgs) lib;

  # "x86_64-linux" -> "base-x86_64": the names nixosConfigurations use.
  configName = system: "base-" + lib.head (lib.splitString "-" system);
in
rec {
  inherit configName;

  # A NixOS system that obeys the guest contract, extended by `modules`.
  mkFleetSystem =
    {
      system,
      modules ? [ ],
      specialArgs ? { },
    }:
    lib.nixosSystem {
      inherit specialArgs;
      modules = [
        fleetModule
        { nixpkgs.hostPlatform = system; }
      ]
      ++ modules;
    };

  # The qcow2 base image of such a system: GPT, an ESP with systemd-boot, an ext4 root
  # labelled fleet.filesystem.rootLabel. The result is $out/nixos.qcow2.
  # Building runs a VM (KVM makes it fast) of the image's own architecture.
  mkFleetImage =
    {
      nixos,
      additionalSpace ? "512M",
    }:
    let
      inherit (nixos) config pkgs;
      # Mount points the read-only root must already have: nothing can create them at boot.
      mountPoints = map (dir: {
        source = pkgs.emptyDirectory;
        target = dir;
        mode = "755";
      }) [
        "/dev"
        "/proc"
        "/sys"
        "/run"
        "/tmp"
        "/var"
        "/home"
      ];
    in
    import "${nixpkgs}/nixos/lib/make-disk-image.nix" {
      inherit config lib pkgs;
      name = "fleet-base-image-${pkgs.stdenv.hostPlatform.system}";
      format = "qcow2";
      partitionTableType = "efi";
      installBootLoader = true;
      label = config.fleet.filesystem.rootLabel;
      # Sized to the closure; additionalSpace is headroom for what the install step writes
      # after sizing. qcow2 stores only used clusters, so free space costs little.
      diskSize = "auto";
      inherit additionalSpace;
      # No nix in the guest, so no channel either.
      copyChannel = false;
      contents = mountPoints;
    };

  # nixosConfigurations, packages and checks for `systems`, as this flake has them.
  mkFleetOutputs =
    {
      modules ? [ ],
      systems ? [
        "x86_64-linux"
        "aarch64-linux"
      ],
    }:
    let
      nixosFor = lib.genAttrs systems (system: mkFleetSystem { inherit system modules; });
    in
    {
      nixosConfigurations = lib.listToAttrs (
        map (system: lib.nameValuePair (configName system) nixosFor.${system}) systems
      );

      packages = lib.genAttrs systems (
        system:
        let
          image = mkFleetImage { nixos = nixosFor.${system}; };
        in
        {
          base-image = image;
          default = image;
        }
      );

      # `nix flake check --no-build` evaluates these: the whole configuration, assertions included.
      checks = lib.genAttrs systems (system: {
        toplevel = nixosFor.${system}.config.system.build.toplevel;
      });
    };
}
