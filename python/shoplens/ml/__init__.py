"""Machine learning in the warehouse: purchase intent, category choice, customer segments.

The scikit-learn code lives here so pytest can test it on small frames; the dbt Python models in
`models/ml/` are thin wrappers that call it. `shoplens.ml.registry` is the read side used by the
live scorer and the reports.
"""
