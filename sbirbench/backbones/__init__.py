"""Built-in backbones: a timm adapter, a ViT with extra tokens, and tiny CPU models."""
