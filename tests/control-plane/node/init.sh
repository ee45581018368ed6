# The first process of the test node's PID and mount namespaces (tests/src/control_plane/node.rs):
# hides the host paths the node must not touch, starts containerd ("$@") and waits, reaping
# whatever the namespace leaves to it. Killing it kills every process of the node.
#   sh init.sh NODE_DIR CONTAINERD ARGS...
set -eu
node=$1
shift
# The kubelet checks these kernel settings (protectKernelDefaults): it sees these files, the
# host keeps its values.
for f in vm/overcommit_memory kernel/panic kernel/panic_on_oops; do
  mount --bind "$node/sysctl/${f##*/}" "/proc/sys/$f"
done
# Paths the kubelet and containerd's shims use whatever their configuration says.
mount --bind "$node/var-lib" /var/lib
mount --bind "$node/var-log" /var/log
mount --bind "$node/run-containerd" /run/containerd
"$@" &
wait
