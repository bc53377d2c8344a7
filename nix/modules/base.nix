# What every fleet image is besides the contract: a small, headless NixOS.
{ lib, modulesPath, ... }:

{
  # No documentation, no default packages: the image is copied to every host; mkDefault there.
  imports = [ (modulesPath + "/profiles/minimal.nix") ];

  # mkDefault: the state on a VM's /var disk outlives images, so an admin who has VMs
  # running keeps this at the release their first image had, whatever nixpkgs moves to.
  system.stateVersion = lib.mkDefault "26.05";
}
