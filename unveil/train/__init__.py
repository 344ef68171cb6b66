"""Training: one loop (:mod:`unveil.train.engine`) and one small task per model family.

``load_config`` and ``fit`` register the tasks first: ``inpaint`` (IFACENET, its ablation, IN2,
LGFace), ``unpaired`` (CUTFACE), ``seg`` (SOCLNET and its ablation) and ``gender`` (the gender
classifier). Importing this package alone loads no torch (the CLI lists the configs with it).
"""
from unveil.train.config import TrainConfig, config_names, config_title


def _engine():
    from unveil.train import engine, gender, inpaint, seg, unpaired  # noqa: F401  (registers the tasks)

    return engine


def load_config(which=None, path=None, sets=(), **overrides) -> TrainConfig:
    """See :func:`unveil.train.engine.load_config`."""
    return _engine().load_config(which, path, sets, **overrides)


def fit(cfg: TrainConfig, progress: bool = True) -> dict:
    """See :func:`unveil.train.engine.fit`."""
    return _engine().fit(cfg, progress)


__all__ = ["TrainConfig", "config_names", "config_title", "fit", "load_config"]
