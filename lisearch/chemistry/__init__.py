"""Chemistry of compositions, the bottom of lisearch: element data (:mod:`.elements`), formulas
(:mod:`.composition`), charge neutrality, cost and mass (:mod:`.neutrality`), oxidation-state assignments
(:mod:`.oxidation`), chemical plausibility (:mod:`.plausibility`) and elemental descriptors (:mod:`.descriptors`).
No module here imports anything of lisearch above it."""
