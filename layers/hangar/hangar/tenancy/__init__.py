"""What a tenant has: plans and licenses, usage plans, rate limits, API keys, scan targets."""
