"""Does Li move in it: sML on structures, bond-valence site-energy barriers, molecular dynamics."""
