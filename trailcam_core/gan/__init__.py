"""GAN stage (filled below)."""
