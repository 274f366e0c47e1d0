"""The generators. Each model is a subpackage; :mod:`hepgen.models.caloman` is CaloMan."""
