"""The Lambda glue: the REST resolver (dialects, errors to HTTP) and the authorizer wrapper."""
