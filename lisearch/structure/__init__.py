"""Structure-based model (sML) of Sendek et al. 2017: the featurizer, the logistic model, CIF handling."""
