# Addresses come from DHCP (libvirt's network or QEMU user networking); DNS does not: the
# VM's /var/identity/resolv.conf is bound over /etc/resolv.conf (identity.nix), so nothing
# in the image may own or rewrite that file.
{ lib, ... }:

{
  # mkDefault: an admin may give some VMs static addresses in their own module.
  networking.useNetworkd = lib.mkDefault true;
  networking.useDHCP = lib.mkDefault true;
  # One NIC is enough to call the network online; a VM without any should not wait long.
  systemd.network.wait-online.anyInterface = lib.mkDefault true;

  # Plain values on purpose: nixpkgs turns resolved on with mkDefault when networkd is used,
  # and either resolved or resolvconf would claim /etc/resolv.conf. Turning them back on takes
  # an explicit mkForce in the admin's module, and gives up the identity's resolv.conf.
  services.resolved.enable = false;
  networking.resolvconf.enable = false;
}
