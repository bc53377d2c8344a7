# Guest contract, accounts: an admin user (wheel) and a plain user, both without passwords;
# they log in with the keys in /var/identity/admin_authorized_keys and user_authorized_keys
# (ssh.nix). Accounts are fixed by the image; their homes live on the /var disk.
{ config, lib, ... }:

let
  cfg = config.fleet.users;
in
{
  options.fleet.users = {
    admin.name = lib.mkOption {
      type = lib.types.str;
      default = "admin";
      description = "Login of the administrator (member of wheel); keys from admin_authorized_keys.";
    };

    user = {
      enable = lib.mkEnableOption "the unprivileged user whose keys are in user_authorized_keys" // {
        default = true;
      };
      name = lib.mkOption {
        type = lib.types.str;
        default = "user";
        description = "Login of the unprivileged user.";
      };
    };
  };

  config = {
    assertions = [
      {
        assertion = !cfg.user.enable || cfg.user.name != cfg.admin.name;
        message = "fleet: fleet.users.admin.name and fleet.users.user.name must differ.";
      }
    ];

    users.mutableUsers = false;
    # The authorized keys arrive at run time from /var/identity, where NixOS's build-time
    # "you would be locked out" check cannot see them.
    users.allowNoPasswordLogin = true;

    # Fixed uids: homes on the /var disk outlive the image, so ownership must not depend on
    # the order userborn happens to allocate ids in.
    users.users = {
      # root's home is a read-only directory of the image, made with mode 0755 (image.nix);
      # the same mode here keeps the boot's tmpfiles rule for homes from trying to chmod it.
      root.homeMode = "755";
      ${cfg.admin.name} = {
        isNormalUser = true;
        uid = 1000;
        extraGroups = [ "wheel" ];
        description = "fleet administrator";
      };
    }
    // lib.optionalAttrs cfg.user.enable {
      ${cfg.user.name} = {
        isNormalUser = true;
        uid = 1001;
        description = "fleet user";
      };
    };

    # mkDefault: accounts have no passwords, so sudo could never ask for one; an admin who
    # adds hashedPasswordFile can turn the prompt back on.
    security.sudo.wheelNeedsPassword = lib.mkDefault false;
  };
}
