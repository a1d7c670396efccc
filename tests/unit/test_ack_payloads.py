"""Acknowledgements from the phones: the payload parsing, without servers."""

from __future__ import annotations

import pytest

from cityops.cases.acks import parse_ack


def test_parse_ack_names_what_is_wrong() -> None:
    assert parse_ack(b'{"ticket_id": 12, "action": "sign_for"}') == (12, "sign_for")
    for raw, reason in [(b"[]", "JSON object"), (b'{"ticket_id": "12", "action": "sign_for"}',
                                                 "whole number"),
                        (b'{"ticket_id": true, "action": "sign_for"}', "whole number"),
                        (b'{"ticket_id": 1, "action": "handled"}', "one of sign_for")]:
        with pytest.raises(ValueError, match=reason):
            parse_ack(raw)

