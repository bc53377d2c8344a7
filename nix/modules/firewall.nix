# Guest contract, ports: the firewall opens the TCP and UDP ports listed (one per line) in
# /var/identity/tcp_ports and udp_ports, and nothing else the image does not open itself.
#
# Backend: nftables (networking.nftables.enable), not iptables. The image adds two empty
# named sets to NixOS's own `inet nixos-fw` table and accept rules for them to its
# `input-allow` chain (networking.firewall.extraInputRules), so the ruleset is checked when
# the image is built; at boot a oneshot service fills the sets from the identity files in
# one atomic `nft -f` transaction.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.fleet.firewall;
  dir = config.fleet.identity.directory;
  table = "inet nixos-fw";
  # networking.firewall.backend is recent; the table below exists only with nftables.
  nftablesFirewall = (config.networking.firewall.backend or "nftables") == "nftables";

  fillSets = pkgs.writeShellScript "fleet-firewall-ports" ''
    set -euo pipefail
    export PATH=${
      lib.makeBinPath [
        pkgs.coreutils
        pkgs.nftables
      ]
    }

    # Valid ports of file $1, one per line, sorted and unique, joined with commas. The rule of
    # docs/guest-contract.md: blank lines and lines starting with # are skipped silently; any
    # other line that is not a decimal number from 1 to 65535 is skipped and reported.
    ports() {
      local file=$1 line
      [ -f "$file" ] || return 0
      while IFS= read -r line || [ -n "$line" ]; do
        # Surrounding blanks (and a CR of CRLF files) do not make a line bad.
        line=''${line#"''${line%%[![:space:]]*}"}
        line=''${line%"''${line##*[![:space:]]}"}
        [ -n "$line" ] || continue
        [ "''${line:0:1}" != "#" ] || continue
        if [[ $line =~ ^[0-9]{1,5}$ ]] && (( 10#$line >= 1 && 10#$line <= 65535 )); then
          echo $(( 10#$line ))
        else
          echo "fleet-firewall: ignoring '$line' in $file (not a port 1-65535)" >&2
        fi
      done < "$file" | sort -n -u | paste -s -d, -
    }

    tcp=$(ports ${dir}/tcp_ports)
    udp=$(ports ${dir}/udp_ports)

    {
      echo "flush set ${table} fleet-tcp-ports"
      echo "flush set ${table} fleet-udp-ports"
      if [ -n "$tcp" ]; then echo "add element ${table} fleet-tcp-ports { $tcp }"; fi
      if [ -n "$udp" ]; then echo "add element ${table} fleet-udp-ports { $udp }"; fi
    } | nft -f -

    echo "fleet-firewall-ports: open tcp { $tcp } udp { $udp }"
  '';
in
{
  # Uses fleet.identity.directory; imports are deduplicated by path.
  imports = [ ./identity.nix ];

  options.fleet.firewall.identityPorts = lib.mkEnableOption "opening the ports listed in /var/identity/tcp_ports and udp_ports" // {
    default = true;
  };

  config = lib.mkMerge [
    {
      # Plain value: the rules below are nftables rules; an iptables firewall would not see them.
      networking.nftables.enable = true;
    }

    (lib.mkIf (cfg.identityPorts && config.networking.firewall.enable && nftablesFirewall) {
      # mkBefore: nft reads the table top to bottom, so the sets come before the chains
      # that use them.
      networking.nftables.tables.nixos-fw.content = lib.mkBefore ''
        set fleet-tcp-ports {
          type inet_service
          comment "ports from ${dir}/tcp_ports"
        }
        set fleet-udp-ports {
          type inet_service
          comment "ports from ${dir}/udp_ports"
        }
      '';
      # Appended to NixOS's input-allow chain.
      networking.firewall.extraInputRules = ''
        tcp dport @fleet-tcp-ports accept comment "fleet identity tcp_ports"
        udp dport @fleet-udp-ports accept comment "fleet identity udp_ports"
      '';

      # Fail closed (docs/guest-contract.md): no network without the firewall's ruleset.
      systemd.services.systemd-networkd = {
        requires = [ "nftables.service" ];
        after = [ "nftables.service" ];
      };

      systemd.services.fleet-firewall-ports = {
        description = "Open the ports listed in ${dir}/tcp_ports and udp_ports";
        # Started with the firewall, after its ruleset is loaded; restarted and reloaded with
        # it, since reloading the ruleset recreates the sets empty.
        wantedBy = [
          "nftables.service"
          "multi-user.target"
        ];
        after = [ "nftables.service" ];
        partOf = [ "nftables.service" ];
        unitConfig = {
          ReloadPropagatedFrom = [ "nftables.service" ];
          RequiresMountsFor = [ dir ];
        };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = fillSets;
          ExecReload = fillSets;
        };
      };
    })
  ];
}
