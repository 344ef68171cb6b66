"""Training: checkpoints with resume, reusable losses, data pools, and one trainer per model family."""
