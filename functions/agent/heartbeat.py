"""POST /api/runners/heartbeat — the runner reports it is alive (`/api` dialect); one DynamoDB write."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import api_app, lambda_handler
from hangar.fleet import heartbeat
from hangar.fleet.models.heartbeat import HeartbeatAck, HeartbeatRequest

app = api_app()


@app.post("/api/runners/heartbeat", responses=app.responses(HeartbeatAck))
def record_heartbeat(body: HeartbeatRequest) -> Response[str]:
    runner = heartbeat.record_heartbeat(app.runner(), body)
    return app.ok(heartbeat.heartbeat_ack(runner))


handler = lambda_handler(app)
