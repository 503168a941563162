"""The toy world: procedural scenes, a small latent diffusion model trained on them, and a judge."""
