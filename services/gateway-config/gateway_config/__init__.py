"""gateway-config: the control plane's front door (Gateway, one HTTPRoute per ModelService)."""
