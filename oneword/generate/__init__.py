"""Drawing images: samplers, txt2img with embeddings, PNG parameters, comparison grids."""
