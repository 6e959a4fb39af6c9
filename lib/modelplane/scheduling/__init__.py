"""The fleet scheduler core: pure placement of ModelDeployment replicas onto clusters and pools.

`schedule_all` and `schedule` take plain values (`modelplane.scheduling.model`)
and return `Placement`s; they do no I/O. The running fleet-scheduler service and
the offline `modelplane schedule` command both call them, so they agree.
"""

from modelplane.scheduling.core import Session, schedule, schedule_all
from modelplane.scheduling.model import Fleet, Placement

__all__ = ["Fleet", "Placement", "Session", "schedule", "schedule_all"]
