"""Settings from the environment; strategy templates and schemas come with the strategy engine."""
