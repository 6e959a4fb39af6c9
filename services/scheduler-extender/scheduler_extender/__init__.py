"""modelplane-scheduler-extender: keeps GPU claims packed inside one inference cluster.

A kube-scheduler extender (HTTP `filter` and `prioritize`) for a second
kube-scheduler, `schedulerName: modelplane`. From watched ResourceSlices,
ResourceClaims, ResourceClaimTemplates and DeviceClasses it knows each node's
devices and which are allocated; it filters out nodes whose free devices cannot
satisfy a pod's claims and scores the others most-allocated first, so sub-node
pods share partly used nodes and whole free nodes stay whole for gangs and
whole-node engines. `inventory` is the pure core, `server` the HTTP side.
"""
