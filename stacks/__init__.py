"""Stack configuration models and the composition that wires the platform's components."""
