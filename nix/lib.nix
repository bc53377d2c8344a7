# Functions for building fleet base images; the flake exports them as `lib`, so an admin's
# flake (made by `fleet init`, with this folder as its `fleet` input) adds its own modules
# and defines one image per channel (role):
#
#   outputs = { fleet, ... }: fleet.lib.mkFleetOutputs {
#     modules = [ ./site.nix ];                 # every image
#     images = {
#       base = [ ];
#       web = [ ./web.nix ];                    # fleet build --channel web
#       db = [ ./db.nix ];                      # fleet build --channel db
#     };
#   };
{ nixpkgs, fleetModule }:

let
  inherit (nixpkgs) lib;

  # The names `fleet build --channel` accepts (src/machines/validate.ts, checkChannel).
  validImageName = name: builtins.match "[a-z0-9][a-z0-9._-]{0,63}" name != null;

  # ("web", "x86_64-linux") -> "web-x86_64": the names nixosConfigurations use.
  configName = image: system: "${image}-${lib.head (lib.splitString "-" system)}";
in
rec {
  inherit configName;

  # A NixOS system that obeys the guest contract, extended by `modules`; `image` names the
  # image (and channel) it is built for.
  mkFleetSystem =
    {
      system,
      modules ? [ ],
      image ? "base",
      specialArgs ? { },
    }:
    lib.nixosSystem {
      inherit specialArgs;
      modules = [
        fleetModule
        {
          nixpkgs.hostPlatform = system;
          fleet.image.name = image;
        }
      ]
      ++ modules;
    };

  # The qcow2 base image of such a system ($out/nixos.qcow2): GPT, an ESP with systemd-boot
  # and a loader entry, an ext4 root labelled fleet.filesystem.rootLabel. Assembled by
  # systemd-repart from the closure, without running anything of the system (modules/image.nix).
  mkFleetImage = { nixos }: nixos.config.system.build.fleetImage;

  # nixosConfigurations, packages and checks of every image in `images` for `systems`:
  #   nixosConfigurations.<image>-<cpu>          e.g. web-x86_64
  #   packages.<system>.<image>-image            what `fleet build --channel <image>` builds
  #   packages.<system>.default                  base-image (or the first image)
  #   checks.<system>.<image>-toplevel           for `nix flake check --no-build`
  mkFleetOutputs =
    {
      # NixOS modules every image gets.
      modules ? [ ],
      # Image name (= channel) -> the extra NixOS modules of that image.
      images ? {
        base = [ ];
      },
      systems ? [
        "x86_64-linux"
        "aarch64-linux"
      ],
    }:
    let
      names = lib.attrNames images;
      badNames = lib.filter (n: !validImageName n) names;
      checked =
        if names == [ ] then
          throw "fleet.lib.mkFleetOutputs: images is empty; define at least one, e.g. images = { base = [ ]; }"
        else if badNames != [ ] then
          throw "fleet.lib.mkFleetOutputs: image name(s) ${lib.concatStringsSep ", " badNames} must be channel names (lowercase letters, digits, '.', '_' or '-', starting with a letter or digit)"
        else
          images;

      nixosFor = lib.genAttrs systems (
        system:
        lib.mapAttrs (
          image: extra:
          mkFleetSystem {
            inherit system image;
            modules = modules ++ extra;
          }
        ) checked
      );
      defaultImage = if images ? base then "base" else lib.head names;
    in
    {
      nixosConfigurations = lib.listToAttrs (
        lib.concatMap (
          system:
          lib.mapAttrsToList (image: nixos: lib.nameValuePair (configName image system) nixos) nixosFor.${system}
        ) systems
      );

      packages = lib.genAttrs systems (
        system:
        let
          imagesOf = lib.mapAttrs' (
            image: nixos: lib.nameValuePair "${image}-image" (mkFleetImage { inherit nixos; })
          ) nixosFor.${system};
        in
        imagesOf // { default = imagesOf."${defaultImage}-image"; }
      );

      # `nix flake check --no-build` evaluates these: each whole configuration, assertions included.
      checks = lib.genAttrs systems (
        system:
        lib.mapAttrs' (
          image: nixos: lib.nameValuePair "${image}-toplevel" nixos.config.system.build.toplevel
        ) nixosFor.${system}
      );
    };
}
