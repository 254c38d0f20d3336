"""The S3 ledger of trained versions: upserts, deployment flag, corrupt-ledger safety and conditional writes."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from include.custom_labels import ledger

KEY = "custom-labels/gearbox/ledger.json"


@pytest.fixture
def bucket(s3) -> str:
    name = f"ledger-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def entry(name: str, **fields) -> dict:
    return {
        "version_name": name,
        "version_arn": f"arn:aws:rekognition:us-east-1:000000000000:project/gearbox/version/{name}/1",
        "project_arn": "arn:aws:rekognition:us-east-1:000000000000:project/gearbox/1",
        "train": {"manifest": "s3://datasets/gearbox/v1/manifest.jsonl", "version": "v1"},
        "test": {"manifest": "s3://datasets/gearbox-shifted/v1/manifest.jsonl", "version": "t1"},
        "f1": 0.8,
        "label_f1": {"gear": 0.9, "flange": 0.7},
        "precision": 0.82,
        "recall": 0.78,
        "trained_at": "2026-01-01T00:00:00+00:00",
        "status": "TRAINING_COMPLETED",
        "gate": {"passed": True, "min_f1": 0.75},
        "dag_run_id": "manual__1",
        **fields,
    }


class CountingS3:
    """Passes calls through to a real client, counting puts; ``before_put`` runs once before the first put."""

    def __init__(self, client, before_put=None) -> None:
        self.client, self.before_put, self.puts = client, before_put, []

    def get_object(self, **kwargs):
        return self.client.get_object(**kwargs)

    def put_object(self, **kwargs):
        if self.before_put is not None:
            hook, self.before_put = self.before_put, None
            hook()
        self.puts.append({k: v for k, v in kwargs.items() if k in ("IfMatch", "IfNoneMatch")})
        return self.client.put_object(**kwargs)


def stored(s3, bucket: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=KEY)["Body"].read()


def test_a_missing_ledger_loads_empty_and_the_first_record_creates_it(s3, bucket):
    assert ledger.load(s3, bucket, KEY) == {"ledger_version": 1, "versions": []}
    book = ledger.record(s3, bucket, KEY, entry("v1"))
    assert book["versions"] == [{**entry("v1"), "deployed": False}]
    assert json.loads(stored(s3, bucket)) == book
    assert ledger.load(s3, bucket, KEY) == book


def test_reruns_update_in_place_keep_unmentioned_fields_and_write_nothing_when_unchanged(s3, bucket):
    ledger.record(s3, bucket, KEY, entry("v2", trained_at="2026-02-01T00:00:00+00:00"))
    ledger.record(s3, bucket, KEY, entry("v1"))
    counting = CountingS3(s3)
    ledger.record(counting, bucket, KEY, entry("v1"))
    assert counting.puts == []  # same entry again: no write
    book = ledger.record(s3, bucket, KEY, {"version_name": "v1", "status": "DEPLOYED", "f1": 0.85})
    assert [v["version_name"] for v in book["versions"]] == ["v1", "v2"]  # oldest trained first
    first = book["versions"][0]
    assert (first["status"], first["f1"], first["label_f1"]) == ("DEPLOYED", 0.85, {"gear": 0.9, "flange": 0.7})


def test_mark_deployed_flags_one_version_and_clears_the_others(s3, bucket):
    for name in ("v1", "v2", "v3"):
        ledger.record(s3, bucket, KEY, entry(name))
    ledger.mark_deployed(s3, bucket, KEY, "v1")
    book = ledger.mark_deployed(s3, bucket, KEY, "v3")
    assert {v["version_name"]: v["deployed"] for v in book["versions"]} == {"v1": False, "v2": False, "v3": True}
    assert ledger.deployed(ledger.load(s3, bucket, KEY))["version_name"] == "v3"
    before = stored(s3, bucket)
    with pytest.raises(KeyError, match="'v9' is not in the ledger"):
        ledger.mark_deployed(s3, bucket, KEY, "v9")
    assert stored(s3, bucket) == before


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'["a", "list"]', b'{"versions": [{"f1": 0.5}]}', b'{"ledger_version": 7, "versions": []}'],
)
def test_a_corrupt_ledger_raises_and_is_left_untouched(s3, bucket, body):
    s3.put_object(Bucket=bucket, Key=KEY, Body=body)
    with pytest.raises(ledger.LedgerCorruptError, match="ledger"):
        ledger.load(s3, bucket, KEY)
    with pytest.raises(ledger.LedgerCorruptError):
        ledger.record(s3, bucket, KEY, entry("v1"))
    assert stored(s3, bucket) == body


def test_other_read_errors_are_not_mistaken_for_an_empty_ledger(s3):
    with pytest.raises(ClientError, match="NoSuchBucket"):
        ledger.load(s3, f"missing-{uuid.uuid4().hex[:8]}", KEY)


def test_entries_are_checked_and_datetimes_stored_as_iso_strings(s3, bucket):
    with pytest.raises(ValueError, match="version_name"):
        ledger.record(s3, bucket, KEY, {"f1": 0.5})
    with pytest.raises(ValueError, match="f1 must be a number in 0..1"):
        ledger.record(s3, bucket, KEY, entry("v1", f1=1.5))
    with pytest.raises(ValueError):
        ledger.record(s3, bucket, KEY, entry("v1", f1=float("nan")))
    book = ledger.record(s3, bucket, KEY, entry("v1", trained_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)))
    assert book["versions"][0]["trained_at"] == "2026-03-04T05:06:07+00:00"


def test_a_write_that_lost_a_race_rereads_and_keeps_both_entries(s3, bucket):
    ledger.record(s3, bucket, KEY, entry("v1"))
    # Another writer records v2 after we read the ledger and before we write it back.
    racing = CountingS3(s3, before_put=lambda: ledger.record(s3, bucket, KEY, entry("v2")))
    book = ledger.record(racing, bucket, KEY, entry("v3"))
    assert [p.keys() for p in racing.puts] == [{"IfMatch"}, {"IfMatch"}]  # the stale ETag was refused once
    assert [v["version_name"] for v in book["versions"]] == ["v1", "v2", "v3"]
    assert json.loads(stored(s3, bucket)) == book


def test_two_first_writers_do_not_overwrite_each_other(s3, bucket):
    racing = CountingS3(s3, before_put=lambda: ledger.record(s3, bucket, KEY, entry("v1")))
    book = ledger.record(racing, bucket, KEY, entry("v2"))
    assert [list(p) for p in racing.puts] == [["IfNoneMatch"], ["IfMatch"]]
    assert [v["version_name"] for v in book["versions"]] == ["v1", "v2"]


def test_a_writer_that_always_loses_gives_up_with_a_clear_error(s3, bucket, monkeypatch):
    monkeypatch.setattr(ledger, "BACKOFF_SECONDS", 0.0)
    ledger.record(s3, bucket, KEY, entry("v1"))

    class AlwaysBeaten(CountingS3):
        def put_object(self, **kwargs):
            # Someone else changes the ledger (new bytes, so a new ETag) between each of our reads and writes.
            padding = " " * (len(self.puts) + 1)
            s3.put_object(Bucket=bucket, Key=KEY, Body=ledger.dumps(ledger.load(s3, bucket, KEY)) + padding)
            return super().put_object(**kwargs)

    beaten = AlwaysBeaten(s3)
    with pytest.raises(ledger.LedgerConflictError, match="after 10 attempts"):
        ledger.record(beaten, bucket, KEY, entry("v2"))
    assert len(beaten.puts) == ledger.MAX_ATTEMPTS
    assert [v["version_name"] for v in ledger.load(s3, bucket, KEY)["versions"]] == ["v1"]


def test_concurrent_writers_lose_no_entry(localcloud, bucket):
    names = [f"v{i:02d}" for i in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))

    def write(name: str) -> None:
        client = localcloud.client("s3")
        barrier.wait()
        try:
            ledger.record(client, bucket, KEY, entry(name))
        except BaseException as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(v["version_name"] for v in ledger.load(localcloud.client("s3"), bucket, KEY)["versions"]) == names
