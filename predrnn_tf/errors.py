"""Input errors reported to users as one line (no TensorFlow import here)."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the flag and the value."""


class DataError(ValueError):
    """A dataset file is missing, corrupt or does not match the configuration."""
