"""The functions behind the commands, shared by the CLI and the demo: fMRI files to ROI tables (`roi_tables`), to
embeddings (`file_embeddings`), and the end-to-end demo (`demo`, `demo_figure`)."""
