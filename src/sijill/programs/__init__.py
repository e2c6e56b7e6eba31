"""Programs on one registry: specs, eligibility and enrollment in bulk, benefits and
entitlements, explanations and notices."""
