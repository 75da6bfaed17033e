"""Events: the DynamoDB stream processor, EventBridge, webhooks and their delivery."""
