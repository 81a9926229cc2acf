"""Log output: plain text for people, one JSON object per line for log pipelines.

Not kopf's JSON format (`kopf.configure(log_format=LogFormat.JSON)`): it names the fields
`timestamp`, `severity` and `exc_info` and leaves out the logger's name, so log pipelines built on
`time`, `level`, `logger` and `exception` would break."""

from __future__ import annotations

import datetime
import json
import logging


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(log_format: str, level: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Kopf logs every handler's and timer's success per object at INFO: a line for each watch
    # event of every Job pod, a cost in a burst (docs/benchmarks.md), while Tandem logs each of
    # its actions itself. Kopf's warnings and errors stay; --log-level=DEBUG brings all back.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
