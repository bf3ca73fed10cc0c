"""Field reports from the one-stop desk (contract §2): the ground truth doisoat checks against."""
