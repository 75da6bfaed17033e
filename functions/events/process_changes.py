"""DynamoDB Streams of the Runners and Jobs tables -> Hangar events (EventBridge and webhook deliveries).

Each record is processed on its own; a record that fails is reported (ReportBatchItemFailures), so
Lambda retries from it and nothing after it is skipped. Event ids come from the records: a retry
produces the same events and finds the deliveries it already made."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from hangar.core.observability import logger, metrics
from hangar.events.processor import EventPublisher

# A failed record is reported (Lambda retries from it), not raised as a function error for the batch.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    publisher = EventPublisher()

    def publish(record: Any) -> None:
        published = publisher.publish_record(record.raw_event)
        if published:
            metrics.add_metric(name="EventsPublished", unit="Count", value=len(published))

    response: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=publish, processor=processor, context=context)
    )
    return response
