"""The node agent: what kubelet, the container runtime and a DRA driver do, simulated.

One agent runs per inference cluster of the local fleet. It registers the
cluster's pool nodes, publishes their devices as DeviceClasses and
ResourceSlices, and acts as kubelet for every pod bound to those nodes: it gives
the pod an IP from its node's range, starts known engine images as local
processes bound to that IP, runs the pod's probes, reports status and finishes
deletions. Pure decisions live in `config`, `objects`, `env`, `runtime` and
`podstatus`; `probes`, `containers`, `podworker` and `agent` do the I/O.
"""
