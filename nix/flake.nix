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
      # An attribute set importing the file by path: the module system loads a path once
      # however many modules import it (ssh.nix and firewall.nix both import identity.nix),
      # and older `nix flake check` versions accept only functions or attribute sets here.
      module = file: { imports = [ file ]; };
    in
    fleetLib.mkFleetOutputs { }
    // {
      # One module per concern of the guest contract (nix/README.md maps contract lines to
      # modules); `default` is all of them.
      nixosModules = {
        default = module ./modules/default.nix;
        base = module ./modules/base.nix;
        filesystem = module ./modules/filesystem.nix;
        boot = module ./modules/boot.nix;
        identity = module ./modules/identity.nix;
        network = module ./modules/network.nix;
        users = module ./modules/users.nix;
        ssh = module ./modules/ssh.nix;
        firewall = module ./modules/firewall.nix;
        image = module ./modules/image.nix;
      };

      # mkFleetSystem, mkFleetImage, mkFleetOutputs: for an admin's flake that adds modules
      # and role images (`images = { web = [ ./web.nix ]; }`).
      lib = fleetLib;
    };
}
