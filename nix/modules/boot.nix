# Guest contract, boot: UEFI (OVMF/AAVMF) loads systemd-boot from the ESP of the boot disk;
# the kernel talks on a serial console (the CLI's `console` command and the tests read it);
# the initrd runs systemd, so identity can be put in place before the real root starts.
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:

let
  cfg = config.fleet.boot;
in
{
  # virtio disk/net/console drivers in the initrd, plus the guest tweaks nixpkgs ships for QEMU.
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  options.fleet.boot = {
    serialConsole = lib.mkOption {
      type = lib.types.str;
      # QEMU's x86 machines have a 16550 UART (ttyS0); the aarch64 `virt` machine has a PL011 (ttyAMA0).
      default = if pkgs.stdenv.hostPlatform.isAarch64 then "ttyAMA0" else "ttyS0";
      defaultText = lib.literalExpression ''if pkgs.stdenv.hostPlatform.isAarch64 then "ttyAMA0" else "ttyS0"'';
      description = "Serial device the kernel, systemd and a login getty use (the last console= wins /dev/console).";
    };

    serialBaud = lib.mkOption {
      type = lib.types.ints.positive;
      default = 115200;
      description = "Baud rate of the serial console.";
    };

    guestAgent = lib.mkEnableOption "the QEMU guest agent (needs the org.qemu.guest_agent.0 channel in the domain XML)" // {
      default = true;
    };
  };

  config = {
    # systemd-boot, its loader.conf and the one loader entry are put on the ESP by image.nix
    # when the disk is assembled; no boot loader installer ever runs (it would run
    # switch-to-configuration and bootctl at build time). Firmware finds systemd-boot at the
    # removable-media path EFI/BOOT/BOOT*.EFI: every VM gets a fresh NVRAM, nothing writes it.
    # mkDefault: VMs boot unattended, so barely show the menu; an admin may want longer.
    boot.loader.timeout = lib.mkDefault 1;

    # systemd in stage 1: required by the immutable /etc overlay and by identity.nix, which
    # binds /var/identity/machine-id onto /sysroot/etc/machine-id before switching root.
    boot.initrd.systemd.enable = true;

    boot.kernelParams = [
      "console=tty0"
      "console=${cfg.serialConsole},${toString cfg.serialBaud}n8"
    ];

    services.qemuGuest.enable = cfg.guestAgent;

    # mkForce: systemd-boot-random-seed.service refreshes a seed file on the ESP at every boot;
    # the ESP is on the read-only boot disk, so the unit could only fail.
    systemd.services.systemd-boot-random-seed.enable = lib.mkForce false;
  };
}
