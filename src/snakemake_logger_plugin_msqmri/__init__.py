"""Snakemake logger plugin of msqmri (``snakemake --logger msqmri --logger-msqmri-events FILE``).

Writes the run's progress and its failed jobs, as Snakemake's logger reports them, to ``FILE`` as JSON lines
(``{"event": "progress", "done": 3, "total": 40}``, ``{"event": "job_error", "rule": ..., "logs": [...]}``),
which the ``msqmri`` command reads to show progress and to name what failed; Snakemake's own output is
unchanged. Shipped with msqmri (Snakemake finds logger plugins by this module name).
"""

import json
from dataclasses import dataclass, field
from logging import LogRecord
from typing import Any, Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    events: Optional[str] = field(  # noqa: UP045 - Snakemake's CLI needs a callable type, not a string
        default=None, metadata={"help": "file the events are appended to (JSON lines)", "required": True}
    )


def _logs(record: dict[str, Any]) -> list[str]:
    """The job logs of a failed job, or of every failed job of a failed group job."""
    logs = [str(path).split(" ")[0] for path in record.get("log") or []]
    for job in record.get("job_error_info") or []:
        logs += [str(path).split(" ")[0] for path in job.get("log") or []]
    return logs


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        self.baseFilename = self.settings.events
        self._stream = open(self.baseFilename, "a", encoding="utf-8")  # noqa: SIM115 - open for the run

    def emit(self, record: LogRecord) -> None:
        event = getattr(record, "event", None)
        if event == LogEvent.PROGRESS:
            line = {"event": "progress", "done": record.done, "total": record.total}
        elif event in (LogEvent.JOB_ERROR, LogEvent.GROUP_ERROR):
            line = {"event": "job_error", "rule": getattr(record, "rule_name", None), "logs": _logs(vars(record))}
        else:
            return
        self._stream.write(json.dumps(line) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return True

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False
