"""The activator: holds the requests of ModelServices at zero until an endpoint is Ready."""
