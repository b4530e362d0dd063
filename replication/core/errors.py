"""The one error base the command line catches: a bad input, said in one line.

Every error a user can cause (a setting, a file, a folder, a download, a checkpoint)
derives from `UserError`; its message names the value or file and the fix. `replication`
prints it as `error: <message>` and exits 1. Anything else is a bug and keeps its
traceback (REPLICATION_DEBUG=1 shows the traceback of a UserError too).
"""

from __future__ import annotations


class UserError(Exception):
    """A bad input; the message names it and says what to do."""


class ConfigError(UserError):
    """A bad setting (params.yaml, --set, a command-line option)."""


class DataError(UserError):
    """A bad dataset file or folder."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used here."""


class DownloadError(UserError):
    """A download or install that cannot go on."""


class ScoringError(UserError):
    """Generated images, labels or weights that cannot be scored as they are."""


class TrainingDiverged(UserError):
    """A loss became NaN/Inf; the last good checkpoint is kept."""


class RunFolderBusy(UserError):
    """Another process holds the run folder's lock."""


class WriteFailed(UserError):
    """A file the disk refused to take (full, over quota or over a file-size limit)."""
