"""Data access: the only package that talks to DynamoDB (and the other AWS APIs Hangar uses)."""
