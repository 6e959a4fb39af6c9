"""The fleet-scheduler service: places ModelDeployments' replicas on the fleet.

Today it serves the read-only ``FleetScheduler`` gRPC API (``server``) over a
snapshot of the fleet (``snapshot``); reconciling ModelDeployments comes with the
control-plane work.
"""
