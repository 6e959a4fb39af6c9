"""cluster-provisioner: connects the fleet's inference clusters and publishes what they offer.

It reconciles InferenceClusters (and follows InferenceClasses and kubeconfig
Secrets): for `source: Existing` it reads the kubeconfig Secret, checks the
cluster carries the serving stack, and writes the cluster's status (Ready, the
gateway address, the pools with their devices and node counts). It is the only
service that reads kubeconfig Secrets. `status` and `drain` are the pure decisions;
`remote` (each inference cluster's watches), `controller` and `fleetapi` do the I/O.
"""
