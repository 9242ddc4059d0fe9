"""Measured conductivities: the models of OBELiX's measured values (:mod:`.models`, tree ensembles as plain arrays in
:mod:`.trees`) and the validation of every model on them (:mod:`.validation`)."""
