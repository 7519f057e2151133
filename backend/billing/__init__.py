"""Per-provider usage metering from final chain events and quotes; plans; monthly statements."""
