"""The credit every model trained on the public crop data set carries (CC BY 4.0)."""

DATASET_CREDIT = {
    "dataset": "CSF Shunt Valves (csf-shuntvalves)",
    "authors": "Rhomberg T., Trivik-Barrientos F., Hakim A. et al.",
    "paper": "Applied deep learning in neurosurgery: identifying cerebrospinal fluid (CSF) shunt systems in "
    "hydrocephalus patients. Acta Neurochirurgica 166:69 (2024)",
    "doi": "10.1007/s00701-024-05940-3",
    "source": "https://github.com/CSFShuntvalves/xray_csf_shuntvalves",
    "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
}
