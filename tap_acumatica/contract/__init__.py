"""The contract-based REST API dialect (``/entity/{endpoint}/{version}/{Entity}``)."""
