"""Risk state projected from chain events: loans, collateral, prices, health, score, alerts."""
