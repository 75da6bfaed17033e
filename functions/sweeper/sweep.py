"""Scheduled every minute: stale runners offline (their jobs requeued or failed), run timeouts, queue expiry.
Returns the sweep's summary (counts and items read)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from hangar.core.observability import logger, metrics
from hangar.jobs import sweeper

# Stop taking new items when less than this is left of the invocation; the next run continues.
SAFETY_MARGIN_MS = 5_000


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = sweeper.sweep(time_left=lambda: context.get_remaining_time_in_millis() > SAFETY_MARGIN_MS)
    return summary.as_dict()
