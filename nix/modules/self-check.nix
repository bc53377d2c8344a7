# Guest contract, verification (docs/guest-contract.md, "Verification"): once per boot the
# guest prints one line on the serial console with what this boot really got: the machine-id
# systemd uses, whether / is read-only, the label of the disk on /var, and the public key
# derived from the private key sshd is configured with (ssh.nix). `fleet build` and
# `fleet image import --verify` boot a new image with a throwaway identity and move the
# channel only if this line matches that identity. The guest reports facts; the host decides.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  dir = config.fleet.identity.directory;
  selfCheck = pkgs.writeShellScript "fleet-self-check" ''
    export PATH=${
      lib.makeBinPath [
        pkgs.coreutils
        pkgs.util-linux
        pkgs.openssh
      ]
    }
    mid=$(cat /etc/machine-id 2>/dev/null)
    case ",$(findmnt -no OPTIONS / 2>/dev/null)," in
      *,ro,*) root=ro ;;
      *) root=rw ;;
    esac
    var=$(blkid -s LABEL -o value "$(findmnt -no SOURCE /var 2>/dev/null)" 2>/dev/null)
    key=$(ssh-keygen -y -f ${dir}/ssh_host_ed25519_key 2>/dev/null | cut -d' ' -f2)
    line="FLEET-SELF-CHECK machine-id=''${mid:-none} root=$root var=''${var:-none} hostkey=''${key:-none}"
    echo "$line"
    # Straight to the console as well, on a line of its own: journald's copy would carry a
    # prefix, and a login prompt may be waiting on the console without a newline.
    printf '\n%s\n' "$line" > /dev/console
  '';
in
{
  # Uses fleet.identity.directory; imports are deduplicated by path.
  imports = [ ./identity.nix ];

  systemd.services.fleet-self-check = {
    description = "fleet guest contract self-check: one line on the serial console";
    wantedBy = [ "multi-user.target" ];
    after = [
      "local-fs.target"
      "sshd.service"
    ];
    unitConfig.RequiresMountsFor = [ dir ];
    serviceConfig = {
      Type = "oneshot";
      ExecStart = selfCheck;
      # The script writes the console itself (where the host reads it); the journal keeps a copy.
      StandardOutput = "journal";
    };
  };
}
