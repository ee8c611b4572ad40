"""The DICOM node (`valvereader serve`): receives films from PACS or a modality, reads them and
sends the results back as DICOM Structured Reports (and, on request, Secondary Captures).

scp: the Storage SCP and the worker; reading: one file's classification, row, SR and capture;
sr: the SR (IHE AI Results, TID 1500); send: the C-STOREs out. Sits beside cli and report, on
top of predict; it never imports the window.
"""
