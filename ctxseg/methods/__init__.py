"""One module per paper: `pixel_contrast`, `region_contrast`, `contextrast` (loss methods), `gald`, `mcibi`
(head methods). Each is exported by nbdev from the paper's module notebook; this file is hand-written only so
the folder is a regular package (nbdev does not write an `__init__.py` for sub-packages)."""
