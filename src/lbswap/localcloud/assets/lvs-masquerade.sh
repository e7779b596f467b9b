#!/bin/sh
# Stand-in for the amphora image's lvs-masquerade.sh: it sets up nftables masquerading for UDP/SCTP (LVS)
# listeners, which cannot run on this host (no ip_vs). Nothing to do for haproxy listeners.
exit 0
