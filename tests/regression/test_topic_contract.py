"""The topic contract may only change on purpose.

Changing a topic's name, partition count or cleanup policy breaks running consumers
(names) or moves keys to other partitions (partition count). This test compares the
declarations with ``topic_contract.json``; a deliberate change updates that file in the
same commit, which makes it visible in review.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.topics import ALL_TOPICS

CONTRACT = Path(__file__).with_name("topic_contract.json")


def test_declared_topics_match_the_recorded_contract() -> None:
    recorded = json.loads(CONTRACT.read_text())
    declared = {
        t.name: {"partitions": t.partitions, "cleanup_policy": t.cleanup_policy,
                 "retention_ms": t.retention_ms}
        for t in ALL_TOPICS
    }  # fmt: skip
    assert declared == recorded
