"""The chaos suite (marker ``chaos``): kill -9, hostile faults, bad input, token refresh."""
