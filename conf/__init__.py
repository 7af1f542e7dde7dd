"""growlab's Hydra configs (conf/ in the repository), shipped inside the package."""
