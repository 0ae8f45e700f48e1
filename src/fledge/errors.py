"""Every error fledge raises on purpose: one message that says what, where and what to do."""

from __future__ import annotations


class FledgeError(Exception):
    """Base of all errors that the command line reports as one clear message (no traceback)."""


class ConfigError(FledgeError):
    """A configuration file, key, value or command-line flag is wrong."""


class EnvironmentFault(FledgeError):
    """An environment was misused or produced bad output."""


class UnknownBehaviorError(EnvironmentFault):
    """A behavior name that the environment does not have."""


class ActionError(EnvironmentFault):
    """Actions of the wrong shape, dtype or value were given to an environment."""


class ObservationError(EnvironmentFault):
    """An environment produced observations or rewards of the wrong shape, dtype or with NaN/inf."""


class UnknownEnvironmentError(FledgeError):
    """No environment is registered under the requested name."""


class RunFolderError(FledgeError):
    """The results folder of a run is in a state that forbids the requested action."""


class WriteError(RunFolderError):
    """A file of the run could not be written (disk full, file size limit, read-only disk, no permission).

    The file's previous version and every checkpoint written before are left intact.
    """


class TrainingError(FledgeError):
    """A trainer failed while training; final checkpoints were written where the state was safe to keep."""


class CheckpointError(FledgeError):
    """A checkpoint file is missing, truncated, foreign or does not fit the run's networks."""


class TrainingDivergedError(FledgeError):
    """A trainer found Inf or NaN in its losses or weights after an update; the update was not kept."""
