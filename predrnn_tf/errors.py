"""The error tree: what went wrong, reported to users as one line (no TensorFlow import here).

Every error a user can cause derives from :class:`PredRNNError` (a ``ValueError``), and its
class says what kind of thing went wrong::

    PredRNNError
    ├── ConfigError            a flag or Config value is invalid (names the flag and value)
    │   └── WorkdirError       the work directory cannot be used (locked, unwritable, ...)
    ├── InputError             an array given to the Python API or a server is unusable
    │   └── RequestError       a request to the local server is refused (HTTP status)
    ├── DataError              a dataset or input file is missing, corrupt or inconsistent
    │   └── LPIPSWeightsError  the LPIPS weights file is missing or malformed
    ├── CheckpointError        a checkpoint is missing, damaged or of another model
    │   └── CheckpointFormatError  a PyTorch checkpoint does not fit the model layout
    ├── NumericsError          training produced a non-finite value
    │   └── NonFiniteLossError
    └── ExportError            a SavedModel cannot be written or checked

Entry points catch ``PredRNNError`` and print ``error: <message>`` as one line.
"""


class PredRNNError(ValueError):
    """Base class of every user-facing error of predrnn_tf."""


class ConfigError(PredRNNError):
    """A configuration value is invalid; the message names the flag and the value."""


class WorkdirError(ConfigError):
    """The work directory cannot be used (locked, not writable, full, not a directory)."""


class InputError(PredRNNError):
    """An array given to the Python API or a server has the wrong rank, dtype, range or size."""


class RequestError(InputError):
    """A request to the local REST server is refused: an HTTP status and a one-line message."""

    MAX_CHARACTERS = 500

    def __init__(self, status: int, message: str):
        self.status = int(status)
        self.message = " ".join(str(message).split())[:self.MAX_CHARACTERS]
        super().__init__(self.message)


class DataError(PredRNNError):
    """A dataset file is missing, corrupt or does not match the configuration."""


class LPIPSWeightsError(DataError):
    """The LPIPS weights file is missing or does not have the expected arrays."""


class CheckpointError(PredRNNError):
    """A checkpoint is missing, damaged, or holds another model's weights."""


class CheckpointFormatError(CheckpointError):
    """A PyTorch checkpoint does not match the official layout of the configured model."""


class NumericsError(PredRNNError):
    """Training or inference produced NaN or infinity."""


class NonFiniteLossError(NumericsError):
    """The training loss or a gradient became NaN or infinite."""


class ExportError(PredRNNError):
    """A SavedModel cannot be exported, published or verified."""


class OutputError(PredRNNError):
    """An output cannot be written: read-only folder, full disk, file size limit, quota."""
