"""What every room stands on: the settings, the database (connections, migrations, the unit
of work), structured logs, the embedded servers of the demo, the periodic-job scheduler, users
and the audit log, MQTT connections and the topic scheme, working time, CSV imports and plain
words for durations. It imports no other room.

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "csv_import",
    "database",
    "db",
    "embedded",
    "logs",
    "mqtt",
    "scheduler",
    "settings",
    "text",
    "topics",
    "users",
    "worktime",
]
