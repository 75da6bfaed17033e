"""Lambda's event source mappings, as the template declares them: DynamoDB streams and SQS queues polled,
their records filtered (FilterCriteria) and batched into invocations of the function, failures handled
as Lambda does with ReportBatchItemFailures.

- A stream is read from where it was when the stack started; a batch whose function fails (or reports
  failed items) is tried again from the first failed record on the next poll, `MaximumRetryAttempts`
  times, then printed and skipped (AWS would send it to the OnFailure destination).
- A queue message the function reports as failed stays in the queue; it comes back when its visibility
  timeout ends. The embedded SQS follows the local clock (local.backend), so delays and visibility
  timeouts pass when `POST /_local/clock` moves time.

`EventSources.drain()` polls until nothing is left to do: `POST /_local/deliveries/flush` runs it, and
(unless schedules are off) a background thread runs it every second.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from local.template import REGION, EventSourceSpec
from local.template.events import compile_filter

Invoke = Callable[[str, Any], Any]
Report = Callable[[str], None]
MAX_DRAIN_ROUNDS = 100_000  # a safety stop only: retries are delayed, so a drain always ends


# -- Lambda event filtering: the patterns are compiled (and checked) when the template is read -----------


def matches(pattern: Mapping[str, Any], record: Mapping[str, Any] | None) -> bool:
    """Whether `record` matches a Lambda filter pattern (`local.template.events.compile_filter`)."""
    return compile_filter(pattern)(record)


def passes(filters: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """No filters: every record; otherwise records that match at least one of them."""
    return not filters or any(matches(pattern, record) for pattern in filters)


def _as_lambda_json(value: Any) -> Any:
    """What Lambda's JSON event holds: numbers for times, base64 for binary."""

    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return int(item.timestamp())
        if isinstance(item, bytes | bytearray):
            return base64.b64encode(bytes(item)).decode()
        if isinstance(item, set):
            return sorted(item)
        raise TypeError(type(item).__name__)

    return json.loads(json.dumps(value, default=default))


def _failed_ids(result: Any) -> list[str] | None:
    """The batchItemFailures' identifiers; None when the response does not report any."""
    if not isinstance(result, Mapping) or "batchItemFailures" not in result:
        return None
    return [str(item.get("itemIdentifier")) for item in result["batchItemFailures"] or []]


# -- DynamoDB streams ---------------------------------------------------------------------------------


class StreamSource:
    def __init__(self, spec: EventSourceSpec, table_name: str, streams: Any, dynamodb: Any, report: Report) -> None:
        self.spec, self._streams, self._report = spec, streams, report
        description = dynamodb.describe_table(TableName=table_name)["Table"]
        self.stream_arn = description.get("LatestStreamArn")
        if not self.stream_arn:
            report(f"local: {table_name} has no stream ({spec.function_id}.{spec.event_name} gets no records)")
        self._iterators: dict[str, str | None] = {}
        self._last: dict[str, str] = {}  # per shard, the sequence number of the last record read
        self._pending: list[dict[str, Any]] = []
        self._failures = 0
        if self.stream_arn:  # only what changes from now on (the table may hold data of an earlier run)
            for shard in self._shards():
                self._iterators[shard] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard, ShardIteratorType="LATEST"
                )["ShardIterator"]

    def _shards(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def _read(self) -> None:
        for shard in self._shards():
            if shard not in self._iterators:  # a shard opened since: all of it is new
                self._iterators[shard] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        for shard, iterator in list(self._iterators.items()):
            retried = False
            while iterator:
                try:
                    page = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                except (
                    self._streams.exceptions.ExpiredIteratorException,  # idle for 15 minutes
                    self._streams.exceptions.TrimmedDataAccessException,  # DynamoDB Local, on an iterator it made
                ) as error:
                    if retried:
                        self._report(f"local: stream of {self.spec.source}: {error}; reading the shard again later")
                        break
                    iterator, retried = self._resume(shard), True
                    continue
                records = page.get("Records", [])
                self._pending.extend({**record, "eventSourceARN": self.stream_arn} for record in records)
                if records:
                    self._last[shard] = records[-1]["dynamodb"]["SequenceNumber"]
                iterator = page.get("NextShardIterator")
                if not records:
                    break
            self._iterators[shard] = iterator

    def _resume(self, shard: str) -> str:
        """A new iterator just after the last record read from the shard (the start, when none was)."""
        arguments: dict[str, str] = {"StreamArn": str(self.stream_arn), "ShardId": shard}
        if shard in self._last:
            arguments.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self._last[shard])
        else:
            arguments.update(ShardIteratorType="TRIM_HORIZON")
        iterator: str = self._streams.get_shard_iterator(**arguments)["ShardIterator"]
        return iterator

    def poll(self, invoke: Invoke) -> int:
        """Reads what is new and invokes the function with a batch; the number of records it handled."""
        if not self.stream_arn:
            return 0
        self._read()
        self._pending = [record for record in _as_lambda_json(self._pending) if passes(self.spec.filters, record)]
        if not self._pending:
            return 0
        batch = self._pending[: self.spec.batch_size]
        try:
            result = invoke(self.spec.function_id, {"Records": batch})
            failed = _failed_ids(result) if self.spec.report_batch_item_failures else None
        except Exception as error:
            self._report(f"local: {self.spec.function_id} failed on a stream batch: {type(error).__name__}: {error}")
            failed = [batch[0]["dynamodb"]["SequenceNumber"]]
        if not failed:
            del self._pending[: len(batch)]
            self._failures = 0
            return len(batch)
        first = next((index for index, record in enumerate(batch) if record["dynamodb"]["SequenceNumber"] in failed), 0)
        del self._pending[:first]  # the records before the first failure are done
        self._failures += 1
        if 0 <= self.spec.maximum_retry_attempts < self._failures:
            self._report(f"local: {self.spec.function_id}: dropping stream record {failed[0]} after its retries")
            del self._pending[:1]
            self._failures = 0
        return first


