# The whole guest contract (docs/guest-contract.md); nixosModules.default.
# Each concern is its own module, also exported on its own as nixosModules.<name>.
{
  imports = [
    ./base.nix
    ./filesystem.nix
    ./boot.nix
    ./identity.nix
    ./network.nix
    ./users.nix
    ./ssh.nix
    ./firewall.nix
    ./image.nix
    ./self-check.nix
  ];
}
