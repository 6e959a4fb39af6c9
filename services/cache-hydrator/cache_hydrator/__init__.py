"""cache-hydrator: stages ModelCache weights on each cluster's shared volume.

Two programs: the ModelCache controller (`modelplane-cache-hydrator`, `__main__`) and the
hydration job (`modelplane-hydrate`, the `hydrate` module) that its Jobs run on each
cluster to fill one volume.

Modules, pure ones marked:
    render      (pure) the objects of one cache on one cluster: claim, token copy, Job, ...
    decide      (pure) footprint, per-cluster status, applies, prunes, finalizer
    remote      (pure) a cache's objects on one cluster: its status entry, prune, teardown
    controller  the controller's pass: observe (control cluster, Fleet.List) -> decide -> apply
    plan        (pure) what a run keeps, resumes, removes and fetches; the size checks
    hub         the hub through `huggingface_hub`: listing, resumable checked fetch, errors
    volume      the volume's files and the run's state beside them (partial, verified, marker)
    progress    the status file and stdout report
    report      the job's reports published into its ConfigMap (in-cluster credentials)
    hydrate     the job: observe -> decide -> apply, and its command line
"""
