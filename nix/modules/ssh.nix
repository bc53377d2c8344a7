# Guest contract, SSH: sshd uses the VM's own host key, /var/identity/ssh_host_ed25519_key
# (0600), and generates none of its own; the admin and the plain user authenticate with the
# keys in /var/identity/admin_authorized_keys and user_authorized_keys, read at login time.
{
  config,
  lib,
  options,
  ...
}:

let
  dir = config.fleet.identity.directory;
  users = config.fleet.users;
  # Per-user files: services.openssh.authorizedKeysFiles is one list for every user, so each
  # role's file is selected with a Match block. /etc/ssh/authorized_keys.d/%u keeps keys an
  # admin adds at build time (users.users.<name>.openssh.authorizedKeys) working as well.
  matchUser = name: file: ''
    Match User ${name}
      AuthorizedKeysFile ${dir}/${file} /etc/ssh/authorized_keys.d/%u
  '';
in
{
  # Uses fleet.identity.directory and fleet.users.*; imports are deduplicated by path.
  imports = [
    ./identity.nix
    ./users.nix
  ];

  config = lib.mkMerge [
    # Newer nixpkgs generate host keys in a separate sshd-keygen.service, which
    # services.openssh.generateHostKeys turns off; left on with hostKeys = [ ], it is a unit
    # without ExecStart that systemd refuses at every boot. NixOS 24.05 has neither the option
    # nor the unit (sshd's preStart generates the listed keys, here none).
    (lib.optionalAttrs (options.services.openssh ? generateHostKeys) {
      services.openssh.generateHostKeys = false;
    })
    {
      assertions = [
        {
          assertion = config.services.openssh.hostKeys == [ ];
          message = "fleet: the base image must not generate SSH host keys; sshd uses ${dir}/ssh_host_ed25519_key.";
        }
      ];

      services.openssh = {
        enable = true;
        # mkForce: any host key listed here would be generated into the image or at first boot,
        # giving VMs a key that is not the one recorded in machines/<name>/. The contract's
        # only key is the identity's, named below.
        hostKeys = lib.mkForce [ ];
        # Port 22 is opened by the VM's tcp_ports (firewall.nix), like any other port;
        # `fleet create-vm` lists it by default. mkDefault: an admin may open it in the image.
        openFirewall = lib.mkDefault false;
        settings = {
          PasswordAuthentication = false;
          KbdInteractiveAuthentication = false;
          PermitRootLogin = "no";
        };
        # HostKey first (mkBefore) so it is in the global section whatever other modules append;
        # the Match blocks last (mkAfter), closed by `Match all`.
        extraConfig = lib.mkMerge [
          (lib.mkBefore ''
            HostKey ${dir}/ssh_host_ed25519_key
          '')
          (lib.mkAfter (
            matchUser users.admin.name "admin_authorized_keys"
            + lib.optionalString users.user.enable (matchUser users.user.name "user_authorized_keys")
            + ''
              Match all
            ''
          ))
        ];
      };

      # The key and the authorized keys are on the /var disk (mounted by the initrd already;
      # stated so the dependency is explicit).
      systemd.services.sshd = lib.mkIf (!config.services.openssh.startWhenNeeded) {
        unitConfig.RequiresMountsFor = [ dir ];
      };
    }
  ];
}
