"""Errors that name what is wrong: a config key, a file, a frame."""


class TopoamorphError(Exception):
    """Base class: the message is meant for the user, one line, naming the culprit."""


class ConfigError(TopoamorphError):
    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


class InputFileError(TopoamorphError):
    def __init__(self, path, message: str, frame: int | None = None):
        self.path = str(path)
        self.frame = frame
        where = f"{path}" if frame is None else f"{path}, frame {frame}"
        super().__init__(f"{where}: {message}")


class HomologyError(TopoamorphError):
    pass


class MDError(TopoamorphError):
    """A melt-quench trajectory that cannot be used (non-finite energy, a thermostat that lost control)."""
