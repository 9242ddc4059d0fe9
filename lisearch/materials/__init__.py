"""From formulas to materials: predicted crystal structures, relaxation by a universal potential, convex hulls."""
