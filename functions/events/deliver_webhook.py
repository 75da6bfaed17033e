"""The delivery queue -> one attempt of one webhook delivery per message.

A failed attempt queues a new message for its retry (delayed up to 15 minutes). A message that arrives
before its delivery is due is hidden until then (its visibility timeout) and reported as failed
(ReportBatchItemFailures), so SQS hands it back at that time. Messages are independent, so one
tenant's slow receiver (at most 10 s) never holds up another's delivery."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from hangar.core.observability import logger, metrics
from hangar.events.delivery import deliver_message

# An early message is the whole batch (BatchSize 1): it is reported, not raised as a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(Exception):
    """The message comes back after its new visibility timeout."""


def deliver(record: Any) -> None:
    message = json.loads(record.body)
    org_id, webhook_id, delivery_id = str(message["orgId"]), str(message["webhookId"]), str(message["deliveryId"])
    due_in = deliver_message(org_id, webhook_id, delivery_id, record.receipt_handle)
    if due_in is not None:
        raise RetryLater(f"delivery {delivery_id}: due in {due_in} s")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
    )
    return response
