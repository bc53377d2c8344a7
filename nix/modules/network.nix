# Addresses come from DHCP (libvirt's network or QEMU user networking); DNS does not: the
# VM's /var/identity/resolv.conf is bound over /etc/resolv.conf (identity.nix), so nothing
# in the image may own or rewrite that file.
{ lib, ... }:

{
  # mkDefault: an admin may give some VMs static addresses in their own module.
  networking.useNetworkd = lib.mkDefault true;
  networking.useDHCP = lib.mkDefault true;
  # One NIC up is enough to call the network online; mkDefault: VMs with several may want all.
  systemd.network.wait-online.anyInterface = lib.mkDefault true;

  # Plain values on purpose: nixpkgs turns resolved on with mkDefault when networkd is used,
  # and either resolved or resolvconf would claim /etc/resolv.conf. Turning them back on takes
  # an explicit mkForce in the admin's module, and gives up the identity's resolv.conf.
  services.resolved.enable = false;
  networking.resolvconf.enable = false;
}