# -- SQS queues -----------------------------------------------------------------------------------------


class QueueSource:
    def __init__(self, spec: EventSourceSpec, queue_url: str, queue_arn: str, sqs: Any, report: Report) -> None:
        self.spec, self.queue_url, self.queue_arn, self._sqs, self._report = spec, queue_url, queue_arn, sqs, report

    def poll(self, invoke: Invoke) -> int:
        received = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        records = [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": self.queue_arn,
                "awsRegion": REGION,
            }
            for message in received
        ]
        size = max(1, self.spec.batch_size)
        for start in range(0, len(records), size):  # what was received, in batches of BatchSize
            self._invoke_batch(invoke, records[start : start + size])
        return len(records)

    def _invoke_batch(self, invoke: Invoke, records: list[dict[str, Any]]) -> None:
        try:
            result = invoke(self.spec.function_id, {"Records": records})
        except Exception as error:
            self._report(f"local: {self.spec.function_id} failed on a queue batch: {type(error).__name__}: {error}")
            return
        failed = (_failed_ids(result) if self.spec.report_batch_item_failures else None) or []
        done = [record for record in records if record["messageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)],
            )


class EventSources:
    """Every event source mapping of the template, polled in order, one drain at a time."""

    def __init__(self, sources: Sequence[StreamSource | QueueSource], invoke: Invoke) -> None:
        self.sources = list(sources)
        self._invoke = invoke
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def drain(self) -> int:
        """Polls every source until none has anything left to do now; how many records were handled."""
        handled = 0
        with self._lock:
            for _ in range(MAX_DRAIN_ROUNDS):
                count = sum(source.poll(self._invoke) for source in self.sources)
                handled += count
                if count == 0:
                    break
        return handled

    def start(self, interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.drain()
                except Exception:  # noqa: S112 - printed by the sources; the next round tries again
                    continue

        threading.Thread(target=loop, name="event-sources", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def build(
    specs: Sequence[EventSourceSpec],
    refs: Mapping[str, str],
    attrs: Mapping[tuple[str, str], str],
    session: Any,
    dynamodb: Any,
    streams: Any,
    invoke: Invoke,
    report: Report,
) -> EventSources:
    """The sources of `specs`, on the provisioned tables (`refs`: their names) and queues."""
    sqs = session.client("sqs")
    sources: list[StreamSource | QueueSource] = []
    for spec in specs:
        if spec.kind == "DynamoDB":
            sources.append(StreamSource(spec, refs[spec.source], streams, dynamodb, report))
        else:
            sources.append(QueueSource(spec, refs[spec.source], attrs[(spec.source, "Arn")], sqs, report))
    return EventSources(sources, invoke)
