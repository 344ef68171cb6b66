"""Scale-out of batches: the same jobs as :func:`unveil.batch.run_batch`, run by Ray Data actors
on this machine or a cluster (:func:`run_ray`). Training on several processes lives with the
trainer (:mod:`unveil.train.distributed`)."""
from unveil.scale.ray_engine import RayOptions, run_ray

__all__ = ["RayOptions", "run_ray"]
