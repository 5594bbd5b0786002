# Multi-node without a cluster: two "hosts" made of network namespaces on this
# machine (a bridge, a veth pair per host, addresses in 10.77.0.0/24 inside the
# namespaces only), mpirun across them with a hostfile and an rsh agent that
# runs the command inside the namespace named like the host. A 2-node x 1-rank
# compression run (TCP transport, remote daemons, node-local rank 0 on each
# host) must end with exactly the state of a 1-node x 2-rank run.
# Needs root and `ip netns`; exits 77 (skip) with a message where namespaces
# cannot be created. (The NCCL bootstrap over MPI needs a GPU: see the NCCL
# unit tests.)
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip > /dev/null || skip "iproute2 (ip) missing"
export SLIM_ORT_SCRIPT=/nonexistent  # the parity gate is tested elsewhere
OUT=$PWD/mpi_two_hosts; rm -rf "$OUT"; mkdir -p "$OUT"
BR=br-slimtest; H1=slimh1; H2=slimh2
cleanup() {
  ip netns del $H1 2> /dev/null || true
  ip netns del $H2 2> /dev/null || true
  ip link del $BR 2> /dev/null || true
  sed -i '/# slimtrain mpi_two_hosts test$/d' /etc/hosts 2> /dev/null || true
}
trap cleanup EXIT
cleanup
ip link add $BR type bridge 2> /dev/null || skip "cannot create a bridge (no CAP_NET_ADMIN?)"
ip addr add 10.77.0.1/24 dev $BR && ip link set $BR up
i=0
for h in $H1 $H2; do
  i=$((i + 1))
  ip netns add $h || skip "cannot create network namespace $h"
  # `ip netns exec` remounts / and /sys: not possible e.g. inside a chroot.
  ip netns exec $h true 2> "$OUT/netns.err" ||
    skip "cannot enter network namespace $h: $(head -1 "$OUT/netns.err")"
  ip link add veth-slim$i type veth peer name eth0 netns $h
  ip link set veth-slim$i master $BR && ip link set veth-slim$i up
  ip netns exec $h ip addr add 10.77.0.1$i/24 dev eth0
  ip netns exec $h ip link set eth0 up && ip netns exec $h ip link set lo up
  echo "10.77.0.1$i $h # slimtrain mpi_two_hosts test" >> /etc/hosts
done
cat > "$OUT/nsagent" <<'EOF'
#!/bin/sh
# Open MPI rsh agent: skip ssh-style options, run the command in netns $host.
while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done
h=$1; shift; exec ip netns exec "$h" sh -c "$*"
EOF
chmod +x "$OUT/nsagent"
printf '%s slots=1\n%s slots=1\n' $H1 $H2 > "$OUT/hostfile"

cfg="$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml"
args=(--set TrainConfig.train_iter=20 --set Checkpoint.every_iters=0 --set Checkpoint.resume=never
      --set Global.batch_size=32 --set Distributed.timeout_s=60)
mpirun --allow-run-as-root --oversubscribe -np 2 "$BIN" compress "$cfg" "${args[@]}" \
  --set Global.save_dir="$OUT/one_node" > "$OUT/one_node.log" 2>&1 ||
  { cat "$OUT/one_node.log"; fail "1-node 2-rank run failed"; }
# rtc_hwloc_vmhole none: the remote orted otherwise maps its hwloc topology
# into a "hole" of its address space found beforehand, and crashed there
# (SIGSEGV in hwloc_shmem_topology_write) once in a loaded run on an AMD EPYC
# host; the shared topology only saves local ranks a topology scan.
SLIM_DUMP_RANK_STATE="$OUT/ranks" timeout 600 mpirun --allow-run-as-root --hostfile "$OUT/hostfile" -np 2 \
  --display-map --mca plm_rsh_agent "$OUT/nsagent" --mca btl tcp,self --mca rtc_hwloc_vmhole none \
  --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  -x SLIM_ORT_SCRIPT -x SLIM_DUMP_RANK_STATE -x PATH -x LD_LIBRARY_PATH \
  "$BIN" compress "$cfg" "${args[@]}" --set Global.save_dir="$OUT/two_nodes" > "$OUT/two_nodes.log" 2>&1 ||
  { cat "$OUT/two_nodes.log"; fail "2-node run failed"; }
# mpirun's map: one rank on each "host".
for h in $H1 $H2; do
  grep -q "Data for node: $h" "$OUT/two_nodes.log" || { cat "$OUT/two_nodes.log"; fail "no rank mapped to $h"; }
done
echo "2-node run: ranks mapped to $H1 and $H2 (mpirun --display-map)"
one=$(ls "$OUT"/one_node/checkpoints/ckpt-*.h5 | tail -1); two=$(ls "$OUT"/two_nodes/checkpoints/ckpt-*.h5 | tail -1)
echo "1 node x 2 ranks vs 2 nodes x 1 rank after 20 iterations:"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$one" "$two" --exact \
  --groups params,buffers,masks,quant,optimizer
echo "rank 0 (host $H1) vs rank 1 (host $H2) state:"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$OUT"/ranks/rank0/ckpt-*.h5 "$OUT"/ranks/rank1/ckpt-*.h5 --exact
echo "PASS"
