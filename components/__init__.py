"""katak8s components: one ComponentResource per concern (see README, Architecture)."""
