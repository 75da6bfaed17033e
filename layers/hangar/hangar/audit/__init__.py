"""The audit trail: each user mutation's audit event, written in the mutation's own transaction."""
