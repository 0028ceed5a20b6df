"""riskops: a risk register and crisis-response service."""
