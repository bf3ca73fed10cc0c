"""The HTTP toolkit every router imports: dependencies, body limits, error handlers."""
