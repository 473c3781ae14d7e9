"""One exception hierarchy for everything a user can cause.

Each error carries the one sentence a user reads (``str(err)``) and the exit code the CLI returns.
The CLI prints ``error: <message>`` and exits with ``err.exit_code``; the TUI shows the message in a
notification. Nothing here imports a UI or a heavy library.
"""

from __future__ import annotations


class HubmgrError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, always
        text = self.message.strip().replace("\n", " ")
        if self.hint:
            text = f"{text} {self.hint.strip()}"
        return text


class UsageError(HubmgrError):
    """A bad option, argument or config value.

    Args:
        message: the sentence the CLI prints (it may name flags and config keys).
        field: the config field at fault (``lora_r``), when it is one field; a form marks that field.
        form_message: the same problem in a form's words, where the CLI's sentence speaks of flags or
            files (``Training data is required.``); a form without it rewrites ``message`` by its labels
            (:func:`hubmgr.fields.form_text`).
    """

    exit_code = 2

    def __init__(
        self, message: str, *, hint: str | None = None, field: str | None = None, form_message: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.form_message = form_message


# --- the Hub -------------------------------------------------------------------------------------
class HubError(HubmgrError):
    """Something went wrong talking to the Hub."""

    exit_code = 3


class RepoNotFoundError(HubError):
    """The repo does not exist (or is private and no token gives access)."""


class RevisionNotFoundError(HubError):
    """The repo exists but not at that branch, tag or commit."""


class EntryNotFoundError(HubError):
    """A file is not in the repo at that revision."""


class GatedRepoError(HubError):
    """The repo is gated and the token (if any) has not been granted access."""

    exit_code = 4


class AuthError(HubError):
    """401/403 that is not a gated repo: bad or missing token."""

    exit_code = 4


class HubUnreachableError(HubError):
    """No network, HF_HUB_OFFLINE=1, or the endpoint does not answer."""

    exit_code = 5


class UnsupportedByMirrorError(HubError):
    """The endpoint does not serve this API route (mirrors often serve files but not search)."""


class RateLimitedError(HubError):
    """429 and retries were exhausted."""


class IntegrityError(HubError):
    """A downloaded file does not match the checksum the Hub gives."""

    exit_code = 6


class UnsafePathError(HubError):
    """A remote file name would escape the target folder."""

    exit_code = 6


# --- local state ---------------------------------------------------------------------------------
class CacheError(HubmgrError):
    """A problem with the local Hugging Face cache (not cached, locked, corrupt)."""


class NotCachedError(CacheError):
    """A repo or revision is not in the local cache (and the Hub cannot be asked)."""


class DiskFullError(HubmgrError):
    """No space left on the device."""

    exit_code = 7


class LocalPathError(HubmgrError):
    """The environment: a folder hubmgr must write is read-only, or a path that must be a folder is a file
    (``HF_HOME``, ``HUBMGR_HOME``, ``--output``). The message names the path and what is wrong."""

    exit_code = 12


def local_path_error(exc: OSError, path: object, what: str) -> "HubmgrError":
    """One clear error for an OSError on a local path: disk full, read-only, not a folder, or else."""
    import errno

    full = disk_full_from(exc, str(path))
    if full is not None:
        return full
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LocalPathError(
            f"{what} {path} is not writable ({exc.strerror or exc}); fix its permissions or point it elsewhere."
        )
    if code == errno.ENOTDIR or isinstance(exc, NotADirectoryError):
        return LocalPathError(f"{what} {path} is not usable: it or one of its parents is a file, not a folder.")
    if code == errno.EEXIST or isinstance(exc, FileExistsError):
        return LocalPathError(f"{what} {path} is a file, not a folder.")
    return LocalPathError(f"{what} {path} cannot be used: {exc.strerror or exc}.")


# --- training and evaluation ---------------------------------------------------------------------
class DataError(HubmgrError):
    """A data file is missing, unreadable, empty, or lacks a column; labels that don't match."""

    exit_code = 8


class ModelError(HubmgrError):
    """The model cannot be used for the task (architecture, target modules, weights refused)."""

    exit_code = 9


class TrainingError(HubmgrError):
    """Training failed (NaN loss, out of memory, ...)."""

    exit_code = 10


class PluginError(HubmgrError):
    """A plugin failed to load or raised in a hook, or a task name is unknown."""

    exit_code = 11


class RunNotFoundError(HubmgrError):
    """No run or adapter with that id in the run registry."""


class RunStoreError(HubmgrError):
    """The run registry file cannot be opened or was written by a newer hubmgr."""


class RepoBusyError(CacheError):
    """A live download holds the repo: it must not be deleted now."""


class DownloadCancelled(HubmgrError):
    """The download was cancelled; partial files are kept so that a later run resumes them."""

    exit_code = 130


class EvalCancelled(HubmgrError):
    """The evaluation was cancelled through its ``cancel`` event."""

    exit_code = 130


def disk_full_from(exc: OSError, where: str) -> DiskFullError | None:
    """Return a DiskFullError for ENOSPC/EDQUOT, else None."""
    import errno

    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"No space left on the device while writing {where}.")
    return None
