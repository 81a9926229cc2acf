"""The once-keys keep the strings they had before `once_key`: a memory written by one version of
the core means the same to the next."""

from __future__ import annotations

from tandem.core.model.once import Told, once_key, told_key


def test_once_keys_are_the_strings_they_were() -> None:
    assert told_key("main=c1") == "finished:main=c1"
    assert once_key(Told.NOT_KEPT, "main=c1") == "not-kept:main=c1"
    assert once_key(Told.UNSTOPPABLE, "proxy", "cid") == "unstoppable:proxy:cid"
    assert once_key(Told.STOP_FAILED, "cid", "refused") == "failed:cid:refused"
    assert once_key(Told.FOREIGN_HELPER, "proxy") == "foreign-helper:proxy"
    assert once_key(Told.LOOP, "proxy") == "loop:proxy"
    assert once_key(Told.ENDED, "main=c1") == "ended:main=c1"
    assert once_key(Told.SWEEP_SKIPPED, "main=c1", "why") == "sweep-skipped:main=c1:why"
    assert once_key(Told.SWEEP_REPORT, "main=c1") == "sweep-report:main=c1"
    bare = (Told.UNKNOWN, Told.NOT_A_JOB_POD, Told.INVALID_ANNOTATION, Told.CONFLICT)
    assert [once_key(t) for t in bare] == [
        "unknown",
        "not-a-job-pod",
        "invalid-annotation",
        "conflict",
    ]
