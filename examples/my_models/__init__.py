"""A researcher's own model family, outside growlab (see resmlp.py and conf/model/resmlp.yaml)."""
