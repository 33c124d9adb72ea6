"""The partner REST API: HTTP/JSON in, gRPC to the services, problem+json out (see README "Partner API")."""
