"""endpoint-manager: realizes ModelReplicas on their clusters and publishes ModelEndpoints."""
