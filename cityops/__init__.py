"""CityOps: a district's urban operations centre. The rooms, bottom to top (a room imports only the
rooms below it; docs/architecture.md):

- ``platform``: settings, database and the unit of work, logs, embedded servers, scheduler, users
  and audit, MQTT, working time;
- ``org``: grid cells and geography;
- ``sensing``: readings, detection, alerts, device health, retention;
- ``cases``: the case workflow, the alert→case policy, intake, dispatch, escalation, ratings;
- ``flood`` and ``needs``: the flood season; needs scoring for targeted assistance;
- ``views`` and ``simulation``: the pages' read models; the synthetic district and simulator;
- ``app``: the composition root (with ``ingest``, ``models`` and ``dashboards``);
- ``cli``: the ``cityops`` command.
"""
