"""OMOP CDM v5.4 sets: checked against OHDSI's machine-readable field specification
(`spec`), and censored at each person's index date before a model sees them (`censor`).

An OMOP set is a folder of CDM tables as CSV files (`tables`), a cohort (`person_id,
index_date`, one row per case: the case id is the person id) and labels (`person_id,label`
plus subgroup columns). No Django: the central worker and data stations use this alike.
"""
