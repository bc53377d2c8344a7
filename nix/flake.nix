{
  description = "fleet: the NixOS base image every VM of a fleet boots (read-only), and its modules";

  # A stable release branch; flake.lock (written by the first `nix build`/`nix flake lock`)
  # pins the exact commit and belongs in git next to this file.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      fleetLib = import ./lib.nix {
        inherit nixpkgs;
        fleetModule = self.nixosModules.default;
      };
    in
    fleetLib.mkFleetOutputs { }
    // {
      # One module per concern of the guest contract (nix/README.md maps contract lines to
      # modules); `default` is all of them. Paths, so that importing two of them that share
      # a dependency loads it once.
      nixosModules = {
        default = ./modules/default.nix;
        base = ./modules/base.nix;
        filesystem = ./modules/filesystem.nix;
        boot = ./modules/boot.nix;
        identity = ./modules/identity.nix;
        network = ./modules/network.nix;
        users = ./modules/users.nix;
        ssh = ./modules/ssh.nix;
        firewall = ./modules/firewall.nix;
      };

      # mkFleetSystem, mkFleetImage, mkFleetOutputs: for an admin's flake that adds modules.
      lib = fleetLib;
    };
}
