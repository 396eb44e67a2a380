"""SemanticHyperDiffusion."""
