"""What follows the screen: the narrowing to stable oxides and the Table III trace (:mod:`.narrowing`), the shortlist
(:mod:`.shortlisting`) and the study of the paper's open choices (:mod:`.study`)."""
