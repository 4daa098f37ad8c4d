#!/usr/bin/env bash
# Simulated hosts for multi-host Open MPI runs on one machine: N Linux network namespaces ("hosts"), each with its
# own network stack, address and hostname, joined through the root namespace by veth pairs and IP forwarding, so ranks in
# different namespaces reach each other only over TCP, as ranks on separate hosts do. Needs root and iproute2.
#
#   scripts/netns-hosts.sh up N      create rkhost1..N (10.77.i.2/24, gateway 10.77.i.1) and print a hostfile
#   scripts/netns-hosts.sh down N    remove them
#   scripts/netns-hosts.sh rsh HOST CMD...   the launcher mpirun uses instead of ssh (plm_rsh_agent): runs CMD in
#                                    the namespace that owns HOST's address
#
# Use (docs/distributed.md, "Several hosts"):
#   scripts/netns-hosts.sh up 2 > hosts
#   mpirun -np 2 --hostfile hosts --mca plm_rsh_agent "$PWD/scripts/netns-hosts.sh rsh" \
#          --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/16 --mca oob_tcp_if_include 10.77.0.0/16 \
#          reckit train … --distributed mpi
set -euo pipefail
cmd=${1:-}; shift || true
case "$cmd" in
  up)
    n=${1:-2}
    sysctl -qw net.ipv4.ip_forward=1
    for i in $(seq "$n"); do
      ns=rkhost$i
      ip netns del "$ns" 2>/dev/null || true
      ip link del "rkveth$i" 2>/dev/null || true
      ip netns add "$ns"
      ip link add "rkveth$i" type veth peer name "rketh$i"
      ip link set "rketh$i" netns "$ns"
      ip addr add "10.77.$i.1/24" dev "rkveth$i"
      ip link set "rkveth$i" up
      ip netns exec "$ns" ip addr add "10.77.$i.2/24" dev "rketh$i"
      ip netns exec "$ns" ip link set "rketh$i" up
      ip netns exec "$ns" ip link set lo up
      ip netns exec "$ns" ip route add default via "10.77.$i.1"
      echo "10.77.$i.2 slots=1"
    done
    ;;
  down)
    n=${1:-2}
    for i in $(seq "$n"); do
      ip netns del "rkhost$i" 2>/dev/null || true
      ip link del "rkveth$i" 2>/dev/null || true
    done
    ;;
  rsh)
    host=$1; shift
    [[ "$host" =~ ^10\.77\.([0-9]+)\.2$ ]] || { echo "netns-hosts: $host is not a simulated host" >&2; exit 2; }
    # Its own hostname too (a UTS namespace): Open MPI keys per-node files (session directory, hwloc topology) by it.
    ns=rkhost${BASH_REMATCH[1]}
    exec ip netns exec "$ns" unshare --uts /bin/sh -c "hostname $ns && $*"
    ;;
  *)
    echo "usage: $0 up N | down N | rsh HOST CMD..." >&2; exit 2
    ;;
esac
