"""Composition models (eML, esML, atom2vec-esML) and their plain-data artifacts."""
