"""The work for people (工单): the case workflow and its state machine, the one alert→case policy
and its carrying out, intake from people, assignment by grid, time limits and categories,
escalation, verification, ratings and bad reviews, metrics, photos, the notification outbox and
its senders, the workers' acknowledgements, Open311's public view, and what the worker's phone
and the hotline read and do.

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "acks",
    "assignment",
    "categories",
    "clock",
    "commands",
    "escalation",
    "hotline",
    "intake",
    "metrics",
    "notify",
    "opening",
    "photos",
    "policy",
    "public",
    "ratings",
    "reviews",
    "tickets",
    "verification",
    "worker",
]
