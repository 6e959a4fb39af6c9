"""cache-hydrator: stages ModelCache weights on each cluster's shared volume.

Today it holds the hydration job (`modelplane-hydrate`, the `hydrate` module) that a
cluster's Job runs to fill one volume; the ModelCache controller comes next.

Modules, pure ones marked:
    plan      (pure) what a run keeps, resumes, removes and fetches; the size checks
    hub       the hub through `huggingface_hub`: listing, resumable checked fetch, errors
    volume    the volume's files and the run's state beside them (partial, verified, marker)
    progress  the status file and stdout report
    hydrate   the job: observe -> decide -> apply, and its command line
"""
