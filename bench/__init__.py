"""Hangar's benchmark (`make bench`, `python -m bench`): figures printed beside baselines measured in the
same run, since the machine is noisy.

1. DynamoDB calls (and request units) per runner-route request, against the design's targets.
2. Items the sweeper reads at 1,000 and 10,000 runners with 10 stale, against the stale count and a Scan.
3. Cold start of every function against `import boto3; boto3.client("dynamodb")`; the layer's size.
4. The local/ gateway's heartbeat throughput and latency against calling the handler in-process.
5. Dollars per runner-month from the measured work and AWS's published prices.

docs/performance.md records a run and explains each figure.
"""
