"""The node agent: on a Kubernetes node (a privileged DaemonSet pod with the host's PID
namespace, in the manner of Chaos Mesh's chaos-daemon) it finds a pod's redis-server and
applies the faults the API cannot express — SIGKILL/SIGSTOP/SIGCONT, nftables partitions and
tc shaping inside the pod's network namespace, a full data volume — with the local
platform's own fault code. `python -m harness.agent VERB --pod NAME --namespace NS`."""
