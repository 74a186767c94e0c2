"""Files the app reads at run time (the sample photos and their licences), installed as ``convviz.resources``."""
